"""Convolution, pooling and the image norms (NCHW): conv2d, max/avg/adaptive-avg pooling, batch norm
(training statistics) and group norm.

Each op reaches its kernel through ``goldbull_np.kernels.get(name, dtype)``, the one dispatch point;
group norm is a LayerNorm over (B*G, C/G*H*W) rows (the layer-norm kernels) followed by a per-channel
affine map. Forwards save only what their backward reads (im2col is recomputed in backward, not kept).
"""
import numpy as np

from ... import kernels as K
from ..function import Function


def _c(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


class Conv2d(Function):
    """out = conv2d(x, weight) + bias; x (B,C,H,W), weight (OC, C/groups, KH, KW), bias (OC,)|None."""

    saved_inputs = (0, 1)

    def forward(self, x, weight, bias=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        self.x, self.weight, self.has_bias = _c(x), _c(weight), bias is not None
        self.params = dict(stride=stride, padding=pads, dilation=dilation, groups=groups)
        return K.get("conv2d_forward", x.dtype)(self.x, self.weight, None if bias is None else _c(bias),
                                                **self.params)  # (B, OC, OH, OW)

    def backward(self, g):
        nx, nw, nb = (self.needs_input_grad + (False,))[:3]
        dx, dw, db = K.get("conv2d_backward", g.dtype)(_c(g), self.x, self.weight, **self.params, need_dx=nx,
                                                       need_dweight=nw, need_dbias=nb and self.has_bias)
        return (dx, dw, db) if self.has_bias else (dx, dw)


class MaxPool2d(Function):
    """x (B,C,H,W) -> the window maxima (B,C,OH,OW); saves the argmax indices only."""

    saved_inputs = ()

    def forward(self, x, kernel_size=2, stride=None, padding=0, dilation=1):
        self.shape = x.shape
        out, self.indices = K.get("max_pool2d_forward", x.dtype)(_c(x), kernel_size, stride, padding, dilation)
        return out

    def backward(self, g):
        return K.get("max_pool2d_backward", g.dtype)(_c(g), self.indices, self.shape)


class AvgPool2d(Function):
    saved_inputs = ()

    def forward(self, x, kernel_size=2, stride=None, padding=0, count_include_pad=True):
        self.shape = x.shape
        self.params = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                           count_include_pad=count_include_pad)
        return K.get("avg_pool2d_forward", x.dtype)(_c(x), **self.params)

    def backward(self, g):
        return K.get("avg_pool2d_backward", g.dtype)(_c(g), self.shape, **self.params)


def adaptive_bounds(n, out):
    """torch's adaptive pooling windows over n positions: [floor(i*n/out), ceil((i+1)*n/out))."""
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


class AdaptiveAvgPool2d(Function):
    """x (B,C,H,W) -> (B,C,OH,OW) averaging torch's adaptive windows (which may overlap)."""

    saved_inputs = ()

    def forward(self, x, output_size=(1, 1)):
        OH, OW = output_size
        self.shape = x.shape
        self.rows, self.cols = adaptive_bounds(x.shape[2], OH), adaptive_bounds(x.shape[3], OW)
        out = np.empty(x.shape[:2] + (OH, OW), x.dtype)
        for i, (h0, h1) in enumerate(self.rows):
            for j, (w0, w1) in enumerate(self.cols):
                out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
        return out

    def backward(self, g):
        dx = np.zeros(self.shape, g.dtype)
        for i, (h0, h1) in enumerate(self.rows):
            for j, (w0, w1) in enumerate(self.cols):
                dx[:, :, h0:h1, w0:w1] += (g[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
        return dx


class BatchNorm(Function):
    """Training-mode batch norm over every axis but 1: x (N, C, *) normalised with the batch's mean
    and biased variance, then scaled and shifted. ``running_mean``/``running_var`` (float ndarrays,
    updated in place like torch: unbiased variance, ``momentum``) when given."""

    saved_inputs = (0, 1)

    def forward(self, x, weight=None, bias=None, eps=1e-5, running_mean=None, running_var=None, momentum=0.1):
        # weight and bias (C,) come together or not at all (F.batch_norm fills in a missing one)
        self.shape = x.shape
        x3 = _c(x).reshape(x.shape[0], x.shape[1], -1)  # (N, C, L)
        w = None if weight is None else _c(weight)
        out, self.mean, self.rstd = K.get("batch_norm_forward", x.dtype)(
            x3, w, None if bias is None else _c(bias), eps)
        self.x3, self.w, self.affine = x3, w, weight is not None
        if running_mean is not None:
            n = x3.shape[0] * x3.shape[2]
            var = 1.0 / np.square(self.rstd.astype(np.float64)) - eps  # biased batch variance
            unbiased = var * (n / (n - 1)) if n > 1 else var
            running_mean *= 1 - momentum
            running_mean += momentum * self.mean
            running_var *= 1 - momentum
            running_var += (momentum * unbiased).astype(running_var.dtype)
        return out.reshape(x.shape)

    def backward(self, g):
        dx, dw, db = K.get("batch_norm_backward", g.dtype)(_c(g).reshape(self.x3.shape), self.x3,
                                                           None if self.w is None else _c(self.w),
                                                           self.mean, self.rstd, self.affine)
        return (dx.reshape(self.shape), dw, db) if self.affine else dx.reshape(self.shape)


class GroupNorm(Function):
    """x (B, C, *) normalised over each group of C/G channels and the spatial axes, then a per-channel
    affine map (weight, bias (C,)). The statistics are a LayerNorm's over (B*G, C/G * L) rows."""

    saved_inputs = (0, 1)

    def forward(self, x, weight=None, bias=None, num_groups=1, eps=1e-5):
        B, C = x.shape[:2]
        self.shape, self.G = x.shape, num_groups
        x2 = _c(x).reshape(B * num_groups, -1)  # (B*G, C/G*L)
        xhat, self.mean, self.rstd = K.get("layer_norm_forward", x.dtype)(x2, None, None, eps)
        self.x2, self.weight, self.has_affine = x2, weight, weight is not None
        xh = xhat.reshape(B, C, -1)  # (B, C, L)
        if weight is None:
            return xh.reshape(x.shape)
        self.xhat = xh
        return (xh * weight[None, :, None] + bias[None, :, None]).astype(x.dtype, copy=False).reshape(x.shape)

    def backward(self, g):
        B, C = self.shape[:2]
        g3 = _c(g).reshape(B, C, -1)  # (B, C, L)
        dxhat = g3 * self.weight[None, :, None] if self.has_affine else g3
        dx, _, _ = K.get("layer_norm_backward", g.dtype)(_c(dxhat).reshape(self.x2.shape), self.x2, None,
                                                         self.mean, self.rstd, False)
        dx = dx.reshape(self.shape)
        if not self.has_affine:
            return dx
        dw = (g3 * self.xhat).sum(axis=(0, 2)).astype(g.dtype, copy=False)
        db = g3.sum(axis=(0, 2)).astype(g.dtype, copy=False)
        return dx, dw, db
