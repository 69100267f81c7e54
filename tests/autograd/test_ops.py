"""Every differentiable op, one line each: goldbull_np op, NumPy forward expression, input domains.

One helper (``check_op``) compares the forward against NumPy (float64 and float32) and the gradient
against float64 central differences. Hypothesis draws the shapes (broadcasting, 0-d, size-1 dims),
the values (from each op's domain, away from kinks), and whether the inputs are non-contiguous views.
"""
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import goldbull_np as gb
from autograd_helpers import check_op, make_input

# ---- shape strategies: each returns (list of input shapes, kwargs) ------------------------------------


def shape_st(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def unary(min_dims=0, max_dims=3, min_side=1):
    return lambda data: ([data.draw(shape_st(min_dims, max_dims, min_side))], {})


def nary(n):
    def draw(data):
        shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3, min_side=1,
                                                             max_side=4)).input_shapes
        return list(shapes), {}
    return draw


def dims_st(ndim):
    """None, one dim (possibly negative), or a tuple of distinct dims."""
    if ndim == 0:
        return st.none()
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple))


def reduce_(min_side=1, one_dim=False, min_dims=0):
    def draw(data):
        shape = data.draw(shape_st(1 if one_dim else min_dims, 3, min_side))
        dim = (data.draw(st.integers(-len(shape), len(shape) - 1)) if one_dim else data.draw(dims_st(len(shape))))
        return [shape], {"dim": dim, "keepdim": data.draw(st.booleans())}
    return draw


def matmul_shapes(data):
    batch = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=1,
                                                        max_side=3)).input_shapes
    m, k, n = (data.draw(st.integers(1, 4)) for _ in range(3))
    a_vec, b_vec = data.draw(st.booleans()), data.draw(st.booleans())
    a = (k,) if a_vec else batch[0] + (m, k)
    b = (k,) if b_vec else batch[1] + (k, n)
    return [a, b], {}


def np_axes(dim):
    return None if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)


@dataclass
class Op:
    name: str
    gb: Callable
    np: Callable
    draw: Callable
    domains: tuple = ("real",)
    grad: bool = True
    extra: Callable = None  # (rng, shapes, kwargs) -> kwargs: non-float arguments built from the shapes
    check_kw: dict = field(default_factory=dict)


# ---- NumPy references ---------------------------------------------------------------------------------
_erf = np.vectorize(math.erf)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_logsumexp(x, dim, keepdim):
    ax = np_axes(dim)
    m = x.max(axis=ax, keepdims=True)
    out = np.log(np.exp(x - m).sum(axis=ax, keepdims=True)) + m
    return out if keepdim else (out.reshape(()) if ax is None else out.squeeze(ax))


def np_norm(x, p, dim, keepdim):
    ax = np_axes(dim)
    if p == np.inf:
        return np.abs(x).max(axis=ax, keepdims=keepdim)
    return (np.abs(x) ** p).sum(axis=ax, keepdims=keepdim) ** (1 / p)


def np_maxmin(fn, argfn):
    def f(x, dim, keepdim):
        return fn(x, axis=dim, keepdims=keepdim), argfn(x, axis=dim, keepdims=keepdim)
    return f


def np_split(x, size, dim):
    n = x.shape[dim]
    return [np.take(x, range(s, min(s + size, n)), axis=dim) for s in range(0, n, size)]


def np_gather(x, dim, index):
    """torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] (dim=1); out has index's shape, which may be
    smaller than x's in every dim."""
    grid = [np.arange(n).reshape((1,) * d + (n,) + (1,) * (index.ndim - d - 1)) for d, n in enumerate(index.shape)]
    grid[dim] = index
    return x[tuple(grid)]


# kwargs built from the drawn shapes (non-float arguments: conditions, indices, permutations, ...)
def ex_perm(rng, shapes, kw):
    return {"dims": tuple(int(i) for i in rng.permutation(len(shapes[0])))}


def ex_transpose(rng, shapes, kw):
    n = len(shapes[0])
    return {"d0": int(rng.integers(-n, n)), "d1": int(rng.integers(-n, n))}


def ex_reshape(rng, shapes, kw):
    shape = shapes[0]
    choice = rng.integers(3)
    new = (-1,) if choice == 0 else tuple(reversed(shape)) if choice == 1 else (1,) + shape + (1,)
    return {"shape": new}


def ex_flatten(rng, shapes, kw):
    n = len(shapes[0])
    if n == 0:
        return {"s": 0, "e": -1}
    s = int(rng.integers(0, n))
    return {"s": s, "e": int(rng.integers(s, n))}


def ex_squeeze(rng, shapes, kw):
    n = len(shapes[0])
    return {"dim": None if n == 0 or rng.random() < 0.3 else int(rng.integers(-n, n))}


def ex_unsqueeze(rng, shapes, kw):
    n = len(shapes[0])
    return {"dim": int(rng.integers(-n - 1, n + 1))}


def ex_expand(rng, shapes, kw):
    shape = shapes[0]
    lead = tuple(int(v) for v in rng.integers(1, 4, rng.integers(0, 3)))
    return {"size": lead + tuple(int(rng.integers(1, 4)) if n == 1 else n for n in shape)}


def ex_repeat(rng, shapes, kw):
    return {"reps": tuple(int(v) for v in rng.integers(1, 3, len(shapes[0]) + int(rng.integers(0, 2))))}


def cat_shapes(data):
    """Two shapes equal except along the cat dim."""
    a = data.draw(shape_st(1))
    dim = data.draw(st.integers(-len(a), len(a) - 1))
    b = list(a)
    b[dim] = data.draw(st.integers(1, 3))
    return [a, tuple(b)], {"dim": dim}


def where_shapes(data):
    """Values a, b and the condition: three mutually broadcastable shapes."""
    s = nary(3)(data)[0]
    return [s[0], s[1]], {"cond_shape": s[2]}


def ex_stack(rng, shapes, kw):
    n = len(shapes[0])
    return {"dim": int(rng.integers(-n - 1, n + 1))}


def ex_split(rng, shapes, kw):
    n = len(shapes[0])
    dim = int(rng.integers(0, n))
    return {"dim": dim, "size": int(rng.integers(1, shapes[0][dim] + 1))}


def ex_pad(rng, shapes, kw):
    n = len(shapes[0])
    k = int(rng.integers(1, n + 1))
    return {"pad": tuple(int(v) for v in rng.integers(0, 3, 2 * k)), "value": float(rng.uniform(-1, 1))}


def ex_flip(rng, shapes, kw):
    n = len(shapes[0])
    return {"dims": tuple(int(d) for d in rng.choice(n, int(rng.integers(1, n + 1)), replace=False))}


def ex_diag(rng, shapes, kw):
    return {"diagonal": int(rng.integers(-1, 2))}


def ex_basic_index(rng, shapes, kw):
    """A basic index: ints (negative too), slices with steps (negative too), None and Ellipsis."""
    shape = shapes[0]
    items = []
    for n in shape:
        c = rng.integers(4)
        if c == 0:
            items.append(int(rng.integers(-n, n)))
        elif c == 1:
            items.append(slice(int(rng.integers(0, n)), None, int(rng.choice([1, 2]))))
        elif c == 2:
            items.append(slice(None, None, -1))
        else:
            items.append(slice(None))
    if rng.random() < 0.5:
        items.insert(int(rng.integers(0, len(items) + 1)), None)
    if len(items) > 1 and rng.random() < 0.5:  # replace a leading run by Ellipsis
        k = int(rng.integers(1, len(items)))
        if None not in items[:k]:
            items = [Ellipsis] + items[k:]
    return {"index": tuple(items)}


def ex_int_array_index(rng, shapes, kw):
    """Integer arrays with repeated indices (the scatter-add backward must accumulate), possibly with a slice."""
    shape = shapes[0]
    idx = rng.integers(-shape[0], shape[0], size=int(rng.integers(1, 6)))
    if len(shape) > 1 and rng.random() < 0.5:
        return {"index": (slice(None), rng.integers(0, shape[1], size=(2, 3)))}
    return {"index": idx}


def ex_mask_index(rng, shapes, kw):
    return {"index": rng.random(shapes[0]) > 0.4}


def ex_index_select(rng, shapes, kw):
    n = len(shapes[0])
    dim = int(rng.integers(-n, n))
    return {"dim": dim, "index": rng.integers(0, shapes[0][dim], size=int(rng.integers(1, 6)))}


def ex_gather(rng, shapes, kw):
    shape = shapes[0]
    dim = int(rng.integers(0, len(shape)))
    ishape = tuple(int(rng.integers(1, n + 1)) for n in shape)
    ishape = ishape[:dim] + (int(rng.integers(1, 5)),) + ishape[dim + 1:]
    return {"dim": dim, "index": rng.integers(0, shape[dim], size=ishape)}


def ex_masked_fill(rng, shapes, kw):
    shape = shapes[0]
    mshape = tuple(n if rng.random() < 0.6 else 1 for n in shape)[int(rng.integers(0, len(shape) + 1)):]
    return {"mask": rng.random(mshape) > 0.5, "value": float(rng.uniform(-3, 3))}


def ex_norm_p(rng, shapes, kw):
    return {"p": float(rng.choice([1.0, 2.0, 3.0, np.inf]))}


def ex_correction(rng, shapes, kw):
    return {"correction": int(rng.integers(0, 2))}


def T(a):
    """Wrap a non-float array argument for goldbull_np (bool/int arrays become Tensors)."""
    return gb.tensor(a) if isinstance(a, np.ndarray) else a


# ---- the table ----------------------------------------------------------------------------------------
OPS = [
    # operators and their reflected forms
    Op("add", lambda a, b: a + b, np.add, nary(2)),
    Op("sub", lambda a, b: a - b, np.subtract, nary(2)),
    Op("mul", lambda a, b: a * b, np.multiply, nary(2)),
    Op("div", lambda a, b: a / b, np.divide, nary(2), ("real", "pos")),
    Op("pow", lambda a, b: a ** b, np.power, nary(2), ("pos", "real")),
    Op("neg", lambda a: -a, np.negative, unary()),
    Op("pos_scalar_ops", lambda a: (a + 1.5) * 2.0 - 0.5, lambda a: (a + 1.5) * 2.0 - 0.5, unary()),
    Op("radd_rsub", lambda a: 3.0 - (1.0 + a), lambda a: 3.0 - (1.0 + a), unary()),
    Op("rmul_rdiv", lambda a: 2.0 / (3.0 * a), lambda a: 2.0 / (3.0 * a), unary(), ("pos",)),
    Op("pow_scalar", lambda a: a ** 2 + a ** 0.5 + a ** -1.5, lambda a: a ** 2 + a ** 0.5 + a ** -1.5, unary(),
       ("pos",)),
    Op("rpow", lambda a: 2.0 ** a, lambda a: 2.0 ** a, unary()),
    Op("matmul", lambda a, b: a @ b, np.matmul, matmul_shapes),
    # elementwise math and activations
    Op("exp", gb.exp, np.exp, unary()),
    Op("log", gb.log, np.log, unary(), ("pos",)),
    Op("log1p", gb.log1p, np.log1p, unary(), ("gt-1",)),
    Op("sqrt", gb.sqrt, np.sqrt, unary(), ("pos",)),
    Op("rsqrt", gb.rsqrt, lambda a: 1 / np.sqrt(a), unary(), ("pos",)),
    Op("abs", gb.abs, np.abs, unary(), ("kink",)),
    Op("sin", gb.sin, np.sin, unary()),
    Op("cos", gb.cos, np.cos, unary()),
    Op("tanh", gb.tanh, np.tanh, unary()),
    Op("sigmoid", gb.sigmoid, np_sigmoid, unary()),
    Op("relu", gb.relu, lambda a: np.maximum(a, 0), unary(), ("kink",)),
    Op("gelu", lambda a: gb.nn.functional.gelu(a), lambda a: 0.5 * a * (1 + _erf(a / math.sqrt(2))), unary()),
    Op("gelu_tanh", lambda a: gb.nn.functional.gelu(a, approximate="tanh"),
       lambda a: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3))), unary()),
    Op("silu", gb.silu, lambda a: a * np_sigmoid(a), unary()),
    Op("softplus", gb.softplus, lambda a: np.log1p(np.exp(a)), unary()),
    Op("softplus_beta", lambda a: gb.softplus(a, beta=2.0, threshold=1.0),
       lambda a: np.where(2 * a > 1.0, a, np.log1p(np.exp(2 * a)) / 2), unary(), ("kink",)),
    Op("clamp", lambda a: gb.clamp(a, -0.45, 0.55), lambda a: np.clip(a, -0.45, 0.55), unary(), ("grid0",)),
    Op("clamp_min", lambda a: a.clamp(min=0.3), lambda a: np.maximum(a, 0.3), unary(), ("kink",)),
    Op("maximum", gb.maximum, np.maximum, nary(2), ("grid0", "grid1")),
    Op("minimum", gb.minimum, np.minimum, nary(2), ("grid0", "grid1")),
    Op("where", lambda a, b, cond: gb.where(T(cond), a, b), lambda a, b, cond: np.where(cond, a, b), where_shapes,
       extra=lambda rng, shapes, kw: {"cond": rng.random(kw.pop("cond_shape")) > 0.5}),
    # reductions
    Op("sum", lambda a, dim, keepdim: a.sum(dim, keepdim), lambda a, dim, keepdim: np.sum(a, np_axes(dim), keepdims=keepdim),
       reduce_()),
    Op("mean", lambda a, dim, keepdim: a.mean(dim, keepdim),
       lambda a, dim, keepdim: np.mean(a, np_axes(dim), keepdims=keepdim), reduce_()),
    Op("var", lambda a, dim, keepdim, correction: a.var(dim, correction=correction, keepdim=keepdim),
       lambda a, dim, keepdim, correction: np.var(a, np_axes(dim), ddof=correction, keepdims=keepdim),
       reduce_(min_dims=1, min_side=2), extra=ex_correction),
    Op("std", lambda a, dim, keepdim, correction: a.std(dim, correction=correction, keepdim=keepdim),
       lambda a, dim, keepdim, correction: np.std(a, np_axes(dim), ddof=correction, keepdims=keepdim),
       reduce_(min_dims=1, min_side=2), extra=ex_correction),
    Op("max_dim", lambda a, dim, keepdim: tuple(a.max(dim, keepdim)), np_maxmin(np.max, np.argmax),
       reduce_(one_dim=True)),
    Op("min_dim", lambda a, dim, keepdim: tuple(gb.min(a, dim, keepdim)), np_maxmin(np.min, np.argmin),
       reduce_(one_dim=True)),
    Op("max_all", lambda a: a.max(), np.max, unary()),
    Op("amin", lambda a, dim, keepdim: gb.amin(a, dim, keepdim),
       lambda a, dim, keepdim: np.min(a, np_axes(dim), keepdims=keepdim), reduce_()),
    Op("argmax", lambda a, dim, keepdim: a.argmax(dim, keepdim),
       lambda a, dim, keepdim: np.argmax(a, dim, keepdims=keepdim), reduce_(one_dim=True), grad=False),
    Op("logsumexp", lambda a, dim, keepdim: a.logsumexp(dim, keepdim), np_logsumexp, reduce_()),
    Op("norm", lambda a, dim, keepdim, p: a.norm(p, dim, keepdim), lambda a, dim, keepdim, p: np_norm(a, p, dim, keepdim),
       reduce_(), ("kink",), extra=ex_norm_p),
    # shape
    Op("reshape", lambda a, shape: a.reshape(shape), lambda a, shape: a.reshape(shape), unary(), extra=ex_reshape),
    Op("view", lambda a, shape: a.view(*shape), lambda a, shape: a.reshape(shape), unary(), extra=ex_reshape),
    Op("flatten", lambda a, s, e: a.flatten(s, e),
       lambda a, s, e: a.reshape(1) if a.ndim == 0 else a.reshape(a.shape[:s] + (-1,) + a.shape[e + 1:]),
       unary(), extra=ex_flatten),
    Op("transpose", lambda a, d0, d1: a.transpose(d0, d1), lambda a, d0, d1: np.swapaxes(a, d0, d1),
       unary(min_dims=1), extra=ex_transpose),
    Op("permute", lambda a, dims: a.permute(*dims), lambda a, dims: a.transpose(dims), unary(), extra=ex_perm),
    Op("T", lambda a: a.T, lambda a: a.T, unary(max_dims=2)),
    Op("squeeze", lambda a, dim: a.squeeze(dim),
       lambda a, dim: np.squeeze(a) if dim is None else (np.squeeze(a, dim) if a.shape[dim] == 1 else a),
       unary(), extra=ex_squeeze),
    Op("unsqueeze", lambda a, dim: a.unsqueeze(dim), lambda a, dim: np.expand_dims(a, dim), unary(),
       extra=ex_unsqueeze),
    Op("expand", lambda a, size: a.expand(*size), lambda a, size: np.broadcast_to(a, size), unary(), extra=ex_expand),
    Op("broadcast_to", lambda a, size: gb.broadcast_to(a, size), lambda a, size: np.broadcast_to(a, size), unary(),
       extra=ex_expand),
    Op("repeat", lambda a, reps: a.repeat(*reps), lambda a, reps: np.tile(a, reps), unary(), extra=ex_repeat),
    Op("cat", lambda a, b, dim: gb.cat([a, b], dim), lambda a, b, dim: np.concatenate([a, b], dim), cat_shapes),
    Op("stack", lambda a, b, dim: gb.stack([a, b], dim), lambda a, b, dim: np.stack([a, b], dim),
       lambda data: (lambda s: ([s, s], {}))(data.draw(shape_st(0))), extra=ex_stack),
    Op("split", lambda a, size, dim: a.split(size, dim), np_split, unary(min_dims=1), extra=ex_split),
    Op("chunk", lambda a, size, dim: a.chunk(size, dim),  # `size` chunks, each of ceil(n / size) elements
       lambda a, size, dim: np_split(a, -(-a.shape[dim] // size), dim), unary(min_dims=1), extra=ex_split),
    Op("pad", lambda a, pad, value: gb.nn.functional.pad(a, pad, value=value),
       lambda a, pad, value: np.pad(a, [(0, 0)] * (a.ndim - len(pad) // 2)
                                    + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(len(pad) // 2))],
                                    constant_values=value), unary(min_dims=1), extra=ex_pad),
    Op("flip", lambda a, dims: a.flip(dims), lambda a, dims: np.flip(a, dims), unary(min_dims=1), extra=ex_flip),
    Op("tril", lambda a, diagonal: a.tril(diagonal), lambda a, diagonal: np.tril(a, diagonal), unary(min_dims=2),
       extra=ex_diag),
    Op("triu", lambda a, diagonal: gb.triu(a, diagonal), lambda a, diagonal: np.triu(a, diagonal),
       unary(min_dims=2), extra=ex_diag),
    # indexing and gathers
    Op("getitem_basic", lambda a, index: a[index], lambda a, index: a[index], unary(min_dims=1), extra=ex_basic_index),
    Op("getitem_int_arrays", lambda a, index: a[index], lambda a, index: a[index], unary(min_dims=1),
       extra=ex_int_array_index),
    Op("getitem_mask", lambda a, index: a[T(index)], lambda a, index: a[index], unary(min_dims=1), extra=ex_mask_index),
    Op("index_select", lambda a, dim, index: a.index_select(dim, T(index)),
       lambda a, dim, index: np.take(a, index, axis=dim), unary(min_dims=1), extra=ex_index_select),
    Op("gather", lambda a, dim, index: a.gather(dim, T(index)), np_gather, unary(min_dims=1), extra=ex_gather),
    Op("masked_fill", lambda a, mask, value: a.masked_fill(T(mask), value),
       lambda a, mask, value: np.where(mask, value, a), unary(min_dims=1), extra=ex_masked_fill),
    Op("clone_contiguous", lambda a: a.clone().contiguous() * 1.0, lambda a: a.copy(), unary()),
    Op("to_float32_and_back", lambda a: a.float().double() if a.dtype == np.float64 else a.float(),
       lambda a: a, unary(), check_kw=dict(gradcheck_kw=dict(eps=1e-3, atol=1e-4, rtol=1e-3))),
]

@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
@given(data=st.data())
def test_op(op, data):
    shapes, kw = op.draw(data)
    non_contiguous = data.draw(st.booleans(), label="non_contiguous")
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    kw = dict(kw)
    if op.extra is not None:
        kw.update(op.extra(rng, shapes, kw))
    domains = op.domains if len(op.domains) == len(shapes) else op.domains * len(shapes)
    arrays = [make_input(rng, s, d, non_contiguous) for s, d in zip(shapes, domains)]
    check_op(lambda *t: op.gb(*t, **kw), lambda *a: op.np(*a, **kw), arrays, grad=op.grad, **op.check_kw)


@pytest.mark.parametrize("name, fn", [("exp", gb.exp), ("add", lambda a: a + a), ("sum", lambda a: a.sum(0)),
                                      ("mul_bcast", lambda a: a * gb.ones(1, 3, dtype=gb.float64))])
def test_size_zero_dims(name, fn):
    """Ops on tensors with a size-0 dim give empty results and empty gradients."""
    x = gb.zeros(0, 3, dtype=gb.float64, requires_grad=True)
    y = fn(x)
    assert 0 in y.shape or y.shape == (3,)
    y.sum().backward()
    assert x.grad.shape == (0, 3)
