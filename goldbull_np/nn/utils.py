"""``goldbull_np.nn.utils``: gradient clipping (torch's location; also exported by gb.optim)."""
import math

import numpy as np

from .. import kernels
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


def _address(a):
    return a.__array_interface__["data"][0]  # (cheaper than a.ctypes.data, which builds a ctypes object)


def _flat_runs(grads):
    """The gradients as few flat arrays as possible: consecutive C-contiguous gradients that are
    adjacent views of one buffer (a fused AdamW keeps every float32 gradient in one flat array) become
    one 1-D view of it; every other gradient stands alone. Same elements, so sums and in-place scaling
    over the runs are over the gradients."""
    runs, start, end, base = [], None, None, None
    for g in grads:
        owner = g.base if isinstance(g.base, np.ndarray) else g
        ok = g.flags.c_contiguous and g.size and owner.flags.c_contiguous and owner.dtype == g.dtype
        lo = (_address(g) - _address(owner)) // g.itemsize if ok else None
        if ok and base is owner and lo == end:
            end = lo + g.size  # extends the current run
            continue
        if base is not None:
            runs.append(base.reshape(-1)[start:end])
        if ok:
            base, start, end = owner, lo, lo + g.size
        else:
            base = None
            runs.append(g)
    if base is not None:
        runs.append(base.reshape(-1)[start:end])
    return runs


def _sum_squares_f64(grads):
    """sum(g**2) over every array, accumulated in float64 (kernel `sum_squares`, one call per array:
    clip_grad_norm_ passes the runs of _flat_runs).

    The C kernel streams float32 into double accumulators on the kernels' thread team, with no BLAS
    call (see reference.sum_squares): 10.2 -> 1.5 ms on the 10.8M-parameter text model (2 threads, one
    run: the fused AdamW buffer).
    """
    acc = 0.0
    for g in grads:
        if g.size == 0:
            continue  # the empty sum; the C wrappers never see a zero-size array
        if not g.flags.c_contiguous:
            g = np.ascontiguousarray(g)  # the kernels read one flat buffer
        acc += kernels.get("sum_squares", g.dtype)(g)
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
    runs = _flat_runs(grads)  # the same elements in as few arrays as possible (one kernel call each)
    norm_type = float(norm_type)
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    elif norm_type == 2.0:
        total = math.sqrt(_sum_squares_f64(runs))
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
        for g in runs:
            g *= g.dtype.type(coef)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value] in place (NaNs stay NaN)."""
    c = float(clip_value)
    for g in _grads(parameters):
        np.clip(g, -c, c, out=g)
