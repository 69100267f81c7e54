"""The NumPy reference against independent formulas: plain NumPy loops, float64 central differences,
and PyTorch when it is importable (optional: never a dependency)."""
import math

import numpy as np
import pytest

from goldbull_np.kernels import reference as ref

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - torch is optional
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")
rng = np.random.default_rng(1234)


def numgrad(f, x, r, h=1e-6):
    """d/dx sum(f(x) * r) by float64 central differences."""
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = np.sum(f(x) * r)
        flat[i] = old - h
        down = np.sum(f(x) * r)
        flat[i] = old
        gf[i] = (up - down) / (2 * h)
    return g


# ---- matmul / linear -------------------------------------------------------------------------

@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_forms(ta, tb):
    a, b = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 4, 6))
    A = np.ascontiguousarray(a.transpose(0, 2, 1)) if ta else a
    Bm = np.ascontiguousarray(b.transpose(0, 2, 1)) if tb else b
    want = np.stack([a[i] @ b[i] for i in range(3)])
    np.testing.assert_allclose(ref.matmul(A, Bm, ta, tb), want, rtol=1e-12)
    np.testing.assert_allclose(ref.matmul(A[0], Bm[0], ta, tb), want[0], rtol=1e-12)


def test_linear_formulas():
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    out = ref.linear_forward(x, w, b)
    want = np.array([[sum(x[n, c] * w[o, c] for c in range(3)) + b[o] for o in range(4)] for n in range(5)])
    np.testing.assert_allclose(out, want, rtol=1e-12)
    r = rng.standard_normal((5, 4))
    dx, dw, db = ref.linear_backward(r, x, w)
    np.testing.assert_allclose(dx, numgrad(lambda z: ref.linear_forward(z, w, b), x.copy(), r), rtol=1e-6)
    np.testing.assert_allclose(dw, numgrad(lambda z: ref.linear_forward(x, z, b), w.copy(), r), rtol=1e-6)
    np.testing.assert_allclose(db, numgrad(lambda z: ref.linear_forward(x, w, z), b.copy(), r), rtol=1e-6)
    assert ref.linear_backward(r, x, w, False, True, False)[0::2] == (None, None)


# ---- normalisation ---------------------------------------------------------------------------

@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_formula_and_grad(affine):
    x = rng.standard_normal((4, 7)) + 3
    w = rng.standard_normal(7) if affine != "none" else None
    b = rng.standard_normal(7) if affine == "both" else None
    out, mean, rstd = ref.layer_norm_forward(x, w, b, 1e-5)
    want = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    want = want * (w if w is not None else 1) + (b if b is not None else 0)
    np.testing.assert_allclose(out, want, rtol=1e-12)
    assert mean.dtype == np.float64 and rstd.dtype == np.float64
    r = rng.standard_normal(x.shape)
    dx, dw, db = ref.layer_norm_backward(r, x, w, mean, rstd, b is not None)
    f = lambda z: ref.layer_norm_forward(z, w, b, 1e-5)[0]  # noqa: E731
    np.testing.assert_allclose(dx, numgrad(f, x.copy(), r), rtol=1e-5, atol=1e-7)
    if w is not None:
        np.testing.assert_allclose(dw, numgrad(lambda z: ref.layer_norm_forward(x, z, b, 1e-5)[0], w.copy(), r),
                                   rtol=1e-5, atol=1e-7)
    else:
        assert dw is None
    if b is not None:
        np.testing.assert_allclose(db, r.sum(0), rtol=1e-12)
    else:
        assert db is None


def test_layer_norm_stats_float32():
    out, mean, rstd = ref.layer_norm_forward(rng.standard_normal((3, 4)).astype(np.float32), None, None, 1e-5)
    assert out.dtype == mean.dtype == rstd.dtype == np.float32


@pytest.mark.parametrize("has_w", [True, False])
def test_rms_norm_formula_and_grad(has_w):
    x = rng.standard_normal((4, 6))
    w = rng.standard_normal(6) if has_w else None
    out, rstd = ref.rms_norm_forward(x, w, 1e-6)
    np.testing.assert_allclose(out, x / np.sqrt((x ** 2).mean(1, keepdims=True) + 1e-6) * (w if has_w else 1))
    r = rng.standard_normal(x.shape)
    dx, dw = ref.rms_norm_backward(r, x, w, rstd)
    np.testing.assert_allclose(dx, numgrad(lambda z: ref.rms_norm_forward(z, w, 1e-6)[0], x.copy(), r),
                               rtol=1e-5, atol=1e-7)
    if has_w:
        np.testing.assert_allclose(dw, numgrad(lambda z: ref.rms_norm_forward(x, z, 1e-6)[0], w.copy(), r),
                                   rtol=1e-5, atol=1e-7)


# ---- attention -------------------------------------------------------------------------------

def _loop_attention(q, k, v, scale, offset, bias, kpm):
    """One query row at a time with explicit softmax: an independent oracle."""
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    out, lse = np.zeros_like(q), np.full((B, H, T), -np.inf)
    for b in range(B):
        for h in range(H):
            hk = h // (H // Hkv)
            for t in range(T):
                allowed = [s for s in range(S) if (offset is None or s <= t + offset) and (kpm is None or kpm[b, s])]
                if not allowed:
                    continue
                sc = np.array([scale * q[b, h, t] @ k[b, hk, s] + (0 if bias is None else
                               np.broadcast_to(bias, (B, H, T, S))[b, h, t, s]) for s in allowed])
                m = sc.max()
                p = np.exp(sc - m)
                out[b, h, t] = (p[:, None] * v[b, hk, allowed]).sum(0) / p.sum()
                lse[b, h, t] = m + math.log(p.sum())
    return out, lse


@pytest.mark.parametrize("offset", [None, 0, 2, -1])
@pytest.mark.parametrize("gqa", [1, 2])
def test_attention_loops_and_grad(offset, gqa):
    B, Hkv, T, S, D = 2, 2, 3, 5, 3
    H = Hkv * gqa
    q, k, v = rng.standard_normal((B, H, T, D)), rng.standard_normal((B, Hkv, S, D)), rng.standard_normal((B, Hkv, S, D))
    bias = rng.standard_normal((1, H, T, S))
    kpm = np.ones((B, S), bool)
    kpm[1, :3] = False
    kw = dict(causal_offset=offset, attn_bias=bias, key_padding_mask=kpm)
    out, lse = ref.attention_forward(q, k, v, 0.7, **kw)
    want_out, want_lse = _loop_attention(q, k, v, 0.7, offset, bias, kpm)
    np.testing.assert_allclose(out, want_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(want_lse))
    fin = np.isfinite(want_lse)
    np.testing.assert_allclose(lse[fin], want_lse[fin], rtol=1e-10)
    r = rng.standard_normal(out.shape)
    dq, dk, dv = ref.attention_backward(r, q, k, v, out, lse, 0.7, **kw)
    np.testing.assert_allclose(dq, numgrad(lambda z: ref.attention_forward(z, k, v, 0.7, **kw)[0], q.copy(), r),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dk, numgrad(lambda z: ref.attention_forward(q, z, v, 0.7, **kw)[0], k.copy(), r),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dv, numgrad(lambda z: ref.attention_forward(q, k, z, 0.7, **kw)[0], v.copy(), r),
                               rtol=1e-5, atol=1e-7)


def test_attention_fully_masked_rows():
    q, k, v = rng.standard_normal((1, 1, 4, 2)), rng.standard_normal((1, 1, 4, 2)), rng.standard_normal((1, 1, 4, 2))
    out, lse = ref.attention_forward(q, k, v, 1.0, causal_offset=-2)   # rows 0, 1 see no key
    assert np.all(out[0, 0, :2] == 0) and np.all(np.isneginf(lse[0, 0, :2])) and np.all(np.isfinite(lse[0, 0, 2:]))
    dq, dk, dv = ref.attention_backward(np.ones_like(out), q, k, v, out, lse, 1.0, causal_offset=-2)
    assert np.all(dq[0, 0, :2] == 0) and np.all(np.isfinite(dk)) and np.all(np.isfinite(dv))


@needs_torch
@pytest.mark.parametrize("causal", ["none", "top-left", "bottom-right"])
def test_attention_vs_torch_sdpa(causal):
    B, H, Hkv, T, S, D = 2, 4, 2, 5, 9, 8
    q, k, v = rng.standard_normal((B, H, T, D)), rng.standard_normal((B, Hkv, S, D)), rng.standard_normal((B, Hkv, S, D))
    offset = {"none": None, "top-left": 0, "bottom-right": S - T}[causal]
    out, _ = ref.attention_forward(q, k, v, 1 / math.sqrt(D), causal_offset=offset)
    tq, tk, tv = (torch.tensor(a) for a in (q, k, v))
    tk, tv = tk.repeat_interleave(H // Hkv, 1), tv.repeat_interleave(H // Hkv, 1)
    mask = None if offset is None else torch.tensor(np.arange(S)[None, :] <= np.arange(T)[:, None] + offset)
    want = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=mask)
    np.testing.assert_allclose(out, want.numpy(), rtol=1e-10, atol=1e-12)


# ---- cross-entropy ---------------------------------------------------------------------------

@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_formula_and_grad(ls):
    N, V = 6, 5
    logits = rng.standard_normal((N, V)) * 3
    targets = np.array([0, 4, -100, 2, 1, -100])
    losses, lse = ref.cross_entropy_forward(logits, targets, -100, ls)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    for n in range(N):
        want = 0.0 if targets[n] == -100 else -(1 - ls) * logp[n, targets[n]] - ls * logp[n].mean()
        assert losses[n] == pytest.approx(want, rel=1e-12, abs=1e-14)
    r = rng.standard_normal(N)
    g = ref.cross_entropy_backward(r, logits, targets, lse, -100, ls)
    np.testing.assert_allclose(g, numgrad(lambda z: ref.cross_entropy_forward(z, targets, -100, ls)[0],
                                          logits.copy(), r), rtol=1e-6, atol=1e-8)


@needs_torch
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cross_entropy_vs_torch(ls):
    logits = rng.standard_normal((20, 11)).astype(np.float32) * 5
    targets = rng.integers(0, 11, 20)
    targets[::4] = 3   # ignore_index that is also a valid class id
    losses, _ = ref.cross_entropy_forward(logits, targets, ignore_index=3, label_smoothing=ls)
    want = F.cross_entropy(torch.tensor(logits), torch.tensor(targets), ignore_index=3, label_smoothing=ls,
                           reduction="none")
    np.testing.assert_allclose(losses, want.numpy(), rtol=1e-5, atol=1e-6)


def test_cross_entropy_rejects_bad_targets():
    with pytest.raises(ValueError):
        ref.cross_entropy_forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError):
        ref.cross_entropy_forward(np.zeros((2, 3)), np.array([0.0, 1.0]))



# ---- embedding -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_backward_loop(dtype):
    V, N, C = 7, 20, 5
    dout = rng.standard_normal((N, C)).astype(dtype)
    ids = rng.integers(0, V - 2, N)                 # rows V-2, V-1 never hit
    ids[:6] = 3                                      # a repeated id
    want = np.zeros((V, C), dtype)
    for n in range(N):
        want[ids[n]] += dout[n]
    got = ref.embedding_backward(dout, ids, V)
    assert got.dtype == dtype and got.shape == (V, C)
    np.testing.assert_array_equal(got, want)         # same order of additions
    assert np.all(got[V - 2:] == 0)


def test_embedding_backward_rejects_bad_ids():
    dout = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"id 5 at position 1 is outside \[0, 5\)"):
        ref.embedding_backward(dout, np.array([0, 5, 1]), 5)
    with pytest.raises(ValueError, match="id -1 at position 2"):
        ref.embedding_backward(dout, np.array([0, 1, -1]), 5)
    with pytest.raises(TypeError, match="ids must be an integer ndarray"):
        ref.embedding_backward(dout, np.array([0.0, 1.0, 2.0]), 5)
    with pytest.raises(ValueError, match=r"ids must have shape \(3,\)"):
        ref.embedding_backward(dout, np.array([0, 1]), 5)
    with pytest.raises(ValueError, match="dout must be 2-D"):
        ref.embedding_backward(np.ones(3), np.array([0, 1, 2]), 5)
    with pytest.raises(TypeError, match="num_embeddings must be an int"):
        ref.embedding_backward(dout, np.array([0, 1, 2]), 5.0)
    with pytest.raises(ValueError, match="num_embeddings must be >= 0"):
        ref.embedding_backward(dout, np.array([0, 1, 2]), -1)
    assert ref.embedding_backward(np.ones((0, 4)), np.zeros(0, np.int64), 0).shape == (0, 4)

# ---- rotary position embeddings --------------------------------------------------------------

def test_rotary_qkv_loop_and_numgrad():
    """The reference equals the element formulas written as loops (tables with unequal halves), and its
    backward is the float64 gradient of sum(forward(x) * r)."""
    B, T, D, heads, R = 2, 3, 4, 3, 2
    h = D // 2
    x = rng.standard_normal((B, T, heads * D))
    cos, sin = rng.standard_normal((T, D)), rng.standard_normal((T, D))
    want = x.copy()
    for b, t, hd, j in np.ndindex(B, T, R, h):
        a, c = x[b, t, hd * D + j], x[b, t, hd * D + h + j]
        want[b, t, hd * D + j] = a * cos[t, j] - c * sin[t, j]
        want[b, t, hd * D + h + j] = c * cos[t, j + h] + a * sin[t, j + h]
    np.testing.assert_allclose(ref.rotary_qkv_forward(x, cos, sin, R), want, rtol=1e-14, atol=1e-14)
    r = rng.standard_normal(x.shape)
    np.testing.assert_allclose(ref.rotary_qkv_backward(r, cos, sin, R),
                               numgrad(lambda z: ref.rotary_qkv_forward(z, cos, sin, R), x, r), rtol=1e-6, atol=1e-8)


def test_rotary_qkv_rejects_bad_shapes():
    x, tab = np.ones((1, 4, 24)), np.ones((4, 8))
    with pytest.raises(ValueError, match=r"W = 20 .* not a multiple of the head dim D = 8"):
        ref.rotary_qkv_forward(np.ones((1, 4, 20)), tab, tab, 1)
    with pytest.raises(ValueError, match="D even"):
        ref.rotary_qkv_forward(np.ones((1, 4, 21)), np.ones((4, 7)), np.ones((4, 7)), 1)
    with pytest.raises(ValueError, match=r"cos must be \(T, D\) = \(4, D\)"):
        ref.rotary_qkv_forward(x, np.ones((5, 8)), np.ones((5, 8)), 1)
    with pytest.raises(ValueError, match="sin must have cos's shape"):
        ref.rotary_qkv_backward(x, tab, np.ones((4, 6)), 1)
    with pytest.raises(ValueError, match=r"rotated_heads must be in \[0, W // D\] = \[0, 3\]"):
        ref.rotary_qkv_forward(x, tab, tab, 4)
    with pytest.raises(TypeError, match="rotated_heads must be an int"):
        ref.rotary_qkv_forward(x, tab, tab, 1.0)
    with pytest.raises(TypeError, match="g must be a float ndarray"):
        ref.rotary_qkv_backward(np.ones((1, 4, 24), np.int32), tab, tab, 1)
    assert ref.rotary_qkv_forward(np.ones((2, 0, 24)), np.ones((0, 8)), np.ones((0, 8)), 3).shape == (2, 0, 24)


# ---- GELU / AdamW ----------------------------------------------------------------------------

@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_formula_and_grad(approximate):
    x = np.linspace(-6, 6, 41)
    out = ref.gelu_forward(x, approximate)
    if approximate == "none":
        want = np.array([0.5 * t * (1 + math.erf(t / math.sqrt(2))) for t in x])
    else:
        want = np.array([0.5 * t * (1 + math.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t ** 3))) for t in x])
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-14)
    r = rng.standard_normal(x.shape)
    np.testing.assert_allclose(ref.gelu_backward(r, x, approximate),
                               numgrad(lambda z: ref.gelu_forward(z, approximate), x.copy(), r), rtol=1e-6, atol=1e-8)


@needs_torch
def test_adamw_vs_torch():
    sizes, P = [7, 13], 20
    lrs, wds = np.array([1e-2, 3e-3]), np.array([0.1, 0.0])
    segments = np.array([0, 7, 20], np.int64)
    p0 = rng.standard_normal(P).astype(np.float32)
    param, m, v = p0.copy(), np.zeros(P, np.float32), np.zeros(P, np.float32)
    tparams = [torch.nn.Parameter(torch.tensor(p0[:7])), torch.nn.Parameter(torch.tensor(p0[7:]))]
    opt = torch.optim.AdamW([{"params": [tparams[0]], "lr": lrs[0], "weight_decay": wds[0]},
                             {"params": [tparams[1]], "lr": lrs[1], "weight_decay": wds[1]}],
                            betas=(0.9, 0.99), eps=1e-8, foreach=False)
    for step in range(1, 6):
        grad = rng.standard_normal(P).astype(np.float32)
        ref.adamw_step(param, grad, m, v, step, lrs, wds, segments, 0.9, 0.99, 1e-8)
        tparams[0].grad, tparams[1].grad = torch.tensor(grad[:7]), torch.tensor(grad[7:])
        opt.step()
    np.testing.assert_allclose(param, torch.cat([t.detach() for t in tparams]).numpy(), rtol=1e-6, atol=1e-7)
    assert sum(sizes) == P
