"""C backend: thin wrappers over the cffi extension goldbull_np._C (float32 only; sum_squares also float64).

Each wrapper validates everything (dtype, shape, C-contiguity, writability of outputs, non-empty
sizes, target and embedding ids, segment offsets) and raises TypeError/ValueError before any pointer
reaches C; it allocates the outputs, calls, and checks the return code. Nothing else touches `lib`.
C signatures use int64_t sizes, so no size can overflow the C integer type.
"""
from __future__ import annotations

import numpy as np

from .. import runtime as _runtime
from ._checks import (IGNORE_INDEX, EmptyInputError, attention_bias_4d, check_attention, check_embedding_backward,
                      check_qkv, check_rotary_qkv, check_targets)
from .reference import KERNEL_NAMES

ffi = lib = None  # set by load()
_F32 = np.dtype(np.float32)
_I64 = np.dtype(np.int64)
_F64 = np.dtype(np.float64)


def load():
    """Import the compiled extension; raises ImportError when it was not built. The first load makes
    the process-wide malloc setting (goldbull_np.runtime.tune_malloc) and applies GOLDBULL_C_ISA."""
    global ffi, lib
    if lib is None:
        from goldbull_np import _C  # noqa: PLC0415 - optional, built by setup.py
        _runtime.tune_malloc(_C.lib)
        _cap_isa_from_env(_C.lib)
        ffi, lib = _C.ffi, _C.lib
    return lib


# Instruction-set tiers of the C kernels (csrc/internal/gb_common.h), lowest first. The best tier the
# CPU supports is used; GOLDBULL_C_ISA=avx2|base (read at load) or set_isa() caps it.
ISAS = ("base", "avx2", "avx512")


def _isa_index(name, where):
    if name not in ISAS:
        raise ValueError(f"{where}: ISA tier must be one of {ISAS}, got {name!r}")
    return ISAS.index(name)


def _cap_isa_from_env(L):
    import os
    name = os.environ.get("GOLDBULL_C_ISA", "").strip().lower()
    if name:
        L.gb_set_isa(_isa_index(name, "GOLDBULL_C_ISA"))


def cpu_isa():
    """The best ISA tier this CPU (and OS) supports: 'base', 'avx2' (AVX2+FMA) or 'avx512'."""
    return ISAS[load().gb_cpu_isa()]


def isa():
    """The ISA tier the C kernels run now (cpu_isa() capped by set_isa / GOLDBULL_C_ISA)."""
    return ISAS[load().gb_isa()]


def set_isa(name=None):
    """Cap the C kernels' ISA tier at `name` ('base', 'avx2', 'avx512'; None: the CPU's best) and
    return the tier now in use. Process-global; the tests run every tier against the reference."""
    cap = len(ISAS) - 1 if name is None else _isa_index(name, "set_isa")
    return ISAS[load().gb_set_isa(cap)]


def set_num_threads(n):
    load().gb_set_num_threads(int(n))


def runtime_info():
    L = load()
    return {"omp_max_threads": int(L.gb_omp_max_threads()), "openmp": bool(L.gb_has_openmp()),
            "isa": isa(), "cpu_isa": cpu_isa(), "avx2": bool(L.gb_cpu_has_avx2_fma())}


# ----------------------------------------------------------------------------------------------
# validation helpers

def _arr(name, x, shape=None, ndim=None, dtype=_F32):
    """Checked input: ndarray of `dtype`, C-contiguous, non-empty, with `shape`/`ndim`."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(f"{name} must be {dtype} for the C backend, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if shape is not None and x.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {x.shape}")
    if x.size == 0:
        raise EmptyInputError(f"{name} has a zero-size dimension {x.shape}; the C kernels need non-empty inputs")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return x


def _out(name, x, shape, inputs=()):
    """Checked output: None -> a fresh array; else float32, C-contiguous, writable, not aliasing inputs."""
    if x is None:
        return np.empty(shape, _F32)
    _arr(name, x, shape)
    if not x.flags.writeable:
        raise ValueError(f"{name} must be writable")
    for a in inputs:
        if a is not None and np.may_share_memory(x, a):
            raise ValueError(f"{name} must not overlap an input")
    return x


def _opt(name, x, shape):
    return None if x is None else _arr(name, x, shape)


def _p(x, ctype="float[]"):
    return ffi.NULL if x is None else ffi.from_buffer(ctype, x)


def _ok(rc, name):
    if rc != 0:
        raise MemoryError(f"C kernel {name} failed (rc={rc}): could not allocate scratch memory")


# ----------------------------------------------------------------------------------------------
# matmul / linear

def matmul(a, b, trans_a=False, trans_b=False, out=None):
    """out = op(a) @ op(b); a (M,K)|(K,M) [or batched (Bt,.,.)], b (K,N)|(N,K) [or batched]."""
    load()
    _arr("a", a)
    _arr("b", b)
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise ValueError(f"matmul takes 2-D or 3-D operands, got {a.shape} and {b.shape}")
    M, Ka = (a.shape[-1], a.shape[-2]) if trans_a else (a.shape[-2], a.shape[-1])
    Kb, N = (b.shape[-1], b.shape[-2]) if trans_b else (b.shape[-2], b.shape[-1])
    if Ka != Kb:
        raise ValueError(f"matmul inner sizes differ: {a.shape}{'^T' if trans_a else ''} @ "
                         f"{b.shape}{'^T' if trans_b else ''}")
    ba = a.shape[0] if a.ndim == 3 else None
    bb = b.shape[0] if b.ndim == 3 else None
    if ba is not None and bb is not None and ba != bb:
        raise ValueError(f"matmul batch sizes differ: {ba} vs {bb}")
    batch = ba or bb or 1
    shape = (M, N) if ba is None and bb is None else (batch, M, N)
    out = _out("out", out, shape, (a, b))
    rc = lib.sgemm(_p(out), _p(a), _p(b), ffi.NULL, bool(trans_a), bool(trans_b), M, N, Ka, batch,
                   M * Ka if ba is not None else 0, Ka * N if bb is not None else 0, M * N)
    _ok(rc, "sgemm")
    return out


def _linear_shapes(x, weight):
    """Check x (N,C) and weight (OC,C); return (N, C, OC)."""
    _arr("x", x, ndim=2)
    N, C = x.shape
    _arr("weight", weight, ndim=2)
    OC = weight.shape[0]
    if weight.shape[1] != C:
        raise ValueError(f"weight must be (OC, {C}), got {weight.shape}")
    return N, C, OC


def linear_forward(x, weight, bias=None, out=None, residual=None):
    """x (N,C), weight (OC,C), bias (OC,)|None -> out (N,OC) = x @ weight.T + bias (fused epilogue);
    residual (N,OC): out = residual + x @ weight.T + bias, added in the same epilogue."""
    load()
    N, C, OC = _linear_shapes(x, weight)
    _opt("bias", bias, (OC,))
    _opt("residual", residual, (N, OC))
    out = _out("out", out, (N, OC), (x, weight, bias, residual))
    _ok(lib.linear_forward(_p(out), _p(x), _p(weight), _p(bias), _p(residual), N, C, OC), "linear_forward")
    return out


def linear_backward(dout, x, weight, need_dx=True, need_dweight=True, need_dbias=True, dweight_out=None,
                    dbias_out=None, accumulate=False):
    """-> dx (N,C) = dout @ weight, dweight (OC,C) = dout.T @ x, dbias (OC,) (None where not needed).

    dweight_out / dbias_out: arrays to write those gradients into (a parameter's lent ``.grad`` buffer),
    returned in place of fresh ones; ``accumulate=True`` adds them to the arrays' values instead
    (``.grad += ...`` in the GEMM's epilogue, no separate pass). A needed gradient without an array is fresh
    either way."""
    load()
    N, C, OC = _linear_shapes(x, weight)
    _arr("dout", dout, (N, OC))
    inputs = (dout, x, weight)
    dx = np.empty((N, C), _F32) if need_dx else None
    dw = db = None
    if need_dweight:
        dw = _out("dweight_out", dweight_out, (OC, C), inputs) if dweight_out is not None or not accumulate \
            else np.zeros((OC, C), _F32)
    if need_dbias:
        db = _out("dbias_out", dbias_out, (OC,), inputs) if dbias_out is not None or not accumulate \
            else np.zeros((OC,), _F32)
    _ok(lib.linear_backward(_p(dx), _p(dw), _p(db), _p(dout), _p(x), _p(weight), N, C, OC, int(bool(accumulate))),
        "linear_backward")
    return dx, dw, db


# ----------------------------------------------------------------------------------------------
# normalisation

def layer_norm_forward(x, weight, bias, eps):
    load()
    _arr("x", x, ndim=2)
    N, C = x.shape
    _opt("weight", weight, (C,))
    _opt("bias", bias, (C,))
    out, mean, rstd = np.empty((N, C), _F32), np.empty(N, _F32), np.empty(N, _F32)
    _ok(lib.layernorm_forward(_p(out), _p(mean), _p(rstd), _p(x), _p(weight), _p(bias), float(eps), N, C),
        "layernorm_forward")
    return out, mean, rstd


def layer_norm_backward(dout, x, weight, mean, rstd, has_bias, dx_out=None, accumulate=False):
    """-> dx (N,C), dweight (C,) or None, dbias (C,) or None. dx_out: the array dx is written into (accumulate:
    added to, ``dx_out += dx`` in the same pass: a pending gradient of x) and returned as dx."""
    load()
    _arr("x", x, ndim=2)
    N, C = x.shape
    _arr("dout", dout, (N, C))
    _opt("weight", weight, (C,))
    _arr("mean", mean, (N,))
    _arr("rstd", rstd, (N,))
    dx = _dx_out(dx_out, (N, C), (dout, x, weight, mean, rstd), accumulate)
    dw = np.empty(C, _F32) if weight is not None else None
    db = np.empty(C, _F32) if has_bias else None
    _ok(lib.layernorm_backward(_p(dx), _p(dw), _p(db), _p(dout), _p(x), _p(weight), _p(mean), _p(rstd), N, C,
                               int(bool(accumulate))), "layernorm_backward")
    return dx, dw, db


def _dx_out(dx_out, shape, inputs, accumulate):
    """The norm backwards' dx: dx_out (checked) or a fresh array; accumulate needs dx_out (so the kernel's
    accumulate flag implies it)."""
    if dx_out is None:
        if accumulate:
            raise ValueError("accumulate=True needs dx_out (the array to add the gradient into)")
        return np.empty(shape, _F32)
    return _out("dx_out", dx_out, shape, inputs)


def rms_norm_forward(x, weight, eps):
    load()
    _arr("x", x, ndim=2)
    N, C = x.shape
    _opt("weight", weight, (C,))
    out, rstd = np.empty((N, C), _F32), np.empty(N, _F32)
    _ok(lib.rmsnorm_forward(_p(out), _p(rstd), _p(x), _p(weight), float(eps), N, C), "rmsnorm_forward")
    return out, rstd


def rms_norm_backward(dout, x, weight, rstd, dx_out=None, accumulate=False):
    """-> dx (N,C), dweight (C,) or None; dx_out / accumulate as for layer_norm_backward."""
    load()
    _arr("x", x, ndim=2)
    N, C = x.shape
    _arr("dout", dout, (N, C))
    _opt("weight", weight, (C,))
    _arr("rstd", rstd, (N,))
    dx = _dx_out(dx_out, (N, C), (dout, x, weight, rstd), accumulate)
    dw = np.empty(C, _F32) if weight is not None else None
    _ok(lib.rmsnorm_backward(_p(dx), _p(dw), _p(dout), _p(x), _p(weight), _p(rstd), N, C, int(bool(accumulate))),
        "rmsnorm_backward")
    return dx, dw


# ----------------------------------------------------------------------------------------------
# attention

def _attn_args(q, k, v, causal_offset, attn_bias, key_padding_mask):
    check_attention(q, k, v, causal_offset, attn_bias, key_padding_mask)
    _arr("q", q)
    _arr("k", k)
    _arr("v", v)
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    if attn_bias is not None:
        if attn_bias.dtype != _F32:
            raise TypeError(f"attn_bias must be float32 for the C backend, got {attn_bias.dtype}")
        b4 = attention_bias_4d(attn_bias, B, H, T, S)
        if any(st < 0 or st % 4 for st in b4.strides):
            b4 = np.ascontiguousarray(b4)
        # broadcast dims get stride 0: the (B,H,T,S) bias is never materialised
        strides = [0 if n == 1 else st // 4 for n, st in zip(b4.shape, b4.strides)]
        bias_ptr = ffi.cast("float *", b4.ctypes.data)  # any strides: from_buffer needs contiguity
        keep = b4
    else:
        strides, bias_ptr, keep = [0, 0, 0, 0], ffi.NULL, None
    if key_padding_mask is not None:
        if not key_padding_mask.flags.c_contiguous:
            key_padding_mask = np.ascontiguousarray(key_padding_mask)
        kpm = ffi.from_buffer("uint8_t[]", key_padding_mask)
    else:
        kpm = ffi.NULL
    causal = causal_offset is not None
    off = int(causal_offset) if causal else 0
    if not -(2 ** 62) < off < 2 ** 62:
        raise ValueError("causal_offset out of range")
    return (B, H, Hkv, T, S, D), (bias_ptr, *strides), kpm, causal, off, (keep, key_padding_mask)


def attention_forward(q, k, v, scale, causal_offset=None, attn_bias=None, key_padding_mask=None):
    """Flash-style attention: q (B,H,T,D), k/v (B,Hkv,S,D) -> out (B,H,T,D), lse (B,H,T).
    Fully masked rows give out = 0 and lse = -inf. Memory O(B*H*T*D): no (T,S) matrix."""
    load()
    sizes, bias, kpm, causal, off, _keep = _attn_args(q, k, v, causal_offset, attn_bias, key_padding_mask)
    B, H, Hkv, T, S, D = sizes
    out, lse = np.empty((B, H, T, D), _F32), np.empty((B, H, T), _F32)
    rc = lib.attention_forward(_p(out), _p(lse), _p(q), _p(k), _p(v), *bias, kpm, causal, off,
                               float(scale), B, H, Hkv, T, S, D)
    _ok(rc, "attention_forward")
    return out, lse


def attention_backward(dout, q, k, v, out, lse, scale, causal_offset=None, attn_bias=None,
                       key_padding_mask=None):
    """-> dq (B,H,T,D), dk/dv (B,Hkv,S,D); scores recomputed tile by tile from lse."""
    load()
    sizes, bias, kpm, causal, off, _keep = _attn_args(q, k, v, causal_offset, attn_bias, key_padding_mask)
    B, H, Hkv, T, S, D = sizes
    _arr("dout", dout, q.shape)
    _arr("out", out, q.shape)
    _arr("lse", lse, (B, H, T))
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    rc = lib.attention_backward(_p(dq), _p(dk), _p(dv), _p(dout), _p(q), _p(k), _p(v), _p(out), _p(lse),
                                *bias, kpm, causal, off, float(scale), B, H, Hkv, T, S, D)
    _ok(rc, "attention_backward")
    return dq, dk, dv


def attention_qkv_forward(qkv, n_head, n_kv_head, scale):
    """Causal self-attention read straight from qkv (B, T, (H + 2 Hkv) D) -> out (B, T, H D), lse (B, H, T)."""
    load()
    B, T, D = check_qkv(qkv, n_head, n_kv_head)
    _arr("qkv", qkv)
    out, lse = np.empty((B, T, n_head * D), _F32), np.empty((B, n_head, T), _F32)
    _ok(lib.attention_qkv_forward(_p(out), _p(lse), _p(qkv), float(scale), B, n_head, n_kv_head, T, D),
        "attention_qkv_forward")
    return out, lse


def attention_qkv_backward(dout, qkv, out, lse, n_head, n_kv_head, scale):
    """-> dqkv (B, T, (H + 2 Hkv) D), written straight into qkv's layout."""
    load()
    B, T, D = check_qkv(qkv, n_head, n_kv_head)
    _arr("qkv", qkv)
    _arr("dout", dout, (B, T, n_head * D))
    _arr("out", out, (B, T, n_head * D))
    _arr("lse", lse, (B, n_head, T))
    dqkv = np.empty_like(qkv)
    _ok(lib.attention_qkv_backward(_p(dqkv), _p(dout), _p(qkv), _p(out), _p(lse), float(scale), B, n_head,
                                   n_kv_head, T, D), "attention_qkv_backward")
    return dqkv


# ----------------------------------------------------------------------------------------------
# rotary position embeddings

def _rotary(kernel, name, x, cos, sin, rotated_heads):
    """Check x (B,T,W), cos/sin (T,D) and run lib.<kernel> into a new (B,T,W) array."""
    load()
    B, T, W, D = check_rotary_qkv(name, x, cos, sin, rotated_heads)
    _arr(name, x)
    _arr("cos", cos, (T, D))
    _arr("sin", sin, (T, D))
    out = np.empty_like(x)
    _ok(getattr(lib, kernel)(_p(out), _p(x), _p(cos), _p(sin), B, T, W, D, int(rotated_heads)), kernel)
    return out


def rotary_qkv_forward(qkv, cos, sin, rotated_heads):
    """qkv (B,T,W), cos/sin (T,D) -> out (B,T,W): heads [0, rotated_heads) rotated (rotate_half), the rest copied."""
    return _rotary("rotary_qkv_forward", "qkv", qkv, cos, sin, rotated_heads)


def rotary_qkv_backward(g, cos, sin, rotated_heads):
    """g (B,T,W) -> dx (B,T,W): the transpose rotation on heads [0, rotated_heads), g elsewhere."""
    return _rotary("rotary_qkv_backward", "g", g, cos, sin, rotated_heads)


# ----------------------------------------------------------------------------------------------
# cross-entropy

def _targets64(targets, N, V, ignore_index):
    check_targets(targets, N, V, ignore_index)
    if not -(2 ** 63) <= int(ignore_index) < 2 ** 63:
        raise ValueError("ignore_index out of int64 range")
    return np.ascontiguousarray(targets, dtype=_I64)


def cross_entropy_forward(logits, targets, ignore_index=IGNORE_INDEX, label_smoothing=0.0):
    load()
    _arr("logits", logits, ndim=2)
    N, V = logits.shape
    t = _targets64(targets, N, V, ignore_index)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    losses, lse = np.empty(N, _F32), np.empty(N, _F32)
    _ok(lib.crossentropy_forward(_p(losses), _p(lse), _p(logits), _p(t, "int64_t[]"), int(ignore_index),
                                 float(label_smoothing), N, V), "crossentropy_forward")
    return losses, lse


def cross_entropy_backward(dlosses, logits, targets, lse, ignore_index=IGNORE_INDEX, label_smoothing=0.0, out=None):
    """dlogits (N,V); `out` may be `logits` itself (written in place, element by element)."""
    load()
    _arr("logits", logits, ndim=2)
    N, V = logits.shape
    t = _targets64(targets, N, V, ignore_index)
    _arr("dlosses", dlosses, (N,))
    _arr("lse", lse, (N,))
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    # out == logits is allowed (elementwise in place); other overlaps are not
    out = _out("out", out, (N, V), (dlosses, lse) if out is logits else (dlosses, lse, logits))
    _ok(lib.crossentropy_backward(_p(out), _p(dlosses), _p(logits), _p(t, "int64_t[]"), _p(lse),
                                  int(ignore_index), float(label_smoothing), N, V), "crossentropy_backward")
    return out


# ----------------------------------------------------------------------------------------------
# GELU

def _approx(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate == "tanh"


def gelu_forward(x, approximate="none"):
    load()
    _arr("x", x)
    out = np.empty_like(x)
    _ok(lib.gelu_forward(_p(out), _p(x), _approx(approximate), x.size), "gelu_forward")
    return out


def gelu_backward(dout, x, approximate="none"):
    load()
    _arr("x", x)
    _arr("dout", dout, x.shape)
    dx = np.empty_like(x)
    _ok(lib.gelu_backward(_p(dx), _p(dout), _p(x), _approx(approximate), x.size), "gelu_backward")
    return dx


def gelu_forward_backward(dout, x, approximate="none"):
    """(gelu(x), dout * gelu'(x)) from one evaluation of Phi per element; dout None: gelu'(x)."""
    load()
    _arr("x", x)
    _opt("dout", dout, x.shape)
    out, dx = np.empty_like(x), np.empty_like(x)
    _ok(lib.gelu_forward_backward(_p(out), _p(dx), _p(dout), _p(x), _approx(approximate), x.size),
        "gelu_forward_backward")
    return out, dx


# ----------------------------------------------------------------------------------------------
# AdamW

def adamw_step(param, grad, exp_avg, exp_avg_sq, step, lrs, weight_decays, segments,
               beta1=0.9, beta2=0.999, eps=1e-8):
    """torch.optim.AdamW step over flat float32 buffers (P,), in place, per-segment lr / weight decay."""
    load()
    _arr("param", param, ndim=1)
    P = param.shape[0]
    for name, buf in (("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
        _arr(name, buf, (P,))
    for name, buf in (("param", param), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
        if not buf.flags.writeable:
            raise ValueError(f"{name} must be writable")
    _arr("lrs", lrs, ndim=1, dtype=_F64)
    G = lrs.shape[0]
    _arr("weight_decays", weight_decays, (G,), dtype=_F64)
    _arr("segments", segments, (G + 1,), dtype=_I64)
    if segments[0] < 0 or segments[-1] > P or np.any(np.diff(segments) < 0):
        raise ValueError(f"segments must be non-decreasing offsets within [0, {P}]")
    if int(step) < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    bufs = (param, grad, exp_avg, exp_avg_sq)
    for i in range(4):
        for j in range(i + 1, 4):
            if np.may_share_memory(bufs[i], bufs[j]):
                raise ValueError("AdamW buffers must not overlap")
    _ok(lib.adamw_step(_p(param), _p(grad), _p(exp_avg), _p(exp_avg_sq), _p(segments, "int64_t[]"),
                       _p(lrs, "double[]"), _p(weight_decays, "double[]"), G, int(step),
                       float(beta1), float(beta2), float(eps)), "adamw_step")


# ----------------------------------------------------------------------------------------------
# embedding

def embedding_backward(dout, ids, num_embeddings):
    """dweight (V,C): scatter-add of the dout (N,C) rows at ids (N,); deterministic. np.zeros gives
    lazily zeroed pages, so a large table costs only the rows the ids hit."""
    load()
    _arr("dout", dout, ndim=2)
    N, C, V = check_embedding_backward(dout, ids, num_embeddings)  # also every id in [0, V)
    ids64 = np.ascontiguousarray(ids, dtype=_I64)
    dweight = np.zeros((V, C), _F32)
    _ok(lib.embedding_backward(_p(dweight), _p(dout), _p(ids64, "int64_t[]"), N, C, V), "embedding_backward")
    return dweight


# ----------------------------------------------------------------------------------------------
# sum of squares

def sum_squares(x):
    """sum(x**2) accumulated in float64, as a Python float; x any shape, float32 or float64, C-contiguous.

    A zero-size x gives 0.0 without calling C (the empty sum is well defined, unlike the other kernels'
    empty outputs). The result is deterministic for a given thread count."""
    load()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in (_F32, _F64):
        raise TypeError(f"x must be float32 or float64 for the C backend, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError(f"x must be C-contiguous (got strides {x.strides} for shape {x.shape})")
    if x.size == 0:
        return 0.0
    out = ffi.new("double *")
    if x.dtype == _F32:
        _ok(lib.sum_squares_f32(_p(x), x.size, out), "sum_squares_f32")
    else:
        _ok(lib.sum_squares_f64(_p(x, "double[]"), x.size, out), "sum_squares_f64")
    return float(out[0])


# convolution, max pooling, batch norm: their wrappers live in c_conv.py (imported here, after the helpers it uses)
from .c_conv import (batch_norm_backward, batch_norm_forward, conv2d_backward, conv2d_forward,  # noqa: E402
                     max_pool2d_backward, max_pool2d_forward)
from .c_quant import int8_linear_forward  # noqa: E402 - the int8 linear (csrc/quant.c)
from .c_pool import avg_pool2d_backward, avg_pool2d_forward  # noqa: E402 - average pooling (csrc/avg_pool.c)

__all__ = [n for n in KERNEL_NAMES if n in globals()]
# Every wrapper raises EmptyInputError (from _arr) for a zero-size array argument before calling C, so
# the dispatch point catches that instead of scanning every call's arguments (kernels._empty_to_reference).
RAISES_ON_EMPTY = True
# The backend table read by kernels/__init__.py: every kernel but the average pooling ones, float32 only
# (sum_squares also float64); `auto` picks each of them first (AUTO_TABLE).
KERNELS = {name: globals()[name] for name in KERNEL_NAMES if name in globals()}
DTYPES = {name: (_F32,) for name in KERNELS}
DTYPES["sum_squares"] = (_F32, _F64)
