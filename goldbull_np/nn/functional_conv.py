"""The image ops of ``nn.functional`` (NCHW, torch's signatures): conv2d, max_pool2d, avg_pool2d,
adaptive_avg_pool2d, batch_norm, group_norm. Re-exported by ``nn.functional``."""
import numpy as np

from ..autograd.functions import conv as _conv
from ..autograd.tensor import Tensor
from ..kernels._checks import _pair_ints


def _pair(name, v, low):
    return _pair_ints(name, v, low)


def _need_4d(op, x):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")


def _same_pads(k, d):
    """torch's padding='same' for stride 1: total = d*(k-1), the extra one at the end."""
    total = d * (k - 1)
    return total // 2, total - total // 2


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as torch) over an NCHW input.

    Args:
        input: (N, C, H, W).
        weight: (OC, C/groups, KH, KW).
        bias: (OC,) or None.
        stride, dilation: int or (h, w).
        padding: int, (h, w), "valid" or "same" (stride 1 only; an even kernel pads one more at the end).
        groups: C and OC divisible by it; groups == C is a depthwise convolution.
    Returns:
        (N, OC, OH, OW), OH = (H + 2*ph - dh*(KH-1) - 1) // sh + 1.
    """
    _need_4d("conv2d", input)
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (OC, C/groups, KH, KW), got shape {tuple(weight.shape)}")
    stride, dilation = _pair("stride", stride, 1), _pair("dilation", dilation, 1)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
            pads = _same_pads(weight.shape[2], dilation[0]) + _same_pads(weight.shape[3], dilation[1])
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        ph, pw = _pair("padding", padding, 0)
        pads = (ph, ph, pw, pw)
    C = input.shape[1]
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if C % groups or weight.shape[0] % groups or weight.shape[1] != C // groups:
        raise ValueError(f"conv2d: input with {C} channels, weight of shape {tuple(weight.shape)} and groups={groups}: "
                         "expected weight (OC, C/groups, KH, KW) with C and OC divisible by groups")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"conv2d: bias of shape {tuple(bias.shape)} does not match {weight.shape[0]} output channels")
    args = (input, weight) if bias is None else (input, weight, bias)
    return _conv.Conv2d.apply(*args, stride=stride, pads=pads, dilation=dilation, groups=int(groups))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over (KH, KW) windows; stride defaults to kernel_size; padding counts as -inf."""
    _need_4d("max_pool2d", input)
    if ceil_mode:
        raise NotImplementedError("max_pool2d: ceil_mode=True is not supported")
    stride = kernel_size if stride is None or (isinstance(stride, (tuple, list)) and not stride) else stride
    out = _conv.MaxPool2d.apply(input, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    if return_indices:
        node = out.grad_fn
        if node is None:
            raise NotImplementedError("max_pool2d: return_indices needs a recorded graph (grad mode on)")
        return out, Tensor._make(node.indices, False, None)
    return out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over (KH, KW) windows; zero padding counted in the divisor when ``count_include_pad``."""
    _need_4d("avg_pool2d", input)
    if ceil_mode or divisor_override is not None:
        raise NotImplementedError("avg_pool2d: ceil_mode and divisor_override are not supported")
    stride = kernel_size if stride is None or (isinstance(stride, (tuple, list)) and not stride) else stride
    return _conv.AvgPool2d.apply(input, kernel_size=kernel_size, stride=stride, padding=padding,
                                 count_include_pad=bool(count_include_pad))


def adaptive_avg_pool2d(input, output_size):
    """Average over torch's adaptive windows to (OH, OW); a None size keeps that input size."""
    _need_4d("adaptive_avg_pool2d", input)
    H, W = input.shape[2:]
    if isinstance(output_size, (int, np.integer)):
        output_size = (output_size, output_size)
    OH, OW = (H if output_size[0] is None else int(output_size[0]), W if output_size[1] is None else int(output_size[1]))
    if OH < 1 or OW < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    if (OH, OW) == (1, 1):
        return input.mean(dim=(2, 3), keepdim=True)
    if H % OH == 0 and W % OW == 0:
        return avg_pool2d(input, (H // OH, W // OW))
    return _conv.AdaptiveAvgPool2d.apply(input, output_size=(OH, OW))


def _arr(t):
    return None if t is None else (t.data if isinstance(t, Tensor) else np.asarray(t))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation over every axis but 1 (torch's signature).

    Args:
        input: (N, C, *).
        running_mean, running_var: (C,) buffers (Tensors or arrays) or None; in training they are
            updated in place (momentum; the unbiased batch variance), in eval they normalise.
        weight, bias: (C,) or None.
        training: batch statistics (True) or the running ones (False).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an (N, C, ...) input, got shape {tuple(input.shape)}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"batch_norm: {name} of shape {tuple(t.shape)} does not match {C} channels")
    shape = (1, C) + (1,) * (input.ndim - 2)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: eval mode needs running_mean and running_var")
        rm, rv = _arr(running_mean).astype(input.dtype), _arr(running_var).astype(input.dtype)
        scale = Tensor._make((1.0 / np.sqrt(rv + eps)).astype(input.dtype).reshape(shape), False, None)
        out = (input - Tensor._make(rm.reshape(shape), False, None)) * scale
        if weight is not None:
            out = out * weight.reshape(shape)
        if bias is not None:
            out = out + bias.reshape(shape)
        return out
    n = input.shape[0] * int(np.prod(input.shape[2:]))
    if n <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                         f"shape {tuple(input.shape)}")
    if weight is None and bias is not None:
        weight = Tensor._make(np.ones(C, input.dtype), False, None)
    if bias is None and weight is not None:
        bias = Tensor._make(np.zeros(C, input.dtype), False, None)
    args = (input,) if weight is None else (input, weight, bias)
    if momentum is None and running_mean is not None:
        raise NotImplementedError("batch_norm: momentum=None (a cumulative moving average) is not supported; "
                                  "pass a momentum in (0, 1]")
    return _conv.BatchNorm.apply(*args, eps=eps, running_mean=_arr(running_mean), running_var=_arr(running_var),
                                 momentum=0.1 if momentum is None else float(momentum))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each of ``num_groups`` channel groups over its channels and spatial axes; affine per channel."""
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected an (N, C, ...) input, got shape {tuple(input.shape)}")
    C = input.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or num_groups < 1 or C % num_groups:
        raise ValueError(f"group_norm: {C} channels are not divisible into num_groups={num_groups!r}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"group_norm: {name} of shape {tuple(t.shape)} does not match {C} channels")
    if (weight is None) != (bias is None):
        weight = weight if weight is not None else Tensor._make(np.ones(C, input.dtype), False, None)
        bias = bias if bias is not None else Tensor._make(np.zeros(C, input.dtype), False, None)
    args = (input,) if weight is None else (input, weight, bias)
    return _conv.GroupNorm.apply(*args, num_groups=int(num_groups), eps=eps)


__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm", "group_norm"]
