"""Gradient clipping: ``clip_grad_norm_`` / ``clip_grad_value_`` (torch's names; also ``nn.utils``'s) and
``clip_gradients_``, the same on raw gradient arrays (what :meth:`Optimizer.gradient_arrays` returns).

The 2-norm is accumulated in float64 by the ``sum_squares`` kernel, one call per array: a fused AdamW
hands its float32 gradients over as one flat buffer, so the norm of the whole model is one call, also
when the caller passes ``model.parameters()`` (their gradients are recognised as the buffer's views).
"""
import math

import numpy as np

from .. import kernels
from ..autograd.tensor import Tensor
from .adam import coalesce_flat_gradients


def parameter_gradients(parameters) -> list:
    """The ``.grad`` arrays of ``parameters`` (a Tensor or an iterable of them), each once, skipping None."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    seen, out = set(), []
    for p in parameters:
        if p.grad is not None and id(p) not in seen:
            seen.add(id(p))
            out.append(p.grad)
    return out


def sum_squares_f64(arrays) -> float:
    """sum(a**2) over every array, accumulated in float64 (kernel ``sum_squares``, one call per array)."""
    acc = 0.0
    for a in arrays:
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)  # the kernels read one flat buffer
        acc += kernels.get("sum_squares", a.dtype)(a)
    return acc


def total_norm(arrays, norm_type=2.0) -> float:
    """The p-norm of all ``arrays`` together (float64 accumulation; NaN/inf propagate)."""
    norm_type = float(norm_type)
    if norm_type == math.inf:
        return max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    if norm_type == 2.0:
        return math.sqrt(sum_squares_f64(arrays))
    acc = sum(float(np.sum(np.abs(a.astype(np.float64)) ** norm_type)) for a in arrays)
    return acc ** (1.0 / norm_type)


def scale_(arrays, factor: float) -> None:
    """Multiply every array in place by ``factor`` (in its own dtype)."""
    for a in arrays:
        a *= a.dtype.type(factor)


def clip_gradients_(arrays, max_norm, norm_type=2.0, error_if_nonfinite=False, *, scale: float = 1.0) -> float:
    """Clip raw gradient arrays in place to a global norm of at most ``max_norm``.

    Args:
        arrays: gradient arrays, each element counted once (e.g. ``optimizer.gradient_arrays()``).
        max_norm: the largest allowed norm (``math.inf``: measure only).
        norm_type: p of the p-norm.
        error_if_nonfinite: raise RuntimeError on a non-finite norm.
        scale: the true gradients are ``arrays * scale`` (gradient accumulation backpropagates
            weighted sums and divides by the total weight here, once). The norm returned and compared is the true one; the arrays end up holding the true,
            clipped gradients, in one pass.
    Returns:
        The true total norm before clipping. When it is not finite the arrays are left untouched.
    """
    try:
        ok = float(max_norm) >= 0 and float(norm_type) > 0  # NaN fails: a NaN max_norm would never clip
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"clip: max_norm must be a number >= 0 (inf: measure only) and norm_type > 0, got "
                         f"max_norm={max_norm!r}, norm_type={norm_type!r}")
    total = total_norm(arrays, norm_type) * scale
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(f"the total norm of order {norm_type} of the gradients is non-finite ({total}), "
                               "so it cannot be clipped")
        return total
    coef = min(1.0, float(max_norm) / (total + 1e-6))
    if coef * scale != 1.0:
        scale_(arrays, coef * scale)
    return total


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False) -> float:
    """Scale the gradients in place so their global norm is at most ``max_norm`` (torch's function).

    The norm is accumulated in float64, so float32 gradients of 1e20 (whose squares overflow
    float32) give a finite norm and clip to finite values. When the norm is not finite (a NaN or inf
    gradient) the gradients are left untouched and the norm returned, so the caller can skip the
    step (or pass ``error_if_nonfinite=True`` to raise).

    Args:
        parameters: an iterable of tensors (or one tensor); those without ``.grad`` are ignored.
        max_norm: the largest allowed norm.
        norm_type: p of the p-norm (2.0, 1.0, ``inf``, ...).
        error_if_nonfinite: raise RuntimeError on a non-finite norm.
    Returns:
        The total norm before clipping, as a Python float.
    """
    grads = parameter_gradients(parameters)
    if not grads:
        return 0.0
    return clip_gradients_(coalesce_flat_gradients(grads), max_norm, norm_type, error_if_nonfinite)


def clip_grad_value_(parameters, clip_value) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place (NaNs stay NaN)."""
    c = float(clip_value)
    if not c >= 0:  # NaN fails: np.clip with NaN bounds makes every gradient NaN
        raise ValueError(f"clip_grad_value_: clip_value must be a number >= 0, got {clip_value!r}")
    for g in parameter_gradients(parameters):
        np.clip(g, -c, c, out=g)


__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_gradients_", "total_norm", "parameter_gradients",
           "sum_squares_f64", "scale_"]
