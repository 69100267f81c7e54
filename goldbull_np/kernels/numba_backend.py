"""Numba backend: every kernel, float32 and float64, JIT-compiled on first call (cache=True).

This module imports numba at import time; kernels/__init__.py imports it only when the numba backend
is first needed, so `import goldbull_np` neither imports numba nor compiles anything.
Python wrappers check arguments, allocate outputs and cast scalars to the array dtype (so float32
kernels stay float32); the @njit functions below do the loops. `prange` over independent rows.
Debug a kernel as plain Python with NUMBA_DISABLE_JIT=1.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from . import reference as _ref
from .reference import _dx_into, _into
from ._checks import (IGNORE_INDEX, attention_bias_4d, check_attention, check_embedding_backward,
                      check_rotary_qkv, check_segments, check_shapes, check_targets)
from .reference import KERNEL_NAMES

# reassoc/contract let LLVM vectorise reductions; no nnan/ninf: -inf masks must keep working.
_FM = {"reassoc", "contract", "nsz", "arcp"}
_jit = dict(cache=True, fastmath=_FM)
_pjit = dict(cache=True, fastmath=_FM, parallel=True)


def load():
    return numba.__version__


def _chunks(n):
    """Number of row chunks for per-thread partial sums."""
    return max(1, min(numba.get_num_threads(), n))


# ----------------------------------------------------------------------------------------------
# matmul / linear: not registered (see UNREGISTERED at the end)

@njit(**_pjit)
def _mm_nn(a, b, out, bias, has_bias):
    # out (M,N) = a (M,K) @ b (K,N); a may be a transposed view
    M, K = a.shape
    N = b.shape[1]
    for i in prange(M):
        for j in range(N):
            out[i, j] = bias[j] if has_bias else 0.0
        for p in range(K):
            aip = a[i, p]
            for j in range(N):
                out[i, j] += aip * b[p, j]


@njit(**_pjit)
def _mm_nt(a, bt, out, bias, has_bias):
    # out (M,N) = a (M,K) @ bt (N,K)^T: inner products of contiguous rows
    M, K = a.shape
    N = bt.shape[0]
    for i in prange(M):
        for j in range(N):
            s = bias[j] if has_bias else 0.0
            for p in range(K):
                s += a[i, p] * bt[j, p]
            out[i, j] = s


def _gemm(a, b, trans_a, trans_b, out, bias=None):
    A = a.T if trans_a else a
    has_bias = bias is not None
    bb = bias if has_bias else np.zeros(1, out.dtype)
    if trans_b:
        _mm_nt(np.ascontiguousarray(A), b, out, bb, has_bias)
    else:
        _mm_nn(A, b, out, bb, has_bias)


def matmul(a, b, trans_a=False, trans_b=False, out=None):
    A = a.swapaxes(-1, -2) if trans_a else a
    Bm = b.swapaxes(-1, -2) if trans_b else b
    shape = np.broadcast_shapes(A.shape[:-2], Bm.shape[:-2]) + (A.shape[-2], Bm.shape[-1])
    if A.shape[-1] != Bm.shape[-2] or a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise ValueError(f"matmul shapes do not match: {a.shape}, {b.shape}, trans={trans_a, trans_b}")
    if out is None:
        out = np.empty(shape, np.result_type(a, b))
    elif out.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {out.shape}")
    if len(shape) == 2:
        _gemm(a, b, trans_a, trans_b, out)
    else:
        for i in range(shape[0]):
            _gemm(a[i] if a.ndim == 3 else a, b[i] if b.ndim == 3 else b, trans_a, trans_b, out[i])
    return out


def linear_forward(x, weight, bias=None, out=None, residual=None):
    check_shapes(weight=(weight, (weight.shape[0], x.shape[1])), bias=(bias, (weight.shape[0],)),
                 out=(out, (x.shape[0], weight.shape[0])), residual=(residual, (x.shape[0], weight.shape[0])))
    if out is None:
        out = np.empty((x.shape[0], weight.shape[0]), x.dtype)
    _mm_nt(x, weight, out, bias if bias is not None else np.zeros(1, x.dtype), bias is not None)
    if residual is not None:
        np.add(residual, out, out=out)
    return out


@njit(**_jit)
def _colsum(g, out):
    out[:] = 0.0
    for r in range(g.shape[0]):
        for c in range(g.shape[1]):
            out[c] += g[r, c]


def linear_backward(dout, x, weight, need_dx=True, need_dweight=True, need_dbias=True, dweight_out=None,
                    dbias_out=None, accumulate=False):
    """As the reference's: dweight_out / dbias_out are written into (accumulate: added to) and returned."""
    check_shapes(weight=(weight, (weight.shape[0], x.shape[1])), dout=(dout, (x.shape[0], weight.shape[0])),
                 dweight_out=(dweight_out, weight.shape), dbias_out=(dbias_out, (weight.shape[0],)))
    dx = dw = db = None
    if need_dx:
        dx = np.empty(x.shape, x.dtype)
        _gemm(dout, weight, False, False, dx)
    if need_dweight:
        dw = np.empty(weight.shape, x.dtype)
        _gemm(dout, x, True, False, dw)
        dw = _into(dweight_out, dw, accumulate)
    if need_dbias:
        db = np.empty(weight.shape[0], x.dtype)
        _colsum(dout, db)
        db = _into(dbias_out, db, accumulate)
    return dx, dw, db


# ----------------------------------------------------------------------------------------------
# normalisation

@njit(**_pjit)
def _ln_fwd(x, w, b, has_w, has_b, eps, out, mean, rstd, rms):
    N, C = x.shape
    for r in prange(N):
        m = 0.0
        if not rms:
            for i in range(C):
                m += x[r, i]
            m /= C
        v = 0.0
        for i in range(C):
            d = x[r, i] - m
            v += d * d
        rs = 1.0 / math.sqrt(v / C + eps)
        for i in range(C):
            o = (x[r, i] - m) * rs
            if has_w:
                o *= w[i]
            if has_b:
                o += b[i]
            out[r, i] = o
        mean[r] = m
        rstd[r] = rs


@njit(**_pjit)
def _ln_bwd(dout, x, w, has_w, mean, rstd, rms, dx, pw, pb, nchunks):
    # pw/pb (nchunks, C): per-chunk partial sums of dweight/dbias, reduced by the caller
    N, C = x.shape
    for ch in prange(nchunks):
        r0 = ch * N // nchunks
        r1 = (ch + 1) * N // nchunks
        for r in range(r0, r1):
            m = 0.0 if rms else mean[r]
            rs = rstd[r]
            s1 = 0.0
            s2 = 0.0
            for i in range(C):
                dxh = dout[r, i] * w[i] if has_w else dout[r, i]
                s1 += dxh
                s2 += dxh * (x[r, i] - m) * rs
            c1 = 0.0 if rms else s1 / C
            c2 = s2 / C
            for i in range(C):
                xh = (x[r, i] - m) * rs
                dxh = dout[r, i] * w[i] if has_w else dout[r, i]
                dx[r, i] = (dxh - c1 - xh * c2) * rs
                pw[ch, i] += dout[r, i] * xh
                pb[ch, i] += dout[r, i]


def _opt_vec(a, C, dtype):
    return (a, True) if a is not None else (np.zeros(C, dtype), False)


def _stat(dtype):
    return np.dtype(np.float32) if dtype == np.float32 else dtype


def layer_norm_forward(x, weight, bias, eps):
    N, C = x.shape
    check_shapes(weight=(weight, (C,)), bias=(bias, (C,)))
    w, hw = _opt_vec(weight, C, x.dtype)
    b, hb = _opt_vec(bias, C, x.dtype)
    out = np.empty_like(x)
    mean, rstd = np.empty(N, _stat(x.dtype)), np.empty(N, _stat(x.dtype))
    _ln_fwd(x, w, b, hw, hb, x.dtype.type(eps), out, mean, rstd, False)
    return out, mean, rstd


def layer_norm_backward(dout, x, weight, mean, rstd, has_bias, dx_out=None, accumulate=False):
    N, C = x.shape
    check_shapes(dout=(dout, (N, C)), weight=(weight, (C,)), mean=(mean, (N,)), rstd=(rstd, (N,)),
                 dx_out=(dx_out, (N, C)))
    w, hw = _opt_vec(weight, C, x.dtype)
    nch = _chunks(N)
    dx = np.empty_like(x)
    pw, pb = np.zeros((nch, C), x.dtype), np.zeros((nch, C), x.dtype)
    _ln_bwd(dout, x, w, hw, mean.astype(x.dtype, copy=False), rstd.astype(x.dtype, copy=False), False,
            dx, pw, pb, nch)
    return _dx_into(dx_out, dx, accumulate), (pw.sum(axis=0) if hw else None), (pb.sum(axis=0) if has_bias else None)


def rms_norm_forward(x, weight, eps):
    N, C = x.shape
    check_shapes(weight=(weight, (C,)))
    w, hw = _opt_vec(weight, C, x.dtype)
    out = np.empty_like(x)
    mean, rstd = np.empty(N, _stat(x.dtype)), np.empty(N, _stat(x.dtype))
    _ln_fwd(x, w, w, hw, False, x.dtype.type(eps), out, mean, rstd, True)
    return out, rstd


def rms_norm_backward(dout, x, weight, rstd, dx_out=None, accumulate=False):
    N, C = x.shape
    check_shapes(dout=(dout, (N, C)), weight=(weight, (C,)), rstd=(rstd, (N,)), dx_out=(dx_out, (N, C)))
    w, hw = _opt_vec(weight, C, x.dtype)
    nch = _chunks(N)
    dx = np.empty_like(x)
    pw, pb = np.zeros((nch, C), x.dtype), np.zeros((nch, C), x.dtype)
    _ln_bwd(dout, x, w, hw, rstd.astype(x.dtype, copy=False), rstd.astype(x.dtype, copy=False), True,
            dx, pw, pb, nch)
    return _dx_into(dx_out, dx, accumulate), (pw.sum(axis=0) if hw else None)


# ----------------------------------------------------------------------------------------------
# attention: one query row at a time with an O(S) score row per thread (no (T,S) matrix)

@njit(**_jit)
def _scores_row(q, k, b, h, hk, t, scale, causal, off, bias, has_bias, kpm, has_kpm, srow):
    """srow (S,) <- scaled + masked scores of query (b,h,t); returns the row max (-inf if none)."""
    S, D = k.shape[2], k.shape[3]
    mx = -np.inf
    for s in range(S):
        allowed = (not causal or s <= t + off) and (not has_kpm or kpm[b, s])
        if not allowed:
            srow[s] = -np.inf
            continue
        acc = 0.0
        for d in range(D):
            acc += q[b, h, t, d] * k[b, hk, s, d]
        val = acc * scale
        if has_bias:
            val += bias[b, h, t, s]
        srow[s] = val
        if val > mx:
            mx = val
    return mx


@njit(**_pjit)
def _attn_fwd(q, k, v, scale, causal, off, bias, has_bias, kpm, has_kpm, out, lse):
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    g = H // Hkv
    for item in prange(B * H):
        b, h = item // H, item % H
        hk = h // g
        srow = np.empty(S, q.dtype)
        for t in range(T):
            mx = _scores_row(q, k, b, h, hk, t, scale, causal, off, bias, has_bias, kpm, has_kpm, srow)
            for d in range(D):
                out[b, h, t, d] = 0.0
            if mx == -np.inf:
                lse[b, h, t] = -np.inf
                continue
            z = 0.0
            for s in range(S):
                if srow[s] != -np.inf:
                    p = math.exp(srow[s] - mx)
                    z += p
                    for d in range(D):
                        out[b, h, t, d] += p * v[b, hk, s, d]
            inv = 1.0 / z
            for d in range(D):
                out[b, h, t, d] *= inv
            lse[b, h, t] = mx + math.log(z)


@njit(**_pjit)
def _attn_bwd(dout, q, k, v, out, lse, scale, causal, off, bias, has_bias, kpm, has_kpm, dq, dk, dv):
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    g = H // Hkv
    for item in prange(B * Hkv):  # owns dk/dv of kv head (b,hk) and dq of its query heads
        b, hk = item // Hkv, item % Hkv
        srow = np.empty(S, q.dtype)
        dk[b, hk] = 0.0
        dv[b, hk] = 0.0
        for h in range(hk * g, (hk + 1) * g):
            for t in range(T):
                for d in range(D):
                    dq[b, h, t, d] = 0.0
                l = lse[b, h, t]
                if l == -np.inf:
                    continue  # fully masked row: zero gradients
                _scores_row(q, k, b, h, hk, t, scale, causal, off, bias, has_bias, kpm, has_kpm, srow)
                di = 0.0
                for d in range(D):
                    di += dout[b, h, t, d] * out[b, h, t, d]
                for s in range(S):
                    if srow[s] == -np.inf:
                        continue
                    p = math.exp(srow[s] - l)
                    dp = 0.0
                    for d in range(D):
                        dp += dout[b, h, t, d] * v[b, hk, s, d]
                    ds = p * (dp - di) * scale
                    for d in range(D):
                        dq[b, h, t, d] += ds * k[b, hk, s, d]
                        dk[b, hk, s, d] += ds * q[b, h, t, d]
                        dv[b, hk, s, d] += p * dout[b, h, t, d]


def _attn_prep(q, k, v, causal_offset, attn_bias, key_padding_mask):
    check_attention(q, k, v, causal_offset, attn_bias, key_padding_mask)
    B, H, T, _ = q.shape
    S = k.shape[2]
    if attn_bias is not None:
        bias = np.broadcast_to(attention_bias_4d(attn_bias.astype(q.dtype, copy=False), B, H, T, S), (B, H, T, S))
    else:
        bias = np.zeros((1, 1, 1, 1), q.dtype)
    kpm = key_padding_mask if key_padding_mask is not None else np.ones((1, 1), np.bool_)
    causal = causal_offset is not None
    return (causal, int(causal_offset) if causal else 0, bias, attn_bias is not None, kpm,
            key_padding_mask is not None)


def attention_forward(q, k, v, scale, causal_offset=None, attn_bias=None, key_padding_mask=None):
    causal, off, bias, hb, kpm, hk = _attn_prep(q, k, v, causal_offset, attn_bias, key_padding_mask)
    out = np.empty_like(q)
    lse = np.empty(q.shape[:3], _stat(q.dtype))
    _attn_fwd(q, k, v, q.dtype.type(scale), causal, off, bias, hb, kpm, hk, out, lse)
    return out, lse


def attention_backward(dout, q, k, v, out, lse, scale, causal_offset=None, attn_bias=None,
                       key_padding_mask=None):
    causal, off, bias, hb, kpm, hk = _attn_prep(q, k, v, causal_offset, attn_bias, key_padding_mask)
    check_shapes(dout=(dout, q.shape), out=(out, q.shape), lse=(lse, q.shape[:3]))
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    _attn_bwd(dout, q, k, v, out, lse, q.dtype.type(scale), causal, off, bias, hb, kpm, hk, dq, dk, dv)
    return dq, dk, dv


# ----------------------------------------------------------------------------------------------
# rotary position embeddings

@njit(**_pjit)
def _rope_qkv(x, cos, sin, R, transpose, out):
    # x, out (N, heads, 2, h) with row r at position r % T; cos, sin (T, 2, h): the halves are an axis,
    # so every index is a loop counter from 0, which lets LLVM drop numba's negative-index wraparound
    # (x[r, o + j] on (N, W) ran 2-4x slower). Heads [0, R) rotated (the transpose when
    # `transpose`: the other half of sin, and the opposite sign), the rest copied.
    N, heads, _, h = x.shape
    T = cos.shape[0]
    for r in prange(N):
        t = r % T
        for hd in range(R):
            if transpose:
                for j in range(h):
                    a, b = x[r, hd, 0, j], x[r, hd, 1, j]
                    out[r, hd, 0, j] = a * cos[t, 0, j] + b * sin[t, 1, j]
                    out[r, hd, 1, j] = b * cos[t, 1, j] - a * sin[t, 0, j]
            else:
                for j in range(h):
                    a, b = x[r, hd, 0, j], x[r, hd, 1, j]
                    out[r, hd, 0, j] = a * cos[t, 0, j] - b * sin[t, 0, j]
                    out[r, hd, 1, j] = b * cos[t, 1, j] + a * sin[t, 1, j]
        # a loop, not a slice assignment: with numba 0.68 a row-slice copy after the head loop was
        # silently skipped inside this prange (the v heads came out unwritten)
        for hd in range(R, heads):
            for k in range(2):
                for j in range(h):
                    out[r, hd, k, j] = x[r, hd, k, j]


def _rotary(name, x, cos, sin, rotated_heads, transpose):
    B, T, W, D = check_rotary_qkv(name, x, cos, sin, rotated_heads)  # the loops index unchecked
    xc = np.ascontiguousarray(x)
    out = np.empty_like(xc)  # (B,T,W)
    halves = (B * T, W // D, 2, D // 2)

    def tab(a):  # (T, D) -> (T, 2, h) in x's dtype, so float32 products stay float32
        return np.ascontiguousarray(a, dtype=xc.dtype).reshape(T, 2, D // 2)
    _rope_qkv(xc.reshape(halves), tab(cos), tab(sin), int(rotated_heads), transpose, out.reshape(halves))
    return out


def rotary_qkv_forward(qkv, cos, sin, rotated_heads):
    """qkv (B,T,W), cos/sin (T,D) -> out (B,T,W): heads [0, rotated_heads) rotated, the rest copied."""
    return _rotary("qkv", qkv, cos, sin, rotated_heads, False)


def rotary_qkv_backward(g, cos, sin, rotated_heads):
    """g (B,T,W) -> dx (B,T,W): the transpose rotation on heads [0, rotated_heads), g elsewhere."""
    return _rotary("g", g, cos, sin, rotated_heads, True)


# ----------------------------------------------------------------------------------------------
# cross-entropy: not registered (see UNREGISTERED at the end)

@njit(**_pjit)
def _ce_fwd(x, t, ignore, ls, losses, lse):
    N, V = x.shape
    for r in prange(N):
        mx = x[r, 0]  # the array's dtype, so float32 logits use expf, not exp on float64
        for i in range(1, V):
            if x[r, i] > mx:
                mx = x[r, i]
        z = 0.0
        tot = 0.0
        for i in range(V):
            z += math.exp(x[r, i] - mx)
            tot += x[r, i]
        l = mx + math.log(z)
        lse[r] = l
        if t[r] == ignore:
            losses[r] = 0.0
        else:
            nll = l - x[r, t[r]]
            losses[r] = (1.0 - ls) * nll + ls * (l - tot / V) if ls > 0 else nll


@njit(**_pjit)
def _ce_bwd(dl, x, t, lse, ignore, ls, out):
    N, V = x.shape
    smooth = ls / V
    for r in prange(N):
        if t[r] == ignore:
            for i in range(V):
                out[r, i] = 0.0
            continue
        d = dl[r]
        l = lse[r]
        for i in range(V):
            out[r, i] = d * (math.exp(x[r, i] - l) - smooth)  # all of x's dtype
        out[r, t[r]] -= d * (1.0 - ls)


def cross_entropy_forward(logits, targets, ignore_index=IGNORE_INDEX, label_smoothing=0.0):
    N, V = logits.shape
    check_targets(targets, N, V, ignore_index)
    dt = logits.dtype
    losses, lse = np.empty(N, dt), np.empty(N, _stat(dt))
    _ce_fwd(logits, targets.astype(np.int64, copy=False), np.int64(ignore_index), dt.type(label_smoothing),
            losses, lse)
    return losses, lse


def cross_entropy_backward(dlosses, logits, targets, lse, ignore_index=IGNORE_INDEX, label_smoothing=0.0, out=None):
    N, V = logits.shape
    check_targets(targets, N, V, ignore_index)
    check_shapes(dlosses=(dlosses, (N,)), lse=(lse, (N,)), out=(out, (N, V)))
    dt = logits.dtype
    if out is None:
        out = np.empty_like(logits)
    _ce_bwd(dlosses.astype(dt, copy=False), logits, targets.astype(np.int64, copy=False),
            lse.astype(dt, copy=False), np.int64(ignore_index), dt.type(label_smoothing), out)
    return out


# ----------------------------------------------------------------------------------------------
# GELU

_K = math.sqrt(2.0 / math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(**_pjit)
def _gelu_fwd(x, out, tanh_approx):
    for i in prange(x.size):
        xi = x[i]
        if tanh_approx:
            out[i] = 0.5 * xi * (1.0 + math.tanh(_K * (xi + 0.044715 * xi * xi * xi)))
        else:
            out[i] = 0.5 * xi * math.erfc(-xi * _INV_SQRT2)


@njit(**_pjit)
def _gelu_bwd(dout, x, dx, tanh_approx):
    for i in prange(x.size):
        xi = x[i]
        if tanh_approx:
            th = math.tanh(_K * (xi + 0.044715 * xi * xi * xi))
            g = 0.5 * (1.0 + th) + 0.5 * xi * (1.0 - th * th) * _K * (1.0 + 3 * 0.044715 * xi * xi)
        else:
            g = 0.5 * math.erfc(-xi * _INV_SQRT2) + xi * _INV_SQRT_2PI * math.exp(-0.5 * xi * xi)
        dx[i] = dout[i] * g


@njit(**_pjit)
def _gelu_fwd_bwd(dout, x, out, dx, has_dout, tanh_approx):
    for i in prange(x.size):
        xi = x[i]
        if tanh_approx:
            th = math.tanh(_K * (xi + 0.044715 * xi * xi * xi))
            out[i] = 0.5 * xi * (1.0 + th)
            g = 0.5 * (1.0 + th) + 0.5 * xi * (1.0 - th * th) * _K * (1.0 + 3 * 0.044715 * xi * xi)
        else:
            cdf = 0.5 * math.erfc(-xi * _INV_SQRT2)
            out[i] = xi * cdf
            g = cdf + xi * _INV_SQRT_2PI * math.exp(-0.5 * xi * xi)
        dx[i] = dout[i] * g if has_dout else g


def _tanh_flag(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate == "tanh"


def gelu_forward(x, approximate="none"):
    flag = _tanh_flag(approximate)
    xc = np.ascontiguousarray(x)
    out = np.empty_like(xc)
    _gelu_fwd(xc.reshape(-1), out.reshape(-1), flag)
    return out


def gelu_backward(dout, x, approximate="none"):
    flag = _tanh_flag(approximate)
    check_shapes(dout=(dout, x.shape))
    xc, dc = np.ascontiguousarray(x), np.ascontiguousarray(dout, dtype=x.dtype)
    dx = np.empty_like(xc)
    _gelu_bwd(dc.reshape(-1), xc.reshape(-1), dx.reshape(-1), flag)
    return dx


def gelu_forward_backward(dout, x, approximate="none"):
    """(gelu(x), dout * gelu'(x)) in one pass; dout None: gelu'(x)."""
    flag = _tanh_flag(approximate)
    xc = np.ascontiguousarray(x)
    if dout is None:
        dc = xc  # not read
    else:
        check_shapes(dout=(dout, x.shape))
        dc = np.ascontiguousarray(dout, dtype=x.dtype)
    out, dx = np.empty_like(xc), np.empty_like(xc)
    _gelu_fwd_bwd(dc.reshape(-1), xc.reshape(-1), out.reshape(-1), dx.reshape(-1), dout is not None, flag)
    return out, dx


# ----------------------------------------------------------------------------------------------
# AdamW

@njit(**_pjit)
def _adamw(p, g, m, v, lo, hi, decay, b1, b2, step_size, bc2_sqrt, eps, nchunks):
    omb1 = np.float32(1.0) - b1
    omb2 = np.float32(1.0) - b2
    n = hi - lo
    for ch in prange(nchunks):
        for i in range(lo + ch * n // nchunks, lo + (ch + 1) * n // nchunks):
            gi = g[i]
            mi = m[i] + omb1 * (gi - m[i])
            vi = v[i] * b2 + omb2 * gi * gi
            p[i] = p[i] * decay - step_size * (mi / (math.sqrt(vi) / bc2_sqrt + eps))
            m[i] = mi
            v[i] = vi


def adamw_step(param, grad, exp_avg, exp_avg_sq, step, lrs, weight_decays, segments,
               beta1=0.9, beta2=0.999, eps=1e-8):
    P = param.shape[0]
    check_shapes(grad=(grad, (P,)), exp_avg=(exp_avg, (P,)), exp_avg_sq=(exp_avg_sq, (P,)))
    check_segments(segments, lrs, weight_decays, P)
    f = np.float32
    bc1 = 1.0 - beta1 ** step
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    nch = numba.get_num_threads()
    for g in range(len(lrs)):
        lo, hi = int(segments[g]), int(segments[g + 1])
        lr, wd = float(lrs[g]), float(weight_decays[g])
        _adamw(param, grad, exp_avg, exp_avg_sq, lo, hi, f(1.0 - lr * wd), f(beta1), f(beta2), f(lr / bc1),
               f(bc2_sqrt), f(eps), nch)


# ----------------------------------------------------------------------------------------------
# embedding

@njit(**_pjit)
def _emb_bwd(dout, ids, dw, nchunks):
    # dw (V,C) zero-filled. Rows with repeated ids would race, so the chunks split the columns and
    # each walks every row in order: the same sums at any thread count.
    N, C = dout.shape
    for ch in prange(nchunks):
        c0 = ch * C // nchunks
        c1 = (ch + 1) * C // nchunks
        for n in range(N):
            r = ids[n]
            for c in range(c0, c1):
                dw[r, c] += dout[n, c]


def embedding_backward(dout, ids, num_embeddings):
    N, C, V = check_embedding_backward(dout, ids, num_embeddings)  # also every id in [0, V)
    dw = np.zeros((V, C), dout.dtype)
    nch = _chunks(C // 64) if N * C >= 262144 else 1  # >= 64 columns per chunk
    _emb_bwd(dout, ids.astype(np.int64, copy=False), dw, nch)
    return dw


# ----------------------------------------------------------------------------------------------
# sum of squares

_PAR_MIN_ELEMS = 32768  # as the C kernels' GB_PAR_MIN_ELEMS: below it one serial loop


@njit(**_jit)
def _sum_sq_flat(y):
    # sum of squares of a 1-D contiguous y in float64. Index from 0 over y.size: with range(lo, hi)
    # numba's negative-index wraparound made LLVM emit gathers (several times slower; figures in
    # benchmarks/results/kernel_choices.md); reassoc lets it keep several vector accumulators.
    s = 0.0
    for i in range(y.size):
        v = np.float64(y[i])
        s += v * v
    return s


@njit(**_pjit)
def _sum_sq(x, partial):
    # partial (nchunks,): chunk ch of x sums its squares into partial[ch]
    n = x.size
    nchunks = partial.size
    for ch in prange(nchunks):
        partial[ch] = _sum_sq_flat(x[ch * n // nchunks:(ch + 1) * n // nchunks])


def sum_squares(x):
    """sum(x**2) accumulated in float64, as a Python float; x any shape, float32 or float64.

    Chunk partials are added in chunk order: deterministic for a given thread count."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be a float32 or float64 ndarray, got {getattr(x, 'dtype', type(x).__name__)}")
    flat = np.ascontiguousarray(x).reshape(-1)
    if flat.size < _PAR_MIN_ELEMS:
        return float(_sum_sq_flat(flat))  # no parallel region for a small array
    partial = np.zeros(numba.get_num_threads())
    _sum_sq(flat, partial)
    return float(sum(partial.tolist()))  # in chunk order, like the C kernel's thread partials


def attention_qkv_forward(qkv, n_head, n_kv_head, scale):
    return _ref.qkv_attention_forward(attention_forward, qkv, n_head, n_kv_head, scale)


def attention_qkv_backward(dout, qkv, out, lse, n_head, n_kv_head, scale):
    return _ref.qkv_attention_backward(attention_backward, dout, qkv, out, lse, n_head, n_kv_head, scale)


# Kernels defined here that no selection dispatches to: NumPy measured faster for them (OpenBLAS for
# matmul/linear, its whole-array passes for cross-entropy; benchmarks/results/kernel_choices.md), so
# `auto` lists numpy before numba and they are not registered (GOLDBULL_BACKEND=numba runs NumPy's).
# They stay as the numba contenders benchmarks/bench_kernels.py measures to decide the AUTO_TABLE,
# tested against the reference like the rest.
UNREGISTERED = ("matmul", "linear_forward", "linear_backward", "cross_entropy_forward", "cross_entropy_backward")
__all__ = list(KERNEL_NAMES)
# The backend table read by kernels/__init__.py.
# The convolution, pooling, batch-norm and int8 kernels have no numba version (the C ones and NumPy's cover them).
NOT_DEFINED = _ref.CONV_KERNEL_NAMES + _ref.QUANT_KERNEL_NAMES
KERNELS = {name: globals()[name] for name in KERNEL_NAMES if name not in UNREGISTERED + NOT_DEFINED}
DTYPES = {name: (np.dtype(np.float32), np.dtype(np.float64)) for name in KERNELS}
DTYPES["adamw_step"] = (np.dtype(np.float32),)
