"""Every fast backend (numba f32/f64, C f32) equals the NumPy reference on hypothesis-drawn shapes."""
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kernels_helpers import FAST, assert_all_close, assert_close, backend_module, rand
from goldbull_np.kernels import reference as ref

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
pytestmark = pytest.mark.parametrize("backend,dtype", FAST, ids=[f"{b}-{np.dtype(d).name}" for b, d in FAST])


_same = assert_all_close  # length and None-structure first, then every array (test_kernels_helpers.py)


# ---- matmul / linear -------------------------------------------------------------------------

@SETTINGS
@given(M=st.integers(1, 40), N=st.integers(1, 40), K=st.sampled_from([1, 3, 8, 17, 255, 300, 400]),  # 400 > KC
       ta=st.booleans(), tb=st.booleans(), batch=st.sampled_from([None, 1, 3]), seed=st.integers(0, 99))
def test_matmul(backend, dtype, M, N, K, ta, tb, batch, seed):
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    pre = () if batch is None else (batch,)
    a = rand(rng, pre + ((K, M) if ta else (M, K)), dtype)
    b = rand(rng, pre + ((N, K) if tb else (K, N)), dtype)
    want = ref.matmul(a, b, ta, tb)
    assert_close(kb.matmul(a, b, trans_a=ta, trans_b=tb), want, dtype, "matmul", scale=np.sqrt(K))
    out = np.full(want.shape, np.nan, dtype)
    got = kb.matmul(a, b, trans_a=ta, trans_b=tb, out=out)
    assert got is out
    assert_close(out, want, dtype, "matmul(out=)", scale=np.sqrt(K))


@SETTINGS
@given(N=st.integers(1, 70), C=st.integers(1, 70), OC=st.integers(1, 70), has_bias=st.booleans(),
       need=st.tuples(st.booleans(), st.booleans(), st.booleans()), seed=st.integers(0, 99))
def test_linear(backend, dtype, N, C, OC, has_bias, need, seed):
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x, w = rand(rng, (N, C), dtype), rand(rng, (OC, C), dtype)
    bias = rand(rng, (OC,), dtype) if has_bias else None
    assert_close(kb.linear_forward(x, w, bias), ref.linear_forward(x, w, bias), dtype, "linear_forward", np.sqrt(C))
    dout = rand(rng, (N, OC), dtype)
    _same(kb.linear_backward(dout, x, w, *need), ref.linear_backward(dout, x, w, *need), dtype,
          "linear_backward", np.sqrt(max(N, OC)))


@SETTINGS
@given(N=st.sampled_from([1, 3, 4, 13, 64]), C=st.sampled_from([1, 17, 130, 400]), OC=st.integers(1, 70),  # 400 > KC
       has_bias=st.booleans(), seed=st.integers(0, 99))
def test_linear_forward_with_residual(backend, dtype, N, C, OC, has_bias, seed):
    """out = residual + x @ w.T + bias: the residual added to each finished tile (the few-rows path below 4 rows)."""
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x, w, res = rand(rng, (N, C), dtype), rand(rng, (OC, C), dtype), rand(rng, (N, OC), dtype)
    bias = rand(rng, (OC,), dtype) if has_bias else None
    got = kb.linear_forward(x, w, bias, residual=res)
    assert_close(got, res + ref.linear_forward(x, w, bias), dtype, "linear_forward(residual=)", np.sqrt(C))
    if backend.startswith("c"):  # the same bits as the add after the product
        np.testing.assert_array_equal(got, res + kb.linear_forward(x, w, bias))


@SETTINGS
@given(N=st.sampled_from([1, 7, 64, 400, 800]), C=st.integers(1, 40), OC=st.integers(1, 40),  # 400, 800 > KC
       accumulate=st.booleans(), bias_out=st.booleans(), seed=st.integers(0, 99))
def test_linear_backward_into_parameter_grads(backend, dtype, N, C, OC, accumulate, bias_out, seed):
    """dweight_out / dbias_out (a parameter's .grad): written, or added to in the GEMM epilogue (every k-block)."""
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x, w, dout = rand(rng, (N, C), dtype), rand(rng, (OC, C), dtype), rand(rng, (N, OC), dtype)
    gw0, gb0 = rand(rng, (OC, C), dtype), rand(rng, (OC,), dtype)
    gw, gb = gw0.copy(), gb0.copy() if bias_out else None
    dx, dw, db = kb.linear_backward(dout, x, w, dweight_out=gw, dbias_out=gb, accumulate=accumulate)
    want_dx, want_dw, want_db = ref.linear_backward(dout, x, w)
    assert dw is gw and (db is gb if bias_out else db is not gb0)
    assert_close(dx, want_dx, dtype, "linear_backward dx", np.sqrt(OC))
    assert_close(dw, gw0 + want_dw if accumulate else want_dw, dtype, "linear_backward dweight_out", np.sqrt(N))
    want_bias = gb0 + want_db if accumulate and bias_out else want_db
    assert_close(db, want_bias, dtype, "linear_backward dbias", np.sqrt(N))


# ---- normalisation ---------------------------------------------------------------------------

@SETTINGS
@given(N=st.integers(1, 50), C=st.integers(1, 130), affine=st.sampled_from(["both", "weight", "none"]),
       shift=st.sampled_from([0.0, 5.0]), seed=st.integers(0, 99))
def test_layer_norm(backend, dtype, N, C, affine, shift, seed):
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x = rand(rng, (N, C), dtype) + dtype(shift)
    w = rand(rng, (C,), dtype) if affine != "none" else None
    b = rand(rng, (C,), dtype) if affine == "both" else None
    got, want = kb.layer_norm_forward(x, w, b, 1e-5), ref.layer_norm_forward(x, w, b, 1e-5)
    _same(got, want, dtype, "layer_norm_forward", 10)
    assert got[1].dtype == want[1].dtype and got[2].dtype == want[2].dtype
    dout = rand(rng, (N, C), dtype)
    _same(kb.layer_norm_backward(dout, x, w, got[1], got[2], b is not None),
          ref.layer_norm_backward(dout, x, w, want[1], want[2], b is not None), dtype, "layer_norm_backward", 10)


@SETTINGS
@given(N=st.integers(1, 50), C=st.integers(1, 130), has_w=st.booleans(), seed=st.integers(0, 99))
def test_rms_norm(backend, dtype, N, C, has_w, seed):
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x = rand(rng, (N, C), dtype)
    w = rand(rng, (C,), dtype) if has_w else None
    got, want = kb.rms_norm_forward(x, w, 1e-6), ref.rms_norm_forward(x, w, 1e-6)
    _same(got, want, dtype, "rms_norm_forward", 10)
    dout = rand(rng, (N, C), dtype)
    _same(kb.rms_norm_backward(dout, x, w, got[1]), ref.rms_norm_backward(dout, x, w, want[1]), dtype,
          "rms_norm_backward", 10)


@SETTINGS
@given(N=st.integers(1, 40), C=st.sampled_from([1, 7, 16, 130, 300, 520]), rms=st.booleans(),
       accumulate=st.booleans(), seed=st.integers(0, 99))
@example(N=2100, C=2048, rms=False, accumulate=True, seed=0)  # 2^22 elements: the streaming-store rows
def test_norm_backward_into_a_pending_gradient(backend, dtype, N, C, rms, accumulate, seed):
    """dx_out: dx written there, or (accumulate) added to its values in the same pass (C > 256: in chunks)."""
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x, w, dout, pending = (rand(rng, s, dtype) for s in ((N, C), (C,), (N, C), (N, C)))
    if rms:
        _, rstd = ref.rms_norm_forward(x, w, 1e-6)
        want = ref.rms_norm_backward(dout, x, w, rstd)[0]
        out = pending.copy()
        got = kb.rms_norm_backward(dout, x, w, rstd, dx_out=out, accumulate=accumulate)[0]
    else:
        _, mean, rstd = ref.layer_norm_forward(x, w, None, 1e-5)
        want = ref.layer_norm_backward(dout, x, w, mean, rstd, True)[0]
        out = pending.copy()
        got = kb.layer_norm_backward(dout, x, w, mean, rstd, True, dx_out=out, accumulate=accumulate)[0]
    assert got is out
    assert_close(got, pending + want if accumulate else want, dtype, "norm backward dx_out", 10)


# ---- attention -------------------------------------------------------------------------------

@st.composite
def attention_cases(draw):
    B, Hkv, g = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    T = draw(st.sampled_from([1, 2, 7, 63, 65, 70]))
    S = draw(st.sampled_from([T, 1, 5, 64, 67]))
    D = draw(st.sampled_from([1, 3, 16, 33]))
    causal = draw(st.sampled_from(["none", "top-left", "bottom-right", "shifted"]))
    offset = {"none": None, "top-left": 0, "bottom-right": S - T, "shifted": draw(st.integers(-3, 3))}[causal]
    bias = draw(st.sampled_from(["none", "full", "heads", "keys", "2d"]))
    kpm = draw(st.sampled_from(["none", "random", "with-empty-row"]))
    huge = draw(st.booleans())
    return dict(B=B, H=Hkv * g, Hkv=Hkv, T=T, S=S, D=D, offset=offset, bias=bias, kpm=kpm, huge=huge,
                seed=draw(st.integers(0, 99)))


def _attention_inputs(c, dtype):
    rng = np.random.default_rng(c["seed"])
    B, H, Hkv, T, S, D = c["B"], c["H"], c["Hkv"], c["T"], c["S"], c["D"]
    if c["huge"]:
        # scores ~1e4 but exactly representable (small integers): a stability test, not a rounding test
        q = rng.integers(-3, 4, (B, H, T, D)).astype(dtype) * 32
        k = rng.integers(-3, 4, (B, Hkv, S, D)).astype(dtype) * 32
        scale = 1.0
    else:
        q, k = rand(rng, (B, H, T, D), dtype), rand(rng, (B, Hkv, S, D), dtype)
        scale = 1.0 / np.sqrt(D)
    v = rand(rng, (B, Hkv, S, D), dtype)
    bias = {"none": None, "full": lambda: rand(rng, (B, H, T, S), dtype),
            "heads": lambda: rand(rng, (1, H, T, S), dtype), "keys": lambda: rand(rng, (B, 1, 1, S), dtype),
            "2d": lambda: rand(rng, (T, S), dtype)}[c["bias"]]
    bias = bias() if bias else None
    if c["huge"] and bias is not None:
        bias = np.round(bias * 4).astype(dtype)
    kpm = None
    if c["kpm"] != "none":
        kpm = rng.random((B, S)) > 0.3
        if c["kpm"] == "with-empty-row":
            kpm[0] = False  # every query of batch 0 is fully masked
    return q, k, v, scale, bias, kpm


@SETTINGS
@given(c=attention_cases())
def test_attention(backend, dtype, c):
    kb = backend_module(backend)
    q, k, v, scale, bias, kpm = _attention_inputs(c, dtype)
    kw = dict(causal_offset=c["offset"], attn_bias=bias, key_padding_mask=kpm)
    out, lse = kb.attention_forward(q, k, v, scale, **kw)
    want_out, want_lse = ref.attention_forward(q, k, v, scale, **kw)
    assert lse.dtype == want_lse.dtype and lse.shape == want_lse.shape
    masked = np.isneginf(want_lse)
    np.testing.assert_array_equal(np.isneginf(lse), masked)        # documented: fully masked -> -inf
    assert np.all(out[masked] == 0)                                # ... and out = 0
    assert_close(out, want_out, dtype, "attention out")
    fin = ~masked
    assert_close(lse[fin], want_lse[fin], dtype, "attention lse", scale=1e4 if c["huge"] else 10)
    dout = rand(np.random.default_rng(c["seed"] + 1), q.shape, dtype)
    grads = kb.attention_backward(dout, q, k, v, out, lse, scale, **kw)
    want = ref.attention_backward(dout, q, k, v, want_out, want_lse, scale, **kw)
    assert np.all(grads[0][masked] == 0)                           # zero gradient for masked rows
    if c["huge"] and fin.any():
        # p = exp(s - lse) with |lse| ~ 1e4: one float32 ulp of lse (~1e-3) is a ~1e-3 relative
        # error of every probability, whatever the order of summation: allow a few of those ulps
        rel = 4 * float(np.spacing(np.abs(want_lse[fin]).max().astype(np.float32)))
        for i, (g, w) in enumerate(zip(grads, want)):
            np.testing.assert_allclose(g, w, rtol=max(rel, 2e-4), atol=2e-2,
                                       err_msg=f"attention_backward[{i}] (huge scores)")
    else:
        _same(grads, want, dtype, "attention_backward", scale=10)


@pytest.mark.parametrize("T,S,offset", [(200, 200, 0), (130, 197, 67), (150, 150, -70), (96, 200, 50),
                                         (200, 137, 5), (129, 129, 0)])
def test_attention_causal_many_tiles(backend, dtype, T, S, offset):
    """Several 64x64 tiles with the causal diagonal crossing them at every phase (the C kernel skips
    the blocks of a crossed tile that the mask zeroes): forward and backward equal the reference."""
    kb = backend_module(backend)
    rng = np.random.default_rng(T + S)
    q, k, v = rand(rng, (2, 2, T, 64), dtype), rand(rng, (2, 1, S, 64), dtype), rand(rng, (2, 1, S, 64), dtype)
    out, lse = kb.attention_forward(q, k, v, 0.125, causal_offset=offset)
    want_out, want_lse = ref.attention_forward(q, k, v, 0.125, causal_offset=offset)
    fin = np.isfinite(want_lse)
    np.testing.assert_array_equal(np.isfinite(lse), fin)
    assert_close(out, want_out, dtype, "attention out")
    assert_close(lse[fin], want_lse[fin], dtype, "attention lse", scale=10)
    dout = rand(rng, q.shape, dtype)
    _same(kb.attention_backward(dout, q, k, v, out, lse, 0.125, causal_offset=offset),
          ref.attention_backward(dout, q, k, v, want_out, want_lse, 0.125, causal_offset=offset), dtype,
          "attention_backward", scale=10)


@SETTINGS
@given(B=st.integers(1, 3), T=st.sampled_from([1, 5, 64, 70, 130]), Hkv=st.integers(1, 2), group=st.integers(1, 3),
       D=st.sampled_from([1, 3, 8, 16]), seed=st.integers(0, 99))
def test_attention_qkv(backend, dtype, B, T, Hkv, group, D, seed):
    """Causal attention read straight from a fused (B, T, (H + 2 Hkv) D) projection (the C kernel
    reads and writes that layout in place) equals the reference's split-attend-merge."""
    kb = backend_module(backend)
    H = Hkv * group
    rng = np.random.default_rng(seed)
    qkv = rand(rng, (B, T, (H + 2 * Hkv) * D), dtype)
    scale = 1.0 / np.sqrt(D)
    out, lse = kb.attention_qkv_forward(qkv, H, Hkv, scale)
    want_out, want_lse = ref.attention_qkv_forward(qkv, H, Hkv, scale)
    _same((out, lse), (want_out, want_lse), dtype, "attention_qkv_forward", scale=10)
    dout = rand(rng, out.shape, dtype)
    dqkv = kb.attention_qkv_backward(dout, qkv, out, lse, H, Hkv, scale)
    want = ref.attention_qkv_backward(dout, qkv, want_out, want_lse, H, Hkv, scale)
    assert_close(dqkv, want, dtype, "attention_qkv_backward", scale=10)


# ---- rotary position embeddings --------------------------------------------------------------

@st.composite
def rotary_cases(draw):
    heads = draw(st.integers(1, 6))
    return dict(B=draw(st.integers(1, 3)), T=draw(st.sampled_from([1, 5, 64, 70])),
                D=draw(st.sampled_from([2, 8, 32, 64])), heads=heads, rotated=draw(st.integers(0, heads)),
                seed=draw(st.integers(0, 99)))


def _rotary_inputs(c, dtype):
    """x (B, T, heads D) and cos, sin (T, D) drawn independently: the halves of a real table row are
    equal, so random tables catch a kernel that reads cos[t, j] where cos[t, j + h] is meant."""
    rng = np.random.default_rng(c["seed"])
    x = rand(rng, (c["B"], c["T"], c["heads"] * c["D"]), dtype)
    return x, rand(rng, (c["T"], c["D"]), dtype), rand(rng, (c["T"], c["D"]), dtype)


@SETTINGS
@given(c=rotary_cases())
@example(c=dict(B=3, T=70, D=64, heads=6, rotated=4, seed=1))   # 80,640 elements: the parallel split
@example(c=dict(B=1, T=1, D=2, heads=1, rotated=1, seed=2))     # one position, one pair per head
@example(c=dict(B=2, T=5, D=8, heads=3, rotated=0, seed=3))     # nothing rotated: a copy
def test_rotary_qkv(backend, dtype, c):
    """Forward and its transpose equal the reference for every rotated-head count; unrotated heads are
    copied bit for bit."""
    kb = backend_module(backend)
    x, cos, sin = _rotary_inputs(c, dtype)
    R, D = c["rotated"], c["D"]
    out = kb.rotary_qkv_forward(x, cos, sin, R)
    assert out.dtype == x.dtype
    assert_close(out, ref.rotary_qkv_forward(x, cos, sin, R), dtype, "rotary_qkv_forward", scale=10)
    np.testing.assert_array_equal(out[..., R * D:], x[..., R * D:])
    g = rand(np.random.default_rng(c["seed"] + 1), x.shape, dtype)
    dx = kb.rotary_qkv_backward(g, cos, sin, R)
    assert dx.dtype == g.dtype
    assert_close(dx, ref.rotary_qkv_backward(g, cos, sin, R), dtype, "rotary_qkv_backward", scale=10)
    np.testing.assert_array_equal(dx[..., R * D:], g[..., R * D:])


@SETTINGS
@given(c=rotary_cases())
@example(c=dict(B=3, T=70, D=64, heads=6, rotated=6, seed=4))
def test_rotary_qkv_backward_is_the_adjoint(backend, dtype, c):
    """<forward(x), g> == <x, backward(g)> for any tables (the backward is the transpose, not the
    inverse rotation); float64 to rounding, float32 relative to the sum of |terms|."""
    kb = backend_module(backend)
    x, cos, sin = _rotary_inputs(c, dtype)
    g = rand(np.random.default_rng(c["seed"] + 1), x.shape, dtype)
    for mod in (kb, ref):
        y, dx = mod.rotary_qkv_forward(x, cos, sin, c["rotated"]), mod.rotary_qkv_backward(g, cos, sin, c["rotated"])
        lhs, rhs = np.vdot(y.astype(np.float64), g), np.vdot(x.astype(np.float64), dx)
        mag = np.abs(y.astype(np.float64) * g).sum() + np.abs(x.astype(np.float64) * dx).sum()
        rel = 1e-12 if np.dtype(dtype) == np.float64 else 1e-6
        assert abs(lhs - rhs) <= rel * mag, (mod.__name__, lhs, rhs, mag)


# ---- cross-entropy ---------------------------------------------------------------------------

@SETTINGS
@given(N=st.integers(1, 40), V=st.sampled_from([1, 2, 65, 257, 1000]), ls=st.sampled_from([0.0, 0.1, 1.0]),
       ignore=st.sampled_from([-100, 0]), tdtype=st.sampled_from([np.int32, np.int64]),
       mag=st.sampled_from([1.0, 1e4]), seed=st.integers(0, 99))
def test_cross_entropy(backend, dtype, N, V, ls, ignore, tdtype, mag, seed):
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    logits = rand(rng, (N, V), dtype, mag)
    targets = rng.integers(0, V, N).astype(tdtype)
    targets[rng.random(N) < 0.25] = ignore
    got, want = kb.cross_entropy_forward(logits, targets, ignore, ls), ref.cross_entropy_forward(logits, targets, ignore, ls)
    assert np.all(np.isfinite(got[0])) and np.all(np.isfinite(got[1]))
    assert np.all(got[0][targets == ignore] == 0)
    _same(got, want, dtype, "cross_entropy_forward", scale=mag * 10)
    dl = rng.random(N).astype(dtype)
    g = kb.cross_entropy_backward(dl, logits, targets, got[1], ignore, ls)
    assert np.all(g[targets == ignore] == 0)
    assert_close(g, ref.cross_entropy_backward(dl, logits, targets, want[1], ignore, ls), dtype,
                 "cross_entropy_backward", scale=100 if mag > 1 else 1)
    # in place into a preallocated buffer
    buf = np.full_like(logits, np.nan)
    assert kb.cross_entropy_backward(dl, logits, targets, got[1], ignore, ls, out=buf) is buf
    np.testing.assert_array_equal(buf, g)



# ---- embedding -------------------------------------------------------------------------------

@SETTINGS
@given(N=st.integers(1, 300), C=st.sampled_from([1, 3, 17, 33, 129, 1000]), V=st.integers(1, 70),
       idtype=st.sampled_from([np.int32, np.int64]), strided=st.booleans(), seed=st.integers(0, 99))
def test_embedding_backward(backend, dtype, N, C, V, idtype, strided, seed):
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    dout = rand(rng, (N, C), dtype)
    ids = rng.integers(0, V, 2 * N).astype(idtype)
    ids[: N // 2] = ids[N // 2]                     # one id repeated many times (plus N > V often)
    ids = ids[::2] if strided else ids[:N]          # a non-contiguous view, or a contiguous one
    got, want = kb.embedding_backward(dout, ids, V), ref.embedding_backward(dout, ids, V)
    assert got.dtype == want.dtype and got.shape == (V, C)
    assert np.all(got[np.setdiff1d(np.arange(V), ids)] == 0)   # rows never hit are 0
    # each element is summed over its rows in order, as np.add.at does: the same bits (N*C up to
    # 300k reaches the C and numba column-parallel paths)
    np.testing.assert_array_equal(got, want, err_msg="embedding_backward")

# ---- GELU / AdamW ----------------------------------------------------------------------------

@SETTINGS
@given(shape=st.sampled_from([(1,), (7,), (3, 5), (2, 3, 33), (20000,)]),
       approximate=st.sampled_from(["none", "tanh"]), seed=st.integers(0, 99))
def test_gelu(backend, dtype, shape, approximate, seed):
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x = rand(rng, shape, dtype, 4.0)
    assert_close(kb.gelu_forward(x, approximate), ref.gelu_forward(x, approximate), dtype, "gelu_forward")
    dout = rand(rng, shape, dtype)
    assert_close(kb.gelu_backward(dout, x, approximate), ref.gelu_backward(dout, x, approximate), dtype,
                 "gelu_backward")


@SETTINGS
@given(shape=st.sampled_from([(1,), (7,), (3, 5), (2, 3, 33), (20000,)]),
       approximate=st.sampled_from(["none", "tanh"]), with_dout=st.booleans(), seed=st.integers(0, 99))
def test_gelu_forward_backward(backend, dtype, shape, approximate, with_dout, seed):
    """The fused kernel equals the reference and this backend's own gelu_forward / gelu_backward."""
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x = rand(rng, shape, dtype, 4.0)
    dout = rand(rng, shape, dtype) if with_dout else None
    out, dx = kb.gelu_forward_backward(dout, x, approximate)
    assert out.shape == dx.shape == shape and out.dtype == dx.dtype == x.dtype
    want_out, want_dx = ref.gelu_forward_backward(dout, x, approximate)
    assert_close(out, want_out, dtype, "gelu_forward_backward out")
    assert_close(dx, want_dx, dtype, "gelu_forward_backward dx")
    ones = np.ones(shape, dtype)
    np.testing.assert_allclose(out, kb.gelu_forward(x, approximate), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, kb.gelu_backward(ones if dout is None else dout, x, approximate),
                               rtol=1e-6, atol=1e-7)


def test_gelu_exact_tails_relative(backend, dtype):
    """Exact GELU keeps relative accuracy where Phi(x) is tiny (the negative tail, down to where it
    underflows float32) and gelu' its absolute accuracy everywhere: float64 erfc as the oracle."""
    import math
    kb = backend_module(backend)
    x = np.linspace(-12.5, 8.0, 30001).astype(dtype)
    xd = x.astype(np.float64)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in xd])
    out, dx = kb.gelu_forward_backward(None, x, "none")
    np.testing.assert_allclose(out, xd * cdf, rtol=1e-5, atol=0, err_msg="gelu_forward_backward out")
    np.testing.assert_allclose(kb.gelu_forward(x, "none"), xd * cdf, rtol=1e-5, atol=0, err_msg="gelu_forward")
    dens = np.exp(-0.5 * xd * xd) / math.sqrt(2.0 * math.pi)
    np.testing.assert_allclose(dx, cdf + xd * dens, rtol=0, atol=1e-6, err_msg="gelu_forward_backward dx")


@SETTINGS
@given(P=st.integers(1, 5000), G=st.integers(1, 4), steps=st.integers(1, 3), seed=st.integers(0, 99))
def test_adamw(backend, dtype, P, G, steps, seed):
    kb = backend_module(backend)
    if dtype != np.float32:  # AdamW buffers are float32 only: dispatch must never route float64 here
        assert np.dtype(dtype) not in kb.DTYPES["adamw_step"]
        return
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, P + 1, G - 1))
    segments = np.concatenate([[0], cuts, [P]]).astype(np.int64)   # may include empty segments
    lrs, wds = rng.uniform(1e-4, 1e-2, G), rng.choice([0.0, 0.01, 0.1], G)
    ours = [rand(rng, (P,), np.float32), None, np.zeros(P, np.float32), np.zeros(P, np.float32)]
    theirs = [ours[0].copy(), None, ours[2].copy(), ours[3].copy()]
    for step in range(1, steps + 1):
        grad = rand(rng, (P,), np.float32)
        kb.adamw_step(ours[0], grad, ours[2], ours[3], step, lrs, wds, segments, 0.9, 0.95, 1e-8)
        ref.adamw_step(theirs[0], grad, theirs[2], theirs[3], step, lrs, wds, segments, 0.9, 0.95, 1e-8)
    for i in (0, 2, 3):
        np.testing.assert_allclose(ours[i], theirs[i], rtol=1e-5, atol=1e-6)


# ---- sum of squares --------------------------------------------------------------------------

@SETTINGS
@given(n=st.sampled_from([0, 1, 2, 15, 16, 17, 33, 1001, 32767, 32768, 100003]),
       shape2d=st.booleans(), scale=st.sampled_from([1e-3, 1.0, 1e20]), seed=st.integers(0, 99))
@example(n=0, shape2d=False, scale=1.0, seed=0)
@example(n=1, shape2d=False, scale=1e20, seed=1)
@example(n=100003, shape2d=False, scale=1e20, seed=2)   # parallel, float32 squares overflow
@example(n=32768 * 3, shape2d=True, scale=1.0, seed=3)
def test_sum_squares(backend, dtype, n, shape2d, scale, seed):
    """float64 accumulation: equals the reference to float64 rounding, finite even where float32 squares
    overflow (1e20); n spans the 16-lane tails and GB_PAR_MIN_ELEMS (32768, parallel above)."""
    kb = backend_module(backend)
    rng = np.random.default_rng(seed)
    x = rand(rng, (n,), np.float64, scale)
    if shape2d and n % 3 == 0:
        x = x.reshape(3, n // 3)   # any shape: the sum runs over the flat buffer
    # C is float32-only elsewhere but sums float64 too (FAST lists it with float32): check both
    for dt in ([dtype, np.float64] if backend.startswith("c") else [dtype]):
        xd = x.astype(dt)
        got, want = kb.sum_squares(xd), ref.sum_squares(xd)
        assert isinstance(got, float) and np.isfinite(got), (dt, got)
        assert got == pytest.approx(want, rel=1e-12, abs=0.0), (dt, got, want)
        assert kb.sum_squares(xd) == got   # deterministic at a fixed thread count
