"""``goldbull_np.nn.functional`` (import as F): torch's functional API on goldbull_np tensors."""
import math

import numpy as np

from ..autograd.functions import nn as _fused
from ..autograd.functions.elementwise import relu, sigmoid, silu, softplus, tanh  # noqa: F401  (re-exported)
from ..autograd.functions.movement import one_hot, pad  # noqa: F401  (re-exported)
from ..autograd.tensor import Tensor
from ..kernels._checks import IGNORE_INDEX, check_qkv

# IGNORE_INDEX (-100): the target/label value that takes no loss, defined once (goldbull_np.constants,
# the kernels' default too) and exported here as F.IGNORE_INDEX for the layers above.


def _dim(dim, ndim, op):
    if dim is None:
        raise TypeError(f"{op}: pass dim explicitly")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % max(ndim, 1)


def linear(input, weight, bias=None, *, residual=None):
    """y = input @ weight.T + bias, with weight (out_features, in_features).

    ``residual`` (goldbull): a tensor of the output's shape, (..., out_features), added to y as one op
    (``residual + linear(input, weight, bias)``, the add in the GEMM's epilogue: a transformer block's
    ``x + proj(y)`` without a separate pass). Its gradient is the output's."""
    if weight.ndim != 2 or input.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"linear: input of shape {input.shape} does not match weight of shape {weight.shape} "
                         "(expected input[..., in_features] and weight[out_features, in_features])")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias of shape {bias.shape} does not match weight of shape {weight.shape}")
    _same_dtype("linear", input=input, weight=weight, bias=bias, residual=residual)
    if residual is not None:  # its shape is checked by the op (no broadcasting)
        return _fused.Linear.apply(input, weight, bias, residual)
    if bias is None:
        return _fused.Linear.apply(input, weight)
    return _fused.Linear.apply(input, weight, bias)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` dims (mean 0, variance 1), then affine."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    _check_norm("layer_norm", input, normalized_shape, weight, bias)
    args = [input] + [t for t in (weight, bias) if t is not None]
    if weight is None and bias is not None:
        raise ValueError("layer_norm: a bias without a weight is not supported")
    if 0 in normalized_shape:  # nothing to normalise over: the (empty) input itself, as torch returns
        return input * 0.0
    return _fused.LayerNorm.apply(*args, n_norm=len(normalized_shape), eps=eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x**2) + eps) * weight over the trailing dims (eps defaults to finfo(dtype).eps)."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    _check_norm("rms_norm", input, normalized_shape, weight, None)
    eps = float(np.finfo(input.dtype).eps) if eps is None else eps
    args = [input] if weight is None else [input, weight]
    if 0 in normalized_shape:  # nothing to normalise over: an empty output, as torch returns
        return input * 0.0
    return _fused.RMSNorm.apply(*args, n_norm=len(normalized_shape), eps=eps)


def _same_dtype(op, **tensors):
    """torch's rule for the fused matmul ops: one floating dtype for every operand (TypeError naming them),
    so the result's dtype never depends on which backend's kernel runs."""
    dts = {name: t.dtype for name, t in tensors.items() if t is not None}
    if len(set(dts.values())) > 1:
        raise TypeError(f"{op}: operands must have the same dtype, got "
                        + ", ".join(f"{n} {d}" for n, d in dts.items()) + "")


def _check_norm(op, x, shape, weight, bias):
    if tuple(x.shape[x.ndim - len(shape):]) != shape or len(shape) > x.ndim:
        raise ValueError(f"{op}: input of shape {x.shape} does not end with normalized_shape {shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"{op}: {name} has shape {t.shape}, expected {shape}")


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """softmax(q @ k^T * scale + mask) @ v with torch's signature.

    Args:
        query: (B, H, T, D); key, value: (B, Hkv, S, D) with H a multiple of Hkv (grouped-query).
        attn_mask: bool (True = may attend) or float (added to the scores), broadcastable to
            (B, H, T, S).
        is_causal: query t attends keys s <= t (top-left aligned, as torch).
        scale: defaults to 1/sqrt(D).
    Returns:
        (B, H, T, D). Rows with no allowed key give zeros (torch gives NaN there).
    """
    if dropout_p:
        raise NotImplementedError("scaled_dot_product_attention: dropout_p > 0 is not supported; "
                                  "apply dropout to the attention output instead")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal, not both")
    q, k, v = query, key, value
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"scaled_dot_product_attention: expected 4-D (B, H, T, D) tensors, got shapes "
                         f"{q.shape}, {k.shape}, {v.shape}")
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3] or q.shape[1] % k.shape[1]:
        raise ValueError(f"scaled_dot_product_attention: incompatible shapes q {q.shape}, k {k.shape}, "
                         f"v {v.shape} (need equal B and D, k == v, and H a multiple of Hkv)")
    B, H, T, D = q.shape
    S = k.shape[2]
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    bias, kpm = _split_mask(attn_mask, B, H, T, S, q.dtype)
    return _fused.Attention.apply(q, k, v, scale=scale, causal_offset=0 if is_causal else None,
                                  attn_bias=bias, key_padding_mask=kpm)


def causal_self_attention_qkv(qkv, n_head, n_kv_head=None, scale=None):
    """Causal self-attention from a fused QKV projection, as one op.

    Equal to splitting ``qkv`` (B, T, (H + 2 Hkv) D) into q (H heads), k and v (Hkv heads each),
    moving heads in front, ``scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)``
    and merging the heads back to (B, T, H D), but one graph node: no slices, no per-head copies
    in backward.

    Args:
        qkv: (B, T, (n_head + 2 * n_kv_head) * head_dim), q heads first, then k, then v.
        n_head: query heads; n_kv_head: key/value heads (default n_head; n_head must be a multiple).
        scale: defaults to 1/sqrt(head_dim).
    Returns:
        (B, T, n_head * head_dim).
    """
    n_kv_head = n_head if n_kv_head is None else n_kv_head
    _, _, D = check_qkv(qkv.data if isinstance(qkv, Tensor) else np.asarray(qkv), n_head, n_kv_head)
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    return _fused.QKVAttention.apply(qkv, n_head=n_head, n_kv_head=n_kv_head, scale=scale)


def _split_mask(mask, B, H, T, S, dtype):
    """A torch attn_mask as the kernel's (attn_bias, key_padding_mask) pair."""
    if mask is None:
        return None, None
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    shape = (1,) * (4 - m.ndim) + m.shape
    try:
        np.broadcast_shapes(shape, (B, H, T, S))
    except ValueError:
        raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {m.shape} does not broadcast "
                         f"to (B, H, T, S) = {(B, H, T, S)}") from None
    m = m.reshape(shape)
    if m.dtype == np.bool_:
        if shape[1] == 1 and shape[2] == 1:  # a key-padding mask: (B|1, 1, 1, S)
            return None, np.ascontiguousarray(np.broadcast_to(m[:, 0, 0, :], (B, S)))
        return np.where(m, 0.0, -np.inf).astype(dtype), None
    return np.ascontiguousarray(m, dtype=dtype), None


def softmax(input, dim=None, dtype=None):
    x = input.to(dtype) if dtype is not None else input
    return _fused.Softmax.apply(x, dim=_dim(dim, x.ndim, "softmax"))


def log_softmax(input, dim=None, dtype=None):
    x = input.to(dtype) if dtype is not None else input
    return _fused.LogSoftmax.apply(x, dim=_dim(dim, x.ndim, "log_softmax"))


def gelu(input, approximate="none"):
    """GELU, exact (erf) or ``approximate="tanh"``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _fused.Gelu.apply(input, approximate=approximate)


def gelu_linear(input, weight, bias=None, approximate="none", *, residual=None):
    """``linear(gelu(input, approximate), weight, bias)`` as one op that does not keep
    ``gelu(input)`` for backward (it is recomputed there): same values and gradients, one
    activation less held between forward and backward. ``residual``: as for :func:`linear`
    (``residual + gelu_linear(...)``, the add in the GEMM's epilogue)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu_linear: approximate must be 'none' or 'tanh', got {approximate!r}")
    if weight.ndim != 2 or input.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"gelu_linear: input of shape {input.shape} does not match weight of shape {weight.shape}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"gelu_linear: bias of shape {bias.shape} does not match weight of shape {weight.shape}")
    if residual is not None:
        _same_dtype("gelu_linear", input=input, residual=residual)
        return _fused.GeluLinear.apply(input, weight, bias, residual, approximate=approximate)
    if bias is None:
        return _fused.GeluLinear.apply(input, weight, approximate=approximate)
    return _fused.GeluLinear.apply(input, weight, bias, approximate=approximate)


def layer_norm_linear(input, norm_weight, norm_bias, weight, bias=None, eps=1e-5):
    """``linear(layer_norm(input, (C,), norm_weight, norm_bias, eps), weight, bias)`` as one op that
    does not keep the normalised input for backward (it is recomputed there): same values and
    gradients, one (..., C) activation less per pre-norm projection.

    Args:
        input: (..., C); norm_weight: (C,); norm_bias: (C,) or None; weight: (OC, C); bias: (OC,) or None.
    """
    C = input.shape[-1] if input.ndim else None
    if C is None or norm_weight.shape != (C,) or (norm_bias is not None and norm_bias.shape != (C,)):
        raise ValueError(f"layer_norm_linear: norm weight {norm_weight.shape} / bias "
                         f"{None if norm_bias is None else norm_bias.shape} do not match input of shape {input.shape}")
    if weight.ndim != 2 or weight.shape[1] != C:
        raise ValueError(f"layer_norm_linear: input of shape {input.shape} does not match weight of shape {weight.shape}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"layer_norm_linear: bias of shape {bias.shape} does not match weight of shape {weight.shape}")
    return _fused.LayerNormLinear.apply(input, norm_weight, norm_bias, weight, bias, eps=float(eps))


def dropout(input, p=0.5, training=True):
    """Zero elements with probability p and scale the rest by 1/(1-p) (global seeded generator)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    return _fused.Dropout.apply(input, p=p)


def embedding(input, weight, padding_idx=None):
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer ids in ``input``."""
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    V = weight.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        bad = ids[(ids < 0) | (ids >= V)].reshape(-1)[0]
        raise IndexError(f"embedding: id {bad} is out of range for an embedding table of {V} rows")
    return _fused.Embedding.apply(weight, ids=ids, padding_idx=padding_idx)


# ---- losses ------------------------------------------------------------------------------------
_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def cross_entropy(input, target, weight=None, ignore_index=IGNORE_INDEX, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy (torch semantics).

    Args:
        input: logits (N, C), (N, C, d1, ...) or (C,).
        target: class indices (N,) / (N, d1, ...) / () with ``ignore_index`` skipped, or class
            probabilities with the shape of ``input``.
        weight: optional per-class weights (C,).
        reduction: "mean" (over non-ignored targets; with ``weight``, divided by the sum of their
            class weights), "sum" or "none".
        label_smoothing: mix the target with the uniform distribution by this amount. With class
            indices, as torch: loss_i = (1-ls) * w[t_i] * nll_i + ls/C * sum_c w[c] * -log p_ic
            (w = 1 without ``weight``), 0 where t_i == ignore_index.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f":
        return _cross_entropy_probs(input, Tensor._make(t, False, None) if not isinstance(target, Tensor)
                                    else target, weight, reduction, label_smoothing)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices or probabilities, got {t.dtype}")
    x, flat_t, expected = _class_rows("cross_entropy", input, t)
    if weight is not None:
        logp = log_softmax(x, 1)  # (M, C)
        out = _nll_rows(logp, flat_t, weight, ignore_index, reduction)
        if label_smoothing:
            smooth = _smoothing_rows(logp, flat_t, weight, ignore_index, reduction)
            out = out * (1.0 - label_smoothing) + smooth * (label_smoothing / logp.shape[1])
    else:
        out = _fused.CrossEntropy.apply(x, targets=flat_t, ignore_index=ignore_index,
                                        label_smoothing=label_smoothing, reduction=reduction)
    if reduction == "none":
        out = out.reshape(expected)
    return out


def _class_rows(op, input, t):
    """Scores (C,), (N, C) or (N, C, d1, ...) with class-index targets as rows: (M, C) scores,
    (M,) targets, and the target shape (the shape of an unreduced loss)."""
    expected = (input.shape[0],) + input.shape[2:] if input.ndim > 1 else ()
    if input.ndim == 0 or t.shape != expected:
        raise ValueError(f"{op}: target of shape {t.shape} does not match input of shape "
                         f"{input.shape} (expected target shape {expected})")
    x = input
    if x.ndim == 1:
        x = x.reshape(1, -1)
    elif x.ndim > 2:  # (N, C, d...) -> (N*d, C)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1).reshape(-1, x.shape[1])
    return x, np.ascontiguousarray(t.reshape(-1)), expected


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing):
    if target.shape != input.shape:
        raise ValueError(f"cross_entropy: probability target of shape {target.shape} must match input "
                         f"of shape {input.shape}")
    C = input.shape[1] if input.ndim > 1 else input.shape[0]
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / C
    logp = log_softmax(input, 1 if input.ndim > 1 else 0)
    if weight is not None:
        shape = (1, C) + (1,) * (input.ndim - 2) if input.ndim > 1 else (C,)
        logp = logp * weight.reshape(shape)
    loss = -(logp * target).sum(1 if input.ndim > 1 else 0)
    return _reduce(loss, reduction)


def nll_loss(input, target, weight=None, ignore_index=IGNORE_INDEX, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` at class indices ``target``.

    Args:
        input: (N, C), (N, C, d1, ...) or (C,) log-probabilities.
        target: (N,), (N, d1, ...) or () class indices; ``ignore_index`` entries are skipped.
        weight: optional per-class weights (C,).
        reduction: "mean" (weighted by the targets' class weights), "sum" or "none".
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold class indices, got dtype {t.dtype}")
    x, flat_t, expected = _class_rows("nll_loss", input, t)
    out = _nll_rows(x, flat_t, weight, ignore_index, reduction)
    return out.reshape(expected) if reduction == "none" else out


def _nll_rows(logp, t, weight, ignore_index, reduction):
    """nll over rows: logp (M, C), t (M,)."""
    valid = t != ignore_index
    safe_t = np.where(valid, t, 0)
    if valid.any() and (safe_t.min() < 0 or safe_t.max() >= logp.shape[1]):
        raise IndexError(f"nll_loss: target values must lie in [0, {logp.shape[1]}) or equal ignore_index")
    picked = logp.gather(1, safe_t[:, None].astype(np.int64)).reshape(-1)  # (M,)
    w = np.where(valid, 1.0, 0.0).astype(logp.dtype)
    if weight is not None:
        w = w * (weight.data if isinstance(weight, Tensor) else np.asarray(weight))[safe_t]
    loss = -picked * Tensor._make(w, False, None)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return loss.sum() / w.sum(dtype=np.float64).astype(w.dtype)  # nan when every target is ignored
    return _reduce(loss, reduction)


def _smoothing_rows(logp, t, weight, ignore_index, reduction):
    """torch's label-smoothing term with class weights: logp (M, C), t (M,) -> per row
    -sum_c w[c] * logp[i, c] (0 where ignored); "mean" divides the sum by sum_i w[t_i] over the
    non-ignored rows (nll_loss's denominator), so the two terms share one normalisation."""
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=logp.dtype)  # (C,)
    valid = t != ignore_index
    smooth = -(logp * Tensor._make(w, False, None)).sum(1)  # (M,)
    loss = smooth * Tensor._make(valid.astype(logp.dtype), False, None)
    if reduction == "mean":
        denom = (w[np.where(valid, t, 0)] * valid).sum(dtype=np.float64).astype(logp.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):
            return loss.sum() / denom  # nan when every target is ignored, as nll_loss
    return _reduce(loss, reduction)


def mse_loss(input, target, reduction="mean"):
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} differ")
    diff = input - target
    return _reduce(diff * diff, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one numerically stable expression (torch semantics)."""
    if input.shape != target.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: input shape {input.shape} and target shape "
                         f"{target.shape} differ")
    x, t = input, target
    log_sig_neg = softplus(-x)  # -log(sigmoid(x)) = softplus(-x)
    if pos_weight is None:
        loss = (1 - t) * x + log_sig_neg
    else:
        loss = (1 - t) * x + (1 + (pos_weight - 1) * t) * log_sig_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# image ops (NCHW), in functional_conv.py
from .functional_conv import (adaptive_avg_pool2d, avg_pool2d, batch_norm, conv2d, group_norm,  # noqa: E402,F401
                              max_pool2d)
