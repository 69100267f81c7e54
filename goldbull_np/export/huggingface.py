"""A Hugging Face directory from a GoldbullText: what ``transformers`` loads as GPT2LMHeadModel or LlamaForCausalLM.

The reverse of ``goldbull_np.text.hf`` (the loader): the same name/layout rules run backwards (Conv1D
transposed back to (in, out) for GPT-2, the fused q|k|v rows split into q_proj/k_proj/v_proj for Llama).
The directory holds ``config.json``, ``model.safetensors`` (metadata ``{"format": "pt"}``, which
transformers requires), ``generation_config.json`` and the tokenizer's files. Before anything is written,
the config is mapped back through the loader's own mapping and must give the model's config, so a model
feature either architecture cannot express is refused by name instead of being exported wrong.
"""
import dataclasses
import os

import numpy as np

from ..io import atomic_directory, atomic_write_json, save_safetensors


def architecture_of(config) -> str:
    """"gpt2" or "llama" for a GoldbullText config; ValueError naming the feature that fits neither."""
    c = config
    gpt2 = dict(norm="layernorm", mlp="gelu", position="learned", bias=True)
    llama = dict(norm="rmsnorm", mlp="swiglu", position="rope")
    if all(getattr(c, k) == v for k, v in gpt2.items()):
        if c.n_kv_head != c.n_head:
            raise ValueError(f"export_huggingface: GPT-2 has no grouped-query attention (n_kv_head={c.n_kv_head}, "
                             f"n_head={c.n_head})")
        if c.head_dim * c.n_head != c.n_embd:
            raise ValueError(f"export_huggingface: GPT-2 needs head_dim * n_head = n_embd, got head_dim={c.head_dim}, "
                             f"n_head={c.n_head}, n_embd={c.n_embd}")
        return "gpt2"
    if all(getattr(c, k) == v for k, v in llama.items()):
        return "llama"
    mixed = {k: getattr(c, k) for k in ("norm", "mlp", "position", "bias")}
    raise ValueError(f"export_huggingface: no Hugging Face architecture here for {mixed}: GPT-2 needs "
                     f"{gpt2}, Llama needs {llama}")


def hf_config(config) -> dict:
    """The config.json of the HF model equal to a GoldbullText config."""
    c, kind = config, architecture_of(config)
    if kind == "gpt2":
        return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": c.vocab_size,
                "n_positions": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head,
                "n_inner": c.mlp_hidden, "activation_function": "gelu_new" if c.gelu_approximate == "tanh" else "gelu",
                "layer_norm_epsilon": c.norm_eps, "tie_word_embeddings": c.tie_embeddings,
                "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": c.init_std,
                "scale_attn_weights": True, "bos_token_id": None, "eos_token_id": None, "torch_dtype": "float32"}
    return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": c.vocab_size,
            "hidden_size": c.n_embd, "intermediate_size": c.mlp_hidden or 4 * c.n_embd,
            "num_hidden_layers": c.n_layer, "num_attention_heads": c.n_head, "num_key_value_heads": c.n_kv_head,
            "head_dim": c.head_dim, "max_position_embeddings": c.block_size, "rms_norm_eps": c.norm_eps,
            "rope_theta": c.rope_theta, "tie_word_embeddings": c.tie_embeddings, "attention_bias": c.bias,
            "mlp_bias": c.bias, "hidden_act": "silu", "initializer_range": c.init_std, "bos_token_id": None,
            "eos_token_id": None, "torch_dtype": "float32"}


def _check_round_trip(config, d) -> None:
    """The loader's mapping of ``d`` must give back ``config`` (every field that changes computation)."""
    from ..text.hf import hf_config_to_model_config
    back, _ = hf_config_to_model_config(d, source="the exported config")
    skip = {"dropout", "init_std"}
    diff = {k: (getattr(config, k), getattr(back, k)) for k in config.__dataclass_fields__
            if k not in skip and getattr(config, k) != getattr(back, k)
            and not (k == "mlp_hidden" and getattr(config, k) is None and getattr(back, k) == 4 * config.n_embd)}
    if diff:
        raise ValueError(f"export_huggingface: the Hugging Face config cannot express {diff} (model, exported)")


def hf_state_dict(model) -> dict:
    """``{hf_name: array}`` for the model's weights in the HF layout (tied lm_head left out)."""
    from ..text import hf
    c = model.config
    kind = architecture_of(c)
    c = dataclasses.replace(c, mlp_hidden=c.mlp_hidden or 4 * c.n_embd)  # the rules need the MLP's real width
    rules, _ = hf._gpt2_rules(c) if kind == "gpt2" else hf._llama_rules(c)
    prefix = "transformer." if kind == "gpt2" else "model."
    state = {k: np.asarray(v) for k, v in model.state_dict().items()}
    out = {}
    for ours, srcs, combine in rules:
        parts = hf.split_back(combine, state[ours], [shape for _, shape in srcs])
        for (name, shape), part in zip(srcs, parts):
            if tuple(part.shape) != tuple(shape):
                raise ValueError(f"export_huggingface: {ours} gives {name} of shape {part.shape}, expected {shape}")
            full = name if name == "lm_head.weight" else prefix + name
            out[full] = np.ascontiguousarray(part, dtype=np.float32)
    return out


def export_huggingface(model, directory, tokenizer=None, *, overwrite: bool = False):
    """Write ``model`` (a GoldbullText) as a Hugging Face GPT-2 or Llama directory, atomically.

    Args:
        model: the model (LoRA adapters merged: see ModelExporter).
        directory: the directory to create.
        tokenizer: saved into the directory (its ``save(dir)``); default ``model.tokenizer`` when set.
        overwrite: replace an existing directory.
    Returns:
        The directory.
    """
    c = model.config
    d = hf_config(c)
    _check_round_trip(c, d)
    tensors = hf_state_dict(model)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    gen = {"_from_model_config": True, "max_length": c.block_size}
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id"):
        v = getattr(tokenizer, attr, None)
        if v is not None:
            gen[attr] = d[attr] = int(v)
    with atomic_directory(directory, replace=overwrite) as tmp:
        atomic_write_json(tmp / "config.json", d)
        atomic_write_json(tmp / "generation_config.json", gen)
        save_safetensors(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
        if tokenizer is not None:
            tokenizer.save(os.fspath(tmp))
    return directory


__all__ = ["export_huggingface", "hf_config", "hf_state_dict", "architecture_of"]
