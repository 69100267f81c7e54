"""``goldbull_np.nn.utils``: gradient clipping (torch's location; also exported by gb.optim)."""
import math

import numpy as np

from ..autograd.tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    seen, out = set(), []
    for p in parameters:
        if p.grad is not None and id(p) not in seen:
            seen.add(id(p))
            out.append(p.grad)
    return out


_CHUNK = 1 << 15  # float64 elements per conversion block (256 KiB: stays in L2)


def _sum_squares_f64(grads):
    """sum(g**2) over every gradient, accumulated in float64.

    Not np.dot: that is BLAS ddot, which is multi-threaded in OpenBLAS for long vectors, and an
    OpenBLAS worker left spinning after it competes with the kernels' OpenMP pool for the next
    step's cores (a small-GPT step at 2 threads: 96 -> 73 ms). einsum's 'i,i->' loop is
    single-threaded SIMD; converting in fixed blocks keeps the float64 temporary small.
    """
    acc = 0.0
    buf = None
    for g in grads:
        flat = g.reshape(-1)
        if flat.dtype == np.float64:
            acc += float(np.einsum("i,i->", flat, flat))
            continue
        for s in range(0, flat.size, _CHUNK):
            part = flat[s:s + _CHUNK]
            if buf is None or buf.size < part.size:
                buf = np.empty(min(_CHUNK, max(part.size, 1)), np.float64)
            b = buf[:part.size]
            np.copyto(b, part, casting="unsafe")
            acc += float(np.einsum("i,i->", b, b))
    return acc



def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so their global norm is at most ``max_norm``.

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
    grads = _grads(parameters)
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    elif norm_type == 2.0:
        total = math.sqrt(_sum_squares_f64(grads))
    else:
        acc = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in grads)
        total = acc ** (1.0 / norm_type)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(f"the total norm of order {norm_type} of the gradients is non-finite ({total}), "
                               "so it cannot be clipped")
        return total
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= g.dtype.type(coef)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value] in place (NaNs stay NaN)."""
    c = float(clip_value)
    for g in _grads(parameters):
        np.clip(g, -c, c, out=g)
