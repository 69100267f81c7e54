"""goldbull_np: train and fine-tune neural networks on the CPU.

A reverse-mode autograd engine on NumPy with C (cffi) and Numba kernels behind one dispatch point,
and on top of it layers, optimizers, data loading and trainers. Names and semantics follow PyTorch
where the concept is PyTorch's::

    import goldbull_np as gb
    x = gb.randn(3, 4, requires_grad=True)
    (x.tanh() ** 2).sum().backward()
    x.grad  # an ndarray of shape (3, 4)
"""
import importlib

import numpy as _np

from ._version import __version__
from .autograd import (Function, GradcheckError, Tensor, enable_grad, gradcheck, grad, is_grad_enabled,
                       no_grad, set_grad_enabled)
from .autograd.creation import (arange, empty, empty_like, eye, from_numpy, full, full_like, linspace,
                                normal, ones, ones_like, rand, rand_like, randint, randn, randn_like, tensor,
                                zeros, zeros_like)
from .autograd.functions.elementwise import (abs, add, clamp, cos, div, exp, log, log1p, maximum, minimum,
                                             mul, neg, pow, relu, rsqrt, sigmoid, silu, sin, softplus, sqrt,
                                             sub, tanh, where)
from .autograd.functions.linalg import matmul
from .autograd.functions.movement import (broadcast_to, cat, chunk, flatten, flip, gather, index_select,
                                          masked_fill, permute, repeat, reshape, split, squeeze, stack,
                                          transpose, tril, triu, unbind, unsqueeze)
from .autograd.functions.reduce import (amax, amin, argmax, argmin, logsumexp, max, mean, min, norm, std,
                                        sum, var)
from .random import get_rng_state, manual_seed, set_rng_state

float16 = half = _np.dtype(_np.float16)
float32 = float = _np.dtype(_np.float32)
float64 = double = _np.dtype(_np.float64)
int32 = _np.dtype(_np.int32)
int64 = long = _np.dtype(_np.int64)
bool = _np.dtype(_np.bool_)  # noqa: A001 - torch's name
concat = cat

# Subpackages load on first use, so `import goldbull_np` stays fast (no numba, no JIT).
_SUBMODULES = ("nn", "optim", "data", "train", "text", "vision", "eval", "export", "kernels", "autograd", "cli", "io",
               "runtime")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "ModelConfig":
        return importlib.import_module(".text", __name__).ModelConfig
    raise AttributeError(f"module 'goldbull_np' has no attribute {name!r}")
