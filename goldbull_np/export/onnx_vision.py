"""ONNX export of GoldbullVision (ResNet and ViT), opset 17, with the text exporter's graph helpers.

    pixel_values  float32 (batch, channels, height, width)   normalised as the model's config says
    -> logits     float32 (batch, num_classes)

ResNet: Conv / BatchNormalization (eval-mode running statistics) / Relu / MaxPool, the basic blocks'
residual Add, GlobalAveragePool and the head's Gemm; height and width are dynamic. GroupNorm (no opset-17
operator) is refused by name. ViT: the patch Conv, the class token and position table, the pre-norm
encoder blocks with bidirectional softmax attention, the final LayerNorm, class-token or mean pooling and
the head; its image size is fixed by the position table.
"""
import math

import numpy as np

from .onnx import OPSET, _Graph, _gelu, _linear, _norm, _onnx


def _conv(g, x, conv, w, b):
    kh, kw = conv.kernel_size
    attrs = dict(kernel_shape=[kh, kw], strides=list(conv.stride), dilations=list(conv.dilation), group=conv.groups)
    if isinstance(conv.padding, str):
        if conv.padding == "same":
            attrs["auto_pad"] = "SAME_UPPER"  # the extra row/column (even kernels) at the end, as torch pads
        else:
            attrs["pads"] = [0, 0, 0, 0]
    else:
        ph, pw = conv.padding
        attrs["pads"] = [ph, pw, ph, pw]
    return g.op("Conv", x, w, *([b] if b else []), **attrs)


def _batch_norm(g, x, bn, prefix, w):
    from ..nn.conv import BatchNorm2d
    if not isinstance(bn, BatchNorm2d):
        raise ValueError(f"ONNX export: {prefix} is a {type(bn).__name__}, which opset {OPSET} has no operator for "
                         "(export a model built with norm='batch')")
    if bn.running_mean is None:
        raise ValueError(f"ONNX export: {prefix} keeps no running statistics (track_running_stats=False)")
    scale = w.get(prefix + ".weight") or g.const(np.ones(bn.num_features, np.float32))
    bias = w.get(prefix + ".bias") or g.const(np.zeros(bn.num_features, np.float32))
    return g.op("BatchNormalization", x, scale, bias, w[prefix + ".running_mean"], w[prefix + ".running_var"],
                epsilon=float(bn.eps))


def _resnet(g, net, w, x):
    from ..nn import MaxPool2d, ReLU
    from ..nn.conv import Conv2d
    mods = list(net.stem._modules.items())
    for name, m in mods:
        p = f"net.stem.{name}"
        if isinstance(m, Conv2d):
            x = _conv(g, x, m, w[p + ".weight"], w.get(p + ".bias"))
        elif isinstance(m, ReLU):
            x = g.op("Relu", x)
        elif isinstance(m, MaxPool2d):
            k, s, pd = (m.kernel_size, m.stride, m.padding)
            k, s, pd = [(v, v) if isinstance(v, int) else tuple(v) for v in (k, s or k, pd)]
            x = g.op("MaxPool", x, kernel_shape=list(k), strides=list(s), pads=[pd[0], pd[1], pd[0], pd[1]])
        else:
            x = _batch_norm(g, x, m, p, w)
    for name, blk in net.blocks._modules.items():
        p = f"net.blocks.{name}"
        y = g.op("Relu", _batch_norm(g, _conv(g, x, blk.conv1, w[p + ".conv1.weight"], w.get(p + ".conv1.bias")),
                                     blk.bn1, p + ".bn1", w))
        y = _batch_norm(g, _conv(g, y, blk.conv2, w[p + ".conv2.weight"], w.get(p + ".conv2.bias")), blk.bn2,
                        p + ".bn2", w)
        if blk.down is not None:
            conv, bn = blk.down._modules["0"], blk.down._modules["1"]
            x = _batch_norm(g, _conv(g, x, conv, w[p + ".down.0.weight"], w.get(p + ".down.0.bias")), bn,
                            p + ".down.1", w)
        x = g.op("Relu", g.op("Add", y, x))
    pooled = g.op("Flatten", g.op("GlobalAveragePool", x), axis=1)  # (B, C)
    return _linear(g, pooled, w["net.head.weight"], w.get("net.head.bias"))


def _vit(g, net, config, w, x):
    E, H = config.n_embd, config.n_head
    D = E // H
    B = g.op("Gather", g.op("Shape", x), g.const(0), axis=0)
    b1 = g.op("Unsqueeze", B, g.const([0]))
    x = _conv(g, x, net.patch_embed, w["net.patch_embed.weight"], w.get("net.patch_embed.bias"))  # (B,E,h,w)
    x = g.op("Transpose", g.op("Reshape", x, g.op("Concat", b1, g.const([E, -1]), axis=0)), perm=[0, 2, 1])  # (B,N,E)
    if net.cls_token is not None:
        cls = g.op("Expand", w["net.cls_token"], g.op("Concat", b1, g.const([1, E]), axis=0))
        x = g.op("Concat", cls, x, axis=1)
    x = g.op("Add", x, w["net.pos_embed"])  # (B,T,E)
    T = g.op("Gather", g.op("Shape", x), g.const(1), axis=0)
    t1 = g.op("Unsqueeze", T, g.const([0]))
    flat = g.op("Concat", g.op("Mul", b1, t1), g.const([E]), axis=0)  # [B*T, E]
    heads = g.op("Concat", b1, t1, g.const([H, D]), axis=0)  # [B, T, H, D]
    for i, blk in enumerate(net.blocks):
        p = f"net.blocks.{i}."
        x2 = g.op("Reshape", x, flat)
        hn = _norm(g, x2, "layernorm", w[p + "attn_norm.weight"], w.get(p + "attn_norm.bias"), blk.attn_norm.eps)
        qkv = _linear(g, hn, w[p + "attn.qkv_proj.weight"], w.get(p + "attn.qkv_proj.bias"))
        q, k, v = (g.op("Transpose", g.op("Reshape", t, heads), perm=[0, 2, 1, 3])
                   for t in g.op("Split", qkv, g.const([E, E, E]), axis=1, outputs=3))
        scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])),
                      g.const(1.0 / math.sqrt(D), np.float32))
        y = g.op("Reshape", g.op("Transpose", g.op("MatMul", g.op("Softmax", scores, axis=-1), v), perm=[0, 2, 1, 3]),
                 flat)
        x2 = g.op("Add", x2, _linear(g, y, w[p + "attn.o_proj.weight"], w.get(p + "attn.o_proj.bias")))
        hn = _norm(g, x2, "layernorm", w[p + "mlp_norm.weight"], w.get(p + "mlp_norm.bias"), blk.mlp_norm.eps)
        act = _gelu(g, _linear(g, hn, w[p + "mlp.up_proj.weight"], w.get(p + "mlp.up_proj.bias")),
                    blk.mlp.act.approximate)
        x2 = g.op("Add", x2, _linear(g, act, w[p + "mlp.down_proj.weight"], w.get(p + "mlp.down_proj.bias")))
        x = g.op("Reshape", x2, g.op("Concat", b1, t1, g.const([E]), axis=0))
    x = _norm(g, x, "layernorm", w["net.norm.weight"], w.get("net.norm.bias"), net.norm.eps)
    pooled = (g.op("Gather", x, g.const(0), axis=1) if net.cls_token is not None
              else g.op("ReduceMean", x, axes=[1], keepdims=0))  # (B, E)
    return _linear(g, pooled, w["net.head.weight"], w.get("net.head.bias"))


def build_vision_onnx_model(model, opset: int = OPSET):
    """The ONNX ModelProto of a GoldbullVision (see the module docstring)."""
    onnx, helper, numpy_helper = _onnx()
    from onnx import TensorProto
    c = model.config
    g = _Graph(helper, numpy_helper)
    w = {k: g.weight(k, v) for k, v in model.state_dict().items() if np.asarray(v).dtype.kind == "f"}
    spatial = ["height", "width"] if c.arch == "resnet" else list(c.image_size)
    inputs = [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", c.in_channels, *spatial])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", c.num_classes])]
    logits = _resnet(g, model.net, w, "pixel_values") if c.arch == "resnet" else _vit(g, model.net, c, w, "pixel_values")
    g.op("Identity", logits, name="logits")
    graph = helper.make_graph(g.nodes, "goldbull_vision", inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="goldbull_np")
    m.ir_version = min(m.ir_version, 9)
    return m


__all__ = ["build_vision_onnx_model"]
