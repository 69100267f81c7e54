"""NumPy reference of the convolution, pooling and batch-norm kernels (NCHW), re-exported by reference.py.

Legend: B = batch, C = in channels, OC = out channels, G = groups, H/W = input size, OH/OW = output
size, KH/KW = kernel size. conv2d is im2col (a strided view of the padded input, copied once) and one
batched matmul per group; its backward is col2im (a scatter-add per kernel tap). Pads are
(top, bottom, left, right), so torch's padding="same" with an even kernel is expressible.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_batch_norm, check_conv2d, check_pool2d

CONV_KERNEL_NAMES = ("conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
                     "avg_pool2d_forward", "avg_pool2d_backward", "batch_norm_forward", "batch_norm_backward")


def _stat_dtype(dtype):
    return np.float32 if dtype == np.float32 else dtype


def _padded(x, pads, value=0.0):
    pt, pb, pl, pr = pads
    if not (pt or pb or pl or pr):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def _windows(xp, KH, KW, OH, OW, stride, dilation):
    """(B, C, KH, KW, OH, OW) view: xp[b, c, oh*sh + kh*dh, ow*sw + kw*dw]."""
    sB, sC, sH, sW = xp.strides
    (sh, sw), (dh, dw) = stride, dilation
    return np.lib.stride_tricks.as_strided(
        xp, (xp.shape[0], xp.shape[1], KH, KW, OH, OW), (sB, sC, dh * sH, dw * sW, sh * sH, sw * sW),
        writeable=False)


def _cols(x, s):
    """im2col: (B, G, Cg*KH*KW, OH*OW) copy of the padded input's windows."""
    win = _windows(_padded(x, s["pads"]), s["KH"], s["KW"], s["OH"], s["OW"], s["stride"], s["dilation"])
    B, G = s["B"], s["G"]
    return win.reshape(B, G, (s["C"] // G) * s["KH"] * s["KW"], s["OH"] * s["OW"])


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """x (B,C,H,W), weight (OC, C/G, KH, KW), bias (OC,)|None -> out (B, OC, OH, OW)."""
    s = check_conv2d(x, weight, bias, stride, padding, dilation, groups)
    B, G, OC = s["B"], s["G"], s["OC"]
    cols = _cols(x, s)                                        # (B, G, CKK, P)
    w = weight.reshape(G, OC // G, -1)                        # (G, OCg, CKK)
    out = np.matmul(w[None], cols)                            # (B, G, OCg, P)
    out = out.reshape(B, OC, s["OH"], s["OW"])
    if bias is not None:
        out += bias.reshape(1, OC, 1, 1)
    return out.astype(x.dtype, copy=False)


def _col2im(dcols, s, dtype):
    """dcols (B, C, KH, KW, OH, OW) -> dx (B, C, H, W): the scatter-add adjoint of _windows."""
    pt, pb, pl, pr = s["pads"]
    (sh, sw), (dh, dw) = s["stride"], s["dilation"]
    B, C, H, W, OH, OW = s["B"], s["C"], s["H"], s["W"], s["OH"], s["OW"]
    dxp = np.zeros((B, C, H + pt + pb, W + pl + pr), dtype)
    for kh in range(s["KH"]):
        for kw in range(s["KW"]):
            h0, w0 = kh * dh, kw * dw
            dxp[:, :, h0:h0 + sh * (OH - 1) + 1:sh, w0:w0 + sw * (OW - 1) + 1:sw] += dcols[:, :, kh, kw]
    return dxp[:, :, pt:pt + H, pl:pl + W]


def conv2d_backward(dout, x, weight, stride=1, padding=0, dilation=1, groups=1, need_dx=True,
                    need_dweight=True, need_dbias=True):
    """dout (B, OC, OH, OW) -> dx (B,C,H,W), dweight (OC, C/G, KH, KW), dbias (OC,) (None where not needed)."""
    s = check_conv2d(x, weight, None, stride, padding, dilation, groups)
    B, G, OC, C = s["B"], s["G"], s["OC"], s["C"]
    if dout.shape != (B, OC, s["OH"], s["OW"]):
        raise ValueError(f"conv2d_backward: dout must have shape {(B, OC, s['OH'], s['OW'])}, got {dout.shape}")
    dg = dout.reshape(B, G, OC // G, s["OH"] * s["OW"])        # (B, G, OCg, P)
    dx = dw = db = None
    if need_dweight:
        cols = _cols(x, s)                                    # (B, G, CKK, P)
        dw = np.einsum("bgop,bgkp->gok", dg, cols, optimize=True).reshape(weight.shape).astype(x.dtype, copy=False)
    if need_dx:
        w = weight.reshape(G, OC // G, -1)                    # (G, OCg, CKK)
        dcols = np.matmul(w.swapaxes(1, 2)[None], dg)         # (B, G, CKK, P)
        dcols = dcols.reshape(B, C, s["KH"], s["KW"], s["OH"], s["OW"])
        dx = np.ascontiguousarray(_col2im(dcols, s, x.dtype))
    if need_dbias:
        db = dout.sum(axis=(0, 2, 3)).astype(x.dtype, copy=False)
    return dx, dw, db


# ----------------------------------------------------------------------------------------------
# pooling

def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1):
    """x (B,C,H,W) -> out (B,C,OH,OW), indices (B,C,OH,OW) int64 = h*W + w of each max (torch's);
    padding counts as -inf; ties pick the first position in the window."""
    s = check_pool2d("max_pool2d", x, kernel_size, stride, padding, dilation)
    (ph, pw), (sh, sw), (dh, dw) = s["padding"], s["stride"], s["dilation"]
    B, C, H, W, KH, KW, OH, OW = (s[k] for k in ("B", "C", "H", "W", "KH", "KW", "OH", "OW"))
    xp = _padded(x, (ph, ph, pw, pw), -np.inf)
    win = _windows(xp, KH, KW, OH, OW, s["stride"], s["dilation"])          # (B,C,KH,KW,OH,OW)
    flat = win.reshape(B, C, KH * KW, OH, OW)
    k = np.argmax(flat, axis=2)                                               # (B,C,OH,OW)
    out = np.take_along_axis(flat, k[:, :, None], axis=2)[:, :, 0]
    h = np.arange(OH)[:, None] * sh - ph + (k // KW) * dh
    w = np.arange(OW)[None, :] * sw - pw + (k % KW) * dw
    return np.ascontiguousarray(out), (h * W + w).astype(np.int64)


def max_pool2d_backward(dout, indices, input_shape):
    """dout, indices (B,C,OH,OW) -> dx (B,C,H,W): dout scattered (added) at the argmax positions."""
    B, C, H, W = input_shape
    if dout.shape != indices.shape or dout.ndim != 4 or dout.shape[:2] != (B, C):
        raise ValueError(f"max_pool2d_backward: dout {dout.shape} and indices {indices.shape} must be "
                         f"(B, C, OH, OW) with (B, C) = {(B, C)}")
    HW = H * W
    base = (np.arange(B * C, dtype=np.int64) * HW).reshape(B, C, 1, 1)
    dx = np.bincount((indices + base).reshape(-1), weights=dout.reshape(-1).astype(np.float64),
                     minlength=B * C * HW)
    return dx.reshape(B, C, H, W).astype(dout.dtype)


def _avg_divisor(s, count_include_pad, dtype):
    """(OH, OW) divisor of each window: KH*KW, or the number of in-bounds taps."""
    if count_include_pad:
        return np.asarray(s["KH"] * s["KW"], dtype)
    (ph, pw), H, W = s["padding"], s["H"], s["W"]
    ones = _padded(np.ones((1, 1, H, W), dtype), (ph, ph, pw, pw))
    win = _windows(ones, s["KH"], s["KW"], s["OH"], s["OW"], s["stride"], s["dilation"])
    return win.sum(axis=(2, 3))[0, 0]


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """x (B,C,H,W) -> out (B,C,OH,OW): the window mean (zero padding counted when count_include_pad)."""
    s = check_pool2d("avg_pool2d", x, kernel_size, stride, padding)
    ph, pw = s["padding"]
    win = _windows(_padded(x, (ph, ph, pw, pw)), s["KH"], s["KW"], s["OH"], s["OW"], s["stride"], s["dilation"])
    out = win.sum(axis=(2, 3)) / _avg_divisor(s, count_include_pad, x.dtype)
    return np.ascontiguousarray(out.astype(x.dtype, copy=False))


def avg_pool2d_backward(dout, input_shape, kernel_size, stride=None, padding=0, count_include_pad=True):
    """dout (B,C,OH,OW) -> dx (B,C,H,W)."""
    shape_probe = np.empty((1, 1) + tuple(input_shape[2:]), dout.dtype)
    s = check_pool2d("avg_pool2d", shape_probe, kernel_size, stride, padding)
    B, C = input_shape[:2]
    if dout.shape != (B, C, s["OH"], s["OW"]):
        raise ValueError(f"avg_pool2d_backward: dout must have shape {(B, C, s['OH'], s['OW'])}, got {dout.shape}")
    s = dict(s, B=B, C=C)
    g = dout / _avg_divisor(s, count_include_pad, dout.dtype)               # (B,C,OH,OW)
    dcols = np.broadcast_to(g[:, :, None, None], (B, C, s["KH"], s["KW"], s["OH"], s["OW"]))
    ph, pw = s["padding"]
    s["pads"] = (ph, ph, pw, pw)
    return np.ascontiguousarray(_col2im(dcols, s, dout.dtype))


# ----------------------------------------------------------------------------------------------
# batch norm (training statistics; eval mode is an affine map the op computes itself)

def batch_norm_forward(x, weight, bias, eps):
    """x (N, C, L) -> out (N, C, L), mean (C,), rstd (C,) = 1/sqrt(biased var + eps), over N and L."""
    check_batch_norm(x, weight, bias)
    mean = x.mean(axis=(0, 2))
    xc = x - mean[None, :, None]
    var = (xc * xc).mean(axis=(0, 2))
    rstd = 1.0 / np.sqrt(var + eps)
    out = xc * rstd[None, :, None]
    if weight is not None:
        out *= weight[None, :, None]
    if bias is not None:
        out += bias[None, :, None]
    sd = _stat_dtype(x.dtype)
    return out.astype(x.dtype, copy=False), mean.astype(sd), rstd.astype(sd)


def batch_norm_backward(dout, x, weight, mean, rstd, has_bias=True):
    """-> dx (N,C,L), dweight (C,)|None (weight is None), dbias (C,)|None (not has_bias)."""
    check_batch_norm(x, weight, None)
    if dout.shape != x.shape:
        raise ValueError(f"batch_norm_backward: dout must have shape {x.shape}, got {dout.shape}")
    xhat = (x - mean[None, :, None]) * rstd[None, :, None]
    dxhat = dout * weight[None, :, None] if weight is not None else dout
    c1 = dxhat.mean(axis=(0, 2), keepdims=True)
    c2 = (dxhat * xhat).mean(axis=(0, 2), keepdims=True)
    dx = (dxhat - c1 - xhat * c2) * rstd[None, :, None]
    dt = x.dtype
    dweight = (dout * xhat).sum(axis=(0, 2)).astype(dt, copy=False) if weight is not None else None
    dbias = dout.sum(axis=(0, 2)).astype(dt, copy=False) if has_bias else None
    return dx.astype(dt, copy=False), dweight, dbias
