"""Build small random Hugging Face-format checkpoints (GPT-2 / Llama) and run plain-NumPy reference
forwards over the HF tensors. Nothing here uses goldbull_np, so comparing against it means something."""
import json
import os
import struct

import numpy as np
from safetensors.numpy import save_file

# ---- checkpoint writers ------------------------------------------------------------------------------


def gpt2_config(vocab=97, n_layer=2, n_head=4, n_embd=32, n_positions=24, **over):
    d = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": vocab, "n_layer": n_layer,
         "n_head": n_head, "n_embd": n_embd, "n_positions": n_positions, "n_ctx": n_positions, "n_inner": None,
         "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1, "embd_pdrop": 0.1,
         "attn_pdrop": 0.1, "scale_attn_weights": True, "tie_word_embeddings": True}
    d.update(over)
    return d


def gpt2_weights(cfg, seed=0, prefix="transformer."):
    rng = np.random.default_rng(seed)
    C, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    Hd = cfg.get("n_inner") or 4 * C
    n = lambda *s: rng.normal(0, 0.1, s).astype(np.float32)  # noqa: E731
    w = {"wte.weight": n(V, C) * 5, "wpe.weight": n(P, C) * 3, "ln_f.weight": 1 + n(C), "ln_f.bias": n(C)}
    for i in range(cfg["n_layer"]):
        h = f"h.{i}."
        w.update({h + "ln_1.weight": 1 + n(C), h + "ln_1.bias": n(C), h + "attn.c_attn.weight": n(C, 3 * C),
                  h + "attn.c_attn.bias": n(3 * C), h + "attn.c_proj.weight": n(C, C), h + "attn.c_proj.bias": n(C),
                  h + "ln_2.weight": 1 + n(C), h + "ln_2.bias": n(C), h + "mlp.c_fc.weight": n(C, Hd),
                  h + "mlp.c_fc.bias": n(Hd), h + "mlp.c_proj.weight": n(Hd, C), h + "mlp.c_proj.bias": n(C),
                  # the causal-mask buffers old checkpoints carry
                  h + "attn.bias": np.tril(np.ones((P, P), np.float32))[None, None],
                  h + "attn.masked_bias": np.array(-1e4, np.float32)})
    if not cfg.get("tie_word_embeddings", True):
        w["lm_head.weight"] = n(V, C)
    out = {prefix + k: v for k, v in w.items() if k != "lm_head.weight"}
    if "lm_head.weight" in w:
        out["lm_head.weight"] = w["lm_head.weight"]
    return out


def llama_config(vocab=101, n_layer=2, heads=4, kv_heads=2, hidden=32, inter=48, max_pos=32, **over):
    d = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": vocab,
         "num_hidden_layers": n_layer, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
         "hidden_size": hidden, "intermediate_size": inter, "max_position_embeddings": max_pos,
         "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
         "attention_bias": False, "mlp_bias": False, "rope_scaling": None}
    d.update(over)
    return d


def llama_weights(cfg, seed=0, prefix="model."):
    rng = np.random.default_rng(seed)
    C, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or C // H
    n = lambda *s: rng.normal(0, 0.1, s).astype(np.float32)  # noqa: E731
    w = {"embed_tokens.weight": n(V, C) * 5, "norm.weight": 1 + n(C)}
    for i in range(cfg["num_hidden_layers"]):
        h = f"layers.{i}."
        a = h + "self_attn."
        w.update({h + "input_layernorm.weight": 1 + n(C), a + "q_proj.weight": n(H * D, C) * 3,
                  a + "k_proj.weight": n(Hkv * D, C) * 3, a + "v_proj.weight": n(Hkv * D, C),
                  a + "o_proj.weight": n(C, H * D), h + "post_attention_layernorm.weight": 1 + n(C),
                  h + "mlp.gate_proj.weight": n(I, C), h + "mlp.up_proj.weight": n(I, C),
                  h + "mlp.down_proj.weight": n(C, I)})
        if cfg.get("attention_bias"):
            w.update({a + "q_proj.bias": n(H * D), a + "k_proj.bias": n(Hkv * D), a + "v_proj.bias": n(Hkv * D),
                      a + "o_proj.bias": n(C)})
        if cfg.get("mlp_bias"):
            w.update({h + "mlp.gate_proj.bias": n(I), h + "mlp.up_proj.bias": n(I), h + "mlp.down_proj.bias": n(C)})
    out = {prefix + k: v for k, v in w.items()}
    if not cfg.get("tie_word_embeddings", False):
        out["lm_head.weight"] = n(V, C)
    return out


def write_checkpoint(directory, cfg, weights, shards=1):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f)
    if shards == 1:
        save_file(weights, os.path.join(directory, "model.safetensors"))
        return
    names = sorted(weights)
    weight_map = {}
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: weights[k] for k in names[s::shards]}
        save_file(part, os.path.join(directory, fname))
        weight_map.update({k: fname for k in part})
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)


def to_bf16(a):
    """float32 -> (bf16 bits as uint16, the float32 values those bits mean), round to nearest even."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return bits, (bits.astype(np.uint32) << 16).view(np.float32)


def save_bf16_safetensors(path, weights):
    """A safetensors file with every tensor stored as BF16 (safetensors.numpy cannot write BF16)."""
    header, blobs, off = {}, [], 0
    for k in sorted(weights):
        bits, _ = to_bf16(weights[k])
        b = bits.tobytes()
        header[k] = {"dtype": "BF16", "shape": list(weights[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- NumPy reference forwards (float64, HF tensor names and layouts) ---------------------------------


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _softmax(s):
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


def _causal_attention(q, k, v):
    """q (B,H,T,D), k/v (B,H,T,D) -> (B,H,T,D)."""
    T, D = q.shape[2], q.shape[3]
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D)
    s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    return _softmax(s) @ v


def gpt2_reference(cfg, weights, ids):
    w = {k.removeprefix("transformer."): v.astype(np.float64) for k, v in weights.items()}
    B, T = ids.shape
    C, H = cfg["n_embd"], cfg["n_head"]
    D, eps = C // H, cfg["layer_norm_epsilon"]
    gelu = lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))  # noqa: E731
    x = w["wte.weight"][ids] + w["wpe.weight"][np.arange(T)]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        h = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: x @ W, W (in, out)
        q, k, v = (a.reshape(B, T, H, D).transpose(0, 2, 1, 3) for a in np.split(qkv, 3, axis=-1))
        y = _causal_attention(q, k, v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = _layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        x = x + gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]) @ w[p + "mlp.c_proj.weight"] \
            + w[p + "mlp.c_proj.bias"]
    x = _layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps)
    head = w.get("lm_head.weight", w["wte.weight"])
    return x @ head.T


def llama_reference(cfg, weights, ids):
    w = {k.removeprefix("model."): v.astype(np.float64) for k, v in weights.items()}
    B, T = ids.shape
    C, H, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D, eps = C // H, cfg["rms_norm_eps"]
    inv_freq = 1.0 / cfg["rope_theta"] ** (np.arange(0, D, 2) / D)
    emb = np.concatenate([np.outer(np.arange(T), inv_freq)] * 2, axis=-1)  # (T, D)
    cos, sin = np.cos(emb), np.sin(emb)
    rot = lambda z: np.concatenate([-z[..., D // 2:], z[..., :D // 2]], axis=-1)  # noqa: E731 - rotate_half
    lin = lambda z, n: z @ w[n + ".weight"].T + w.get(n + ".bias", 0.0)  # noqa: E731
    silu = lambda z: z / (1 + np.exp(-z))  # noqa: E731
    x = w["embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"layers.{i}."
        a = p + "self_attn."
        h = _rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = lin(h, a + "q_proj").reshape(B, T, H, D).transpose(0, 2, 1, 3)
        k = lin(h, a + "k_proj").reshape(B, T, Hkv, D).transpose(0, 2, 1, 3)
        v = lin(h, a + "v_proj").reshape(B, T, Hkv, D).transpose(0, 2, 1, 3)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = np.repeat(k, H // Hkv, axis=1), np.repeat(v, H // Hkv, axis=1)  # HF repeat_kv
        y = _causal_attention(q, k, v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + lin(y, a + "o_proj")
        h = _rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = _rms_norm(x, w["norm.weight"], eps)
    head = w.get("lm_head.weight", w["embed_tokens.weight"])
    return x @ head.T
