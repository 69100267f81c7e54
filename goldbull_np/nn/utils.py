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
        acc = 0.0
        for g in grads:
            flat = g.reshape(-1).astype(np.float64)
            acc += float(np.dot(flat, flat))
        total = math.sqrt(acc)
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
