"""Tensor creation: tensor, zeros/ones/full/empty/arange/linspace/eye, *_like, and random tensors
drawn from the global generator (``gb.manual_seed``)."""
import numpy as np

from .. import random as _random
from .tensor import DEFAULT_FLOAT, Tensor, as_dtype, to_array


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"sizes must be non-negative integers, got {size}")
    return tuple(int(n) for n in size)


def _float_dtype(dtype):
    dtype = as_dtype(dtype) or DEFAULT_FLOAT
    return dtype


def _new(data, requires_grad):
    t = Tensor._make(data, False, None)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats become float32, ints int64)."""
    return _new(to_array(data, dtype, copy=True), requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array``."""
    return Tensor._make(array, False, None)


def zeros(*size, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.zeros(_shape(size), dtype=_float_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.ones(_shape(size), dtype=_float_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.empty(_shape(size), dtype=_float_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64 if isinstance(fill_value, int) else DEFAULT_FLOAT
    return _new(np.full(_shape((size,)), fill_value, dtype=as_dtype(dtype)), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.zeros(t.shape, dtype=as_dtype(dtype) or t.dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.ones(t.shape, dtype=as_dtype(dtype) or t.dtype), requires_grad)


def empty_like(t, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.empty(t.shape, dtype=as_dtype(dtype) or t.dtype), requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.full(t.shape, fill_value, dtype=as_dtype(dtype) or t.dtype), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    """``arange(end)`` or ``arange(start, end, step)``; int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_FLOAT
    return _new(np.arange(start, end, step, dtype=as_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False) -> Tensor:
    return _new(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def randn(*size, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples from the global generator."""
    g = generator or _random.default_generator()
    return _new(g.standard_normal(_shape(size), dtype=np.float64).astype(_float_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform [0, 1) samples from the global generator."""
    g = generator or _random.default_generator()
    return _new(g.random(_shape(size), dtype=np.float64).astype(_float_dtype(dtype)), requires_grad)


def randint(low, high=None, size=(), dtype=np.int64, generator=None) -> Tensor:
    """Integers in [low, high) (``randint(high, size=...)`` also works)."""
    if high is None:
        low, high = 0, low
    g = generator or _random.default_generator()
    return _new(g.integers(low, high, size=_shape((size,)) if size != () else (), dtype=as_dtype(dtype)), False)


def normal(mean=0.0, std=1.0, size=(), dtype=None, requires_grad=False, generator=None) -> Tensor:
    g = generator or _random.default_generator()
    data = g.normal(mean, std, size=_shape((size,)) if size != () else ())
    return _new(np.asarray(data).astype(_float_dtype(dtype)), requires_grad)


def randn_like(t, dtype=None, requires_grad=False) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad=False) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)
