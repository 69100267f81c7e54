"""Shape and indexing ops: reshape/view, permute/transpose, expand, repeat, cat/stack, split/chunk,
pad, flip, tril/triu, indexing with scatter-add backward, index_select, gather, masked_fill."""
import numpy as np

from ..function import Function, unbroadcast
from ..tensor import Tensor, _index_data
from .reduce import normalize_dims


def _dim(d, ndim, op):
    if not -max(ndim, 1) <= d < max(ndim, 1):
        raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dims")
    return d % max(ndim, 1)


def _sizes(args):
    """Accept both f(2, 3) and f((2, 3))."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


class Reshape(Function):
    saved_inputs = ()
    is_view = True

    def forward(self, x, shape=None):
        self.in_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                             f"into {tuple(shape)}") from None

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    saved_inputs = ()
    is_view = True

    def forward(self, x, dims=None):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inverse)


class Expand(Function):
    saved_inputs = ()
    is_view = True

    def forward(self, x, shape=None):
        self.in_shape = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: a tensor of shape {x.shape} cannot be expanded to {tuple(shape)}") from None

    def backward(self, g):
        return unbroadcast(g, self.in_shape)


class Repeat(Function):
    saved_inputs = ()

    def forward(self, x, reps=None):
        self.in_shape, self.reps = x.shape, reps
        return np.tile(x, reps)

    def backward(self, g):
        shape = (1,) * (len(self.reps) - len(self.in_shape)) + self.in_shape
        split = []
        for r, n in zip(self.reps, shape):
            split += [r, n]
        g = g.reshape(split).sum(axis=tuple(range(0, 2 * len(shape), 2)))
        return g.reshape(self.in_shape)


class Cat(Function):
    saved_inputs = ()

    def forward(self, *xs, dim=0):
        self.dim = dim
        self.bounds = np.cumsum([x.shape[dim] for x in xs])[:-1]
        try:
            return np.concatenate(xs, axis=dim)
        except ValueError:
            raise ValueError(f"cat: shapes {[x.shape for x in xs]} do not match outside dim {dim}") from None

    def backward(self, g):
        parts = np.split(g, self.bounds, axis=self.dim)
        return tuple(p if need else None for p, need in zip(parts, self.needs_input_grad))


class Stack(Function):
    saved_inputs = ()

    def forward(self, *xs, dim=0):
        self.dim = dim
        if len({x.shape for x in xs}) > 1:
            raise ValueError(f"stack: all tensors must have the same shape, got {[x.shape for x in xs]}")
        return np.stack(xs, axis=dim)

    def backward(self, g):
        return tuple(np.take(g, i, axis=self.dim) if need else None
                     for i, need in enumerate(self.needs_input_grad))


class Slice(Function):
    """Basic indexing (ints, slices, None, Ellipsis): a view; backward writes into zeros."""

    saved_inputs = ()
    is_view = True

    def forward(self, x, index=None):
        self.in_shape, self.index = x.shape, index
        return x[index]

    def backward(self, g):
        out = np.zeros(self.in_shape, dtype=g.dtype)
        out[self.index] = g
        return out


class Gather(Function):
    """Advanced indexing (integer arrays, boolean masks): backward is a scatter-add, so repeated
    indices accumulate."""

    saved_inputs = ()

    def forward(self, x, index=None):
        self.in_shape, self.index = x.shape, index
        return x[index]

    def backward(self, g):
        out = np.zeros(self.in_shape, dtype=g.dtype)
        np.add.at(out, self.index, g)
        return out


class IndexPut(Function):
    """``out = x.copy(); out[index] = value`` (the differentiable form of ``x[index] = value``)."""

    saved_inputs = ()

    def forward(self, x, value, index=None):
        self.index = index
        self.value_shape = np.shape(value)
        out = x.copy()
        out[index] = value
        return out

    def backward(self, g):
        nx, nv = self.needs_input_grad
        gx = None
        if nx:
            gx = g.copy()
            gx[self.index] = 0
        gv = unbroadcast(np.ascontiguousarray(g[self.index]), self.value_shape) if nv else None
        return gx, gv


class IndexSelect(Function):
    saved_inputs = ()

    def forward(self, x, dim=0, index=None):
        self.in_shape, self.dim, self.index = x.shape, dim, index
        return np.take(x, index, axis=dim)

    def backward(self, g):
        out = np.zeros(self.in_shape, dtype=g.dtype)
        np.add.at(np.moveaxis(out, self.dim, 0), self.index, np.moveaxis(g, self.dim, 0))
        return out


class GatherAlong(Function):
    """torch.gather: out[i][j] = x[i][index[i][j]] along ``dim``; backward scatter-adds."""

    saved_inputs = ()

    def forward(self, x, dim=0, index=None):
        self.in_shape = x.shape
        grid = list(np.ix_(*[np.arange(n) for n in index.shape]))
        grid[dim] = index
        self.grid = tuple(grid)
        return x[self.grid]

    def backward(self, g):
        out = np.zeros(self.in_shape, dtype=g.dtype)
        np.add.at(out, self.grid, g)
        return out


class MaskedFill(Function):
    saved_inputs = ()

    def forward(self, x, mask=None, value=0.0):
        self.mask = mask
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    def backward(self, g):
        return np.where(self.mask, np.zeros((), g.dtype), g)


class Pad(Function):
    saved_inputs = ()

    def forward(self, x, widths=None, value=0.0):
        self.crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return np.pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        return g[self.crop]


class Flip(Function):
    saved_inputs = ()

    def forward(self, x, axes=None):
        self.axes = axes
        return np.flip(x, axis=axes).copy()

    def backward(self, g):
        return np.flip(g, axis=self.axes)


class Tri(Function):
    saved_inputs = ()

    def forward(self, x, diagonal=0, lower=True):
        self.diagonal, self.lower = diagonal, lower
        return (np.tril if lower else np.triu)(x, diagonal)

    def backward(self, g):
        return (np.tril if self.lower else np.triu)(g, self.diagonal)


class Clone(Function):
    saved_inputs = ()

    def forward(self, x):
        return np.array(x, order="C")

    def backward(self, g):
        return g


# ---- public functions --------------------------------------------------------------------------
def reshape(x, *shape):
    shape = _sizes(shape)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _dim(start_dim, x.ndim, "flatten"), _dim(end_dim, x.ndim, "flatten")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:]) if s <= e else x


def unflatten(x, dim, sizes):
    d = _dim(dim, x.ndim, "unflatten")
    return reshape(x, x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


def permute(x, *dims):
    dims = _sizes(dims)
    if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims of shape {x.shape}")
    return Permute.apply(x, dims=tuple(d % max(x.ndim, 1) for d in dims))


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    a, b = _dim(dim0, x.ndim, "transpose"), _dim(dim1, x.ndim, "transpose")
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(x, dims=tuple(dims))


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dims = normalize_dims(dim, x.ndim, "squeeze") or ()
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1)))


def unsqueeze(x, dim):
    d = _dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def expand(x, *sizes):
    sizes = _sizes(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes given for a tensor with {x.ndim} dims")
    if any(n == -1 for n in sizes[:lead]):
        raise ValueError(f"expand: -1 is not allowed for the new leading dims, got sizes {sizes} for shape {x.shape}")
    shape = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    return x if shape == x.shape else Expand.apply(x, shape=shape)


def broadcast_to(x, shape):
    return expand(x, tuple(shape))


def repeat(x, *reps):
    reps = _sizes(reps)
    if len(reps) < x.ndim:
        raise ValueError(f"repeat: {len(reps)} repeats given for a tensor with {x.ndim} dims")
    return Repeat.apply(x, reps=reps)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    return Cat.apply(*tensors, dim=_dim(dim, tensors[0].ndim, "cat"))


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    return Stack.apply(*tensors, dim=_dim(dim, tensors[0].ndim + 1, "stack"))


def split(x, split_size_or_sections, dim=0):
    """Split into chunks of ``split_size`` (the last may be smaller) or of the given sizes."""
    d = _dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError("split: split_size must be positive")
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not sum to {n}, the size of dim {dim}")
    out, start = [], 0
    for size in sizes:
        index = (slice(None),) * d + (slice(start, start + size),)
        out.append(Slice.apply(x, index=index))
        start += size
    return tuple(out)


def chunk(x, chunks, dim=0):
    n = x.shape[_dim(dim, x.ndim, "chunk")]
    return split(x, max(-(-n // chunks), 1), dim)


def unbind(x, dim=0):
    d = _dim(dim, x.ndim, "unbind")
    return tuple(x[(slice(None),) * d + (i,)] for i in range(x.shape[d]))


def _is_advanced(index):
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (list, np.ndarray)) and not (isinstance(i, np.ndarray) and i.ndim == 0
                                                            and i.dtype.kind in "iu") for i in items)


def getitem(x, index):
    index = _index_data(index)
    if isinstance(index, list):
        index = np.asarray(index)
    if _is_advanced(index):
        return Gather.apply(x, index=index)
    return Slice.apply(x, index=index)


def index_put(x, index, value):
    return IndexPut.apply(x, value if isinstance(value, Tensor) else np.asarray(value, dtype=x.dtype),
                          index=_index_data(index))


def _int_index(index, op):
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {idx.dtype}")
    return idx


def index_select(x, dim, index):
    d = _dim(dim, x.ndim, "index_select")
    idx = _int_index(index, "index_select")
    if idx.ndim != 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {idx.shape}")
    if idx.size and (idx.min() < -x.shape[d] or idx.max() >= x.shape[d]):
        raise IndexError(f"index_select: index out of range for dim {dim} of size {x.shape[d]}")
    return IndexSelect.apply(x, dim=d, index=idx)


def gather(x, dim, index):
    d = _dim(dim, x.ndim, "gather")
    idx = _int_index(index, "gather")
    if idx.ndim != x.ndim:
        raise ValueError(f"gather: index has {idx.ndim} dims, input has {x.ndim} (shape {x.shape})")
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[d]):
        raise IndexError(f"gather: index out of range [0, {x.shape[d]}) for dim {dim}")
    return GatherAlong.apply(x, dim=d, index=idx)


def masked_fill(x, mask, value):
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}")
    try:
        ok = np.broadcast_shapes(m.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"masked_fill: mask of shape {m.shape} does not broadcast to {x.shape}")
    if isinstance(value, Tensor):
        value = value.item()
    return MaskedFill.apply(x, mask=np.broadcast_to(m, x.shape), value=value)


def pad(x, pad, mode="constant", value=0.0):
    """torch.nn.functional.pad: ``pad`` = (last_left, last_right, 2nd_last_left, ...)."""
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is implemented, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: {len(pad)} values given for a tensor with {x.ndim} dims (need pairs)")
    if any(p < 0 for p in pad):
        raise NotImplementedError("pad: negative padding (cropping) is not supported; slice instead")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(x, widths=tuple(widths), value=value)


def flip(x, dims):
    return Flip.apply(x, axes=normalize_dims(dims, x.ndim, "flip"))


def tril(x, diagonal=0):
    if x.ndim < 2:
        raise ValueError(f"tril: needs at least 2 dims, got shape {x.shape}")
    return Tri.apply(x, diagonal=diagonal, lower=True)


def triu(x, diagonal=0):
    if x.ndim < 2:
        raise ValueError(f"triu: needs at least 2 dims, got shape {x.shape}")
    return Tri.apply(x, diagonal=diagonal, lower=False)


def one_hot(x, num_classes=-1):
    """int64 one-hot encoding with a trailing class dim (no gradient)."""
    idx = _int_index(x, "one_hot")
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise ValueError(f"one_hot: class values must lie in [0, {num_classes}), got [{idx.min()}, {idx.max()}]")
    return Tensor._make(np.eye(num_classes, dtype=np.int64)[idx], False, None)


def clone(x):
    return Clone.apply(x)


def contiguous(x):
    return x if x.data.flags.c_contiguous else Clone.apply(x)


for _name, _fn in dict(
        reshape=reshape, view=reshape, flatten=flatten, unflatten=unflatten, permute=permute,
        transpose=transpose, swapaxes=transpose, squeeze=squeeze, unsqueeze=unsqueeze, expand=expand,
        broadcast_to=broadcast_to, repeat=repeat, split=split, chunk=chunk, unbind=unbind,
        __getitem__=getitem, index_select=index_select, gather=gather, masked_fill=masked_fill,
        flip=flip, tril=tril, triu=triu, clone=clone, contiguous=contiguous,
        expand_as=lambda s, o: expand(s, o.shape), view_as=lambda s, o: reshape(s, o.shape),
        masked_fill_=lambda s, m, v: s._apply_inplace(masked_fill(s, m, v)),
        ).items():
    setattr(Tensor, _name, _fn)
Tensor.T = property(lambda s: permute(s, tuple(reversed(range(s.ndim)))))
Tensor.mT = property(lambda s: transpose(s, -2, -1))
