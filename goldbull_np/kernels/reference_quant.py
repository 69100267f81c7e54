"""NumPy reference of the quantised kernels (re-exported by reference.py).

int8_linear_forward: dynamic per-row activation quantisation, int8 x int8 products summed exactly (int64
here, int32 in C), rescaled by the row's and the output channel's scales:
    xs[n] = max_k |x[n, k]| / 127 (1 for an all-zero row),  xq = clip(rint(x / xs), -127, 127)
    out[n, o] = xs[n] * wscale[o] * sum_k xq[n, k] qweight[o, k] + bias[o]
"""
from __future__ import annotations

import numpy as np

QUANT_KERNEL_NAMES = ("int8_linear_forward",)


def check_int8_linear(x, qweight, wscale, bias):
    """Shapes and dtypes shared by every backend: -> (N, K, OC)."""
    for name, a in (("x", x), ("qweight", qweight), ("wscale", wscale)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"int8_linear_forward: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if x.ndim != 2 or qweight.ndim != 2 or wscale.ndim != 1:
        raise ValueError(f"int8_linear_forward: x (N, K), qweight (OC, K), wscale (OC,) expected, got "
                         f"{x.shape}, {qweight.shape}, {wscale.shape}")
    N, K = x.shape
    OC = qweight.shape[0]
    if qweight.shape[1] != K or wscale.shape != (OC,) or (bias is not None and np.shape(bias) != (OC,)):
        raise ValueError(f"int8_linear_forward: x {x.shape}, qweight {qweight.shape}, wscale {wscale.shape}, "
                         f"bias {None if bias is None else np.shape(bias)} do not fit (N, K) x (OC, K)")
    if qweight.dtype != np.int8:
        raise TypeError(f"int8_linear_forward: qweight must be int8, got {qweight.dtype}")
    if x.dtype != np.float32 or wscale.dtype != np.float32:
        raise TypeError(f"int8_linear_forward: x and wscale must be float32, got {x.dtype}, {wscale.dtype}")
    return N, K, OC


def quantize_rows(x):
    """x (N, K) float32 -> (xq (N, K) int8, xs (N,) float32): symmetric per-row scales."""
    m = np.max(np.abs(x), axis=1) if x.shape[1] else np.zeros(x.shape[0], np.float32)
    xs = np.where(m > 0, m / np.float32(127), np.float32(1)).astype(np.float32)  # (N,)
    xq = np.clip(np.rint(x * (np.float32(1) / xs)[:, None]), -127, 127).astype(np.int8)
    return xq, xs


def int8_linear_forward(x, qweight, wscale, bias=None):
    """x (N, K) float32, qweight (OC, K) int8, wscale (OC,) float32, bias (OC,) | None -> out (N, OC) float32."""
    check_int8_linear(x, qweight, wscale, bias)
    xq, xs = quantize_rows(x)
    acc = xq.astype(np.int64) @ qweight.astype(np.int64).T  # (N, OC), exact
    out = (acc.astype(np.float64) * xs[:, None].astype(np.float64) * wscale[None, :].astype(np.float64))
    if bias is not None:
        out += bias
    return out.astype(np.float32)
