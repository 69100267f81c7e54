"""The C backend's average pooling (csrc/avg_pool.c): the wrappers check what the NumPy reference checks
(kernels/_checks.check_pool2d), so bad shapes raise the same errors before any C code runs."""
import numpy as np

from . import c_backend as _cb
from ._checks import check_pool2d

_F32 = np.dtype(np.float32)


def _pool_args(s, count_include_pad):
    (sh, sw), (ph, pw) = s["stride"], s["padding"]
    return (s["B"] * s["C"], s["H"], s["W"], s["KH"], s["KW"], s["OH"], s["OW"], sh, sw, ph, pw,
            int(bool(count_include_pad)))


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """x (B,C,H,W) -> out (B,C,OH,OW): the window mean (zero padding counted when count_include_pad)."""
    _cb.load()
    s = check_pool2d("avg_pool2d", x, kernel_size, stride, padding)
    _cb._arr("x", x)
    out = np.empty((s["B"], s["C"], s["OH"], s["OW"]), _F32)
    _cb._ok(_cb.lib.avg_pool2d_forward(_cb._p(out), _cb._p(x), *_pool_args(s, count_include_pad)),
            "avg_pool2d_forward")
    return out


def avg_pool2d_backward(dout, input_shape, kernel_size, stride=None, padding=0, count_include_pad=True):
    """dout (B,C,OH,OW) -> dx (B,C,H,W)."""
    _cb.load()
    if len(input_shape) != 4:
        raise ValueError(f"avg_pool2d_backward: input_shape must be (B, C, H, W), got {input_shape}")
    B, C, H, W = (int(n) for n in input_shape)
    s = dict(check_pool2d("avg_pool2d", np.empty((1, 1, H, W), _F32), kernel_size, stride, padding), B=B, C=C)
    _cb._arr("dout", dout, (B, C, s["OH"], s["OW"]))
    dx = np.empty((B, C, H, W), _F32)
    _cb._ok(_cb.lib.avg_pool2d_backward(_cb._p(dx), _cb._p(dout), *_pool_args(s, count_include_pad)),
            "avg_pool2d_backward")
    return dx
