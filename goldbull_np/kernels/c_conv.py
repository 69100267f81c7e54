"""C wrappers of the convolution, max-pooling and batch-norm kernels (csrc/conv.c, csrc/conv_avx512.c,
csrc/conv_pool.c), re-exported by c_backend.py. Like every C wrapper: check everything (the shared
semantic checks in _checks.py, then dtype, contiguity, non-empty sizes, index ranges), allocate the
outputs, call, check the return code."""
from __future__ import annotations

import numpy as np

from . import c_backend as _cb
from ._checks import check_batch_norm, check_conv2d, check_pool2d

_F32, _I64 = np.dtype(np.float32), np.dtype(np.int64)


def _conv_sizes(x, weight, bias, stride, padding, dilation, groups):
    s = check_conv2d(x, weight, bias, stride, padding, dilation, groups)
    _cb._arr("x", x)
    _cb._arr("weight", weight)
    _cb._opt("bias", bias, (s["OC"],))
    (sh, sw), (pt, _, pl, _), (dh, dw) = s["stride"], s["pads"], s["dilation"]
    args = (s["B"], s["C"], s["H"], s["W"], s["OC"], s["KH"], s["KW"], s["OH"], s["OW"], sh, sw, pt, pl, dh, dw, s["G"])
    return s, args


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (B,C,H,W), weight (OC, C/G, KH, KW), bias (OC,)|None -> out (B, OC, OH, OW); float32."""
    _cb.load()
    s, args = _conv_sizes(x, weight, bias, stride, padding, dilation, groups)
    out = np.empty((s["B"], s["OC"], s["OH"], s["OW"]), _F32)
    p = _cb._p
    _cb._ok(_cb.lib.conv2d_forward(p(out), p(x), p(weight), p(bias), *args), "conv2d_forward")
    return out


def conv2d_backward(dout, x, weight, stride=1, padding=0, dilation=1, groups=1, need_dx=True,
                    need_dweight=True, need_dbias=True):
    """-> dx (B,C,H,W), dweight (OC, C/G, KH, KW), dbias (OC,); None where not needed."""
    _cb.load()
    s, args = _conv_sizes(x, weight, None, stride, padding, dilation, groups)
    _cb._arr("dout", dout, (s["B"], s["OC"], s["OH"], s["OW"]))
    dx = np.empty(x.shape, _F32) if need_dx else None
    dw = np.empty(weight.shape, _F32) if need_dweight else None
    db = np.empty((s["OC"],), _F32) if need_dbias else None
    if dx is None and dw is None and db is None:
        return None, None, None
    p = _cb._p
    _cb._ok(_cb.lib.conv2d_backward(p(dx), p(dw), p(db), p(dout), p(x), p(weight), *args), "conv2d_backward")
    return dx, dw, db


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1):
    """x (B,C,H,W) -> out (B,C,OH,OW), indices (B,C,OH,OW) int64 (h*W + w of each first maximum)."""
    _cb.load()
    s = check_pool2d("max_pool2d", x, kernel_size, stride, padding, dilation)
    _cb._arr("x", x)
    B, C, OH, OW = s["B"], s["C"], s["OH"], s["OW"]
    out, idx = np.empty((B, C, OH, OW), _F32), np.empty((B, C, OH, OW), _I64)
    (sh, sw), (ph, pw), (dh, dw) = s["stride"], s["padding"], s["dilation"]
    _cb._ok(_cb.lib.max_pool2d_forward(_cb._p(out), _cb._p(idx, "int64_t[]"), _cb._p(x), B * C, s["H"], s["W"],
                                       s["KH"], s["KW"], OH, OW, sh, sw, ph, pw, dh, dw), "max_pool2d_forward")
    return out, idx


def max_pool2d_backward(dout, indices, input_shape):
    """dout, indices (B,C,OH,OW) -> dx (B,C,H,W); every index must lie in [0, H*W)."""
    _cb.load()
    if len(input_shape) != 4:
        raise ValueError(f"max_pool2d_backward: input_shape must be (B, C, H, W), got {input_shape}")
    B, C, H, W = (int(n) for n in input_shape)
    _cb._arr("dout", dout, ndim=4)
    if dout.shape[:2] != (B, C):
        raise ValueError(f"max_pool2d_backward: dout {dout.shape} does not match input_shape {input_shape}")
    _cb._arr("indices", indices, dout.shape, dtype=_I64)
    if indices.min() < 0 or indices.max() >= H * W:
        raise ValueError(f"max_pool2d_backward: indices must lie in [0, {H * W})")
    dx = np.empty((B, C, H, W), _F32)
    _cb._ok(_cb.lib.max_pool2d_backward(_cb._p(dx), _cb._p(dout), _cb._p(indices, "int64_t[]"), B * C, H, W,
                                        dout.shape[2], dout.shape[3]), "max_pool2d_backward")
    return dx


def batch_norm_forward(x, weight, bias, eps):
    """x (N, C, L) -> out (N, C, L), mean (C,), rstd (C,)."""
    _cb.load()
    N, C, L = check_batch_norm(x, weight, bias)
    _cb._arr("x", x)
    _cb._opt("weight", weight, (C,))
    _cb._opt("bias", bias, (C,))
    out, mean, rstd = np.empty((N, C, L), _F32), np.empty(C, _F32), np.empty(C, _F32)
    p = _cb._p
    _cb._ok(_cb.lib.batch_norm_forward(p(out), p(mean), p(rstd), p(x), p(weight), p(bias), float(eps), N, C, L),
            "batch_norm_forward")
    return out, mean, rstd


def batch_norm_backward(dout, x, weight, mean, rstd, has_bias=True):
    """-> dx (N,C,L), dweight (C,)|None (weight is None), dbias (C,)|None (not has_bias)."""
    _cb.load()
    N, C, L = check_batch_norm(x, weight, None)
    _cb._arr("x", x)
    _cb._arr("dout", dout, (N, C, L))
    _cb._opt("weight", weight, (C,))
    _cb._arr("mean", mean, (C,))
    _cb._arr("rstd", rstd, (C,))
    dx = np.empty((N, C, L), _F32)
    dw = np.empty(C, _F32) if weight is not None else None
    db = np.empty(C, _F32) if has_bias else None
    p = _cb._p
    _cb._ok(_cb.lib.batch_norm_backward(p(dx), p(dw), p(db), p(dout), p(x), p(weight), p(mean), p(rstd), N, C, L),
            "batch_norm_backward")
    return dx, dw, db


__all__ = ["conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
           "batch_norm_forward", "batch_norm_backward"]
