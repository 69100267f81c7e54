"""ONNX export of the BERT-family encoder (``goldbull_np.text.BertModel``), opset 17.

    input_ids          int64 (batch, sequence)
    attention_mask     int64 (batch, sequence)   1 = token, 0 = padding (any position)
    token_type_ids     int64 (batch, sequence)
    -> last_hidden_state  float32 (batch, sequence, hidden)

Word + position + token-type embeddings and their LayerNorm, then per post-norm block: the fused q|k|v
Gemm, bidirectional softmax attention with padded keys masked, o_proj, residual + LayerNorm, the GELU MLP,
residual + LayerNorm (Hugging Face's exporters use the same input and output names).
"""
import math

import numpy as np

from .onnx import OPSET, _Graph, _gelu, _linear, _norm, _onnx


def build_encoder_onnx_model(model, opset: int = OPSET):
    """The ONNX ModelProto of a BertModel (see the module docstring)."""
    onnx, helper, numpy_helper = _onnx()
    from onnx import TensorProto
    c = model.config
    C, H = c.hidden_size, c.num_attention_heads
    D = C // H
    g = _Graph(helper, numpy_helper)
    w = {k: g.weight(k, v) for k, v in model.state_dict().items() if not k.startswith("pooler.")}  # (unused here)
    names = ("input_ids", "attention_mask", "token_type_ids")
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", C])]
    shape = g.op("Shape", "input_ids")
    b1 = g.op("Unsqueeze", g.op("Gather", shape, g.const(0), axis=0), g.const([0]))
    T = g.op("Gather", shape, g.const(1), axis=0)
    t1 = g.op("Unsqueeze", T, g.const([0]))
    e = "embeddings."
    x = g.op("Add", g.op("Add", g.op("Gather", w[e + "word_embeddings.weight"], "input_ids", axis=0),
                         g.op("Gather", w[e + "position_embeddings.weight"], g.op("Range", g.const(0), T, g.const(1)),
                              axis=0)),
             g.op("Gather", w[e + "token_type_embeddings.weight"], "token_type_ids", axis=0))  # (B,T,C)
    flat = g.op("Concat", g.op("Mul", b1, t1), g.const([C]), axis=0)
    x2 = _norm(g, g.op("Reshape", x, flat), "layernorm", w[e + "norm.weight"], w.get(e + "norm.bias"),
               model.embeddings.norm.eps)  # (B*T, C)
    keep = g.op("Cast", g.op("Unsqueeze", "attention_mask", g.const([1, 2])), to=TensorProto.BOOL)  # (B,1,1,T)
    neg = g.op("Where", keep, g.const(0.0, np.float32), g.const(-1e30, np.float32))
    heads = g.op("Concat", b1, t1, g.const([H, D]), axis=0)
    for i, blk in enumerate(model.layers):
        p = f"layers.{i}."
        qkv = _linear(g, x2, w[p + "attn.qkv_proj.weight"], w.get(p + "attn.qkv_proj.bias"))
        q, k, v = (g.op("Transpose", g.op("Reshape", t, heads), perm=[0, 2, 1, 3])
                   for t in g.op("Split", qkv, g.const([C, C, C]), axis=1, outputs=3))
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])),
                                  g.const(1.0 / math.sqrt(D), np.float32)), neg)
        y = g.op("Reshape", g.op("Transpose", g.op("MatMul", g.op("Softmax", scores, axis=-1), v), perm=[0, 2, 1, 3]),
                 flat)
        a = _linear(g, y, w[p + "attn.o_proj.weight"], w.get(p + "attn.o_proj.bias"))
        x2 = _norm(g, g.op("Add", x2, a), "layernorm", w[p + "attn_norm.weight"], w.get(p + "attn_norm.bias"),
                   blk.attn_norm.eps)
        up = _gelu(g, _linear(g, x2, w[p + "mlp.up_proj.weight"], w.get(p + "mlp.up_proj.bias")),
                   blk.mlp.act.approximate)
        m = _linear(g, up, w[p + "mlp.down_proj.weight"], w.get(p + "mlp.down_proj.bias"))
        x2 = _norm(g, g.op("Add", x2, m), "layernorm", w[p + "mlp_norm.weight"], w.get(p + "mlp_norm.bias"),
                   blk.mlp_norm.eps)
    g.op("Reshape", x2, g.op("Concat", b1, t1, g.const([C]), axis=0), name="last_hidden_state")
    graph = helper.make_graph(g.nodes, "goldbull_bert", inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="goldbull_np")
    m.ir_version = min(m.ir_version, 9)
    return m


__all__ = ["build_encoder_onnx_model"]
