"""NumPy reference for every kernel: the source of truth in tests and the fallback that always works.

Legend: B = batch, T = time (queries), S = keys, C = channels, V = vocab, H = heads, D = head dim.
Every kernel works for float32 and float64. Statistics saved for backward (mean, rstd, lse) are float32
for float32 inputs and have the input's dtype otherwise (so float64 gradchecks stay exact).
Argument validation shared by every backend lives in `_checks.py`.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import (IGNORE_INDEX, check_attention, check_embedding_backward, check_qkv, check_rotary_qkv,
                      check_shapes, check_targets)
from .reference_conv import (CONV_KERNEL_NAMES, avg_pool2d_backward, avg_pool2d_forward,  # noqa: F401
                             batch_norm_backward, batch_norm_forward, conv2d_backward, conv2d_forward,
                             max_pool2d_backward, max_pool2d_forward)
from .reference_quant import QUANT_KERNEL_NAMES, int8_linear_forward  # noqa: F401

# THE list of kernels: the reference defines every one; kernels/__init__.py (KERNEL_NAMES, AUTO_TABLE)
# and the fast backends (their KERNELS tables, subsets of it) read it from here.
KERNEL_NAMES = (
    "matmul", "linear_forward", "linear_backward",
    "layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward",
    "attention_forward", "attention_backward", "attention_qkv_forward", "attention_qkv_backward",
    "cross_entropy_forward", "cross_entropy_backward",
    "gelu_forward", "gelu_backward", "gelu_forward_backward", "adamw_step", "embedding_backward", "sum_squares",
    "rotary_qkv_forward", "rotary_qkv_backward",
) + CONV_KERNEL_NAMES + QUANT_KERNEL_NAMES
__all__ = list(KERNEL_NAMES)


def _stat_dtype(dtype):
    return np.float32 if dtype == np.float32 else dtype


# ----------------------------------------------------------------------------------------------
# matmul / linear

def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """out = op(a) @ op(b); op transposes the last two axes when trans_*. 2-D or 3-D batched."""
    A = a.swapaxes(-1, -2) if trans_a else a
    Bm = b.swapaxes(-1, -2) if trans_b else b
    return np.matmul(A, Bm, out=out)


def linear_forward(x, weight, bias=None, out=None, residual=None):
    """x (N,C), weight (OC,C), bias (OC,) or None -> out (N,OC) = x @ weight.T + bias [+ residual (N,OC)]."""
    if residual is not None and residual.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(f"residual must have shape {(x.shape[0], weight.shape[0])}, got {residual.shape}")
    out = np.matmul(x, weight.T, out=out)
    if bias is not None:
        out += bias
    if residual is not None:
        np.add(residual, out, out=out)
    return out


def linear_backward(dout, x, weight, need_dx=True, need_dweight=True, need_dbias=True, dweight_out=None,
                    dbias_out=None, accumulate=False):
    """dout (N,OC) -> dx (N,C) = dout @ weight, dweight (OC,C) = dout.T @ x, dbias (OC,) = sum(dout).

    dweight_out / dbias_out: arrays the gradients are written into (``accumulate=True``: added to) and
    returned in place of fresh ones."""
    dx = dout @ weight if need_dx else None
    dweight = _into(dweight_out, dout.T @ x, accumulate) if need_dweight else None
    dbias = _into(dbias_out, dout.sum(axis=0), accumulate) if need_dbias else None
    return dx, dweight, dbias


def _into(out, value, accumulate):
    """``value`` written into (or, accumulating, added to) ``out``; ``value`` itself when there is no ``out``."""
    if out is None:
        return value
    if out.shape != value.shape:
        raise ValueError(f"an output array has shape {out.shape}, the gradient {value.shape}")
    if accumulate:
        out += value
    else:
        out[...] = value
    return out


# ----------------------------------------------------------------------------------------------
# normalisation

def layer_norm_forward(x, weight, bias, eps):
    """x (N,C) -> out (N,C), mean (N,), rstd (N,)."""
    mean = x.mean(axis=1)
    xc = x - mean[:, None]
    var = (xc * xc).mean(axis=1)
    rstd = 1.0 / np.sqrt(var + eps)
    out = xc * rstd[:, None]
    if weight is not None:
        out *= weight
    if bias is not None:
        out += bias
    sd = _stat_dtype(x.dtype)
    return out.astype(x.dtype, copy=False), mean.astype(sd), rstd.astype(sd)


def layer_norm_backward(dout, x, weight, mean, rstd, has_bias, dx_out=None, accumulate=False):
    """-> dx (N,C), dweight (C,) or None (weight is None), dbias (C,) or None (not has_bias).
    dx_out: dx written into it (accumulate: added to it) and returned."""
    dx, dweight, dbias = _layer_norm_backward(dout, x, weight, mean, rstd, has_bias)
    return _dx_into(dx_out, dx, accumulate), dweight, dbias


def _dx_into(dx_out, dx, accumulate):
    if accumulate and dx_out is None:
        raise ValueError("accumulate=True needs dx_out (the array to add the gradient into)")
    return _into(dx_out, dx, accumulate)


def _layer_norm_backward(dout, x, weight, mean, rstd, has_bias):
    xhat = (x - mean[:, None]) * rstd[:, None]
    dxhat = dout * weight if weight is not None else dout
    c1 = dxhat.mean(axis=1, keepdims=True)
    c2 = (dxhat * xhat).mean(axis=1, keepdims=True)
    dx = (dxhat - c1 - xhat * c2) * rstd[:, None]
    dweight = (dout * xhat).sum(axis=0) if weight is not None else None
    dbias = dout.sum(axis=0) if has_bias else None
    dt = x.dtype
    return (dx.astype(dt, copy=False), None if dweight is None else dweight.astype(dt, copy=False),
            None if dbias is None else dbias.astype(dt, copy=False))


def rms_norm_forward(x, weight, eps):
    """x (N,C) -> out (N,C) = x * rstd * weight, rstd (N,) = 1/sqrt(mean(x^2) + eps)."""
    rstd = 1.0 / np.sqrt((x * x).mean(axis=1) + eps)
    out = x * rstd[:, None]
    if weight is not None:
        out *= weight
    return out.astype(x.dtype, copy=False), rstd.astype(_stat_dtype(x.dtype))


def rms_norm_backward(dout, x, weight, rstd, dx_out=None, accumulate=False):
    """-> dx (N,C), dweight (C,) or None; dx_out / accumulate as for layer_norm_backward."""
    xhat = x * rstd[:, None]
    dxhat = dout * weight if weight is not None else dout
    c2 = (dxhat * xhat).mean(axis=1, keepdims=True)
    dx = (dxhat - xhat * c2) * rstd[:, None]
    dweight = (dout * xhat).sum(axis=0).astype(x.dtype, copy=False) if weight is not None else None
    return _dx_into(dx_out, dx.astype(x.dtype, copy=False), accumulate), dweight


# ----------------------------------------------------------------------------------------------
# attention (materialises the (T,S) scores per head: this is the reference, not the fast path)

def _allowed(T, S, causal_offset, key_padding_mask, B):
    """Bool (B|1, 1, T, S) mask of the key positions each query may attend, or None."""
    allowed = None
    if causal_offset is not None:
        t = np.arange(T)[:, None]
        s = np.arange(S)[None, :]
        allowed = (s <= t + int(causal_offset))[None, None]
    if key_padding_mask is not None:
        kpm = np.asarray(key_padding_mask, dtype=bool)[:, None, None, :]
        allowed = kpm if allowed is None else (allowed & kpm)
    return allowed


def _scores_probs(q, k, scale, causal_offset, attn_bias, key_padding_mask):
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    kk = np.repeat(k, H // Hkv, axis=1) if Hkv != H else k  # (B,H,S,D)
    s = np.matmul(q, kk.swapaxes(-1, -2)) * q.dtype.type(scale)  # (B,H,T,S)
    if attn_bias is not None:
        s = s + attn_bias
    allowed = _allowed(T, S, causal_offset, key_padding_mask, B)
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    m = s.max(axis=-1, keepdims=True) if S > 0 else np.full((B, H, T, 1), -np.inf, q.dtype)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m_safe)
    z = e.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        lse = (np.log(z) + m_safe)[..., 0]  # -inf where the row is fully masked
    p = np.divide(e, z, out=np.zeros_like(e), where=z > 0)
    return p.astype(q.dtype, copy=False), lse


def attention_forward(q, k, v, scale, causal_offset=None, attn_bias=None, key_padding_mask=None):
    """q (B,H,T,D), k/v (B,Hkv,S,D) -> out (B,H,T,D), lse (B,H,T).

    Query t may attend key s iff (causal_offset is None or s <= t + causal_offset) and
    key_padding_mask[b, s]. A row with no allowed key gives out = 0, lse = -inf, zero gradients.
    """
    check_attention(q, k, v, causal_offset, attn_bias, key_padding_mask)
    H, Hkv = q.shape[1], k.shape[1]
    p, lse = _scores_probs(q, k, scale, causal_offset, attn_bias, key_padding_mask)
    vv = np.repeat(v, H // Hkv, axis=1) if Hkv != H else v
    out = np.matmul(p, vv).astype(q.dtype, copy=False)
    return out, lse.astype(_stat_dtype(q.dtype))


def attention_backward(dout, q, k, v, out, lse, scale, causal_offset=None, attn_bias=None,
                       key_padding_mask=None):
    """-> dq (B,H,T,D), dk/dv (B,Hkv,S,D) summed over the query heads of each kv group."""
    check_attention(q, k, v, causal_offset, attn_bias, key_padding_mask)
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    g = H // Hkv
    p, _ = _scores_probs(q, k, scale, causal_offset, attn_bias, key_padding_mask)
    kk = np.repeat(k, g, axis=1) if g != 1 else k
    vv = np.repeat(v, g, axis=1) if g != 1 else v
    dp = np.matmul(dout, vv.swapaxes(-1, -2))                  # (B,H,T,S)
    di = (dout * out).sum(axis=-1, keepdims=True)              # (B,H,T,1)
    ds = p * (dp - di) * q.dtype.type(scale)
    dq = np.matmul(ds, kk)
    dk = np.matmul(ds.swapaxes(-1, -2), q)                     # (B,H,S,D)
    dv = np.matmul(p.swapaxes(-1, -2), dout)
    if g != 1:
        dk = dk.reshape(B, Hkv, g, S, D).sum(axis=2)
        dv = dv.reshape(B, Hkv, g, S, D).sum(axis=2)
    dt = q.dtype
    return dq.astype(dt, copy=False), dk.astype(dt, copy=False), dv.astype(dt, copy=False)


def split_heads(qkv, n_head, n_kv_head):
    """qkv (B, T, (H + 2 Hkv) D) -> contiguous q (B,H,T,D), k and v (B,Hkv,T,D)."""
    B, T, D = check_qkv(qkv, n_head, n_kv_head)
    heads = qkv.reshape(B, T, n_head + 2 * n_kv_head, D)
    q = np.ascontiguousarray(heads[:, :, :n_head].transpose(0, 2, 1, 3))
    k = np.ascontiguousarray(heads[:, :, n_head:n_head + n_kv_head].transpose(0, 2, 1, 3))
    v = np.ascontiguousarray(heads[:, :, n_head + n_kv_head:].transpose(0, 2, 1, 3))
    return q, k, v


def merge_heads(x):
    """(B, H, T, D) -> (B, T, H D)."""
    B, H, T, D = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(B, T, H * D)


def qkv_attention_forward(attention_forward, qkv, n_head, n_kv_head, scale):
    """attention_qkv_forward through a (B,H,T,D) attention_forward: split, attend causally, merge."""
    q, k, v = split_heads(qkv, n_head, n_kv_head)
    out, lse = attention_forward(q, k, v, scale, causal_offset=0)
    return merge_heads(out), lse


def qkv_attention_backward(attention_backward, dout, qkv, out, lse, n_head, n_kv_head, scale):
    """attention_qkv_backward through a (B,H,T,D) attention_backward."""
    q, k, v = split_heads(qkv, n_head, n_kv_head)
    B, T, D = q.shape[0], q.shape[2], q.shape[3]
    if dout.shape != (B, T, n_head * D) or out.shape != dout.shape:
        raise ValueError(f"dout {dout.shape} and out {out.shape} must be (B, T, n_head * D) = {(B, T, n_head * D)}")
    to_heads = lambda x: np.ascontiguousarray(x.reshape(B, T, n_head, D).transpose(0, 2, 1, 3))  # noqa: E731
    dq, dk, dv = attention_backward(to_heads(dout), q, k, v, to_heads(out), lse, scale, causal_offset=0)
    return np.concatenate([merge_heads(dq), merge_heads(dk), merge_heads(dv)], axis=2)


def attention_qkv_forward(qkv, n_head, n_kv_head, scale):
    """Causal self-attention from a fused projection: qkv (B, T, (H + 2 Hkv) D), per row [q heads |
    k heads | v heads] -> out (B, T, H D), lse (B, H, T)."""
    return qkv_attention_forward(attention_forward, qkv, n_head, n_kv_head, scale)


def attention_qkv_backward(dout, qkv, out, lse, n_head, n_kv_head, scale):
    """-> dqkv (B, T, (H + 2 Hkv) D), laid out like qkv."""
    return qkv_attention_backward(attention_backward, dout, qkv, out, lse, n_head, n_kv_head, scale)


# ----------------------------------------------------------------------------------------------
# rotary position embeddings on a fused projection (Llama's rotate_half)

def _rotated(x, rotated_heads, D):
    """(B, T, W) -> its (B, T, rotated_heads, D) head view (a view when x is C-contiguous)."""
    B, T, W = x.shape
    return x.reshape(B, T, W // D, D)[:, :, :rotated_heads]


def rotary_qkv_forward(qkv, cos, sin, rotated_heads):
    """qkv (B, T, W), cos/sin (T, D) -> out (B, T, W): heads [0, rotated_heads) of each position t
    rotated, out[j] = x[j] cos[t,j] - x[j+h] sin[t,j], out[j+h] = x[j+h] cos[t,j+h] + x[j] sin[t,j+h]
    (h = D/2, j < h), the other heads copied."""
    B, T, W, D = check_rotary_qkv("qkv", qkv, cos, sin, rotated_heads)
    h = D // 2
    c, s = cos[:, None, :], sin[:, None, :]  # (T,1,D): broadcast over the heads
    x = _rotated(qkv, rotated_heads, D)  # (B,T,R,D)
    out = np.array(qkv, order="C")  # (B,T,W): the unrotated heads as they are
    o = _rotated(out, rotated_heads, D)
    np.multiply(x, c, out=o)
    o[..., :h] -= x[..., h:] * s[..., :h]
    o[..., h:] += x[..., :h] * s[..., h:]
    return out


def rotary_qkv_backward(g, cos, sin, rotated_heads):
    """The transpose of rotary_qkv_forward: g (B, T, W) -> dx (B, T, W), dx[j] = g[j] cos[t,j] +
    g[j+h] sin[t,j+h], dx[j+h] = g[j+h] cos[t,j+h] - g[j] sin[t,j] on the rotated heads, g elsewhere."""
    B, T, W, D = check_rotary_qkv("g", g, cos, sin, rotated_heads)
    h = D // 2
    c, s = cos[:, None, :], sin[:, None, :]  # (T,1,D)
    gr = _rotated(g, rotated_heads, D)  # (B,T,R,D)
    dx = np.array(g, order="C")
    d = _rotated(dx, rotated_heads, D)
    gs = gr * s
    np.multiply(gr, c, out=d)
    d[..., :h] += gs[..., h:]
    d[..., h:] -= gs[..., :h]
    return dx


# ----------------------------------------------------------------------------------------------
# cross-entropy

def cross_entropy_forward(logits, targets, ignore_index=IGNORE_INDEX, label_smoothing=0.0):
    """logits (N,V), targets (N,) int -> losses (N,) (0 where ignored), lse (N,).

    loss = (1-ls) * (lse - logit[t]) + ls * (lse - mean(logits)), as torch.
    """
    N, V = logits.shape
    check_targets(targets, N, V, ignore_index)
    m = logits.max(axis=1)
    lse = np.log(np.exp(logits - m[:, None]).sum(axis=1)) + m
    valid = targets != ignore_index
    t = np.where(valid, targets, 0)
    nll = lse - logits[np.arange(N), t]
    if label_smoothing:
        nll = (1.0 - label_smoothing) * nll + label_smoothing * (lse - logits.mean(axis=1))
    losses = np.where(valid, nll, 0.0).astype(logits.dtype)
    return losses, lse.astype(_stat_dtype(logits.dtype))


def cross_entropy_backward(dlosses, logits, targets, lse, ignore_index=IGNORE_INDEX, label_smoothing=0.0,
                           out=None):
    """dlogits (N,V) = dloss * (softmax - ((1-ls) * onehot + ls / V)); 0 rows where ignored."""
    N, V = logits.shape
    check_targets(targets, N, V, ignore_index)
    if out is None:
        out = np.empty_like(logits)
    np.subtract(logits, lse[:, None].astype(logits.dtype), out=out)
    np.exp(out, out=out)
    valid = targets != ignore_index
    rows = np.nonzero(valid)[0]
    if label_smoothing:
        out -= logits.dtype.type(label_smoothing / V)
    out[rows, targets[rows]] -= logits.dtype.type(1.0 - label_smoothing)
    out *= np.where(valid, dlosses, 0.0).astype(logits.dtype)[:, None]
    return out


# ----------------------------------------------------------------------------------------------
# GELU

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf_obj = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    # NumPy has no erf; math.erf is exact to double precision (slow, but this is the reference).
    return _erf_obj(x.astype(np.float64)).astype(np.float64)


def gelu_forward(x, approximate="none"):
    """out = x * Phi(x) (exact) or the tanh approximation; any shape."""
    xd = x.astype(np.float64)
    if approximate == "tanh":
        out = 0.5 * xd * (1.0 + np.tanh(_SQRT_2_OVER_PI * (xd + 0.044715 * xd ** 3)))
    elif approximate == "none":
        out = 0.5 * xd * (1.0 + _erf(xd / math.sqrt(2.0)))
    else:
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return out.astype(x.dtype)


def gelu_backward(dout, x, approximate="none"):
    xd = x.astype(np.float64)
    if approximate == "tanh":
        u = _SQRT_2_OVER_PI * (xd + 0.044715 * xd ** 3)
        t = np.tanh(u)
        g = 0.5 * (1.0 + t) + 0.5 * xd * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * xd * xd)
    elif approximate == "none":
        g = 0.5 * (1.0 + _erf(xd / math.sqrt(2.0))) + xd * np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)
    else:
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return (dout * g).astype(x.dtype)


def gelu_forward_backward(dout, x, approximate="none"):
    """(gelu(x), dout * gelu'(x)) from one evaluation (a fused gelu + linear's backward needs both);
    dout None: gelu'(x) itself. Any shape; dout, if given, has x's shape."""
    if dout is not None:
        check_shapes(dout=(dout, x.shape))
    g = gelu_backward(np.ones_like(x) if dout is None else dout, x, approximate)
    return gelu_forward(x, approximate), g


# ----------------------------------------------------------------------------------------------
# AdamW

def adamw_step(param, grad, exp_avg, exp_avg_sq, step, lrs, weight_decays, segments,
               beta1=0.9, beta2=0.999, eps=1e-8):
    """One torch.optim.AdamW step over flat buffers, in place; segment g uses lrs[g], weight_decays[g]."""
    bc1 = 1.0 - beta1 ** step
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    for g in range(len(lrs)):
        sl = slice(int(segments[g]), int(segments[g + 1]))
        p, gr, m, v = param[sl], grad[sl], exp_avg[sl], exp_avg_sq[sl]
        lr, wd = float(lrs[g]), float(weight_decays[g])
        p *= np.float32(1.0 - lr * wd)
        m += (gr - m) * np.float32(1.0 - beta1)           # torch: lerp_(grad, 1 - beta1)
        v *= np.float32(beta2)
        v += np.float32(1.0 - beta2) * gr * gr
        denom = np.sqrt(v) / np.float32(bc2_sqrt) + np.float32(eps)
        p -= np.float32(lr / bc1) * m / denom


# ----------------------------------------------------------------------------------------------
# embedding

def embedding_backward(dout, ids, num_embeddings):
    """dout (N,C), ids (N,) int in [0, V) -> dweight (V,C): row v = sum of dout[n] with ids[n] == v."""
    N, C, V = check_embedding_backward(dout, ids, num_embeddings)
    dweight = np.zeros((V, C), dout.dtype)
    np.add.at(dweight, ids, dout)  # unbuffered: repeated ids accumulate, in row order
    return dweight


# ----------------------------------------------------------------------------------------------
# sum of squares (the 2-norm of clip_grad_norm_)

_CHUNK = 1 << 15  # float64 elements per conversion block (256 KiB: stays in L2)


def sum_squares(x):
    """sum(x**2) over every element of x (any shape, any real dtype), accumulated in float64 -> float.

    Not np.dot: that is BLAS ddot, which is multi-threaded in OpenBLAS for long vectors, and an
    OpenBLAS worker left spinning after it competes with the kernels' thread team for the next
    step's cores (benchmarks/results/kernel_choices.md). einsum's 'i,i->' loop is
    single-threaded SIMD; converting in fixed blocks keeps the float64 temporary small, and float32
    values up to 1e20 (whose squares overflow float32) give a finite sum.
    """
    flat = x.reshape(-1)
    if flat.dtype == np.float64:
        return float(np.einsum("i,i->", flat, flat))
    acc = 0.0
    buf = np.empty(min(_CHUNK, flat.size), np.float64)
    for s in range(0, flat.size, _CHUNK):
        part = flat[s:s + _CHUNK]
        b = buf[:part.size]
        np.copyto(b, part, casting="unsafe")
        acc += float(np.einsum("i,i->", b, b))
    return acc


# The backend table read by kernels/__init__.py.
KERNELS = {name: globals()[name] for name in KERNEL_NAMES}
DTYPES = {name: (np.dtype(np.float32), np.dtype(np.float64)) for name in KERNEL_NAMES}
DTYPES["adamw_step"] = (np.dtype(np.float32),)
DTYPES["int8_linear_forward"] = (np.dtype(np.float32),)  # float32 activations x int8 weights
DTYPES["sum_squares"] = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))  # any float grad
