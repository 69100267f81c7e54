"""Numerical gradient checking in float64: analytic backward against central differences."""
import builtins

import numpy as np

from .engine import run_backward
from .grad_mode import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0) -> bool:
    """Check ``fn``'s gradients with respect to every input that requires grad.

    The outputs are reduced with fixed random weights ``w`` to the scalar ``L = sum(w * fn(*inputs))``;
    ``dL/dx`` from backward is compared with central differences ``(L(x+eps) - L(x-eps)) / 2eps``
    element by element.

    Args:
        fn: a function of tensors returning a tensor (or a tuple of tensors).
        inputs: a tensor or a sequence of tensors; the ones that require grad must be float64 (they may
            be non-contiguous views, e.g. a transposed array). Their ``.grad`` is left untouched.
        eps, atol, rtol: step and tolerances (``|analytic - numeric| <= atol + rtol * |numeric|``).
        seed: seed of the random weights that reduce the outputs to a scalar.
    Returns:
        True.
    Raises:
        GradcheckError naming the input, the worst element, and both values.
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; use float64 inputs")

    rng = np.random.default_rng(seed)
    outs = _as_tuple(fn(*inputs))
    weights = [rng.standard_normal(np.shape(o)) for o in outs]

    def loss_value():
        with no_grad():
            return _loss(fn(*inputs))

    def _loss(outs_now):
        return builtins.sum(float((np.asarray(o.data if isinstance(o, Tensor) else o, dtype=np.float64) * w).sum())
                            for o, w in zip(_as_tuple(outs_now), weights))

    total = None
    for o, w in zip(outs, weights):
        if isinstance(o, Tensor) and o.requires_grad:
            term = (o * Tensor(w.astype(o.dtype))).sum()
            total = term if total is None else total + term
    if total is None:
        raise GradcheckError("gradcheck: no output depends on an input that requires grad")
    # the engine's capture mode: gradients come back without touching any .grad
    analytics = run_backward((total,), (None,), capture=[inputs[i] for i in checked])

    for i, g in zip(checked, analytics):
        x = inputs[i]
        analytic = np.zeros(x.shape) if g is None else np.asarray(g, dtype=np.float64)
        numeric = np.zeros(x.shape)
        if not x.data.flags.writeable:
            raise ValueError(f"gradcheck: input {i} is read-only (a broadcast view?); pass a writable array")
        for j in np.ndindex(x.shape):  # works on non-contiguous inputs too (a transposed view, a slice)
            orig = x.data[j]
            x.data[j] = orig + eps
            plus = loss_value()
            x.data[j] = orig - eps
            minus = loss_value()
            x.data[j] = orig
            numeric[j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if err.size and not np.all(err <= 0):
            bad = np.where(np.isnan(err), np.inf, err)
            k = np.unravel_index(int(np.argmax(bad)), x.shape)
            raise GradcheckError(
                f"gradcheck: gradient of input {i} (shape {x.shape}) is wrong at index {tuple(int(v) for v in k)}: "
                f"analytic {analytic[k]:.8g}, numeric {numeric[k]:.8g}"
            )
    return True


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)
