"""The one helper that checks an op: forward against a NumPy expression, gradient against float64
central differences (goldbull_np.autograd.gradcheck), on contiguous or non-contiguous inputs.

Value domains keep inputs away from kinks and poles so that finite differences are meaningful.
"""
import numpy as np

import goldbull_np as gb


def _uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def _away_from_zero(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


def _grid(offset):
    # values on the grid offset + k/4: two inputs on different offsets are never within 1/8
    return lambda rng, shape: rng.integers(-8, 8, shape) / 4.0 + offset


DOMAINS = {
    "real": _uniform(-2.0, 2.0),
    "pos": _uniform(0.5, 2.0),        # log, sqrt, rsqrt, pow base
    "gt-1": _uniform(-0.5, 2.0),      # log1p
    "kink": _away_from_zero(0.2, 2.0),  # abs, relu, clamp at 0 (kinks at 0)
    "grid0": _grid(0.0),              # maximum/minimum: no ties between the two inputs
    "grid1": _grid(0.125),
    "small": _uniform(-1.0, 1.0),
}


def make_input(rng, shape, domain="real", non_contiguous=False, dtype=np.float64):
    """An array of ``shape`` drawn from ``domain``; non-contiguous (a transposed or strided view)
    when asked and the shape allows it."""
    values = np.asarray(DOMAINS[domain](rng, shape), dtype=dtype)
    if not non_contiguous or values.size < 2:
        return values
    out = np.asfortranarray(values)  # a transposed view
    if out.flags.c_contiguous:  # e.g. (3, 1): take every other element of a buffer twice as long
        buf = np.zeros(values.shape[:-1] + (2 * values.shape[-1],), dtype=dtype)
        out = buf[..., ::2]
        out[...] = values
    assert not out.flags.c_contiguous
    return out


def check_op(gb_fn, np_fn, arrays, grad=True, fwd_rtol=1e-5, fwd_atol=1e-6, f32_rtol=2e-4, f32_atol=2e-5,
             gradcheck_kw=None):
    """Check ``gb_fn(*tensors)`` against ``np_fn(*arrays)``.

    1. float64 forward equals the NumPy expression (evaluated in float64).
    2. float32 forward (the default dtype) equals it within float32 tolerances, and keeps float32.
    3. float64 gradient of every float input equals central differences (gradcheck), on the arrays
       as given: contiguous or not.

    Args:
        arrays: float64 ndarrays (inputs that need grad) or other values passed through unchanged
            (integer/bool arrays become Tensors that do not require grad).
    """
    expected = np_fn(*arrays)
    exp_list = expected if isinstance(expected, (tuple, list)) else [expected]

    def tensors(dtype, requires_grad):
        out = []
        for a in arrays:
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                t = gb.Tensor(a if dtype == np.float64 else a.astype(dtype))  # shares a, keeps its strides
                out.append(t.requires_grad_() if requires_grad else t)
            elif isinstance(a, np.ndarray):
                out.append(gb.Tensor(a))
            else:
                out.append(a)
        return out

    def as_list(out):
        return list(out) if isinstance(out, (tuple, list)) else [out]

    # 1 + 2: forward in float64 and float32
    for dtype, rtol, atol in ((np.float64, fwd_rtol, fwd_atol), (np.float32, f32_rtol, f32_atol)):
        got = as_list(gb_fn(*tensors(dtype, False)))
        assert len(got) == len(exp_list), (len(got), len(exp_list))
        for g, e in zip(got, exp_list):
            assert isinstance(g, gb.Tensor), type(g)
            e = np.asarray(e)
            assert g.shape == e.shape, f"shape {g.shape} != expected {e.shape}"
            if e.dtype.kind == "f":
                if any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in arrays):
                    assert g.dtype == dtype, f"dtype {g.dtype} != {np.dtype(dtype)}"
                np.testing.assert_allclose(np.asarray(g.data, dtype=np.float64), e, rtol=rtol, atol=atol)
            else:
                np.testing.assert_array_equal(g.data, e)

    # 3: gradient in float64 against central differences
    if grad:
        ins = tensors(np.float64, True)
        if any(isinstance(t, gb.Tensor) and t.requires_grad for t in ins):
            assert gb.autograd.gradcheck(gb_fn, ins, **(gradcheck_kw or {}))
