"""``ModelConfig``: the decoder LM's hyperparameters (exported as ``gb.ModelConfig``).

Defaults follow nanoGPT's GPT-2 parity choices: biases on, LayerNorm, GELU MLP, learned positions.
``config.json`` is this dataclass as JSON plus ``"model_type": "goldbull_text"`` and
``"architectures": ["GoldbullText"]`` (``goldbull_np.nn.model_base.PretrainedConfig``).
"""
import math
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from ..nn.model_base import PretrainedConfig

MODEL_TYPE = "goldbull_text"
_CHOICES = {"norm": ("layernorm", "rmsnorm"), "mlp": ("gelu", "swiglu"), "position": ("learned", "rope"),
            "gelu_approximate": ("none", "tanh")}


@dataclass
class ModelConfig(PretrainedConfig):
    """Hyperparameters of GoldbullText (on the model base: ``to_dict``, ``from_dict``, config.json).

    The class defaults are the ``default()`` preset (nanoGPT's shakespeare-char model).
    """

    model_type: ClassVar[str] = MODEL_TYPE
    architecture: ClassVar[str] = "GoldbullText"

    vocab_size: int = 65            # token ids are in [0, vocab_size)
    n_layer: int = 6                # transformer blocks
    n_head: int = 6                 # query heads
    n_kv_head: Optional[int] = None  # key/value heads (grouped-query); None = n_head
    n_embd: int = 384               # C, the residual width; head dim = n_embd // n_head unless head_dim
    block_size: int = 256           # longest sequence (positions tabulated / KV cache length)
    dropout: float = 0.0            # residual and embedding dropout (0 for pretraining)
    bias: bool = True               # biases in Linears and LayerNorms (GPT-2: True, Llama: False)
    tie_embeddings: bool = True     # lm_head.weight is embed_tokens.weight
    norm: str = "layernorm"         # "layernorm" | "rmsnorm"
    mlp: str = "gelu"               # "gelu" (GPT-2) | "swiglu" (Llama)
    position: str = "learned"       # "learned" (GPT-2) | "rope" (Llama)
    rope_theta: float = 10000.0     # rotary base
    norm_eps: float = 1e-5          # LayerNorm / RMSNorm eps
    mlp_hidden: Optional[int] = None  # MLP inner size; None = 4 * n_embd (GPT-2 "n_inner")
    gelu_approximate: str = "none"  # "none" (exact erf) | "tanh" (GPT-2's "gelu_new")
    init_std: float = field(default=0.02)  # GPT-2 init std
    head_dim: Optional[int] = None  # D, each head's width; None = n_embd // n_head (Llama's head_dim)

    def __post_init__(self):
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.head_dim is None and isinstance(self.n_head, int) and isinstance(self.n_embd, int) \
                and self.n_head > 0:
            if self.n_embd % self.n_head:
                raise ValueError(f"ModelConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) "
                                 "unless head_dim is given")
            self.head_dim = self.n_embd // self.n_head
        self.validate()


    # ---- presets --------------------------------------------------------------------------
    @classmethod
    def default(cls, vocab_size=65, **overrides):
        """6 layers, 6 heads, n_embd 384, block_size 256 (~10.7M parameters at vocab 65)."""
        return cls(vocab_size=vocab_size, **overrides)

    @classmethod
    def small(cls, vocab_size=65, **overrides):
        """4 layers, 4 heads, n_embd 128, block_size 64, dropout 0 (nanoGPT's CPU shakespeare-char)."""
        kw = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0)
        kw.update(overrides)
        return cls(vocab_size=vocab_size, **kw)

    @classmethod
    def tiny(cls, vocab_size=65, **overrides):
        """2 layers, 2 heads, n_embd 32, block_size 32: for unit tests."""
        kw = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0)
        kw.update(overrides)
        return cls(vocab_size=vocab_size, **kw)

    # ---- size, before anything is built ------------------------------------------------------
    def num_parameters(self) -> int:
        """The exact number of parameter values GoldbullText(self) holds (a tied lm_head counted once),
        computed from the fields alone: what a weights file for this config must hold."""
        C, D, V = self.n_embd, self.head_dim, self.vocab_size
        H = self.mlp_hidden if self.mlp_hidden is not None else 4 * C
        b = 1 if self.bias else 0
        norm = C * (1 + b) if self.norm == "layernorm" else C
        qkv = C * (self.n_head + 2 * self.n_kv_head) * D + b * (self.n_head + 2 * self.n_kv_head) * D
        o = self.n_head * D * C + b * C
        mlp = (3 if self.mlp == "swiglu" else 2) * C * H + b * ((2 if self.mlp == "swiglu" else 1) * H + C)
        layer = 2 * norm + qkv + o + mlp
        n = V * C + self.n_layer * layer + norm
        if self.position == "learned":
            n += self.block_size * C
        if not self.tie_embeddings:
            n += V * C
        return n

    def memory_bytes(self, itemsize: int = 4) -> int:
        """A lower bound of the bytes GoldbullText(self) allocates at construction: its parameters and
        the rotary tables (float64 and float32 cos/sin of (block_size, head_dim))."""
        n = self.num_parameters() * itemsize
        if self.position == "rope":
            n += self.block_size * self.head_dim * (8 + 8 + 4 + 4)
        return n

    def check_fits(self, available: Optional[int] = None, source: str = "ModelConfig") -> None:
        """Raise ValueError (naming ``source`` and the sizes) if building this model would need more memory
        than the machine has; computed from the fields, before anything is allocated.

        Args:
            available: bytes allowed (default: the machine's physical memory, see
                :func:`goldbull_np.nn.model_base.physical_memory`).
        """
        from ..nn.model_base import check_memory
        check_memory(self.memory_bytes(), f"{source}: a GoldbullText with n_layer={self.n_layer}, "
                     f"n_embd={self.n_embd}, vocab_size={self.vocab_size}, block_size={self.block_size} "
                     f"({self.num_parameters():,} parameters)", available)

    # ---- validation -----------------------------------------------------------------------

    def validate(self):
        """Raise ValueError with a clear message if the hyperparameters are inconsistent."""
        for name in ("vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd", "block_size", "head_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {v!r}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"ModelConfig: n_head ({self.n_head}) must be a multiple of n_kv_head "
                             f"({self.n_kv_head})")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"ModelConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.position == "rope" and self.head_dim % 2:
            raise ValueError(f"ModelConfig: rotary positions need an even head dim, got {self.head_dim}")
        for name, low, high, what in (("dropout", 0.0, 1.0, "in [0, 1)"), ("rope_theta", 0.0, None, "> 0"),
                                      ("norm_eps", 0.0, None, "> 0"), ("init_std", 0.0, None, ">= 0")):
            v = getattr(self, name)
            number = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            ok = number and (low <= v < high if name == "dropout" else (v >= low if name == "init_std" else v > low))
            if not ok:
                raise ValueError(f"ModelConfig.{name} must be a finite number {what}, got {v!r}")
        if self.mlp_hidden is not None and (not isinstance(self.mlp_hidden, int) or self.mlp_hidden < 1):
            raise ValueError(f"ModelConfig.mlp_hidden must be a positive integer or None, got {self.mlp_hidden!r}")
        for name in ("bias", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ModelConfig.{name} must be a bool, got {getattr(self, name)!r}")
