"""Fused neural-network ops: linear, layer_norm, rms_norm, scaled-dot-product attention, softmax
cross-entropy, GELU, softmax/log_softmax, embedding, dropout.

The heavy ones reach their kernels only through ``goldbull_np.kernels.get(name, dtype)``, the one
dispatch point, which also decides zero-size inputs (the NumPy reference) and float16 (the float32
kernel, the primary output cast back); each forward saves what its backward reads (mean/rstd, logsumexp).
"""
import math

import numpy as np

from ... import kernels as K
from ... import random as _random
from ..function import Function


def _c(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _shaped(a, shape):
    """`a` with `shape`; `a` itself when it has it already. A reshape is a view (its .base is set),
    and the engine copies a view before storing it as a leaf's .grad, so a gradient that needs no
    reshape is handed back as the array the kernel allocated."""
    return a if a.shape == shape else a.reshape(shape)


def _param_grad_outs(fn, iw, ib, need_w, need_b, dtype):
    """linear_backward's keyword arguments that put the weight and bias gradients (inputs iw, ib of ``fn``)
    straight into the parameters' ``.grad`` where the engine hands those out (Function.grad_buffer): the
    GEMM's epilogue writes or adds them, instead of a separate copy or add per parameter after the pass."""
    if dtype != np.float32:  # the float32 kernels write float32 only
        return {}
    w = fn.grad_buffer(iw, dtype) if need_w else None
    b = fn.grad_buffer(ib, dtype) if need_b else None
    if w is not None and b is not None and w[1] != b[1]:
        b = None  # one accumulate flag per call: the bias gradient comes back fresh, the engine adds it
    if w is None and b is None:
        return {}
    return {"dweight_out": None if w is None else w[0], "dbias_out": None if b is None else b[0],
            "accumulate": (w or b)[1]}


def _input_grad_out(fn, shape2d, dtype):
    """The norm backwards' dx_out keywords when the engine hands out input 0's gradient array (Function.grad_buffer:
    the pending sum of a residual stream's gradient, or a leaf's lent .grad), and that array to return as dx;
    ({}, None) otherwise. The kernel adds dx into it in its own pass (or writes it there)."""
    if dtype != np.float32 or not fn.needs_input_grad[0]:
        return {}, None
    got = fn.grad_buffer(0, dtype)
    if got is None:
        return {}, None
    buf, accumulate = got
    return {"dx_out": buf.reshape(shape2d), "accumulate": accumulate}, buf  # a view: buf is C-contiguous


def _residual_kw(op, residual, out_shape):
    """linear_forward's keyword for a residual (..., OC) added to the output in the GEMM's epilogue."""
    if residual is None:
        return {}
    if residual.shape != out_shape:
        raise ValueError(f"{op}: residual of shape {residual.shape} does not match the output's {out_shape} "
                         "(it is added to the output as it is, without broadcasting)")
    return {"residual": _c(residual).reshape(-1, out_shape[-1])}  # (N, OC)


def _linear_grads(fn, dx, dw, db, g):
    """The gradients for (input, weight[, bias][, residual]) as the op was called; the residual's is g itself
    (y = residual + ...), handed on as Add hands it."""
    if fn.has_residual:
        return dx, dw, db, (g if fn.needs_input_grad[3] else None)
    return (dx, dw, db) if fn.has_bias else (dx, dw)


class Linear(Function):
    """y = x @ weight.T + bias [+ residual]; x (..., C), weight (OC, C), bias (OC,) or None, residual (..., OC) or
    None (a transformer block's stream: ``residual + linear(x)`` with the add in the GEMM's epilogue)."""

    saved_inputs = (0, 1)

    def forward(self, x, weight, bias=None, residual=None):
        self.lead = x.shape[:-1]
        out_shape = self.lead + (weight.shape[0],)
        x2 = _c(x).reshape(-1, x.shape[-1])  # (N, C)
        self.x2, self.weight, self.has_bias, self.has_residual = x2, weight, bias is not None, residual is not None
        out = K.get("linear_forward", x.dtype)(x2, _c(weight), None if bias is None else _c(bias),
                                               **_residual_kw("linear", residual, out_shape))  # (N, OC)
        return out.reshape(out_shape)

    def backward(self, g):
        nx, nw, nb = (self.needs_input_grad + (False,))[:3]
        g2 = _c(g).reshape(-1, g.shape[-1])  # (N, OC)
        nb = nb and self.has_bias
        dx, dw, db = K.get("linear_backward", g.dtype)(
            g2, self.x2, _c(self.weight), need_dx=nx, need_dweight=nw, need_dbias=nb,
            **_param_grad_outs(self, 1, 2, nw, nb, g.dtype))
        dx = _shaped(dx, self.lead + (self.x2.shape[1],)) if dx is not None else None
        return _linear_grads(self, dx, dw, db, g)


class LayerNorm(Function):
    """Normalise over the trailing ``n_norm`` dims, then scale and shift."""

    saved_inputs = (0, 1)

    def forward(self, x, weight=None, bias=None, n_norm=1, eps=1e-5):
        self.shape = x.shape
        C = math.prod(x.shape[x.ndim - n_norm:])
        N = math.prod(x.shape[:x.ndim - n_norm])  # not -1: reshape cannot infer it when C == 0
        x2 = _shaped(_c(x), (N, C))  # (N, C)
        w2 = None if weight is None else _shaped(_c(weight), (C,))
        b2 = None if bias is None else _shaped(_c(bias), (C,))
        out, self.mean, self.rstd = K.get("layer_norm_forward", x.dtype)(x2, w2, b2, eps)  # (N,C), (N,), (N,)
        self.x2, self.w2, self.has_bias, self.has_weight = x2, w2, bias is not None, weight is not None
        return out.reshape(x.shape)

    def backward(self, g):
        into, buf = _input_grad_out(self, self.x2.shape, g.dtype)
        dx, dw, db = K.get("layer_norm_backward", g.dtype)(
            _shaped(_c(g), self.x2.shape), self.x2, self.w2, self.mean, self.rstd, self.has_bias, **into)
        grads = [_shaped(dx, self.shape) if buf is None else buf]
        if self.has_weight:
            grads.append(_shaped(dw, self.w_shape) if dw is not None else None)
        if self.has_bias:
            grads.append(_shaped(db, self.w_shape) if db is not None else None)
        return tuple(grads)

    @property
    def w_shape(self):
        return self.input_meta[1][0]


class RMSNorm(Function):
    def forward(self, x, weight=None, n_norm=1, eps=1e-6):
        self.shape = x.shape
        C = math.prod(x.shape[x.ndim - n_norm:])
        x2 = _shaped(_c(x), (x.size // C, C))  # (N, C); C > 0 (F.rms_norm returns early otherwise)
        w2 = None if weight is None else _shaped(_c(weight), (C,))
        out, self.rstd = K.get("rms_norm_forward", x.dtype)(x2, w2, eps)  # (N,C), (N,)
        self.x2, self.w2 = x2, w2
        return out.reshape(x.shape)

    def backward(self, g):
        into, buf = _input_grad_out(self, self.x2.shape, g.dtype)
        dx, dw = K.get("rms_norm_backward", g.dtype)(_shaped(_c(g), self.x2.shape), self.x2, self.w2, self.rstd,
                                                      **into)
        dx = _shaped(dx, self.shape) if buf is None else buf
        if self.w2 is None:
            return dx
        return dx, (_shaped(dw, self.input_meta[1][0]) if dw is not None else None)


class Attention(Function):
    """Scaled-dot-product attention; q (B,H,T,D), k/v (B,Hkv,S,D). Saves the per-row logsumexp; the
    kernel recomputes the scores in backward (flash-style), so no (T,S) matrix is kept."""

    saved_inputs = (0, 1, 2)
    saves_output = True

    def forward(self, q, k, v, scale=1.0, causal_offset=None, attn_bias=None, key_padding_mask=None):
        q, k, v = _c(q), _c(k), _c(v)
        self.params = dict(scale=scale, causal_offset=causal_offset, attn_bias=attn_bias,
                           key_padding_mask=key_padding_mask)
        out, lse = K.get("attention_forward", q.dtype)(q, k, v, **self.params)  # (B,H,T,D), (B,H,T)
        # Returned (and saved) as a (B,H,T,D) view of a (B,T,H,D) array: the usual next step,
        # y.transpose(1, 2).reshape(B, T, C) for o_proj, is then a free view, so o_proj's saved
        # input and this node's saved output are one array instead of two copies.
        out = np.ascontiguousarray(out.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
        self.q, self.k, self.v, self.out, self.lse = q, k, v, out, lse
        return out

    def backward(self, g):
        return K.get("attention_backward", g.dtype)(_c(g), self.q, self.k, self.v, _c(self.out), self.lse,
                                                    **self.params)


class QKVAttention(Function):
    """Causal self-attention straight from a fused projection: qkv (B, T, (H + 2 Hkv) D) laid out
    [q heads | k heads | v heads], to y (B, T, H D), ready for o_proj.

    One graph node instead of reshape, permute, three slices, attention, transpose and reshape; the C
    kernels read q, k, v in place and write dq, dk, dv straight into one (B, T, (H + 2 Hkv) D)
    gradient, so no head-major copies are made (the NumPy and numba kernels split and merge)."""

    saved_inputs = (0,)
    saves_output = True

    def forward(self, qkv, n_head=1, n_kv_head=1, scale=1.0):
        self.qkv, self.params = _c(qkv), dict(n_head=n_head, n_kv_head=n_kv_head, scale=scale)
        self.y, self.lse = K.get("attention_qkv_forward", qkv.dtype)(self.qkv, **self.params)  # (B,T,C), (B,H,T)
        return self.y

    def backward(self, g):
        return K.get("attention_qkv_backward", g.dtype)(_c(g), self.qkv, self.y, self.lse, **self.params)


class CrossEntropy(Function):
    """Softmax cross-entropy with class-index targets; logits (N, V), targets (N,)."""

    saved_inputs = (0,)

    def forward(self, logits, targets=None, ignore_index=K.IGNORE_INDEX, label_smoothing=0.0, reduction="mean"):
        logits = _c(logits)
        losses, lse = K.get("cross_entropy_forward", logits.dtype)(
            logits, targets, ignore_index=ignore_index, label_smoothing=label_smoothing)  # (N,), (N,)
        self.logits, self.targets, self.lse = logits, targets, lse
        self.ignore_index, self.label_smoothing, self.reduction = ignore_index, label_smoothing, reduction
        if reduction == "none":
            return losses
        total = losses.sum(dtype=np.float64)
        if reduction == "sum":
            return np.asarray(total, dtype=logits.dtype)
        self.count = int(np.count_nonzero(targets != ignore_index))
        return np.asarray(total / self.count if self.count else np.nan, dtype=logits.dtype)

    def backward(self, g):
        N = self.logits.shape[0]
        if self.reduction == "none":
            dlosses = _c(g)
        elif self.reduction == "sum":
            dlosses = np.full(N, g, dtype=g.dtype)
        else:
            dlosses = np.full(N, g / max(self.count, 1), dtype=g.dtype)
        return K.get("cross_entropy_backward", g.dtype)(
            dlosses, self.logits, self.targets, self.lse, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing)


class Gelu(Function):
    """GELU, exact (erf) or tanh-approximated, elementwise: the kernels take any shape (a 0-d input
    goes in as shape (1,)), so the gradient comes back in the input's shape, not as a view."""

    def forward(self, x, approximate="none"):
        self.x, self.approximate = _c(x if x.ndim else x.reshape(1)), approximate
        return _shaped(K.get("gelu_forward", x.dtype)(self.x, approximate=approximate), x.shape)

    def backward(self, g):
        g = np.asarray(g)  # a NumPy scalar where 0-d arithmetic made one
        dx = K.get("gelu_backward", g.dtype)(_c(g).reshape(self.x.shape), self.x, approximate=self.approximate)
        return _shaped(dx, g.shape)


class GeluLinear(Function):
    """y = gelu(h) @ weight.T + bias [+ residual (..., OC), added in the GEMM's epilogue], saving h but not
    gelu(h): backward recomputes gelu(h) instead of keeping a second (..., hidden) activation alive from
    forward to backward, the MLP's largest (hidden values per token, per layer). Backward runs
    da = g @ weight first, then one kernel,
    gelu_forward_backward, gives both gelu(h) (for the weight gradient) and dh = da * gelu'(h) from a
    single evaluation of Phi per element (gelu_forward then gelu_backward evaluated it twice).
    Values and gradients are those of Gelu then Linear."""

    saved_inputs = (0, 1)

    def forward(self, h, weight, bias=None, residual=None, approximate="none"):
        self.lead = h.shape[:-1]
        out_shape = self.lead + (weight.shape[0],)
        h2 = _c(h).reshape(-1, h.shape[-1])  # (N, hidden)
        self.h2, self.weight, self.has_bias, self.approximate = h2, weight, bias is not None, approximate
        self.has_residual = residual is not None
        a = K.get("gelu_forward", h.dtype)(h2, approximate=approximate)  # (N, hidden)
        out = K.get("linear_forward", h.dtype)(a, _c(weight), None if bias is None else _c(bias),
                                               **_residual_kw("gelu_linear", residual, out_shape))  # (N, OC)
        return out.reshape(out_shape)

    def backward(self, g):
        nh, nw, nb = (self.needs_input_grad + (False,))[:3]
        nb = nb and self.has_bias
        h2, dt, w = self.h2, g.dtype, _c(self.weight)
        g2 = _c(g).reshape(-1, g.shape[-1])  # (N, OC)
        lin_bwd = K.get("linear_backward", dt)
        dh = dw = db = None
        if nh:
            # da = g @ weight (linear_backward reads its x argument only for dweight: h2 gives the shape)
            da, _, _ = lin_bwd(g2, h2, w, need_dx=True, need_dweight=False, need_dbias=False)  # (N, hidden)
            a, dh = K.get("gelu_forward_backward", dt)(da, h2, approximate=self.approximate)  # recomputed, (N, hidden)
            dh = _shaped(dh, self.lead + h2.shape[1:])
        elif nw:
            a = K.get("gelu_forward", dt)(h2, approximate=self.approximate)  # recomputed
        if nw or nb:
            _, dw, db = lin_bwd(g2, a if nw else h2, w, need_dx=False, need_dweight=nw, need_dbias=nb,
                                **_param_grad_outs(self, 1, 2, nw, nb, dt))
        return _linear_grads(self, dh, dw, db, g)


class LayerNormLinear(Function):
    """y = linear(layer_norm(x, ln_weight, ln_bias, eps), weight, bias) over the last dim, saving x and
    the row statistics but not the normalised x: backward recomputes it (one LayerNorm pass) instead
    of keeping a second (..., C) activation per pre-norm projection. Values and gradients are those
    of LayerNorm then Linear, bit for bit (the same kernels on the same arrays).
    Inputs: x (..., C), ln_weight (C,), ln_bias (C,) or None, weight (OC, C), bias (OC,) or None."""

    saved_inputs = (0, 1, 2, 3)

    def forward(self, x, ln_weight, ln_bias, weight, bias, eps=1e-5):
        self.lead = x.shape[:-1]
        x2 = _c(x).reshape(-1, x.shape[-1])  # (N, C)
        self.x2, self.ln_w, self.ln_b, self.weight, self.eps = x2, _c(ln_weight), ln_bias, weight, eps
        xn, self.mean, self.rstd = K.get("layer_norm_forward", x.dtype)(
            x2, self.ln_w, None if ln_bias is None else _c(ln_bias), eps)  # (N,C), (N,), (N,)
        out = K.get("linear_forward", x.dtype)(
            xn, _c(weight), None if bias is None else _c(bias))  # (N, OC)
        return out.reshape(self.lead + (weight.shape[0],))

    def backward(self, g):
        nx, nlw, nlb, nw, nb = self.needs_input_grad
        x2, dt = self.x2, g.dtype
        ln_b = None if self.ln_b is None else _c(self.ln_b)
        xn, _, _ = K.get("layer_norm_forward", dt)(x2, self.ln_w, ln_b, self.eps)  # recomputed (N,C)
        g2 = _c(g).reshape(-1, g.shape[-1])  # (N, OC)
        dxn, dw, db = K.get("linear_backward", dt)(
            g2, xn, _c(self.weight), need_dx=nx or nlw or nlb, need_dweight=nw, need_dbias=nb,
            **_param_grad_outs(self, 3, 4, nw, nb, dt))
        dx = dlw = dlb = None
        if nx or nlw or nlb:
            into, buf = _input_grad_out(self, x2.shape, dt)
            dx, dlw, dlb = K.get("layer_norm_backward", dt)(dxn, x2, self.ln_w, self.mean, self.rstd,
                                                            ln_b is not None, **into)
            dx = _shaped(dx, self.lead + (x2.shape[1],)) if buf is None else buf
        return dx, dlw, dlb, dw, db


class Softmax(Function):
    saved_inputs = ()
    saves_output = True

    def forward(self, x, dim=-1):
        self.dim = dim
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        self.out = e / e.sum(axis=dim, keepdims=True)
        return self.out

    def backward(self, g):
        y = self.out
        return y * (g - (g * y).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    saved_inputs = ()
    saves_output = True

    def forward(self, x, dim=-1):
        self.dim = dim
        shifted = x - x.max(axis=dim, keepdims=True)
        self.out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
        return self.out

    def backward(self, g):
        return g - np.exp(self.out) * g.sum(axis=self.dim, keepdims=True)


class Embedding(Function):
    """out = weight[ids]; backward scatter-adds rows (repeated ids accumulate)."""

    saved_inputs = ()

    def forward(self, weight, ids=None, padding_idx=None):
        self.ids, self.padding_idx, self.shape = ids, padding_idx, weight.shape
        return weight[ids]  # ids.shape + (C,)

    def backward(self, g):
        V, C = self.shape
        flat_ids = self.ids.reshape(-1)  # (N,), range-checked by nn.functional.embedding
        dw = K.get("embedding_backward", g.dtype)(
            _c(g).reshape(flat_ids.size, C), flat_ids, V)  # (V, C)
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0
        return dw


class Dropout(Function):
    saved_inputs = ()

    def forward(self, x, p=0.5):
        keep = _random.default_generator().random(x.shape, dtype=np.float32) >= p
        self.scale = (keep / (1.0 - p)).astype(x.dtype) if p < 1 else np.zeros(x.shape, x.dtype)
        return x * self.scale

    def backward(self, g):
        return g * self.scale
