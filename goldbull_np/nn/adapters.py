"""Bottleneck adapters (Houlsby et al. 2019): ``AdapterConfig``, ``add_adapters_to_layers``, ...

An adapter is ``h + up(dropout(act(down(h))))`` with down: Linear(C, b), up: Linear(b, C). In a block
chosen by ``add_adapters_to_layers`` one adapter transforms the attention output and another the MLP
output, each before the residual add::

    x = x + drop(attn_adapter(attn(attn_norm(x))))
    x = x + drop(mlp_adapter(mlp(mlp_norm(x))))

The block is replaced by an :class:`AdapterTransformerBlock` that holds the very same submodules, so
the base state-dict names do not change; the adapters appear as ``layers.{i}.attn_adapter.*`` and
``layers.{i}.mlp_adapter.*``.
"""
import math
from dataclasses import dataclass

from . import functional as F
from . import init
from .layers import Dropout, Linear
from .module import Module
from .transformer import TransformerBlock

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": F.tanh}
_INITS = ("normal", "near_zero", "zeros")


@dataclass
class AdapterConfig:
    """Bottleneck adapter settings.

    Args:
        bottleneck_size: b, the adapter's inner width.
        dropout: dropout on the bottleneck activations (training mode only).
        activation: "relu", "gelu", "silu" or "tanh".
        init_weights: "normal" (Houlsby's near-identity init: both projections N(0, init_std^2), zero
            biases, so the output changes by O(init_std^2)); "near_zero" (the same with init_std / 10);
            "zeros" (down kaiming-uniform, up zero: exactly the identity, as LoRA's B = 0).
        init_std: the standard deviation of the "normal" init.
    """

    bottleneck_size: int = 64
    dropout: float = 0.1
    activation: str = "relu"
    init_weights: str = "normal"
    init_std: float = 1e-2

    def __post_init__(self):
        if isinstance(self.bottleneck_size, bool) or not isinstance(self.bottleneck_size, int) \
                or self.bottleneck_size < 1:
            raise ValueError(f"AdapterConfig.bottleneck_size must be a positive integer, got {self.bottleneck_size!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"AdapterConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"AdapterConfig.activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.init_weights not in _INITS:
            raise ValueError(f"AdapterConfig.init_weights must be one of {_INITS}, got {self.init_weights!r}")
        if not self.init_std > 0:
            raise ValueError(f"AdapterConfig.init_std must be positive, got {self.init_std!r}")


class BottleneckAdapter(Module):
    """``h + up(dropout(act(down(h))))``; h (..., C) -> (..., C)."""

    def __init__(self, n_embd, config):
        super().__init__()
        self.down_proj = Linear(n_embd, config.bottleneck_size)
        self.up_proj = Linear(config.bottleneck_size, n_embd)
        self.activation = config.activation
        self.dropout = Dropout(config.dropout) if config.dropout > 0 else None
        if config.init_weights == "zeros":
            init.kaiming_uniform_(self.down_proj.weight, a=math.sqrt(5))
            init.zeros_(self.up_proj.weight)
        else:
            std = config.init_std if config.init_weights == "normal" else config.init_std / 10
            init.normal_(self.down_proj.weight, 0.0, std)
            init.normal_(self.up_proj.weight, 0.0, std)
        init.zeros_(self.down_proj.bias)
        init.zeros_(self.up_proj.bias)

    def forward(self, h):
        z = _ACTIVATIONS[self.activation](self.down_proj(h))  # (..., b)
        if self.dropout is not None:
            z = self.dropout(z)
        return h + self.up_proj(z)

    def extra_repr(self):
        return f"activation={self.activation!r}"


class AdapterTransformerBlock(TransformerBlock):
    """A TransformerBlock with bottleneck adapters on its attention and MLP outputs.

    Build it with :meth:`from_block`: it takes over the block's submodules (same objects).
    """

    @classmethod
    def from_block(cls, block, n_embd, config):
        new = cls.__new__(cls)
        Module.__init__(new)
        for key, value in block.__dict__.items():
            if key in ("_parameters", "_buffers", "_modules"):
                new.__dict__[key] = value.copy()
            elif key == "_non_persistent":
                new.__dict__[key] = set(value)
            else:
                new.__dict__[key] = value
        new.attn_adapter = BottleneckAdapter(n_embd, config)
        new.mlp_adapter = BottleneckAdapter(n_embd, config)
        new.train(block.training)
        return new

    def forward(self, x, kv_cache=None):
        a = self.attn_adapter(self.attention(x, kv_cache))  # (B,T,C)
        if self.dropout is not None:
            a = self.dropout(a)
        x = x + a
        m = self.mlp_adapter(self.feed_forward(x))  # (B,T,C)
        if self.dropout is not None:
            m = self.dropout(m)
        return x + m


def add_adapters_to_layers(model, layers, config=None):
    """Insert adapters after attention and after the MLP of the blocks ``model.layers[i]``, i in ``layers``.

    Args:
        model: a model with a ``layers`` ModuleList of TransformerBlocks (GoldbullText).
        layers: block indices (0-based).
        config: an AdapterConfig (default ``AdapterConfig()``).
    Returns:
        The sorted list of indices that got adapters.
    Raises:
        IndexError naming the valid range for an index out of range; ValueError if a block already
        has adapters. Nothing is changed unless every index is valid.
    """
    config = AdapterConfig() if config is None else config
    if not isinstance(config, AdapterConfig):
        raise TypeError(f"config must be an AdapterConfig, got {type(config).__name__}")
    blocks = getattr(model, "layers", None)
    if blocks is None:
        raise TypeError(f"{type(model).__name__} has no 'layers' to add adapters to")
    n = len(blocks)
    idx = []
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, int) and not hasattr(i, "__index__"):
            raise TypeError(f"adapter layer indices must be integers, got {i!r}")
        i = int(i)
        if not 0 <= i < n:
            raise IndexError(f"adapter layer index {i} is out of range: the model has {n} layers, "
                             f"valid indices are 0..{n - 1}")
        if isinstance(blocks[i], AdapterTransformerBlock):
            raise ValueError(f"layer {i} already has adapters")
        idx.append(i)
    idx = sorted(set(idx))
    if not idx:
        raise ValueError("add_adapters_to_layers: no layer indices given")
    n_embd = getattr(getattr(model, "config", None), "n_embd", None)
    for i in idx:
        C = n_embd if n_embd is not None else blocks[i].attn.n_embd
        # in place: ModuleList.__setitem__ re-registers the key, which would move the block to the end
        blocks._modules[str(i)] = AdapterTransformerBlock.from_block(blocks[i], C, config)
    object.__setattr__(model, "adapter_config", config)
    return idx


def adapter_modules(model):
    """``[(path, BottleneckAdapter)]`` of a model."""
    return [(p, m) for p, m in model.named_modules() if isinstance(m, BottleneckAdapter)]


def get_adapter_parameters(model):
    """The Parameters of every bottleneck adapter in ``model``."""
    return [p for _, m in adapter_modules(model) for p in m.parameters()]


def freeze_base_parameters(model):
    """Freeze every parameter except the adapters' (bottleneck adapters and LoRA pairs).

    Returns:
        The number of scalar parameters left trainable.
    """
    from .lora import lora_state_dict

    keep = {id(p) for p in get_adapter_parameters(model)}
    keep |= {id(t) for t in lora_state_dict(model, keep_vars=True).values()}
    n = 0
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
        n += p.data.size if id(p) in keep else 0
    return int(n)


__all__ = ["AdapterConfig", "BottleneckAdapter", "AdapterTransformerBlock", "add_adapters_to_layers",
           "adapter_modules", "get_adapter_parameters", "freeze_base_parameters"]
