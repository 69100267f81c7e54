"""Argument checks shared by every backend (semantic checks; the C wrappers add memory-safety checks)."""
from __future__ import annotations

import numpy as np

from ..constants import IGNORE_INDEX  # noqa: F401 - -100, defined once (a leaf module); kernels' default


class EmptyInputError(ValueError):
    """A zero-size array reached a backend that cannot take one (the C wrappers raise it before any
    pointer reaches C); kernels.get()'s callables catch it and run the NumPy reference instead."""


def check_targets(targets, N, V, ignore_index):
    """targets (N,) integer with every id in [0, V) or == ignore_index, else ValueError/TypeError."""
    if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be an integer ndarray, got {getattr(targets, 'dtype', type(targets))}")
    if targets.shape != (N,):
        raise ValueError(f"targets must have shape ({N},), got {targets.shape}")
    if N:
        bad = ((targets < 0) | (targets >= V)) & (targets != ignore_index)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"target id {int(targets[i])} at row {i} is outside [0, {V}) "
                             f"and is not ignore_index={ignore_index}")


def check_ids(ids, N, V):
    """ids (N,) integer with every id in [0, V), else TypeError/ValueError naming the first bad id."""
    if not isinstance(ids, np.ndarray) or ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be an integer ndarray, got {getattr(ids, 'dtype', type(ids))}")
    if ids.shape != (N,):
        raise ValueError(f"ids must have shape ({N},), got {ids.shape}")
    if N:
        bad = (ids < 0) | (ids >= V)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"id {int(ids[i])} at position {i} is outside [0, {V})")


def check_embedding_backward(dout, ids, num_embeddings):
    """dout (N,C) float, ids (N,) in [0, num_embeddings) -> (N, C, V).

    num_embeddings may be 0 only with N = 0 (an empty table: nn.Embedding(0, C) allows it); the C
    wrapper rejects zero-size inputs anyway."""
    if isinstance(num_embeddings, bool) or not isinstance(num_embeddings, (int, np.integer)):
        raise TypeError(f"num_embeddings must be an int, got {type(num_embeddings).__name__}")
    if num_embeddings < 0:
        raise ValueError(f"num_embeddings must be >= 0, got {num_embeddings}")
    if not isinstance(dout, np.ndarray) or dout.dtype.kind != "f":
        raise TypeError(f"dout must be a float ndarray, got {getattr(dout, 'dtype', type(dout))}")
    if dout.ndim != 2:
        raise ValueError(f"dout must be 2-D (N,C), got shape {dout.shape}")
    N, C = dout.shape
    check_ids(ids, N, int(num_embeddings))
    return N, C, int(num_embeddings)


def attention_bias_4d(attn_bias, B, H, T, S):
    """Return attn_bias viewed as 4-D and checked broadcastable to (B,H,T,S), without copying."""
    if attn_bias.ndim > 4 or attn_bias.ndim < 1:
        raise ValueError(f"attn_bias must have 1 to 4 dims, got shape {attn_bias.shape}")
    b4 = attn_bias.reshape((1,) * (4 - attn_bias.ndim) + attn_bias.shape)
    for got, want, name in zip(b4.shape, (B, H, T, S), "BHTS"):
        if got not in (1, want):
            raise ValueError(f"attn_bias shape {attn_bias.shape} does not broadcast to "
                             f"(B,H,T,S)=({B},{H},{T},{S}) on {name}")
    return b4


def check_attention(q, k, v, causal_offset, attn_bias, key_padding_mask):
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"q, k, v must be 4-D (B,H,T,D); got {q.shape}, {k.shape}, {v.shape}")
    B, H, T, D = q.shape
    if k.shape != v.shape or k.shape[0] != B or k.shape[3] != D:
        raise ValueError(f"k and v must be (B,Hkv,S,D)=({B},*,*,{D}); got {k.shape}, {v.shape}")
    Hkv = k.shape[1]
    if Hkv == 0 or H % Hkv != 0:
        raise ValueError(f"query heads H={H} must be a multiple of kv heads Hkv={Hkv}")
    S = k.shape[2]
    if causal_offset is not None and not isinstance(causal_offset, (int, np.integer)):
        raise TypeError(f"causal_offset must be None or an int, got {type(causal_offset).__name__}")
    if attn_bias is not None:
        if not isinstance(attn_bias, np.ndarray) or attn_bias.dtype.kind != "f":
            raise TypeError("attn_bias must be a float ndarray")
        attention_bias_4d(attn_bias, B, H, T, S)
    if key_padding_mask is not None:
        if not isinstance(key_padding_mask, np.ndarray) or key_padding_mask.dtype != np.bool_:
            raise TypeError("key_padding_mask must be a bool ndarray (True = may attend)")
        if key_padding_mask.shape != (B, S):
            raise ValueError(f"key_padding_mask must have shape ({B},{S}), got {key_padding_mask.shape}")


def check_qkv(qkv, n_head, n_kv_head):
    """qkv (B, T, (n_head + 2 n_kv_head) D) float, n_head a positive multiple of n_kv_head -> (B, T, D)."""
    if not isinstance(qkv, np.ndarray) or qkv.dtype.kind != "f":
        raise TypeError(f"qkv must be a float ndarray, got {getattr(qkv, 'dtype', type(qkv))}")
    for name, n in (("n_head", n_head), ("n_kv_head", n_kv_head)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    if n_head % n_kv_head:
        raise ValueError(f"n_head {n_head} must be a multiple of n_kv_head {n_kv_head}")
    width = n_head + 2 * n_kv_head
    if qkv.ndim != 3 or qkv.shape[2] % width or qkv.shape[2] == 0:
        raise ValueError(f"qkv must be (B, T, (n_head + 2 * n_kv_head) * head_dim) with {width} heads, "
                         f"got shape {qkv.shape}")
    B, T, W = qkv.shape
    return B, T, W // width


def check_rotary_qkv(name, x, cos, sin, rotated_heads):
    """x (B, T, W) float, cos and sin (T, D) float with D even and W a multiple of D, rotated_heads an
    int in [0, W // D] -> (B, T, W, D). `name` is x's role ("qkv" or "g") in the messages."""
    for n, a in ((name, x), ("cos", cos), ("sin", sin)):
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            raise TypeError(f"{n} must be a float ndarray, got {getattr(a, 'dtype', type(a).__name__)}")
    if x.ndim != 3:
        raise ValueError(f"{name} must be 3-D (B, T, W), got shape {x.shape}")
    B, T, W = x.shape
    if cos.ndim != 2 or cos.shape[0] != T or cos.shape[1] == 0 or cos.shape[1] % 2:
        raise ValueError(f"cos must be (T, D) = ({T}, D) with D even and > 0 for {name} of shape {x.shape}, "
                         f"got {cos.shape}")
    if sin.shape != cos.shape:
        raise ValueError(f"sin must have cos's shape {cos.shape}, got {sin.shape}")
    D = cos.shape[1]
    if W % D:
        raise ValueError(f"{name} width W = {W} (shape {x.shape}) is not a multiple of the head dim D = {D} "
                         f"(cos shape {cos.shape})")
    if isinstance(rotated_heads, bool) or not isinstance(rotated_heads, (int, np.integer)):
        raise TypeError(f"rotated_heads must be an int, got {type(rotated_heads).__name__}")
    if not 0 <= rotated_heads <= W // D:
        raise ValueError(f"rotated_heads must be in [0, W // D] = [0, {W // D}] for {name} of shape {x.shape} "
                         f"and D = {D}, got {rotated_heads}")
    return B, T, W, D


def check_shapes(**arrays):
    """check_shapes(name=(array_or_None, expected_shape), ...): ValueError on a mismatch.

    The numba kernels index without bounds checks, so their wrappers call this before the loops."""
    for name, (a, shape) in arrays.items():
        if a is not None and tuple(a.shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(a.shape)}")


def check_segments(segments, lrs, weight_decays, P):
    G = len(lrs)
    if len(weight_decays) != G or len(segments) != G + 1:
        raise ValueError(f"need len(segments) == len(lrs) + 1 == len(weight_decays) + 1, got "
                         f"{len(segments)}, {G}, {len(weight_decays)}")
    seg = np.asarray(segments)
    if seg.dtype.kind not in "iu" or (G and (seg[0] < 0 or seg[-1] > P or np.any(np.diff(seg) < 0))):
        raise ValueError(f"segments must be non-decreasing integer offsets within [0, {P}]")


# ----------------------------------------------------------------------------------------------
# convolution and pooling (NCHW)

def _pair_ints(name, v, low):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (v, v)
    try:
        a, b = v
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    for e in (a, b):
        if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < low:
            raise ValueError(f"{name} must hold ints >= {low}, got {v!r}")
    return int(a), int(b)


def conv_pads(padding):
    """padding: int, (ph, pw) or (top, bottom, left, right), each >= 0 -> (top, bottom, left, right)."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        for e in padding:
            if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < 0:
                raise ValueError(f"padding must hold ints >= 0, got {padding!r}")
        return tuple(int(e) for e in padding)
    ph, pw = _pair_ints("padding", padding, 0)
    return ph, ph, pw, pw


def check_conv2d(x, weight, bias, stride, padding, dilation, groups):
    """x (B,C,H,W), weight (OC, C/groups, KH, KW), bias (OC,)|None ->
    dict of the sizes B, C, H, W, OC, KH, KW, OH, OW, G and the normalised stride/pads/dilation."""
    for n, a in (("x", x), ("weight", weight)):
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            raise TypeError(f"{n} must be a float ndarray, got {getattr(a, 'dtype', type(a).__name__)}")
    if x.ndim != 4:
        raise ValueError(f"conv2d: x must be 4-D (B, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (OC, C/groups, KH, KW), got shape {weight.shape}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv2d: groups must be an int >= 1, got {groups!r}")
    B, C, H, W = x.shape
    OC, Cg, KH, KW = weight.shape
    G = int(groups)
    if C % G or OC % G or Cg != C // G:
        raise ValueError(f"conv2d: x has {C} channels and weight shape {weight.shape} with groups={G}: need "
                         f"C and OC divisible by groups and weight.shape[1] == C/groups")
    if KH < 1 or KW < 1:
        raise ValueError(f"conv2d: empty kernel {weight.shape}")
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.shape != (OC,):
            raise ValueError(f"conv2d: bias must have shape ({OC},), got {getattr(bias, 'shape', bias)}")
    sh, sw = _pair_ints("stride", stride, 1)
    dh, dw = _pair_ints("dilation", dilation, 1)
    pt, pb, pl, pr = conv_pads(padding)
    OH = (H + pt + pb - dh * (KH - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (KW - 1) - 1) // sw + 1
    if OH < 1 or OW < 1:
        raise ValueError(f"conv2d: input {H}x{W} (padded {H + pt + pb}x{W + pl + pr}) is smaller than the "
                         f"dilated kernel {dh * (KH - 1) + 1}x{dw * (KW - 1) + 1}")
    return dict(B=B, C=C, H=H, W=W, OC=OC, KH=KH, KW=KW, OH=OH, OW=OW, G=G, stride=(sh, sw),
                pads=(pt, pb, pl, pr), dilation=(dh, dw))


def check_pool2d(op, x, kernel_size, stride, padding, dilation=1):
    """x (B,C,H,W); padding at most half the kernel (torch's rule) -> the sizes and normalised params."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"{op}: x must be a float ndarray, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D (B, C, H, W), got shape {x.shape}")
    KH, KW = _pair_ints("kernel_size", kernel_size, 1)
    sh, sw = _pair_ints("stride", stride if stride is not None else (KH, KW), 1)
    ph, pw = _pair_ints("padding", padding, 0)
    dh, dw = _pair_ints("dilation", dilation, 1)
    if ph > KH // 2 or pw > KW // 2:
        raise ValueError(f"{op}: padding {(ph, pw)} must be at most half the kernel size {(KH, KW)}")
    B, C, H, W = x.shape
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: input {H}x{W} with padding {(ph, pw)} is smaller than the kernel {(KH, KW)}")
    return dict(B=B, C=C, H=H, W=W, KH=KH, KW=KW, OH=OH, OW=OW, stride=(sh, sw), padding=(ph, pw),
                dilation=(dh, dw))


def check_batch_norm(x, weight, bias):
    """x (N, C, L) float, weight/bias (C,)|None -> (N, C, L)."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"batch_norm: x must be a float ndarray, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 3:
        raise ValueError(f"batch_norm: x must be 3-D (N, C, L), got shape {x.shape}")
    N, C, L = x.shape
    for n, a in (("weight", weight), ("bias", bias)):
        if a is not None and (not isinstance(a, np.ndarray) or a.shape != (C,)):
            raise ValueError(f"batch_norm: {n} must have shape ({C},), got {getattr(a, 'shape', a)}")
    return N, C, L
