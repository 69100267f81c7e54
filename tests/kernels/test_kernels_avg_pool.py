"""Average pooling in C (csrc/avg_pool.c) equals the NumPy reference, is the exact transpose of itself
backward, and rejects what the reference rejects."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels_helpers import assert_close, backend_module, rand
import goldbull_np.kernels as K
from goldbull_np.kernels import reference as ref

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@st.composite
def pools(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h, w = draw(st.integers(max(1, kh - 2 * ph), 11)), draw(st.integers(max(1, kw - 2 * pw), 11))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    return dict(shape=(draw(st.integers(1, 3)), draw(st.integers(1, 5)), h, w),
                kw=dict(kernel_size=(kh, kw), stride=stride, padding=(ph, pw),
                        count_include_pad=draw(st.booleans())))


@SETTINGS
@given(case=pools(), seed=st.integers(0, 99))
def test_avg_pool_c_equals_reference_and_is_its_own_transpose(case, seed):
    c = backend_module("c")
    rng = np.random.default_rng(seed)
    x = rand(rng, case["shape"], np.float32)
    out = c.avg_pool2d_forward(x, **case["kw"])
    assert_close(out, ref.avg_pool2d_forward(x, **case["kw"]), np.float32, "forward")
    g = rand(rng, out.shape, np.float32)
    dx = c.avg_pool2d_backward(g, x.shape, **case["kw"])
    assert_close(dx, ref.avg_pool2d_backward(g, x.shape, **case["kw"]), np.float32, "backward")
    # <pool(x), g> == <x, pool^T(g)>: backward is the forward's transpose
    np.testing.assert_allclose(np.vdot(out.astype(np.float64), g), np.vdot(x.astype(np.float64), dx), rtol=1e-4)


def test_avg_pool_resolves_to_c_for_float32_only():
    backend_module("c")
    with K.use("auto"):
        assert K.resolve_backend("avg_pool2d_forward", np.float32) == "c"
        assert K.resolve_backend("avg_pool2d_backward", np.float32) == "c"
        assert K.resolve_backend("avg_pool2d_forward", np.float64) == "numpy"


def test_avg_pool_bad_input_names_the_problem():
    c = backend_module("c")
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match="at most half the kernel"):
        c.avg_pool2d_forward(x, kernel_size=2, padding=2)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        c.avg_pool2d_forward(x, kernel_size=7)
    with pytest.raises(ValueError, match="4-D"):
        c.avg_pool2d_forward(x[0], kernel_size=2)
    with pytest.raises(TypeError, match="float32"):
        c.avg_pool2d_forward(x.astype(np.float64), kernel_size=2)
    with pytest.raises(ValueError, match="dout must have shape"):
        c.avg_pool2d_backward(np.zeros((1, 2, 3, 3), np.float32), x.shape, kernel_size=2)
    with pytest.raises(ValueError, match="input_shape"):
        c.avg_pool2d_backward(np.zeros((1, 2, 2, 2), np.float32), (2, 5, 5), kernel_size=2)
