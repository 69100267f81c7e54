"""Elementwise ops: arithmetic with broadcasting, unary math, activations, comparisons."""
import numbers

import numpy as np

from .. import grad_mode
from ..function import Function, unbroadcast
from ..tensor import Tensor, as_dtype

_grad_enabled = grad_mode._enabled


_FAST = {float, int, bool, Tensor}


def _operand(x):
    """A binary op's other operand: Tensors as they are, Python scalars kept as scalars (so they
    never upcast a float32 tensor), NumPy scalars turned into Python scalars, arrays into Tensors."""
    if x.__class__ in _FAST or isinstance(x, Tensor):  # the common cases first (this is the hot path)
        return x
    if isinstance(x, (bool, numbers.Number)) and not isinstance(x, np.ndarray):
        return x.item() if isinstance(x, np.generic) else x
    return Tensor(np.asarray(x))


def _shape_of(fn, i):
    meta = fn.input_meta[i]
    return meta[0] if meta is not None else None


def _broadcast_error(op, *arrays):
    """The ValueError for operands whose shapes do not broadcast, naming the op and the shapes
    (raised after NumPy refused, so the common path pays nothing for the check)."""
    shapes = " and ".join(str(np.shape(a)) for a in arrays)
    return ValueError(f"{op}: shapes {shapes} cannot be broadcast together")


# ---- binary arithmetic -------------------------------------------------------------------------
class Add(Function):
    saved_inputs = ()

    def forward(self, a, b):
        try:
            return a + b
        except ValueError:
            raise _broadcast_error("add", a, b) from None

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (unbroadcast(g, _shape_of(self, 0)) if na else None,
                unbroadcast(g, _shape_of(self, 1)) if nb else None)


class Sub(Function):
    saved_inputs = ()

    def forward(self, a, b):
        try:
            return a - b
        except ValueError:
            raise _broadcast_error("sub", a, b) from None

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (unbroadcast(g, _shape_of(self, 0)) if na else None,
                unbroadcast(-g, _shape_of(self, 1)) if nb else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a * b
        except ValueError:
            raise _broadcast_error("mul", a, b) from None

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (unbroadcast(g * self.b, _shape_of(self, 0)) if na else None,
                unbroadcast(g * self.a, _shape_of(self, 1)) if nb else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a / b
        except ValueError:
            raise _broadcast_error("div", a, b) from None

    def backward(self, g):
        na, nb = self.needs_input_grad
        ga = g / self.b
        return (unbroadcast(ga, _shape_of(self, 0)) if na else None,
                unbroadcast(-ga * self.a / self.b, _shape_of(self, 1)) if nb else None)


class Pow(Function):
    saves_output = True
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            self.out = a ** b
        except ValueError:
            raise _broadcast_error("pow", a, b) from None
        return self.out

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        ga = unbroadcast(g * b * a ** (b - 1), _shape_of(self, 0)) if na else None
        gb = None
        if nb:
            log_a = np.log(np.where(a > 0, a, 1))  # d/db a**b = a**b log a; 0 where a == 0
            gb = unbroadcast(g * self.out * log_a, _shape_of(self, 1))
        return ga, gb


class Maximum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return np.maximum(a, b)
        except ValueError:
            raise _broadcast_error("maximum", a, b) from None

    def backward(self, g):
        return _split_ties(self, g, self.a > self.b)


class Minimum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return np.minimum(a, b)
        except ValueError:
            raise _broadcast_error("minimum", a, b) from None

    def backward(self, g):
        return _split_ties(self, g, self.a < self.b)


def _split_ties(fn, g, a_wins):
    """maximum/minimum backward: the winner gets the gradient, ties split it evenly (as torch)."""
    tie = fn.a == fn.b
    wa = np.where(tie, 0.5, a_wins).astype(g.dtype)
    na, nb = fn.needs_input_grad
    return (unbroadcast(g * wa, _shape_of(fn, 0)) if na else None,
            unbroadcast(g * (1 - wa), _shape_of(fn, 1)) if nb else None)


class Where(Function):
    saved_inputs = (0,)

    def forward(self, cond, a, b):
        self.cond = cond
        try:
            return np.where(cond, a, b)
        except ValueError:
            raise _broadcast_error("where", cond, a, b) from None

    def backward(self, g):
        _, na, nb = self.needs_input_grad
        zero = np.zeros((), g.dtype)
        return (None,
                unbroadcast(np.where(self.cond, g, zero), _shape_of(self, 1)) if na else None,
                unbroadcast(np.where(self.cond, zero, g), _shape_of(self, 2)) if nb else None)


# ---- unary -------------------------------------------------------------------------------------
class Neg(Function):
    saved_inputs = ()

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Exp(Function):
    saved_inputs = ()
    saves_output = True

    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return g / self.x


class Log1p(Function):
    def forward(self, x):
        self.x = x
        return np.log1p(x)

    def backward(self, g):
        return g / (1 + self.x)


class Sqrt(Function):
    saved_inputs = ()
    saves_output = True

    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, g):
        return g * 0.5 / self.out


class Rsqrt(Function):
    saved_inputs = ()
    saves_output = True

    def forward(self, x):
        self.out = 1 / np.sqrt(x)
        return self.out

    def backward(self, g):
        return g * -0.5 * self.out ** 3


class Abs(Function):
    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, g):
        return g * np.sign(self.x)


class Sin(Function):
    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, g):
        return g * np.cos(self.x)


class Cos(Function):
    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, g):
        return -g * np.sin(self.x)


class Tanh(Function):
    saved_inputs = ()
    saves_output = True

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, g):
        return g * (1 - self.out * self.out)


def _sigmoid(x):
    # exp of a non-positive number only, so no overflow warnings for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    saved_inputs = ()
    saves_output = True

    def forward(self, x):
        self.out = _sigmoid(x)
        return self.out

    def backward(self, g):
        return g * self.out * (1 - self.out)


class Relu(Function):
    saved_inputs = ()
    saves_output = True

    def forward(self, x):
        self.out = np.maximum(x, 0)
        return self.out

    def backward(self, g):
        return g * (self.out > 0)


class Silu(Function):
    def forward(self, x):
        self.x, self.s = x, _sigmoid(x)
        return x * self.s

    def backward(self, g):
        s = self.s
        return g * (s * (1 + self.x * (1 - s)))


class Softplus(Function):
    def forward(self, x, beta=1.0, threshold=20.0):
        self.x, self.beta, self.threshold = x, beta, threshold
        bx = beta * x
        soft = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta
        return np.where(bx > threshold, x, soft).astype(x.dtype, copy=False)

    def backward(self, g):
        bx = self.beta * self.x
        return g * np.where(bx > self.threshold, 1, _sigmoid(bx)).astype(g.dtype, copy=False)


class Clamp(Function):
    def forward(self, x, min=None, max=None):
        self.x, self.min, self.max = x, min, max
        return np.clip(x, min, max)

    def backward(self, g):
        keep = np.ones(self.x.shape, dtype=bool)
        if self.min is not None:
            keep &= self.x >= self.min
        if self.max is not None:
            keep &= self.x <= self.max
        return g * keep


class Cast(Function):
    saved_inputs = ()

    def forward(self, x, dtype=None):
        self.src = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.src)


# ---- public functions --------------------------------------------------------------------------
def add(a, b, alpha=1):
    """``a + alpha * b`` with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    return Add.apply(_operand(a), _operand(b))


def sub(a, b, alpha=1):
    """``a - alpha * b`` with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    return Sub.apply(_operand(a), _operand(b))


def mul(a, b):
    return Mul.apply(_operand(a), _operand(b))


def div(a, b):
    return Div.apply(_operand(a), _operand(b))


def pow(a, b):
    return Pow.apply(_operand(a), _operand(b))


def maximum(a, b):
    return Maximum.apply(_operand(a), _operand(b))


def minimum(a, b):
    return Minimum.apply(_operand(a), _operand(b))


def where(condition, a, b):
    """Elements of ``a`` where ``condition`` holds, else of ``b`` (broadcast together)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    return Where.apply(cond.astype(bool, copy=False), _operand(a), _operand(b))


def neg(x):
    return Neg.apply(x)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def log1p(x):
    return Log1p.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def rsqrt(x):
    return Rsqrt.apply(x)


def abs(x):  # noqa: A001 - torch's name
    return Abs.apply(x)


def sin(x):
    return Sin.apply(x)


def cos(x):
    return Cos.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return Relu.apply(x)


def silu(x):
    return Silu.apply(x)


def softplus(x, beta=1.0, threshold=20.0):
    return Softplus.apply(x, beta=beta, threshold=threshold)


def clamp(x, min=None, max=None):  # noqa: A002 - torch's names
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(x, min=min, max=max)


def to(x, dtype):
    """``x`` converted to ``dtype`` (differentiable between float dtypes)."""
    dtype = as_dtype(dtype)
    if x.data.dtype == dtype:
        return x
    if dtype.kind != "f":
        return Tensor._make(x.data.astype(dtype), False, None)
    return Cast.apply(x, dtype=dtype)


def _compare(ufunc):
    def compare(a, b):
        bd = b.data if isinstance(b, Tensor) else b
        return Tensor._make(ufunc(a.data, bd), False, None)

    return compare


def _inplace(op, saves_self=True):
    """The in-place method ``x.op_(other)``: computed out of place, then written into x's buffer.

    When the op is recorded and its node saves its first input, it computes from a snapshot of x,
    so backward reads the old values rather than the overwritten buffer.
    """
    name = op.__name__ + "_"

    def method(self, other, **kwargs):
        self._check_inplace()
        src = self
        if saves_self and _grad_enabled[0] and (self.requires_grad or getattr(other, "requires_grad", False)):
            src = self._snapshot()
            if other is self:
                other = src
        return self._apply_inplace(op(src, other, **kwargs), name)

    method.__name__ = name
    return method


def _clamp_(self, min=None, max=None):  # noqa: A002 - torch's names
    """In-place clamp (records from a snapshot, since Clamp's backward reads its input)."""
    self._check_inplace()
    src = self._snapshot() if _grad_enabled[0] and self.requires_grad else self
    return self._apply_inplace(clamp(src, min, max), "clamp_")


def _tensor_to(self, *args, dtype=None, **kwargs):
    """``to(dtype)`` or ``to("cpu")`` / ``to("cpu", dtype)``; only the CPU exists."""
    for a in args:
        if isinstance(a, str) and a in ("cpu",):
            continue
        dtype = a
    if "device" in kwargs and kwargs["device"] not in ("cpu", None):
        raise ValueError(f"only the 'cpu' device exists, got {kwargs['device']!r}")
    return self if dtype is None else to(self, dtype)


_methods = dict(
    __add__=add, __radd__=lambda s, o: add(o, s), __sub__=sub, __rsub__=lambda s, o: sub(o, s),
    __mul__=mul, __rmul__=lambda s, o: mul(o, s), __truediv__=div, __rtruediv__=lambda s, o: div(o, s),
    __pow__=pow, __rpow__=lambda s, o: pow(o, s), __neg__=neg, __pos__=lambda s: s, __abs__=abs,
    __iadd__=_inplace(add, False), __isub__=_inplace(sub, False), __imul__=_inplace(mul),
    __itruediv__=_inplace(div), __ipow__=_inplace(pow),
    add_=_inplace(add, False), sub_=_inplace(sub, False), mul_=_inplace(mul), div_=_inplace(div),
    pow_=_inplace(pow), clamp_=_clamp_, clip_=_clamp_,
    __eq__=_compare(np.equal), __ne__=_compare(np.not_equal), __lt__=_compare(np.less),
    __le__=_compare(np.less_equal), __gt__=_compare(np.greater), __ge__=_compare(np.greater_equal),
    __and__=_compare(np.logical_and), __or__=_compare(np.logical_or), __xor__=_compare(np.logical_xor),
    __invert__=lambda s: Tensor._make(~s.data if s.data.dtype == bool else np.invert(s.data), False, None),
    add=add, sub=sub, mul=mul, div=div, pow=pow, maximum=maximum, minimum=minimum, neg=neg,
    exp=exp, log=log, log1p=log1p, sqrt=sqrt, rsqrt=rsqrt, abs=abs, sin=sin, cos=cos, tanh=tanh,
    sigmoid=sigmoid, relu=relu, silu=silu, softplus=softplus, clamp=clamp, clip=clamp,
    eq=_compare(np.equal), ne=_compare(np.not_equal), lt=_compare(np.less), le=_compare(np.less_equal),
    gt=_compare(np.greater), ge=_compare(np.greater_equal),
    to=_tensor_to, float=lambda s: to(s, np.float32), double=lambda s: to(s, np.float64),
    half=lambda s: to(s, np.float16), long=lambda s: to(s, np.int64), int=lambda s: to(s, np.int32),
    bool=lambda s: to(s, np.bool_),
    where=lambda s, cond, other: where(cond, s, other),
)
for _name, _fn in _methods.items():
    setattr(Tensor, _name, _fn)
