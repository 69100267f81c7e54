"""Weak spots in numerics: clipping with a NaN bound refuses instead of silently not clipping; F.linear
with mixed dtypes is a TypeError on every backend (not a backend-dependent dtype); F.layer_norm /
F.rms_norm over a zero-size dim return an empty result like torch, not NumPy's reshape error."""
import math

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.nn import functional as F
from goldbull_np.optim.clip import clip_grad_norm_, clip_grad_value_

BACKENDS = ["numpy", "numba", "c"]


def _p():
    p = gb.nn.Parameter(np.full((3,), 10.0, np.float32))
    p.grad = np.full((3,), 10.0, np.float32)
    return p


@pytest.mark.parametrize("bad", [math.nan, -1.0, "x"])
def test_clip_norm_refuses_a_bound_that_cannot_clip(bad):
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([_p()], bad)


def test_clip_norm_inf_measures_only():
    p = _p()
    assert clip_grad_norm_([p], math.inf) == pytest.approx(math.sqrt(300), rel=1e-6)
    assert np.all(p.grad == 10.0)


def test_clip_value_refuses_nan():
    p = _p()
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_([p], math.nan)
    assert np.all(np.isfinite(p.grad))


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_with_mixed_dtypes_is_a_type_error_on_every_backend(backend):
    x = gb.tensor(np.ones((2, 3), np.float32))
    w = gb.tensor(np.ones((4, 3), np.float64))
    with gb.kernels.use(backend):
        with pytest.raises(TypeError, match="input float32, weight float64"):
            F.linear(x, w)
        with pytest.raises(TypeError, match="bias float64"):
            F.linear(x, gb.tensor(np.ones((4, 3), np.float32)), gb.tensor(np.ones(4, np.float64)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_norms_over_a_zero_size_dim(backend):
    with gb.kernels.use(backend):
        x = gb.tensor(np.ones((2, 0), np.float32), requires_grad=True)
        w = gb.nn.Parameter(np.ones((0,), np.float32))
        y = F.layer_norm(x, (0,), w, w * 0.0)
        assert y.shape == (2, 0) and y.dtype == np.float32
        y.sum().backward()
        assert x.grad.shape == (2, 0)
        assert F.rms_norm(x, (0,)).shape == (2, 0)
        assert gb.nn.LayerNorm(0)(x).shape == (2, 0)
