"""Reductions over dims (torch's ``dim``/``keepdim``): sum, mean, var/std, max/min, logsumexp, norm."""
import builtins
from collections import namedtuple

import numpy as np

from ..function import Function
from ..tensor import Tensor

MaxMin = namedtuple("MaxMin", ["values", "indices"])  # what torch's max(dim)/min(dim) return


def normalize_dims(dim, ndim: int, op: str):
    """``dim`` (None, int or sequence) as a sorted tuple of non-negative axes, or None for all."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dims")
        out.append(int(d) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim} repeats a dimension")
    return tuple(sorted(out)) if ndim else None


def _expand_back(g, shape, axes, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input's ``shape``."""
    if axes is None:
        return np.broadcast_to(g.reshape((1,) * len(shape)) if len(shape) else g, shape)
    if not keepdim:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def _squeeze(kept, axes):
    """Drop the reduced dims that a keepdims=True reduction left as size 1."""
    return kept.reshape(()) if axes is None else kept.squeeze(axis=axes)


def _count(shape, axes):
    return int(np.prod([shape[a] for a in axes])) if axes is not None else int(np.prod(shape))


class Sum(Function):
    saved_inputs = ()

    def forward(self, x, axes=None, keepdim=False):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return np.asarray(x.sum(axis=axes, keepdims=keepdim))

    def backward(self, g):
        return _expand_back(g, self.shape, self.axes, self.keepdim)


class Mean(Function):
    saved_inputs = ()

    def forward(self, x, axes=None, keepdim=False):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return np.asarray(x.mean(axis=axes, keepdims=keepdim))

    def backward(self, g):
        n = _count(self.shape, self.axes)
        return _expand_back(g / n if n else g, self.shape, self.axes, self.keepdim)


class Var(Function):
    """Variance with Bessel's ``correction`` (torch: correction=1 by default)."""

    saved_inputs = ()  # backward reads its own centered copy and the output
    saves_output = True

    def forward(self, x, axes=None, keepdim=False, correction=1, take_sqrt=False):
        self.axes, self.keepdim, self.take_sqrt = axes, keepdim, take_sqrt
        self.centered = x - x.mean(axis=axes, keepdims=True)
        self.denom = builtins.max(_count(x.shape, axes) - correction, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = (self.centered * self.centered).sum(axis=axes, keepdims=keepdim) / x.dtype.type(self.denom)
        self.out = np.sqrt(var) if take_sqrt else var
        return np.asarray(self.out)

    def backward(self, g):
        scale = g / self.out if self.take_sqrt else 2 * g
        scale = _expand_back(scale / g.dtype.type(self.denom), self.centered.shape, self.axes, self.keepdim)
        return scale * self.centered


class MaxAlong(Function):
    """max/min along one dim: values, with indices kept for backward (and returned to the caller)."""

    saved_inputs = ()

    def forward(self, x, dim=0, keepdim=False, idx=None):
        self.shape, self.dim, self.keepdim, self.idx = x.shape, dim, keepdim, idx  # idx keeps dim
        values = np.take_along_axis(x, idx, axis=dim)
        return values if keepdim else values.squeeze(dim)

    def backward(self, g):
        out = np.zeros(self.shape, dtype=g.dtype)
        np.put_along_axis(out, self.idx, g if self.keepdim else np.expand_dims(g, self.dim), axis=self.dim)
        return out


class Amax(Function):
    """max/min over dims whose gradient is split evenly between tied maxima (torch's amax/max())."""

    saves_output = True

    def forward(self, x, axes=None, keepdim=False, largest=True):
        self.x, self.axes, self.keepdim = x, axes, keepdim
        if x.size == 0:
            raise RuntimeError(f"{'max' if largest else 'min'}() of an empty tensor of shape {x.shape}")
        self.out = np.asarray((x.max if largest else x.min)(axis=axes, keepdims=True))
        return self.out if keepdim else _squeeze(self.out, axes)

    def backward(self, g):
        mask = (self.x == self.out).astype(g.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return mask * _expand_back(g, self.x.shape, self.axes, self.keepdim)


class LogSumExp(Function):
    saves_output = True

    def forward(self, x, axes=None, keepdim=False):
        self.x, self.axes, self.keepdim = x, axes, keepdim
        m = x.max(axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        self.out_kept = np.log(np.exp(x - m).sum(axis=axes, keepdims=True)) + m
        return self.out_kept if keepdim else _squeeze(self.out_kept, axes)

    def backward(self, g):
        return _expand_back(g, self.x.shape, self.axes, self.keepdim) * np.exp(self.x - self.out_kept)


class Norm(Function):
    """p-norm over dims (p = 2 by default; any p > 0 and inf)."""

    saves_output = True

    def forward(self, x, p=2.0, axes=None, keepdim=False):
        self.x, self.p, self.axes, self.keepdim = x, p, axes, keepdim
        a = np.abs(x)
        if p == np.inf:
            out = a.max(axis=axes, keepdims=True)
        elif p == 2:
            out = np.sqrt((x * x).sum(axis=axes, keepdims=True))
        else:
            out = (a ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)
        self.out_kept = out
        return out if keepdim else _squeeze(out, axes)

    def backward(self, g):
        x, out, p = self.x, self.out_kept, self.p
        g = _expand_back(g, x.shape, self.axes, self.keepdim)
        safe = np.where(out == 0, 1, out)
        if p == np.inf:
            mask = (np.abs(x) == out).astype(g.dtype)
            mask /= mask.sum(axis=self.axes, keepdims=True)
            return g * np.sign(x) * mask
        if p == 2:
            return g * x / safe
        return g * np.sign(x) * np.abs(x) ** (p - 1) / safe ** (p - 1)


# ---- public functions --------------------------------------------------------------------------
def sum(x, dim=None, keepdim=False, dtype=None):  # noqa: A001 - torch's name
    """Sum over ``dim`` (all dims when None)."""
    if dtype is not None:
        x = x.to(dtype)
    return Sum.apply(x, axes=normalize_dims(dim, x.ndim, "sum"), keepdim=keepdim)


def mean(x, dim=None, keepdim=False):
    if x.dtype.kind != "f":
        raise TypeError(f"mean() needs a floating point tensor, got dtype {x.dtype}")
    return Mean.apply(x, axes=normalize_dims(dim, x.ndim, "mean"), keepdim=keepdim)


def var(x, dim=None, correction=None, keepdim=False, unbiased=None):
    """Variance; ``correction`` 1 (default) is the unbiased estimator, 0 the population variance."""
    correction = _correction(correction, unbiased)
    return Var.apply(x, axes=normalize_dims(dim, x.ndim, "var"), keepdim=keepdim, correction=correction)


def std(x, dim=None, correction=None, keepdim=False, unbiased=None):
    correction = _correction(correction, unbiased)
    return Var.apply(x, axes=normalize_dims(dim, x.ndim, "std"), keepdim=keepdim,
                     correction=correction, take_sqrt=True)


def _correction(correction, unbiased):
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def _max_or_min(x, dim, keepdim, largest, op):
    if dim is None:
        return Amax.apply(x, axes=None, keepdim=False, largest=largest)
    if isinstance(dim, Tensor):  # x.max(other) is maximum
        from .elementwise import maximum, minimum

        return maximum(x, dim) if largest else minimum(x, dim)
    axis = normalize_dims(dim, x.ndim, op)
    if axis is None:
        return MaxMin(Amax.apply(x, axes=None, keepdim=keepdim, largest=largest), Tensor(np.array(0)))
    if x.shape[axis[0]] == 0:
        raise IndexError(f"{op}(): dim {dim} has size 0 in shape {x.shape}")
    idx = (np.argmax if largest else np.argmin)(x.data, axis=axis[0], keepdims=True)
    values = MaxAlong.apply(x, dim=axis[0], keepdim=keepdim, idx=idx)
    indices = idx if keepdim else idx.squeeze(axis[0])
    return MaxMin(values, Tensor._make(indices.astype(np.int64), False, None))


def max(x, dim=None, keepdim=False):  # noqa: A001 - torch's name
    """Max of all elements; with ``dim``, a (values, indices) pair; with a tensor, ``maximum``."""
    return _max_or_min(x, dim, keepdim, True, "max")


def min(x, dim=None, keepdim=False):  # noqa: A001 - torch's name
    return _max_or_min(x, dim, keepdim, False, "min")


def amax(x, dim=None, keepdim=False):
    return Amax.apply(x, axes=normalize_dims(dim, x.ndim, "amax"), keepdim=keepdim, largest=True)


def amin(x, dim=None, keepdim=False):
    return Amax.apply(x, axes=normalize_dims(dim, x.ndim, "amin"), keepdim=keepdim, largest=False)


def argmax(x, dim=None, keepdim=False):
    return _arg(x, dim, keepdim, np.argmax, "argmax")


def argmin(x, dim=None, keepdim=False):
    return _arg(x, dim, keepdim, np.argmin, "argmin")


def _arg(x, dim, keepdim, fn, op):
    if dim is None:
        return Tensor._make(np.asarray(fn(x.data)).astype(np.int64), False, None)
    axis = normalize_dims(dim, x.ndim, op)[0]
    return Tensor._make(fn(x.data, axis=axis, keepdims=keepdim).astype(np.int64), False, None)


def logsumexp(x, dim=None, keepdim=False):
    return LogSumExp.apply(x, axes=normalize_dims(dim, x.ndim, "logsumexp"), keepdim=keepdim)


def norm(x, p=2.0, dim=None, keepdim=False):
    """The p-norm (``p="fro"`` is 2) over ``dim`` (all elements when None)."""
    if p == "fro":
        p = 2.0
    if isinstance(p, str) or p <= 0:
        raise ValueError(f"norm: p must be a positive number or inf, got {p!r}")
    return Norm.apply(x, p=float(p), axes=normalize_dims(dim, x.ndim, "norm"), keepdim=keepdim)


def _all(x, dim=None):
    return Tensor._make(np.asarray(np.all(x.data, axis=dim)), False, None)


def _any(x, dim=None):
    return Tensor._make(np.asarray(np.any(x.data, axis=dim)), False, None)


for _name, _fn in dict(sum=sum, mean=mean, var=var, std=std, max=max, min=min, amax=amax, amin=amin,
                       argmax=argmax, argmin=argmin, logsumexp=logsumexp, norm=norm,
                       all=_all, any=_any).items():
    setattr(Tensor, _name, _fn)
