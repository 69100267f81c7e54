"""Neural-network building blocks (``goldbull_np.nn``) and the functional API (``nn.functional``).

Module/Parameter and containers, torch-shaped layers, transformer pieces (MLP, causal self-attention
with fused QKV, grouped-query K/V, rotary embeddings and a KV cache, pre-norm TransformerBlock),
``nn.init`` and ``nn.utils`` (gradient clipping).
"""
from . import functional  # noqa: F401
from . import init, utils  # noqa: F401
from .containers import ModuleDict, ModuleList, Sequential
from .layers import GELU, Dropout, Embedding, Identity, LayerNorm, Linear, ReLU, RMSNorm, SiLU, Tanh
from .module import IncompatibleKeys, Module
from .parameter import Parameter
from .rotary import RotaryEmbedding, apply_rotary
from .transformer import MLP, CausalSelfAttention, KVCache, LayerKVCache, TransformerBlock, make_norm

__all__ = ["Module", "Parameter", "IncompatibleKeys", "Sequential", "ModuleList", "ModuleDict", "Linear",
           "Embedding", "LayerNorm", "RMSNorm", "Dropout", "GELU", "SiLU", "ReLU", "Tanh", "Identity", "MLP",
           "CausalSelfAttention", "TransformerBlock", "KVCache", "LayerKVCache", "RotaryEmbedding",
           "apply_rotary", "make_norm", "functional", "init", "utils"]

# parameter-efficient fine-tuning and activation checkpointing (appended): the modules, as torch.utils.checkpoint
from . import adapters, checkpoint, lora  # noqa: E402,F401  (nn.checkpoint.checkpoint(fn, *inputs))
from .adapters import AdapterConfig, BottleneckAdapter  # noqa: E402
from .lora import LoRAConfig, LoRALinear  # noqa: E402

__all__ += ["LoRAConfig", "LoRALinear", "AdapterConfig", "BottleneckAdapter", "lora", "adapters", "checkpoint"]

# image layers (NCHW), in conv.py
from .conv import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, GroupNorm, MaxPool2d  # noqa: E402

__all__ += ["Conv2d", "BatchNorm2d", "GroupNorm", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten"]
