"""Reverse-mode autograd: Tensor, Function, the backward engine, grad modes, gradcheck."""
from . import functions  # noqa: F401  (attaches the Tensor op methods)
from .engine import gc_paused, grad
from .function import Function, unbroadcast
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor

__all__ = ["Tensor", "Function", "unbroadcast", "grad", "gc_paused", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "gradcheck", "GradcheckError"]
