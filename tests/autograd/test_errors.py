"""Error messages: incompatible shapes name the op and both shapes; backward and gradcheck misuse."""
import re

import numpy as np
import pytest

import goldbull_np as gb

F = gb.nn.functional


@pytest.mark.parametrize("op, fn, shapes", [
    ("add", lambda a, b: a + b, [(2, 3), (4,)]),
    ("sub", lambda a, b: a - b, [(2, 3), (2,)]),
    ("mul", lambda a, b: a * b, [(3,), (4,)]),
    ("div", lambda a, b: a / b, [(2, 1, 3), (4, 2)]),
    ("pow", lambda a, b: a ** b, [(2,), (3,)]),
    ("maximum", gb.maximum, [(2,), (3,)]),
    ("minimum", gb.minimum, [(2,), (3,)]),
    ("matmul", lambda a, b: a @ b, [(2, 3), (4, 5)]),
    ("matmul", lambda a, b: a @ b, [(2, 2, 3), (4, 3, 5)]),
    ("matmul", lambda a, b: a @ b, [(3,), (4,)]),
    ("cat", lambda a, b: gb.cat([a, b], 0), [(2, 3), (2, 4)]),
    ("stack", lambda a, b: gb.stack([a, b]), [(2, 3), (3, 2)]),
    ("linear", lambda a, b: F.linear(a, b), [(2, 3), (4, 5)]),
    ("mse_loss", F.mse_loss, [(2, 3), (3, 2)]),
])
def test_incompatible_shapes_name_op_and_shapes(op, fn, shapes):
    a, b = (gb.ones(*s) for s in shapes)
    with pytest.raises(ValueError) as info:
        fn(a, b)
    msg = str(info.value)
    assert msg.startswith(op), msg
    for s in shapes:
        assert str(s) in msg, (s, msg)


@pytest.mark.parametrize("op, fn", [
    ("reshape", lambda x: x.reshape(4, 2)),
    ("expand", lambda x: x.expand(3, 4)),
    ("masked_fill", lambda x: x.masked_fill(gb.ones(3, 3, dtype=gb.bool), 0.0)),
    ("where", lambda x: gb.where(gb.ones(4, dtype=gb.bool), x, 0.0)),
])
def test_single_input_shape_errors_name_op_and_shape(op, fn):
    x = gb.ones(2, 3)
    with pytest.raises(ValueError, match=rf"^{op}.*\(2, 3\)"):
        fn(x)


def test_out_of_range_dims_raise_index_error_naming_op():
    x = gb.ones(2, 3)
    with pytest.raises(IndexError, match="sum"):
        x.sum(2)
    with pytest.raises(IndexError, match="transpose"):
        x.transpose(0, 5)


def test_backward_of_non_scalar_without_gradient_raises():
    x = gb.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape("(3,)")):
        (x * 2).backward()


def test_backward_of_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        gb.ones(1).sum().backward()


def test_gradcheck_reports_worst_element_with_both_values():
    class BadSquare(gb.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return g * 2 * self.x + (np.arange(self.x.size).reshape(self.x.shape) == 2)  # wrong at one element

    x = gb.tensor(np.linspace(-1, 1, 4), dtype=gb.float64, requires_grad=True)
    with pytest.raises(gb.GradcheckError, match=r"index \(2,\): analytic .*numeric"):
        gb.autograd.gradcheck(lambda t: BadSquare.apply(t), [x])
    assert gb.autograd.gradcheck(lambda t: t * t, [x])
    with pytest.raises(ValueError, match="float64"):
        gb.autograd.gradcheck(lambda t: t * t, [gb.ones(2, requires_grad=True)])


def test_function_returning_wrong_gradient_shape_is_named():
    class BadShape(gb.Function):
        def forward(self, x):
            return x.sum()

        def backward(self, g):
            return np.ones(7)

    x = gb.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"BadShapeBackward.*\(7,\).*\(3,\)"):
        BadShape.apply(x).backward()
