"""C wrapper of the int8 linear kernel (csrc/quant.c), re-exported by c_backend.py: checks everything,
allocates the output and the scratch rows, calls, checks the return code."""
from __future__ import annotations

import numpy as np

from . import c_backend as _cb
from .reference_quant import check_int8_linear

_F32, _I8 = np.dtype(np.float32), np.dtype(np.int8)


def int8_linear_forward(x, qweight, wscale, bias=None):
    """x (N, K) float32, qweight (OC, K) int8, wscale (OC,), bias (OC,) | None -> out (N, OC) float32."""
    _cb.load()
    N, K, OC = check_int8_linear(x, qweight, wscale, bias)
    _cb._arr("x", x, (N, K))
    _cb._arr("qweight", qweight, (OC, K), dtype=_I8)
    _cb._arr("wscale", wscale, (OC,))
    _cb._opt("bias", bias, (OC,))
    out = np.empty((N, OC), _F32)
    xq = np.empty((N, K), _I8)
    xs = np.empty(N, _F32)
    p = _cb._p
    _cb._ok(_cb.lib.int8_linear_forward(p(out), p(xq, "int8_t[]"), p(xs), p(x), p(qweight, "int8_t[]"), p(wscale),
                                        p(bias), N, K, OC), "int8_linear_forward")
    return out
