"""``gb.nn.functional``: every op against a NumPy reference through the one op-checking helper, the
fused ops (functions/nn.py) on every kernel backend, and torch semantics where torch is importable.

Per backend: the float64 gradient is checked by central differences (float64 is routed by the dispatcher
to a backend that supports it), and the float32 forward and backward are compared with the NumPy
reference backend at float32 tolerances.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import goldbull_np as gb
import goldbull_np.kernels as K
from autograd_helpers import check_op, make_input

F = gb.nn.functional
BACKENDS = K.BACKENDS


# ---- NumPy references ---------------------------------------------------------------------------------
def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def np_linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def np_layer_norm(x, n, w=None, b=None, eps=1e-5):
    ax = tuple(range(x.ndim - n, x.ndim))
    y = (x - x.mean(ax, keepdims=True)) / np.sqrt(x.var(ax, keepdims=True) + eps)
    y = y if w is None else y * w
    return y if b is None else y + b


def np_rms_norm(x, w=None, eps=1e-6):
    y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return y if w is None else y * w


def np_sdpa(q, k, v, mask=None, causal=False, scale=None):
    H, Hkv, T, S = q.shape[1], k.shape[1], q.shape[2], k.shape[2]
    k, v = np.repeat(k, H // Hkv, 1), np.repeat(v, H // Hkv, 1)
    s = q @ k.swapaxes(-1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if causal:
        s = np.where(np.tril(np.ones((T, S), bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    return np_softmax(s, -1) @ v


def np_cross_entropy(x, t, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """x (N, C), t (N,) class indices."""
    logp = np_log_softmax(x, 1)
    valid = t != ignore_index
    nll = -logp[np.arange(len(t)), np.where(valid, t, 0)]
    loss = (1 - label_smoothing) * nll + label_smoothing * -logp.mean(1)
    loss = np.where(valid, loss, 0.0)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / valid.sum()


# ---- fused ops on every backend --------------------------------------------------------------------
def compare_f32_with_reference(fn, arrays, backend, rtol=2e-4, atol=2e-5):
    """float32 forward and backward under ``backend`` equal the NumPy reference backend's."""
    rng = np.random.default_rng(0)
    results = []
    for b in (backend, "numpy"):
        with K.use(b):
            ts = [gb.tensor(a.astype(np.float32), requires_grad=True) if a.dtype.kind == "f" else gb.tensor(a)
                  for a in arrays]
            out = fn(*ts)
            w = rng.standard_normal(out.shape).astype(np.float32) if not results else results[0][2]
            (out * gb.tensor(w)).sum().backward()
            results.append((out.numpy().copy(), [t.grad for t in ts if t.requires_grad], w))
    (o1, g1, _), (o2, g2, _) = results
    assert o1.dtype == np.float32
    np.testing.assert_allclose(o1, o2, rtol=rtol, atol=atol)
    for a, b in zip(g1, g2):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * 10)


def fused_case(name, data):
    """(goldbull fn, numpy fn, float64 input arrays) for one drawn instance of fused op ``name``."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    nc = data.draw(st.booleans(), label="non_contiguous")
    small = st.integers(1, 4)
    if name in ("linear", "linear_nobias"):
        lead = tuple(data.draw(st.lists(small, max_size=2), label="lead"))
        c, oc = data.draw(small), data.draw(small)
        arrays = [make_input(rng, lead + (c,), "real", nc), make_input(rng, (oc, c), "real", nc)]
        if name == "linear":
            arrays.append(make_input(rng, (oc,), "real"))
        return F.linear, np_linear, arrays
    if name == "layer_norm":
        shape = tuple(data.draw(st.lists(small, min_size=1, max_size=3), label="shape"))
        n = data.draw(st.integers(1, len(shape)), label="n_norm")
        affine = data.draw(st.booleans(), label="affine")
        ns = shape[len(shape) - n:]
        x = make_input(rng, shape, "real", nc) + rng.uniform(-1, 1, shape[-1:])  # not all equal along a row
        arrays = [x] + ([make_input(rng, ns), make_input(rng, ns)] if affine else [])
        return (lambda x, *wb: F.layer_norm(x, ns, *wb)), (lambda x, *wb: np_layer_norm(x, n, *wb)), arrays
    if name == "rms_norm":
        shape = tuple(data.draw(st.lists(small, min_size=1, max_size=3), label="shape"))
        arrays = [make_input(rng, shape, "real", nc), make_input(rng, shape[-1:])]
        return (lambda x, w: F.rms_norm(x, shape[-1:], w, eps=1e-6)), np_rms_norm, arrays
    if name == "gelu":
        shape = tuple(data.draw(st.lists(small, max_size=3), label="shape"))
        approx = data.draw(st.sampled_from(["none", "tanh"]), label="approximate")
        ref = ((lambda a: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3))))
               if approx == "tanh" else (lambda a: 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))))
        return (lambda a: F.gelu(a, approximate=approx)), ref, [make_input(rng, shape, "real", nc)]
    if name == "attention":
        B, Hkv, T, S, D = (data.draw(small) for _ in range(5))
        H = Hkv * data.draw(st.integers(1, 2), label="group")
        kind = data.draw(st.sampled_from(["none", "causal", "bool", "float", "padding"]), label="mask")
        if kind == "causal":
            S = T
        q = make_input(rng, (B, H, T, D), "real", nc)
        k, v = make_input(rng, (B, Hkv, S, D), "real", nc), make_input(rng, (B, Hkv, S, D), "real")
        mask = None
        if kind == "bool":
            mask = rng.random((T, S)) > 0.3
            mask[:, 0] = True  # every query sees a key
        elif kind == "float":
            mask = rng.uniform(-1, 1, (1, H, T, S))
        elif kind == "padding":
            mask = np.ones((B, 1, 1, S), bool)
            mask[..., S - 1:] = S == 1
        gmask = None if mask is None else gb.tensor(mask)
        return ((lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=gmask, is_causal=kind == "causal")),
                (lambda q, k, v: np_sdpa(q, k, v, mask, kind == "causal")), [q, k, v])
    if name == "cross_entropy":
        N, C = data.draw(st.integers(1, 5), label="N"), data.draw(st.integers(2, 5), label="C")
        t = rng.integers(0, C, N)
        if data.draw(st.booleans(), label="some_ignored") and N > 1:
            t[0] = -100
        red = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
        ls = data.draw(st.sampled_from([0.0, 0.1]), label="label_smoothing")
        return ((lambda x: F.cross_entropy(x, gb.tensor(t), reduction=red, label_smoothing=ls)),
                (lambda x: np_cross_entropy(x, t, reduction=red, label_smoothing=ls)),
                [make_input(rng, (N, C), "real", nc)])
    raise KeyError(name)


FUSED = ["linear", "linear_nobias", "layer_norm", "rms_norm", "gelu", "attention", "cross_entropy"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", FUSED)
@given(data=st.data())
def test_fused_op_on_backend(name, backend, data):
    gb_fn, np_fn, arrays = fused_case(name, data)
    with K.use(backend):
        check_op(gb_fn, np_fn, arrays, f32_rtol=1e-3, f32_atol=1e-4)
    compare_f32_with_reference(gb_fn, arrays, backend)


# ---- functional ops through the op helper ------------------------------------------------------------
def shape_and_dim(data, min_dims=1):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=min_dims, max_size=3), label="shape"))
    return shape, data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")


@given(data=st.data())
def test_softmax_and_log_softmax(data):
    shape, dim = shape_and_dim(data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = make_input(rng, shape, "real", data.draw(st.booleans()))
    check_op(lambda t: F.softmax(t, dim), lambda a: np_softmax(a, dim), [x])
    check_op(lambda t: F.log_softmax(t, dim=dim), lambda a: np_log_softmax(a, dim), [x])


@given(data=st.data())
def test_cross_entropy_nd_and_probability_targets(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    N, C, L = (data.draw(st.integers(1, 3)) for _ in range(3))
    x = make_input(rng, (N, C, L), "real")
    t = rng.integers(0, C, (N, L))
    flat = lambda a: a.transpose(0, 2, 1).reshape(-1, C)  # noqa: E731
    check_op(lambda z: F.cross_entropy(z, gb.tensor(t), reduction="none"),
             lambda a: np_cross_entropy(flat(a), t.reshape(-1), reduction="none").reshape(N, L), [x])
    p = np_softmax(rng.standard_normal((N, C)), 1)
    ls = data.draw(st.sampled_from([0.0, 0.2]))
    x2 = make_input(rng, (N, C), "real")
    check_op(lambda z, q: F.cross_entropy(z, q, label_smoothing=ls),
             lambda a, q: -((q * (1 - ls) + ls / C) * np_log_softmax(a, 1)).sum(1).mean(), [x2, p])


def test_cross_entropy_1d_input_and_weights():
    x = gb.tensor([0.5, -1.0, 2.0], dtype=gb.float64, requires_grad=True)
    loss = F.cross_entropy(x, gb.tensor(2))
    np.testing.assert_allclose(loss.item(), -np_log_softmax(x.numpy(), 0)[2])
    logits = np.random.default_rng(0).standard_normal((4, 3))
    t = np.array([0, 2, -100, 2])
    w = np.array([0.2, 1.0, 3.0])
    logp = np_log_softmax(logits, 1)
    valid = t != -100
    picked = -logp[np.arange(4), np.where(valid, t, 0)] * w[np.where(valid, t, 0)] * valid
    expected = picked.sum() / (w[np.where(valid, t, 0)] * valid).sum()
    got = F.cross_entropy(gb.tensor(logits), gb.tensor(t), weight=gb.tensor(w))
    np.testing.assert_allclose(got.item(), expected, rtol=1e-6)
    nll = F.nll_loss(F.log_softmax(gb.tensor(logits), 1), gb.tensor(t), weight=gb.tensor(w))
    np.testing.assert_allclose(nll.item(), expected, rtol=1e-6)


def np_weighted_smoothed_cross_entropy(x, t, w, ls, reduction, ignore_index=-100):
    """torch's formula: loss_i = (1-ls) w[t_i] nll_i + ls/C sum_c w[c] (-logp_ic), 0 where ignored;
    mean divides by sum_i w[t_i] over the non-ignored rows."""
    logp = np_log_softmax(x, 1)
    valid = t != ignore_index
    ts = np.where(valid, t, 0)
    wt = w[ts] * valid
    loss = (1 - ls) * wt * -logp[np.arange(len(t)), ts] + ls / x.shape[1] * (-(logp * w).sum(1)) * valid
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / wt.sum()


@given(data=st.data())
def test_cross_entropy_weight_with_label_smoothing(data):
    """weight and label_smoothing together, with ignore_index, for every reduction: forward against
    torch's formula, gradient against float64 central differences."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    N, C = data.draw(st.integers(1, 5), label="N"), data.draw(st.integers(1, 5), label="C")
    red = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    ls = data.draw(st.sampled_from([0.1, 0.5, 1.0]), label="label_smoothing")
    t = rng.integers(0, C, N)
    t[rng.random(N) < 0.3] = F.IGNORE_INDEX
    if red == "mean":
        t[0] = rng.integers(0, C)  # at least one counted row (all ignored is nan, below)
    w = rng.uniform(0.2, 3.0, C)
    x = make_input(rng, (N, C), "real", data.draw(st.booleans(), label="non_contiguous"))
    check_op(lambda z: F.cross_entropy(z, gb.tensor(t), weight=gb.tensor(w, dtype=z.dtype), reduction=red,
                                       label_smoothing=ls),
             lambda a: np_weighted_smoothed_cross_entropy(a, t, w, ls, red), [x])


def test_cross_entropy_weight_with_label_smoothing_nd_and_all_ignored():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 4, 3)), rng.uniform(0.5, 2.0, 4)
    t = rng.integers(0, 4, (2, 3))
    t[1, 2] = -100
    got = F.cross_entropy(gb.tensor(x), gb.tensor(t), weight=gb.tensor(w), label_smoothing=0.3, reduction="none")
    flat = x.transpose(0, 2, 1).reshape(-1, 4)
    want = np_weighted_smoothed_cross_entropy(flat, t.reshape(-1), w, 0.3, "none").reshape(2, 3)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    loss = F.cross_entropy(gb.ones(2, 3), gb.tensor([-100, -100]), weight=gb.ones(3), label_smoothing=0.1)
    assert np.isnan(loss.item())


def test_cross_entropy_all_ignored_is_nan_and_errors():
    loss = F.cross_entropy(gb.ones(2, 3), gb.tensor([-100, -100]))
    assert np.isnan(loss.item())
    with pytest.raises(ValueError, match="cross_entropy.*target"):
        F.cross_entropy(gb.ones(2, 3), gb.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(gb.ones(2, 3), gb.tensor([0, 1]), reduction="avg")


@given(data=st.data())
def test_losses(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    red = data.draw(st.sampled_from(["mean", "sum", "none"]))
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[red]
    a, b = make_input(rng, shape, "real"), make_input(rng, shape, "real")
    check_op(lambda x, y: F.mse_loss(x, y, reduction=red), lambda x, y: reduce((x - y) ** 2), [a, b])
    tgt = rng.random(shape)
    pw = rng.uniform(0.5, 2, shape[-1:])
    check_op(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=red,
                                                             pos_weight=gb.tensor(pw, dtype=x.dtype)),
             lambda x, y: reduce(-(pw * y * np.log(1 / (1 + np.exp(-x))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-x))))),
             [a, tgt])
    N, C = shape[0], shape[-1] + 1
    logp = np_log_softmax(make_input(rng, (N, C), "real"), 1)
    t = rng.integers(0, C, N)
    check_op(lambda x: F.nll_loss(x, gb.tensor(t), reduction=red),
             lambda x: reduce(-x[np.arange(N), t]), [logp])


def test_embedding_one_hot_and_padding_idx():
    w = gb.randn(5, 3, dtype=gb.float64, requires_grad=True)
    ids = gb.tensor([[0, 4, 4], [2, 0, 1]])
    out = F.embedding(ids, w, padding_idx=0)
    np.testing.assert_array_equal(out.numpy(), w.numpy()[ids.numpy()])
    out.sum().backward()
    np.testing.assert_array_equal(w.grad[:, 0], [0, 1, 1, 0, 2])  # padding row gets no gradient
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(gb.tensor([5]), w)
    oh = F.one_hot(gb.tensor([0, 2, 1]), 4)
    assert oh.dtype == np.int64 and not oh.requires_grad
    np.testing.assert_array_equal(oh.numpy(), np.eye(4, dtype=np.int64)[[0, 2, 1]])
    assert F.one_hot(gb.tensor([[1], [3]])).shape == (2, 1, 4)
    with pytest.raises(ValueError):
        F.one_hot(gb.tensor([4]), 3)


def test_dropout_seeded_scaled_and_train_flag():
    x = gb.ones(1000, requires_grad=True)
    gb.manual_seed(0)
    y = F.dropout(x, 0.3)
    gb.manual_seed(0)
    y2 = F.dropout(x, 0.3)
    np.testing.assert_array_equal(y.numpy(), y2.numpy())
    kept = y.numpy() != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.numpy())  # gradient is the same mask and scale
    assert F.dropout(x, 0.3, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0)
    with pytest.raises(ValueError):
        F.dropout(x, 1.5)


def test_sdpa_fully_masked_rows_give_zeros_and_errors():
    q = gb.randn(1, 1, 2, 4)
    mask = gb.tensor(np.array([[True, True], [False, False]]))
    out = F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    np.testing.assert_array_equal(out.numpy()[0, 0, 1], 0)
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(q, gb.randn(1, 1, 2, 3), q)


# ---- against torch, when it is installed -------------------------------------------------------------
def test_matches_torch_semantics():
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5))
    t = np.array([0, 4, -100, 2, 2, 1])

    def both(fn_gb, fn_t, *arrays):
        gs = [gb.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        ts = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        og, ot = fn_gb(*gs), fn_t(*ts)
        np.testing.assert_allclose(og.numpy(), ot.detach().numpy(), rtol=1e-6, atol=1e-8)
        og.sum().backward()
        ot.sum().backward()
        for a, b in zip(gs, ts):
            if a.requires_grad:
                np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-6, atol=1e-8)

    w = rng.uniform(0.2, 3.0, 5)
    for red in ("mean", "sum", "none"):
        for ls in (0.0, 0.1):
            both(lambda a, b: F.cross_entropy(a, b, reduction=red, label_smoothing=ls),
                 lambda a, b: TF.cross_entropy(a, b, reduction=red, label_smoothing=ls), x, t)
        for ls in (0.0, 0.1, 1.0):  # class weights with label smoothing
            both(lambda a, b: F.cross_entropy(a, b, weight=gb.tensor(w), reduction=red, label_smoothing=ls),
                 lambda a, b: TF.cross_entropy(a, b, weight=torch.tensor(w), reduction=red, label_smoothing=ls),
                 x, t)
    both(lambda a: F.gelu(a), lambda a: TF.gelu(a), x)
    both(lambda a: F.gelu(a, approximate="tanh"), lambda a: TF.gelu(a, approximate="tanh"), x)
    both(lambda a: F.layer_norm(a, (5,)), lambda a: TF.layer_norm(a, (5,)), x)
    both(lambda a: a.var(1) + a.std(0, correction=0).sum(), lambda a: a.var(1) + a.std(0, correction=0).sum(), x)
    both(lambda a: a.logsumexp(1) + a.norm(dim=0).sum(), lambda a: a.logsumexp(1) + a.norm(dim=0).sum(), x)
    both(lambda a: a.max(1).values + a.max(), lambda a: a.max(1).values + a.max(), x)
    q = rng.standard_normal((2, 4, 3, 8))
    kv = rng.standard_normal((2, 2, 5, 8))
    both(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
         lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, is_causal=True, enable_gqa=True), q, kv, kv)
    probs = np_softmax(rng.standard_normal((6, 5)), 1)
    both(lambda a, p: F.cross_entropy(a, p), lambda a, p: TF.cross_entropy(a, p), x, probs)


@pytest.mark.parametrize("backend", ["auto", "c", "numba", "numpy"])
def test_fused_ops_accept_an_empty_batch(backend):
    """A zero-size batch goes to the reference kernel (the C wrappers reject zero-size arrays)."""
    x = gb.zeros(0, 4, requires_grad=True)
    w = gb.randn(3, 4, requires_grad=True)
    q = gb.zeros(2, 2, 0, 4, requires_grad=True)
    with gb.kernels.use(backend):
        outs = [F.linear(x, w), F.layer_norm(x, (4,)), F.rms_norm(x, (4,)), F.gelu(x),
                F.cross_entropy(x, gb.zeros(0, dtype=gb.int64), reduction="sum"),
                F.scaled_dot_product_attention(q, q, q, is_causal=True)]
        assert [o.shape for o in outs] == [(0, 3), (0, 4), (0, 4), (0, 4), (), (2, 2, 0, 4)]
        sum(o.sum() for o in outs).backward()
    assert x.grad.shape == (0, 4) and q.grad.shape == (2, 2, 0, 4)
    np.testing.assert_array_equal(w.grad, np.zeros((3, 4), np.float32))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_gelu_linear_equals_gelu_then_linear_exactly(approximate, bias):
    """The fused MLP op gives the composition's values and gradients bit for bit (same kernels)."""
    import numpy as np
    import goldbull_np as gb
    from goldbull_np.nn import functional as F
    rng = np.random.default_rng(1)
    h0 = rng.standard_normal((2, 5, 24), np.float32)
    w0 = rng.standard_normal((7, 24), np.float32)
    b0 = rng.standard_normal(7, np.float32) if bias else None
    g = rng.standard_normal((2, 5, 7), np.float32)
    outs = []
    for fused in (True, False):
        h, w = gb.tensor(h0, requires_grad=True), gb.tensor(w0, requires_grad=True)
        b = gb.tensor(b0, requires_grad=True) if bias else None
        y = F.gelu_linear(h, w, b, approximate) if fused else F.linear(F.gelu(h, approximate), w, b)
        y.backward(g)
        outs.append([y.data, h.grad, w.grad] + ([b.grad] if bias else []))
    for a, e in zip(*outs):
        np.testing.assert_array_equal(a, e)


def test_gelu_linear_gradcheck_float64():
    import numpy as np
    import goldbull_np as gb
    from goldbull_np.autograd.gradcheck import gradcheck
    from goldbull_np.nn import functional as F
    rng = np.random.default_rng(2)
    h = gb.tensor(rng.standard_normal((3, 6)), requires_grad=True)
    w = gb.tensor(rng.standard_normal((4, 6)), requires_grad=True)
    b = gb.tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda h, w, b: F.gelu_linear(h, w, b), [h, w, b])
    with pytest.raises(ValueError):
        F.gelu_linear(h, w, b, approximate="fast")


def test_mlp_uses_the_composition_when_down_proj_is_wrapped():
    """A LoRA-style wrapper around down_proj (not a plain Linear) takes the unfused path."""
    import numpy as np
    import goldbull_np as gb
    from goldbull_np.nn.transformer import MLP
    gb.manual_seed(0)
    m = MLP(8, 16)
    x = gb.tensor(np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32))
    ref = m(x).data

    class Wrapped(gb.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, t):
            return self.inner(t) * 2.0

    m.down_proj = Wrapped(m.down_proj)
    np.testing.assert_allclose(m(x).data, 2.0 * ref, rtol=1e-6, atol=1e-6)


def _unfused_qkv_attention(qkv, H, Hkv, scale=None):
    B, T, W = qkv.shape
    D = W // (H + 2 * Hkv)
    heads = qkv.reshape(B, T, H + 2 * Hkv, D).permute(0, 2, 1, 3)  # (B, H+2Hkv, T, D)
    q, k, v = heads.split([H, Hkv, Hkv], dim=1)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)  # (B,H,T,D)
    return y.transpose(1, 2).reshape(B, T, H * D)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=10, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 9), Hkv=st.integers(1, 2), group=st.integers(1, 2),
       D=st.integers(1, 5), scale=st.sampled_from([None, 0.3]), seed=st.integers(0, 99))
def test_causal_self_attention_qkv_equals_the_composition(backend, B, T, Hkv, group, D, scale, seed):
    """One fused node gives the values and gradients of split -> sdpa(causal) -> merge heads."""
    H = Hkv * group
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((B, T, (H + 2 * Hkv) * D)).astype(np.float32)
    g = rng.standard_normal((B, T, H * D)).astype(np.float32)
    outs = []
    with K.use(backend):
        for fused in (True, False):
            x = gb.tensor(x0, requires_grad=True)
            y = F.causal_self_attention_qkv(x, H, Hkv, scale) if fused else _unfused_qkv_attention(x, H, Hkv, scale)
            y.backward(g)
            outs.append((y.data, x.grad))
    for a, e in zip(*outs):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_causal_self_attention_qkv_gradcheck_float64_and_errors():
    from goldbull_np.autograd.gradcheck import gradcheck
    rng = np.random.default_rng(3)
    x = gb.tensor(rng.standard_normal((2, 4, (2 + 2 * 1) * 3)), requires_grad=True)  # H=2, Hkv=1, D=3
    assert gradcheck(lambda t: F.causal_self_attention_qkv(t, 2, 1), [x])
    with pytest.raises(ValueError, match=r"with 4 heads, got shape \(2, 4, 10\)"):
        F.causal_self_attention_qkv(gb.zeros(2, 4, 10), 2, 1)
    with pytest.raises(ValueError, match="multiple"):
        F.causal_self_attention_qkv(gb.zeros(2, 4, 12), 3, 2)
    with pytest.raises(ValueError, match=r"\(B, T"):
        F.causal_self_attention_qkv(gb.zeros(4, 12), 2, 1)


@pytest.mark.parametrize("norm_bias,bias", [(True, True), (False, False), (True, False)])
def test_layer_norm_linear_equals_layer_norm_then_linear_exactly(norm_bias, bias):
    """The fused pre-norm projection gives the composition's values and gradients bit for bit."""
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal((2, 5, 24)).astype(np.float32) + 1.5
    lw0, lb0 = rng.standard_normal(24).astype(np.float32), rng.standard_normal(24).astype(np.float32)
    w0, b0 = rng.standard_normal((7, 24)).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    g = rng.standard_normal((2, 5, 7)).astype(np.float32)
    outs = []
    for fused in (True, False):
        x, lw, w = (gb.tensor(a, requires_grad=True) for a in (x0, lw0, w0))
        lb = gb.tensor(lb0, requires_grad=True) if norm_bias else None
        b = gb.tensor(b0, requires_grad=True) if bias else None
        y = (F.layer_norm_linear(x, lw, lb, w, b, eps=1e-5) if fused
             else F.linear(F.layer_norm(x, (24,), lw, lb, 1e-5), w, b))
        y.backward(g)
        outs.append([y.data] + [t.grad for t in (x, lw, lb, w, b) if t is not None])
    for a, e in zip(*outs):
        np.testing.assert_array_equal(a, e)


def test_layer_norm_linear_gradcheck_float64_and_errors():
    from goldbull_np.autograd.gradcheck import gradcheck
    rng = np.random.default_rng(5)
    x = gb.tensor(rng.standard_normal((3, 6)), requires_grad=True)
    lw, lb = gb.tensor(rng.standard_normal(6), requires_grad=True), gb.tensor(rng.standard_normal(6), requires_grad=True)
    w, b = gb.tensor(rng.standard_normal((4, 6)), requires_grad=True), gb.tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda x, lw, lb, w, b: F.layer_norm_linear(x, lw, lb, w, b), [x, lw, lb, w, b])
    with pytest.raises(ValueError, match="norm weight"):
        F.layer_norm_linear(x, gb.ones(5), None, w)
    with pytest.raises(ValueError, match="weight of shape"):
        F.layer_norm_linear(x, lw, lb, gb.ones(4, 5))


def test_transformer_block_fused_paths_equal_the_plain_modules():
    """A block with plain LayerNorm/Linear modules (fused LayerNormLinear, QKV attention, GELU-linear)
    matches the same block run through the unfused module calls, values and gradients."""
    from goldbull_np.nn.transformer import TransformerBlock
    gb.manual_seed(3)
    blk = TransformerBlock(16, 4, n_kv_head=2, bias=True)
    x0 = np.random.default_rng(6).standard_normal((2, 7, 16)).astype(np.float32)
    outs = []
    for fused in (True, False):
        blk.zero_grad()
        x = gb.tensor(x0, requires_grad=True)
        if fused:
            y = blk(x)
        else:
            h = x + blk.attn(blk.attn_norm(x))
            y = h + blk.mlp.down_proj(blk.mlp.act(blk.mlp.up_proj(blk.mlp_norm(h))))
        y.sum().backward()
        outs.append([y.data, x.grad] + [p.grad.copy() for p in blk.parameters()])
    for a, e in zip(*outs):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["auto", "numba", "numpy"])
@pytest.mark.parametrize("op", ["linear", "gelu_linear"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [2, 40])  # 2: the few-rows (GEMV) path; 40: the SGEMM's epilogue
def test_residual_is_the_add_of_the_composition_bit_for_bit(backend, op, bias, rows):
    """``residual=`` gives ``residual + op(...)`` exactly, values and every gradient (the residual's is the
    output's), on every backend; K = 400 spans two k-blocks of the C SGEMM."""
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal((rows, 400), np.float32)
    w0, b0 = rng.standard_normal((24, 400), np.float32) * 0.1, rng.standard_normal(24, np.float32)
    r0, g = rng.standard_normal((rows, 24), np.float32), rng.standard_normal((rows, 24), np.float32)
    fn = getattr(F, op)
    outs = []
    with gb.kernels.use(backend):
        for fused in (True, False):
            x, w, r = (gb.tensor(a, requires_grad=True) for a in (x0, w0, r0))
            b = gb.tensor(b0, requires_grad=True) if bias else None
            y = fn(x, w, b, residual=r) if fused else r + fn(x, w, b)
            y.backward(g)
            outs.append([y.data, x.grad, w.grad, r.grad] + ([b.grad] if bias else []))
    for got, want in zip(*outs):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["linear", "gelu_linear"])
def test_residual_gradcheck_float64_and_errors(op):
    from goldbull_np.autograd.gradcheck import gradcheck
    rng = np.random.default_rng(5)
    x = gb.tensor(rng.standard_normal((2, 3, 6)), requires_grad=True)
    w = gb.tensor(rng.standard_normal((4, 6)), requires_grad=True)
    b = gb.tensor(rng.standard_normal(4), requires_grad=True)
    r = gb.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    fn = getattr(F, op)
    assert gradcheck(lambda x, w, b, r: fn(x, w, b, residual=r), [x, w, b, r])
    assert gradcheck(lambda x, w, r: fn(x, w, residual=r), [x, w, r])  # no bias: the residual is input 3
    with pytest.raises(ValueError, match=r"residual of shape \(3, 4\) does not match the output's \(2, 3, 4\)"):
        fn(x, w, b, residual=gb.tensor(rng.standard_normal((3, 4))))  # no broadcasting
    with pytest.raises(TypeError, match="residual float32"):
        fn(x, w, b, residual=gb.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32)))


@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
def test_transformer_block_residual_adds_fused_equal_the_composition(mlp):
    """Without dropout the block adds each residual in its projection's GEMM epilogue; values and gradients are
    those of ``x + attn(x)`` then ``x + mlp(x)`` composed by hand, bit for bit."""
    from goldbull_np.nn.transformer import TransformerBlock
    gb.manual_seed(0)
    blk = TransformerBlock(32, 4, mlp=mlp)
    x0 = np.random.default_rng(6).standard_normal((2, 9, 32)).astype(np.float32)
    outs = []
    for fused in (True, False):
        x = gb.tensor(x0, requires_grad=True)
        if fused:
            y = blk(x)
        else:
            h = x + blk.attention(x)
            y = h + blk.feed_forward(h)
        blk.zero_grad()
        (y * y).sum().backward()
        outs.append([y.data, x.grad] + [p.grad.copy() for p in blk.parameters()])
    for got, want in zip(*outs):
        np.testing.assert_array_equal(got, want)
