"""In-place operators: correct gradients when they are legal, a clear error naming the op when a tensor
saved for backward was overwritten, and views written through their base."""
import numpy as np
import pytest

import goldbull_np as gb


def leaf(values):
    return gb.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def test_inplace_mul_on_non_leaf_uses_old_values():
    x = leaf([1.0, 2.0, 3.0])
    z = leaf([2.0, 3.0, 4.0])
    y = x * 1
    y.mul_(z)  # MulBackward needs the old y for dz
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(z.grad, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("name, inplace, outplace", [
    ("iadd", lambda y, z: y.__iadd__(z), lambda y, z: y + z),
    ("isub", lambda y, z: y.__isub__(z), lambda y, z: y - z),
    ("imul", lambda y, z: y.__imul__(z), lambda y, z: y * z),
    ("itruediv", lambda y, z: y.__itruediv__(z), lambda y, z: y / z),
    ("add_alpha", lambda y, z: y.add_(z, alpha=-2.0), lambda y, z: y - 2.0 * z),
    ("pow_", lambda y, z: y.pow_(z), lambda y, z: y ** z),
    ("clamp_", lambda y, z: y.clamp_(-0.5, 0.7) * z, lambda y, z: y.clamp(-0.5, 0.7) * z),
    ("self_mul", lambda y, z: y.mul_(y) * z, lambda y, z: y * y * z),
])
def test_inplace_matches_out_of_place_gradients(name, inplace, outplace):
    x0 = np.array([0.3, 1.2, 0.9]) if name == "pow_" else np.array([-1.3, 0.2, 0.9])
    grads = []
    for fn in (inplace, outplace):
        x, z = leaf(x0), leaf([0.5, 1.5, 2.5])
        y = x * 1.0
        out = fn(y, z)
        out.sum().backward()
        grads.append((out.numpy().copy(), x.grad.copy(), z.grad.copy()))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b)


def test_inplace_returns_self_and_bumps_version():
    t = gb.zeros(3)
    v0 = t._version[0]
    assert t.add_(1.0) is t
    assert t._version[0] == v0 + 1
    np.testing.assert_array_equal(t.numpy(), [1.0, 1.0, 1.0])


def test_inplace_on_leaf_requiring_grad_raises_unless_no_grad():
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="leaf"):
        w[0] = 5.0
    with gb.no_grad():
        w.add_(1.0)  # what an optimizer does
        w[0] = 7.0
    np.testing.assert_array_equal(w.numpy(), [7.0, 3.0])


def test_modifying_saved_input_raises_naming_the_op():
    w = leaf([1.0, 2.0])
    x = leaf([3.0, 4.0])
    y = (w * x).sum()
    with gb.no_grad():
        w.mul_(2.0)
    with pytest.raises(RuntimeError, match="MulBackward.*modified by an in-place operation"):
        y.backward()


def test_modifying_saved_output_raises_naming_the_op():
    x = leaf([0.1, 0.2])
    y = x.exp()  # ExpBackward reads its output
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="ExpBackward"):
        y.sum().backward()
    x2 = leaf([0.1, -0.2])
    s = gb.nn.functional.softmax(x2, dim=0)
    s[0] = 0.0
    with pytest.raises(RuntimeError, match="SoftmaxBackward"):
        s.sum().backward()


def test_modifying_unsaved_input_is_fine():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = h + 2.0  # AddBackward saves nothing
    h.add_(5.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_setitem_records_and_scatters_gradient():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    v = leaf([10.0, 20.0])
    y = x * 1
    y[1] = v * 2
    (y * gb.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=gb.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(v.grad, [6.0, 8.0])


def test_augmented_assignment_through_index():
    x = leaf(np.arange(12.0).reshape(3, 4))
    y = x * 1
    y[:, 0] += 1.0  # view.__iadd__ then __setitem__: written through the base
    (y * y).sum().backward()
    expected = 2 * x.data
    expected[:, 0] += 2
    np.testing.assert_allclose(x.grad, expected)
    np.testing.assert_allclose(y.numpy()[:, 0], x.data[:, 0] + 1)


def test_inplace_on_slice_view_rebases_the_base():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    y = x * 1
    v = y[1:3]
    v.mul_(10.0)
    np.testing.assert_array_equal(y.numpy(), [1.0, 20.0, 30.0, 4.0])
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 200.0 * 2, 300.0 * 2, 8.0])


def test_setitem_on_view_of_buffer_without_grad():
    w = leaf([1.0, 2.0, 3.0])
    buf = gb.zeros(4, 3, dtype=gb.float64)
    buf[1:3][0] = w  # a view of a view of a buffer that does not require grad
    assert buf.requires_grad
    (buf * 2).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(buf.numpy()[1], [1.0, 2.0, 3.0])


def test_inplace_on_reshape_view_while_recording_raises():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    v = (x * 1).reshape(2, 2)
    with pytest.raises(RuntimeError, match="view"):
        v.mul_(2.0)


def test_inplace_on_view_of_leaf_raises():
    w = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf"):
        w[0:1].mul_(2.0)


def test_inplace_integer_tensor_cannot_take_float_result():
    i = gb.arange(3)
    i += 2
    np.testing.assert_array_equal(i.numpy(), [2, 3, 4])
    with pytest.raises(TypeError, match="can't be cast"):
        i *= 2.5


def test_inplace_shape_change_raises():
    t = gb.zeros(3)
    with pytest.raises(ValueError, match="add_|iadd|shape"):
        t += gb.ones(2, 3)


def test_zero_fill_copy():
    t = gb.ones(2, 2)
    t.zero_()
    np.testing.assert_array_equal(t.numpy(), 0)
    t.fill_(3.0)
    np.testing.assert_array_equal(t.numpy(), 3)
    t.copy_(gb.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(t.numpy(), [[1, 2], [1, 2]])
    w = leaf([1.0, 2.0])
    buf = gb.zeros(2, dtype=gb.float64)
    buf.copy_(w * 3)
    buf.sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])
