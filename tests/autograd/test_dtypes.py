"""dtypes: float32 default, NumPy promotion between tensors, Python scalars never upcast, float16 works,
conversions, and integer tensors never require grad."""
import numpy as np
import pytest

import goldbull_np as gb


def test_defaults():
    assert gb.tensor([1.0, 2.0]).dtype == np.float32
    assert gb.tensor(1.5).dtype == np.float32
    assert gb.tensor([1, 2]).dtype == np.int64
    assert gb.tensor([True, False]).dtype == np.bool_
    assert gb.zeros(2).dtype == np.float32 and gb.randn(2).dtype == np.float32
    assert gb.arange(3).dtype == np.int64 and gb.arange(0.0, 1.0, 0.5).dtype == np.float32
    assert gb.tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype


@pytest.mark.parametrize("dtype", [gb.float16, gb.float32])
@pytest.mark.parametrize("scalar", [2, 2.5, True, np.float64(2.5), np.int64(3)])
def test_python_and_numpy_scalars_never_upcast(dtype, scalar):
    x = gb.ones(3, dtype=dtype, requires_grad=True)
    for y in (x + scalar, scalar + x, x * scalar, scalar * x, x - scalar, scalar - x, x / scalar, scalar / x,
              x ** 2, gb.maximum(x, scalar), gb.where(x > 0, x, scalar)):
        assert y.dtype == dtype, (scalar, y.dtype)
    y = (x * scalar + scalar).sum()
    y.backward()
    assert x.grad.dtype == dtype


def test_tensor_tensor_promotion_follows_numpy():
    f16, f32, f64 = gb.ones(2, dtype=gb.float16), gb.ones(2), gb.ones(2, dtype=gb.float64)
    i64, b = gb.ones(2, dtype=gb.int64), gb.ones(2, dtype=gb.bool)
    assert (f16 + f32).dtype == np.float32
    assert (f32 + f64).dtype == np.float64
    assert (f32 + b).dtype == np.float32
    assert (i64 + i64).dtype == np.int64
    assert (f32 * i64).dtype == np.result_type(np.float32, np.int64)


def test_gradients_have_the_dtype_of_their_leaf():
    a = gb.ones(2, dtype=gb.float32, requires_grad=True)
    b = gb.ones(2, dtype=gb.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_float16_forward_backward():
    gb.manual_seed(0)
    x = gb.randn(4, 3, dtype=gb.float16, requires_grad=True)
    w = gb.randn(5, 3, dtype=gb.float16, requires_grad=True)
    F = gb.nn.functional
    h = F.linear(x, w).tanh()
    y = F.layer_norm(h, (5,)).sum() + F.gelu(h).mean() + F.cross_entropy(h, gb.tensor([0, 1, 2, 3]))
    assert h.dtype == np.float16 and y.dtype == np.float16
    y.backward()
    assert x.grad.dtype == np.float16 and w.grad.dtype == np.float16
    x32 = gb.tensor(x.numpy().astype(np.float32), requires_grad=True)
    w32 = gb.tensor(w.numpy().astype(np.float32), requires_grad=True)
    h32 = F.linear(x32, w32).tanh()
    y32 = F.layer_norm(h32, (5,)).sum() + F.gelu(h32).mean() + F.cross_entropy(h32, gb.tensor([0, 1, 2, 3]))
    y32.backward()
    np.testing.assert_allclose(x.grad.astype(np.float32), x32.grad, rtol=0.05, atol=0.02)


def test_conversions():
    x = gb.tensor([1.5, -2.5], requires_grad=True)
    assert x.to(gb.float64).dtype == np.float64
    assert x.double().dtype == np.float64 and x.half().dtype == np.float16 and x.double().float().dtype == np.float32
    assert x.to("cpu") is x and x.to(gb.float32) is x
    assert x.to("cpu", gb.float64).dtype == np.float64
    i = x.long()
    assert i.dtype == np.int64 and not i.requires_grad
    np.testing.assert_array_equal(i.numpy(), [1, -2])
    assert x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    x.double().sum().backward()  # differentiable between float dtypes
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_comparisons_are_bool_and_have_no_grad():
    x = gb.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for m in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2, x.gt(1), x.eq(x)):
        assert m.dtype == np.bool_ and not m.requires_grad and m.grad_fn is None
    np.testing.assert_array_equal((x > 1.5).numpy(), [False, True, True])
    np.testing.assert_array_equal(((x > 1.5) & (x < 2.5)).numpy(), [False, True, False])
    np.testing.assert_array_equal((~(x > 1.5)).numpy(), [True, False, False])


@pytest.mark.parametrize("dtype", [gb.int32, gb.int64, gb.bool])
def test_integer_tensors_cannot_require_grad(dtype):
    with pytest.raises(TypeError, match="floating point"):
        gb.zeros(2, dtype=dtype, requires_grad=True)
    with pytest.raises(TypeError, match="floating point"):
        gb.tensor([1, 2], dtype=dtype).requires_grad_()
    with pytest.raises(TypeError, match="floating point"):
        gb.Tensor(np.array([1, 2]), requires_grad=True)
