"""Load Hugging Face-format model directories (GPT-2 and Llama) into GoldbullText.

A directory holds ``config.json`` and ``model.safetensors`` (or shards listed in
``model.safetensors.index.json``), and optionally ``tokenizer.json``. Nothing is downloaded.

Name and layout mapping (HF -> goldbull)::

    GPT-2 (keys with or without "transformer.")     Llama (keys with or without "model.")
    wte / wpe            -> embed_tokens / embed_positions
    h.{i}.ln_1           -> layers.{i}.attn_norm      layers.{i}.input_layernorm          -> attn_norm
    h.{i}.attn.c_attn    -> attn.qkv_proj (Conv1D:    self_attn.{q,k,v}_proj (stacked q|k|v) -> attn.qkv_proj
                            weight (in, out), so .T)  self_attn.o_proj                    -> attn.o_proj
    h.{i}.attn.c_proj    -> attn.o_proj (.T)          post_attention_layernorm            -> mlp_norm
    h.{i}.ln_2           -> mlp_norm                  mlp.{gate,up,down}_proj             -> mlp.{gate,up,down}_proj
    h.{i}.mlp.c_fc       -> mlp.up_proj (.T)          norm                                -> norm
    h.{i}.mlp.c_proj     -> mlp.down_proj (.T)        lm_head (absent when tied)          -> lm_head
    ln_f                 -> norm
    lm_head (usually absent: tied)

GPT-2's ``attn.bias`` / ``attn.masked_bias`` (causal-mask buffers) and Llama's
``rotary_emb.inv_freq`` are ignored. Llama's rotary convention (rotate_half) is ours, so q/k load
without permutation (a Llama head_dim other than hidden_size / heads is kept). Config fields that our
model cannot express (rope_scaling, biases on attention but not on the MLP, another activation, ...) raise
a ValueError naming the field instead of loading something that computes different logits.
BF16 / F16 tensors are converted to float32.
"""
import os

import numpy as np

from .. import random as _random
from .._config_io import read_json
from ..io.safetensors import load_safetensors
from .config import MODEL_TYPE, ModelConfig

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_INDEX_NAME = "model.safetensors.index.json"
_ARCHS = {"gpt2": ("GPT2LMHeadModel", "GPT2Model"), "llama": ("LlamaForCausalLM", "LlamaModel")}


def is_hf_directory(directory):
    """Whether ``directory/config.json`` is a Hugging Face config (a model_type other than ours)."""
    path = os.path.join(directory, CONFIG_NAME)
    if not os.path.isfile(path):
        return False
    try:
        d = read_json(path, "no such file")
    except ValueError:
        return False
    if not isinstance(d, dict):
        return False
    mt = d.get("model_type")
    archs = d.get("architectures") or ()
    if not isinstance(archs, (list, tuple)):
        archs = ()
    return (mt is not None and mt != MODEL_TYPE) or (mt is None and "architectures" in d
                                                     and "GoldbullText" not in archs)


def _architecture(d, source):
    mt = d.get("model_type")
    archs = d.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise _unsupported(source, "architectures", archs, "expected a list of class names")
    if mt is not None and not isinstance(mt, str):
        raise _unsupported(source, "model_type", mt, "expected a string")
    for kind, names in _ARCHS.items():
        if mt == kind or (mt is None and any(a in names for a in archs)):
            return kind
    raise ValueError(f"{source}: unsupported architecture (model_type={mt!r}, architectures={archs}); "
                     f"supported: gpt2 (GPT2LMHeadModel) and llama (LlamaForCausalLM)")


def _unsupported(source, field, value, why):
    return ValueError(f"{source}: config field {field}={value!r} is not supported: {why}")


def _field(d, source, name, default, kind):
    """``d[name]`` (or ``default``) checked to be of ``kind`` ("int", "float", "bool"), naming the field."""
    v = d.get(name, default)
    if v is None and default is None:
        return None
    if kind == "bool":
        if not isinstance(v, bool):
            raise _unsupported(source, name, v, "expected true or false")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _unsupported(source, name, v, f"expected a{'n integer' if kind == 'int' else ' number'}")
    if kind == "int":
        if isinstance(v, float) and not v.is_integer():
            raise _unsupported(source, name, v, "expected an integer")
        return int(v)
    return float(v)


def hf_config_to_model_config(d, source="config.json"):
    """``(ModelConfig, kind)`` for an HF config dict; kind is "gpt2" or "llama".

    Raises:
        ValueError naming the architecture or the config field that does not fit ModelConfig.
    """
    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(d).__name__}")
    kind = _architecture(d, source)
    f = lambda name, default, t="int": _field(d, source, name, default, t)  # noqa: E731
    if kind == "gpt2":
        act = d.get("activation_function", "gelu_new")
        approx = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}.get(act) \
            if isinstance(act, str) else None
        if approx is None:
            raise _unsupported(source, "activation_function", act, "only gelu_new, gelu_pytorch_tanh and gelu")
        for name, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                         ("add_cross_attention", False)):
            if name in d and bool(d[name]) != ok:
                raise _unsupported(source, name, d[name], f"goldbull's attention needs {name}={ok}")
        kw = dict(vocab_size=f("vocab_size", 50257), n_layer=f("n_layer", 12), n_head=f("n_head", 12),
                  n_embd=f("n_embd", 768), block_size=f("n_positions", 1024), bias=True,
                  tie_embeddings=f("tie_word_embeddings", True, "bool"), norm="layernorm", mlp="gelu",
                  position="learned", norm_eps=f("layer_norm_epsilon", 1e-5, "float"),
                  mlp_hidden=f("n_inner", None), gelu_approximate=approx, dropout=0.0)
    else:
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise _unsupported(source, "hidden_act", act, "the SwiGLU MLP uses silu")
        rs = d.get("rope_scaling")
        if rs is not None and not isinstance(rs, dict):
            raise _unsupported(source, "rope_scaling", rs, "expected an object such as {\"rope_type\": \"default\"}")
        if rs is not None and (rs.get("rope_type", rs.get("type")) not in ("default", None)):
            raise _unsupported(source, "rope_scaling", rs, "only unscaled rotary embeddings are implemented")
        hidden, heads = f("hidden_size", 4096), f("num_attention_heads", 32)
        if heads < 1:
            raise _unsupported(source, "num_attention_heads", heads, "expected a positive integer")
        head_dim = f("head_dim", None)  # None: hidden_size / num_attention_heads
        attn_bias, mlp_bias = f("attention_bias", False, "bool"), f("mlp_bias", False, "bool")
        if attn_bias != mlp_bias:
            raise _unsupported(source, "attention_bias", attn_bias,
                               f"goldbull has one bias flag for attention and MLP (mlp_bias={mlp_bias})")
        kw = dict(vocab_size=f("vocab_size", 32000), n_layer=f("num_hidden_layers", 32), n_head=heads,
                  n_kv_head=f("num_key_value_heads", None) or heads, n_embd=hidden,
                  block_size=f("max_position_embeddings", 2048), bias=attn_bias,
                  tie_embeddings=f("tie_word_embeddings", False, "bool"), norm="rmsnorm", mlp="swiglu",
                  position="rope", rope_theta=f("rope_theta", 10000.0, "float"),
                  norm_eps=f("rms_norm_eps", 1e-6, "float"), mlp_hidden=f("intermediate_size", 11008),
                  dropout=0.0, head_dim=head_dim)
    try:
        return ModelConfig(**kw), kind
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


# ---- safetensors reading: the one validating reader (goldbull_np.io), BF16 widened to float32 ----------
read_safetensors = load_safetensors  # the name callers of this module know


def _shard_path(directory, index, key, fname):
    """``directory/fname`` for a weight_map entry, refusing names that leave the model directory
    (``../x``, an absolute path, a symlink pointing outside)."""
    if not isinstance(fname, str) or not fname:
        raise ValueError(f"{index}: weight_map entry {key!r} -> {fname!r} is not a shard file name")
    root = os.path.realpath(directory)
    path = os.path.join(directory, fname)
    real = os.path.realpath(path)
    try:
        inside = not os.path.isabs(fname) and os.path.commonpath([root, real]) == root and real != root
    except ValueError:  # different drives
        inside = False
    if not inside:
        raise ValueError(f"{index}: weight_map entry {key!r} -> {fname!r} points outside the model directory "
                         f"{directory}; shards must be files inside it")
    return path


def read_hf_weights(directory):
    """``name -> array`` from model.safetensors or the shards of model.safetensors.index.json.

    Raises:
        FileNotFoundError: no weights, or a shard the index lists is missing.
        ValueError: a malformed file (naming it and the tensor), a weight_map entry that is not a file
            inside ``directory`` (naming the index and the entry), a tensor listed but absent from its
            shard or present in two shards, or pickle-based weights.
    """
    single = os.path.join(directory, SAFE_WEIGHTS_NAME)
    index = os.path.join(directory, SAFE_INDEX_NAME)
    if os.path.isfile(single):
        return read_safetensors(single)
    if os.path.isfile(index):
        d = read_json(index, "no such file")
        weight_map = d.get("weight_map") if isinstance(d, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index}: no weight_map")
        shards = {}
        for key, fname in weight_map.items():
            if fname not in shards:
                shards[fname] = _shard_path(directory, index, key, fname)
        out, where = {}, {}
        for fname in sorted(shards):
            path = shards[fname]
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: shard listed in {SAFE_INDEX_NAME} does not exist")
            for k, v in read_safetensors(path).items():
                if k in where:
                    raise ValueError(f"{index}: tensor {k!r} is in two shards, {where[k]} and {fname}")
                where[k] = fname
                out[k] = v
        absent = [k for k, fname in weight_map.items() if k not in out]
        if absent:
            raise ValueError(f"{index}: tensor(s) {absent} are listed but not in their shard files")
        return out
    for legacy in ("pytorch_model.bin", "pytorch_model.bin.index.json"):
        if os.path.exists(os.path.join(directory, legacy)):
            raise ValueError(f"{directory}: only safetensors weights are supported ({legacy} is a pickle-based "
                             "format); convert it to model.safetensors")
    raise FileNotFoundError(f"{directory}: no {SAFE_WEIGHTS_NAME} or {SAFE_INDEX_NAME}")


# ---- name/layout mapping --------------------------------------------------------------------------
def _strip_prefix(arrays, prefix):
    if any(k.startswith(prefix) for k in arrays):
        return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in arrays.items()}
    return dict(arrays)


# How HF tensors combine into ours; each has its inverse (goldbull_np.export's HF writer runs them backwards).
def same(parts):
    return parts[0]


def transpose(parts):  # GPT-2's Conv1D stores (in, out)
    return parts[0].T


def stack_rows(parts):  # Llama's q | k | v rows = our fused qkv_proj layout
    return np.concatenate(parts, axis=0)


def split_back(combine, ours, shapes):
    """The HF tensors of shapes ``shapes`` that ``combine`` turns into ``ours`` (the inverse mapping)."""
    if combine is same:
        return [ours]
    if combine is transpose:
        return [np.ascontiguousarray(ours.T)]
    if combine is stack_rows:
        return np.split(ours, np.cumsum([s[0] for s in shapes])[:-1], axis=0)
    raise ValueError(f"no inverse for {combine!r}")


def _gpt2_rules(c):
    """``[(our_name, [(hf_name, hf_shape)], combine)]`` and the ignorable HF names pattern."""
    C, V, P = c.n_embd, c.vocab_size, c.block_size
    Hd = c.mlp_hidden or 4 * C
    t = transpose
    rules = [("embed_tokens.weight", [("wte.weight", (V, C))], same),
             ("embed_positions.weight", [("wpe.weight", (P, C))], same)]
    for i in range(c.n_layer):
        h, o = f"h.{i}.", f"layers.{i}."
        rules += [(o + "attn_norm.weight", [(h + "ln_1.weight", (C,))], same),
                  (o + "attn_norm.bias", [(h + "ln_1.bias", (C,))], same),
                  (o + "attn.qkv_proj.weight", [(h + "attn.c_attn.weight", (C, 3 * C))], t),
                  (o + "attn.qkv_proj.bias", [(h + "attn.c_attn.bias", (3 * C,))], same),
                  (o + "attn.o_proj.weight", [(h + "attn.c_proj.weight", (C, C))], t),
                  (o + "attn.o_proj.bias", [(h + "attn.c_proj.bias", (C,))], same),
                  (o + "mlp_norm.weight", [(h + "ln_2.weight", (C,))], same),
                  (o + "mlp_norm.bias", [(h + "ln_2.bias", (C,))], same),
                  (o + "mlp.up_proj.weight", [(h + "mlp.c_fc.weight", (C, Hd))], t),
                  (o + "mlp.up_proj.bias", [(h + "mlp.c_fc.bias", (Hd,))], same),
                  (o + "mlp.down_proj.weight", [(h + "mlp.c_proj.weight", (Hd, C))], t),
                  (o + "mlp.down_proj.bias", [(h + "mlp.c_proj.bias", (C,))], same)]
    rules += [("norm.weight", [("ln_f.weight", (C,))], same), ("norm.bias", [("ln_f.bias", (C,))], same)]
    if not c.tie_embeddings:
        rules.append(("lm_head.weight", [("lm_head.weight", (V, C))], same))
    return rules, _ignorable("gpt2", c)


def _llama_rules(c):
    C, V, D = c.n_embd, c.vocab_size, c.head_dim
    H, Hkv, I = c.n_head, c.n_kv_head, c.mlp_hidden
    stack = stack_rows
    rules = [("embed_tokens.weight", [("embed_tokens.weight", (V, C))], same)]
    for i in range(c.n_layer):
        h, o = f"layers.{i}.", f"layers.{i}."
        a = h + "self_attn."
        rules += [(o + "attn_norm.weight", [(h + "input_layernorm.weight", (C,))], same),
                  (o + "attn.qkv_proj.weight", [(a + "q_proj.weight", (H * D, C)), (a + "k_proj.weight", (Hkv * D, C)),
                                                (a + "v_proj.weight", (Hkv * D, C))], stack),
                  (o + "attn.o_proj.weight", [(a + "o_proj.weight", (C, H * D))], same),
                  (o + "mlp_norm.weight", [(h + "post_attention_layernorm.weight", (C,))], same),
                  (o + "mlp.gate_proj.weight", [(h + "mlp.gate_proj.weight", (I, C))], same),
                  (o + "mlp.up_proj.weight", [(h + "mlp.up_proj.weight", (I, C))], same),
                  (o + "mlp.down_proj.weight", [(h + "mlp.down_proj.weight", (C, I))], same)]
        if c.bias:
            rules += [(o + "attn.qkv_proj.bias", [(a + "q_proj.bias", (H * D,)), (a + "k_proj.bias", (Hkv * D,)),
                                                  (a + "v_proj.bias", (Hkv * D,))], stack),
                      (o + "attn.o_proj.bias", [(a + "o_proj.bias", (C,))], same),
                      (o + "mlp.gate_proj.bias", [(h + "mlp.gate_proj.bias", (I,))], same),
                      (o + "mlp.up_proj.bias", [(h + "mlp.up_proj.bias", (I,))], same),
                      (o + "mlp.down_proj.bias", [(h + "mlp.down_proj.bias", (C,))], same)]
    rules.append(("norm.weight", [("norm.weight", (C,))], same))
    if not c.tie_embeddings:
        rules.append(("lm_head.weight", [("lm_head.weight", (V, C))], same))
    return rules, _ignorable("llama", c)


def _ignorable(kind, c):
    """Which (prefix-stripped) HF names are buffers or a tied head, not weights of ours."""
    if kind == "gpt2":
        return lambda k: k.endswith((".attn.bias", ".attn.masked_bias")) or (c.tie_embeddings and k == "lm_head.weight")
    return lambda k: k.endswith("rotary_emb.inv_freq") or (c.tie_embeddings and k == "lm_head.weight")


_PREFIXES = {"gpt2": "transformer.", "llama": "model."}


_TENSORS_PER_LAYER = {"gpt2": 12, "llama": 9}  # without biases: the fewest a layer has in the weights


def check_hf_sizes(arrays, config, kind, source):
    """Before any per-layer work, bound the config by what the weights hold: every layer has
    ``_TENSORS_PER_LAYER`` tensors, so ``n_layer = 10**6`` beside small weights fails here at once
    (naming the file and both sizes) instead of looping over a million layers' names; sizes within
    that bound are then checked tensor by tensor (:func:`convert_hf_state_dict`)."""
    ignore = _ignorable(kind, config)
    stripped = _strip_prefix(arrays, _PREFIXES[kind])
    n_weights = sum(1 for k in stripped if not ignore(k))
    layers_held = n_weights // _TENSORS_PER_LAYER[kind]
    if config.n_layer > layers_held:
        raise ValueError(f"{source}: n_layer={config.n_layer}, but the weights hold {n_weights} tensors, enough for "
                         f"at most {layers_held} {kind} layers: the config does not match the weights")


def apply_rules(arrays, rules, dtype=np.float32):
    """Run ``[(our_name, [(hf_name, hf_shape)], combine)]`` over HF ``arrays``.

    Returns:
        ``(ours, used HF names, missing HF names, shape errors)``: a tensor is made only when all of its
        sources are present with their shapes.
    """
    used, missing, bad, out = set(), [], [], {}
    for ours, srcs, combine in rules:
        parts = []
        for name, shape in srcs:
            if name not in arrays:
                missing.append(name)
                continue
            used.add(name)
            a = arrays[name]
            if tuple(a.shape) != shape:
                bad.append(f"tensor {name!r} has shape {tuple(a.shape)}, expected {shape}")
                continue
            parts.append(a)
        if len(parts) == len(srcs):
            out[ours] = np.ascontiguousarray(combine(parts), dtype=dtype)
    return out, used, missing, bad


def convert_hf_state_dict(arrays, config, kind, source="checkpoint", dtype=np.float32):
    """Map HF tensors onto GoldbullText names (transposing / stacking as needed).

    Args:
        arrays: HF ``name -> array`` (with or without the "transformer." / "model." prefix).
        config: the ModelConfig (from :func:`hf_config_to_model_config`).
        kind: "gpt2" or "llama".
        source: named in errors.
    Returns:
        ``name -> array`` for ``GoldbullText.load_state_dict``.
    Raises:
        ValueError listing every missing tensor, unexpected tensor and shape mismatch by HF name.
    """
    if kind == "gpt2":
        arrays = _strip_prefix(arrays, "transformer.")
        rules, ignore = _gpt2_rules(config)
    elif kind == "llama":
        arrays = _strip_prefix(arrays, "model.")
        rules, ignore = _llama_rules(config)
    else:
        raise ValueError(f"{source}: unsupported architecture {kind!r}")
    out, used, missing, bad = apply_rules(arrays, rules, dtype)
    unexpected = sorted(k for k in arrays if k not in used and not ignore(k))
    errors = ([f"missing tensor(s) {missing}"] if missing else []) + bad + \
             ([f"unexpected tensor(s) {unexpected}"] if unexpected else [])
    if errors:
        raise ValueError(f"{source}: cannot load {kind} weights: " + "; ".join(errors))
    return out


def load_hf_pretrained(cls, directory, device="cpu"):
    """Build ``cls`` (GoldbullText) from an HF GPT-2 / Llama directory; attach ``tokenizer.json``
    (as a goldbull BPETokenizer) as ``model.tokenizer`` when present. The global generator is left as it was."""
    cfg_path = os.path.join(directory, CONFIG_NAME)
    d = read_json(cfg_path, "no such file")
    config, kind = hf_config_to_model_config(d, source=cfg_path)
    arrays = read_hf_weights(directory)
    check_hf_sizes(arrays, config, kind, cfg_path)
    state = convert_hf_state_dict(arrays, config, kind, source=str(directory))
    config.check_fits(source=cfg_path)  # the shapes match the weights: this bounds only the rotary tables
    rng = _random.get_rng_state()
    try:
        model = cls(config, device=device)
    finally:
        _random.set_rng_state(rng)
    model.load_state_dict(state, strict=True)
    model.tokenizer = None
    if os.path.isfile(os.path.join(directory, "tokenizer.json")):
        from ..data import load_tokenizer

        model.tokenizer = load_tokenizer(os.path.join(directory, "tokenizer.json"))
    object.__setattr__(model, "hf_config", d)
    return model


__all__ = ["is_hf_directory", "hf_config_to_model_config", "read_safetensors", "read_hf_weights",
           "convert_hf_state_dict", "load_hf_pretrained"]
