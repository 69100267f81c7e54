"""ONNX export of GoldbullText with the ``onnx`` package's helper API (no torch): opset 17 standard ops.

Inputs and outputs (Hugging Face's exporter names; dynamic ``batch``, ``sequence`` and ``past_sequence``)::

    input_ids                    int64 (batch, sequence)
    attention_mask               int64 (batch, past_sequence + sequence)      1 = token, 0 = padding
    past_key_values.{i}.key      float32 (batch, n_kv_head, past_sequence, head_dim)   with use_cache
    past_key_values.{i}.value    float32 (batch, n_kv_head, past_sequence, head_dim)
    -> logits                    float32 (batch, sequence, vocab_size)
    -> present.{i}.key / .value  float32 (batch, n_kv_head, past_sequence + sequence, head_dim)

The graph computes what GoldbullText.forward computes: token (+ learned position) embeddings, per block
norm -> fused qkv Gemm -> rotary on q and k -> causal (and padding-masked) softmax attention with grouped
K/V heads -> o_proj, norm -> GELU or SwiGLU MLP, residuals, the final norm and the (tied) head. Weights are
initializers in our own [out, in] layout, used by Gemm(transB=1); a tied head shares the embedding's.
"""
import math

import numpy as np

from ..io import atomic_write

OPSET = 17


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("ONNX export needs the 'onnx' package: pip install 'goldbull_np[export]'") from None
    return onnx, helper, numpy_helper


class _Graph:
    """Collects nodes and initializers; ``op(type, inputs, **attrs)`` returns the output's name."""

    def __init__(self, helper, numpy_helper):
        self.h, self.nh = helper, numpy_helper
        self.nodes, self.inits, self._n = [], [], 0

    def op(self, kind, *inputs, outputs=1, name=None, **attrs):
        self._n += 1
        outs = [name] if name and outputs == 1 else [f"{kind.lower()}_{self._n}_{i}" for i in range(outputs)]
        self.nodes.append(self.h.make_node(kind, list(inputs), outs, **attrs))
        return outs[0] if outputs == 1 else outs

    def const(self, value, dtype=None, name=None):
        arr = np.asarray(value, dtype=dtype)
        self._n += 1
        name = name or f"const_{self._n}"
        self.inits.append(self.nh.from_array(arr, name))
        return name

    def weight(self, name, array):
        self.inits.append(self.nh.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name


def _norm(g, x, kind, w, b, eps):
    """LayerNormalization (opset 17) or RMSNorm spelled out: x / sqrt(mean(x^2) + eps) * w."""
    if kind == "layernorm":
        return g.op("LayerNormalization", x, w, *([b] if b else []), axis=-1, epsilon=float(eps))
    ms = g.op("ReduceMean", g.op("Mul", x, x), axes=[-1], keepdims=1)
    y = g.op("Div", x, g.op("Sqrt", g.op("Add", ms, g.const(eps, np.float32))))
    return g.op("Mul", y, w) if w is not None else y


def _linear(g, x2, w, b):
    """x2 (N, in) -> (N, out) with our (out, in) weight."""
    return g.op("Gemm", x2, w, *([b] if b else []), transB=1)


def _gelu(g, x, approximate):
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        inner = g.op("Mul", g.const(math.sqrt(2 / math.pi), np.float32),
                     g.op("Add", x, g.op("Mul", g.const(0.044715, np.float32), g.op("Mul", x, g.op("Mul", x, x)))))
        return g.op("Mul", g.op("Mul", g.const(0.5, np.float32), x), g.op("Add", g.const(1.0, np.float32), g.op("Tanh", inner)))
    erf = g.op("Erf", g.op("Div", x, g.const(math.sqrt(2.0), np.float32)))
    return g.op("Mul", g.op("Mul", g.const(0.5, np.float32), x), g.op("Add", g.const(1.0, np.float32), erf))


def _rotate(g, x, cos, sin, half):
    """x * cos + rotate_half(x) * sin for x (B, H, T, D), cos/sin (T, D)."""
    x1 = g.op("Slice", x, g.const([0]), g.const([half]), g.const([-1]))
    x2 = g.op("Slice", x, g.const([half]), g.const([2 ** 62]), g.const([-1]))
    rot = g.op("Concat", g.op("Neg", x2), x1, axis=-1)
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", rot, sin))


def build_onnx_model(model, *, use_cache: bool = True, opset: int = OPSET):
    """The ONNX ModelProto of a GoldbullText (see the module docstring)."""
    onnx, helper, numpy_helper = _onnx()
    from onnx import TensorProto
    c = model.config
    C, H, Hkv, D, V = c.n_embd, c.n_head, c.n_kv_head, c.head_dim, c.vocab_size
    G = H // Hkv
    g = _Graph(helper, numpy_helper)
    state = {k: np.asarray(v) for k, v in model.state_dict().items()}
    w = {k: g.weight(k, v) for k, v in state.items() if k != "lm_head.weight" or not c.tie_embeddings}

    ids = "input_ids"
    shape_ids = g.op("Shape", ids)
    B = g.op("Gather", shape_ids, g.const(0), axis=0)
    T = g.op("Gather", shape_ids, g.const(1), axis=0)
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total_sequence"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", V])]
    if use_cache:
        for i in range(c.n_layer):
            for kv in ("key", "value"):
                inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", TensorProto.FLOAT,
                                                            ["batch", Hkv, "past_sequence", D]))
                outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", TensorProto.FLOAT,
                                                             ["batch", Hkv, "past_sequence + sequence", D]))
        past = g.op("Gather", g.op("Shape", "past_key_values.0.key"), g.const(2), axis=0)
    else:
        past = g.const(0)
    total = g.op("Add", past, T)
    positions = g.op("Range", past, total, g.const(1))  # (T,) int64

    x = g.op("Gather", w["embed_tokens.weight"], ids, axis=0)  # (B,T,C)
    if c.position == "learned":
        x = g.op("Add", x, g.op("Gather", w["embed_positions.weight"], positions, axis=0))
    cos = sin = None
    if c.position == "rope":
        rot = model.layers[0].attn.rotary
        cos = g.op("Gather", g.weight("rope.cos", rot._cos64), positions, axis=0)  # (T,D)
        sin = g.op("Gather", g.weight("rope.sin", rot._sin64), positions, axis=0)

    # additive mask (B, 1, T, S): causal (key position <= query position) and key padding
    key_pos = g.op("Range", g.const(0), total, g.const(1))  # (S,)
    causal = g.op("LessOrEqual", g.op("Unsqueeze", key_pos, g.const([0])), g.op("Unsqueeze", positions, g.const([1])))
    keep = g.op("Cast", g.op("Unsqueeze", "attention_mask", g.const([1, 2])), to=TensorProto.BOOL)  # (B,1,1,S)
    allowed = g.op("And", g.op("Unsqueeze", causal, g.const([0, 1])), keep)  # (B,1,T,S)
    neg = g.op("Where", allowed, g.const(0.0, np.float32), g.const(-1e30, np.float32))

    bt_flat = g.op("Mul", g.op("Unsqueeze", B, g.const([0])), g.op("Unsqueeze", T, g.const([0])))  # [B*T]
    flat_c = g.op("Concat", bt_flat, g.const([C]), axis=0)  # [B*T, C]
    flat_hd = g.op("Concat", bt_flat, g.const([H * D]), axis=0)  # [B*T, H*D] (H*D may differ from C)
    bt = g.op("Concat", g.op("Unsqueeze", B, g.const([0])), g.op("Unsqueeze", T, g.const([0])), axis=0)  # [B, T]
    heads_shape = lambda n: g.op("Concat", bt, g.const([n, D]), axis=0)  # noqa: E731 - [B, T, n, D]
    b_ = lambda name: w.get(name)  # noqa: E731 - a bias initializer or None

    for i in range(c.n_layer):
        p = f"layers.{i}."
        x2 = g.op("Reshape", x, flat_c)  # (B*T, C)
        hn = _norm(g, x2, c.norm, w[p + "attn_norm.weight"], b_(p + "attn_norm.bias"), c.norm_eps)
        qkv = _linear(g, hn, w[p + "attn.qkv_proj.weight"], b_(p + "attn.qkv_proj.bias"))  # (B*T, (H+2Hkv)D)
        q, k, v = g.op("Split", qkv, g.const([H * D, Hkv * D, Hkv * D]), axis=1, outputs=3)
        q = g.op("Transpose", g.op("Reshape", q, heads_shape(H)), perm=[0, 2, 1, 3])  # (B,H,T,D)
        k = g.op("Transpose", g.op("Reshape", k, heads_shape(Hkv)), perm=[0, 2, 1, 3])  # (B,Hkv,T,D)
        v = g.op("Transpose", g.op("Reshape", v, heads_shape(Hkv)), perm=[0, 2, 1, 3])
        if cos is not None:
            q, k = _rotate(g, q, cos, sin, D // 2), _rotate(g, k, cos, sin, D // 2)
        if use_cache:
            k = g.op("Concat", f"past_key_values.{i}.key", k, axis=2, name=f"present.{i}.key")
            v = g.op("Concat", f"past_key_values.{i}.value", v, axis=2, name=f"present.{i}.value")
        if G > 1:  # each K/V head serves G query heads: (B,Hkv,S,D) -> (B,H,S,D)
            k, v = (g.op("Reshape", g.op("Expand", g.op("Unsqueeze", t, g.const([2])),
                                         g.op("Concat", g.op("Unsqueeze", B, g.const([0])), g.const([Hkv, G]),
                                              g.op("Slice", g.op("Shape", t), g.const([2]), g.const([4])), axis=0)),
                                g.op("Concat", g.op("Unsqueeze", B, g.const([0])), g.const([H, -1, D]), axis=0))
                    for t in (k, v))
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])),
                                  g.const(1.0 / math.sqrt(D), np.float32)), neg)  # (B,H,T,S)
        y = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)  # (B,H,T,D)
        y = g.op("Reshape", g.op("Transpose", y, perm=[0, 2, 1, 3]), flat_hd)  # (B*T, H*D)
        x2 = g.op("Add", x2, _linear(g, y, w[p + "attn.o_proj.weight"], b_(p + "attn.o_proj.bias")))
        hn = _norm(g, x2, c.norm, w[p + "mlp_norm.weight"], b_(p + "mlp_norm.bias"), c.norm_eps)
        up = _linear(g, hn, w[p + "mlp.up_proj.weight"], b_(p + "mlp.up_proj.bias"))
        if c.mlp == "swiglu":
            gate = _linear(g, hn, w[p + "mlp.gate_proj.weight"], b_(p + "mlp.gate_proj.bias"))
            act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
        else:
            act = _gelu(g, up, c.gelu_approximate)
        x2 = g.op("Add", x2, _linear(g, act, w[p + "mlp.down_proj.weight"], b_(p + "mlp.down_proj.bias")))
        x = g.op("Reshape", x2, g.op("Concat", bt, g.const([C]), axis=0))
    x2 = _norm(g, g.op("Reshape", x, flat_c), c.norm, w["norm.weight"], b_("norm.bias"), c.norm_eps)
    head = w["embed_tokens.weight"] if c.tie_embeddings else w["lm_head.weight"]
    logits = _linear(g, x2, head, None)  # (B*T, V)
    g.op("Reshape", logits, g.op("Concat", bt, g.const([V]), axis=0), name="logits")
    graph = helper.make_graph(g.nodes, "goldbull_text", inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="goldbull_np")
    m.ir_version = min(m.ir_version, 9)
    return m


def export_onnx(model, path, *, use_cache: bool = True, overwrite: bool = False, check: bool = True):
    """Write ``model`` (a GoldbullText; a GoldbullVision: onnx_vision.py; a BertModel: onnx_encoder.py) as an
    ONNX file, atomically;
    ``onnx.checker`` with full checking first."""
    onnx, _, _ = _onnx()
    from ..text.bert import BertModel
    from ..vision import GoldbullVision
    if isinstance(model, GoldbullVision):
        from .onnx_vision import build_vision_onnx_model
        m = build_vision_onnx_model(model)
    elif isinstance(model, BertModel):
        from .onnx_encoder import build_encoder_onnx_model
        m = build_encoder_onnx_model(model)
    else:
        m = build_onnx_model(model, use_cache=use_cache)
    if check:
        onnx.checker.check_model(m, full_check=True)
    data = m.SerializeToString()
    atomic_write(path, lambda tmp: open(tmp, "wb").write(data), overwrite=overwrite)
    return path


__all__ = ["export_onnx", "build_onnx_model", "OPSET"]
