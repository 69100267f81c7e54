"""int8_linear_forward: every C ISA tier equals the NumPy reference; the integer dot is exact at full range
(the int16-widened products cannot saturate); dynamic activation quantisation keeps the error small; bad
inputs raise before C."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from goldbull_np.kernels import reference as ref
from kernels_helpers import backend_module, c_lower_isas

TIERS = ["c"] + [f"c:{isa}" for isa in c_lower_isas()]


@pytest.mark.parametrize("backend", TIERS)
@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 9), K=st.integers(1, 70), OC=st.integers(1, 13), bias=st.booleans(), seed=st.integers(0, 99))
def test_c_equals_the_reference(backend, N, K, OC, bias, seed):
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, K)) * 3).astype(np.float32)
    x[0, :] = 0.0  # an all-zero row (scale 1)
    q = rng.integers(-127, 128, (OC, K)).astype(np.int8)
    ws = rng.random(OC).astype(np.float32)
    b = rng.standard_normal(OC).astype(np.float32) if bias else None
    got, want = kb.int8_linear_forward(x, q, ws, b), ref.int8_linear_forward(x, q, ws, b)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6 * float(np.abs(want).max() + 1))


@pytest.mark.parametrize("backend", TIERS)
def test_the_integer_dot_is_exact_at_full_range(backend):
    """127 x -127 over K = 4099: pairwise int16 sums of u8 x s8 products would saturate; int32 sums do not."""
    kb = backend_module(backend)
    K = 4099
    x = np.full((2, K), 5.0, np.float32)  # quantises to 127 everywhere
    x[1, ::2] = -5.0
    q = np.full((3, K), -127, np.int8)
    q[2, 1::2] = 127
    ws = np.ones(3, np.float32)
    acc = (np.rint(x / (5.0 / 127)).astype(np.int64) @ q.astype(np.int64).T).astype(np.float64) * (5.0 / 127)
    np.testing.assert_allclose(kb.int8_linear_forward(x, q, ws), acc, rtol=1e-6)


def test_quantisation_error_on_random_data_is_small():
    from goldbull_np.nn.quantized import quantize_int8
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 128)).astype(np.float32)
    w = rng.standard_normal((96, 128)).astype(np.float32)
    q, s = quantize_int8(w)
    out, exact = ref.int8_linear_forward(x, q, s), x @ w.T
    assert np.linalg.norm(out - exact) / np.linalg.norm(exact) < 0.015  # the NumPy sym-int8 oracle: ~1 %


@pytest.mark.parametrize("backend", ["numpy"] + TIERS[:1])
def test_bad_inputs_raise_naming_the_argument(backend):
    kb = backend_module(backend)
    x, q, s = np.zeros((2, 4), np.float32), np.zeros((3, 4), np.int8), np.ones(3, np.float32)
    with pytest.raises(TypeError, match="qweight must be int8"):
        kb.int8_linear_forward(x, q.astype(np.int16), s)
    with pytest.raises(ValueError, match="do not fit"):
        kb.int8_linear_forward(np.zeros((2, 5), np.float32), q, s)
    with pytest.raises(ValueError, match="do not fit"):
        kb.int8_linear_forward(x, q, s, np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="float32"):
        kb.int8_linear_forward(x.astype(np.float64), q, s)
