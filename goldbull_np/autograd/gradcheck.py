"""Numerical gradient checking in float64: analytic backward against central differences."""
import numpy as np

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
        inputs: a tensor or a sequence of tensors; float ones should be float64.
        eps, atol, rtol: step and tolerances (``|analytic - numeric| <= atol + rtol * |numeric|``).
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
    weights = [rng.standard_normal(o.shape) for o in outs]

    def loss_value():
        return sum(float((np.asarray(o.data, dtype=np.float64) * w).sum())
                   for o, w in zip(_as_tuple(fn(*inputs)), weights))

    for i in checked:
        inputs[i].grad = None
    total = None
    for o, w in zip(outs, weights):
        if o.requires_grad:
            term = (o * Tensor(w.astype(o.dtype))).sum()
            total = term if total is None else total + term
    if total is None:
        raise GradcheckError("gradcheck: no output depends on an input that requires grad")
    total.backward()

    for i in checked:
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else np.asarray(x.grad, dtype=np.float64)
        numeric = np.zeros(x.shape)
        flat = x.data.reshape(-1) if x.data.flags.c_contiguous else None
        if flat is None:
            raise ValueError(f"gradcheck: input {i} must be contiguous")
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = loss_value()
            flat[j] = orig - eps
            minus = loss_value()
            flat[j] = orig
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if err.size and err.max() > 0:
            k = np.unravel_index(int(np.argmax(err)), x.shape)
            raise GradcheckError(
                f"gradcheck: gradient of input {i} (shape {x.shape}) is wrong at index {tuple(int(v) for v in k)}: "
                f"analytic {analytic[k]:.8g}, numeric {numeric[k]:.8g}"
            )
    return True


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)
