"""GGUF (llama.cpp's file format) for Llama-architecture GoldbullText models, written with the ``gguf`` package.

Metadata: ``general.architecture = llama`` and the ``llama.*`` hyperparameters (context length, width, blocks,
feed-forward width, heads and K/V heads, rotary dimension and base, RMSNorm eps), ``general.file_type``
(0: all F32). Tensors by gguf's own names (``gguf.TENSOR_NAMES``): ``token_embd``, ``blk.N.attn_norm``,
``blk.N.attn_q/attn_k/attn_v/attn_output``, ``blk.N.ffn_norm``, ``blk.N.ffn_gate/ffn_up/ffn_down``,
``output_norm``, ``output``, in our [out, in] layout. Like llama.cpp's own converter, the q and k rows are
permuted from the rotate-half convention (ours and Hugging Face's) to GGML's interleaved rotary pairs.
The tokenizer goes in as ``tokenizer.ggml.model = "gpt2"`` (byte-level BPE: tokens, types, merges) when it
is a BPETokenizer; llama.cpp has no character-level tokenizer, so other tokenizers are refused by name
(pass ``tokenizer=False`` to write the weights without one).
"""
import json
import os

import numpy as np

from ..io import atomic_write


def _gguf():
    try:
        import gguf
    except ImportError:
        raise ImportError("GGUF export needs the 'gguf' package: pip install 'goldbull_np[export]'") from None
    return gguf


def permute_rotary(w, n_heads):
    """Rows of a q/k projection (n_heads * D, C) from rotate-half order to GGML's interleaved pairs."""
    rows, cols = w.shape
    D = rows // n_heads
    return w.reshape(n_heads, 2, D // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _tensors(model):
    """``{gguf name: float32 array}``."""
    c = model.config
    H, Hkv, D = c.n_head, c.n_kv_head, c.head_dim
    sd = {k: np.asarray(v, dtype=np.float32) for k, v in model.state_dict().items()}
    out = {"token_embd.weight": sd["embed_tokens.weight"], "output_norm.weight": sd["norm.weight"],
           "output.weight": sd["embed_tokens.weight" if c.tie_embeddings else "lm_head.weight"]}
    for i in range(c.n_layer):
        p, b = f"layers.{i}.", f"blk.{i}."
        q, k, v = np.split(sd[p + "attn.qkv_proj.weight"], [H * D, (H + Hkv) * D], axis=0)
        out.update({b + "attn_norm.weight": sd[p + "attn_norm.weight"],
                    b + "attn_q.weight": permute_rotary(q, H), b + "attn_k.weight": permute_rotary(k, Hkv),
                    b + "attn_v.weight": v, b + "attn_output.weight": sd[p + "attn.o_proj.weight"],
                    b + "ffn_norm.weight": sd[p + "mlp_norm.weight"],
                    b + "ffn_gate.weight": sd[p + "mlp.gate_proj.weight"],
                    b + "ffn_up.weight": sd[p + "mlp.up_proj.weight"],
                    b + "ffn_down.weight": sd[p + "mlp.down_proj.weight"]})
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def _check(model):
    c = model.config
    need = {"norm": "rmsnorm", "mlp": "swiglu", "position": "rope", "bias": False}
    bad = {k: getattr(c, k) for k, v in need.items() if getattr(c, k) != v}
    if bad:
        raise ValueError(f"export_gguf: only Llama-architecture models ({need}) are written; this model has {bad}")


def _add_tokenizer(w, tokenizer):
    from ..data.bpe import BPETokenizer
    if not isinstance(tokenizer, BPETokenizer):
        raise ValueError(f"export_gguf: llama.cpp reads byte-level BPE tokenizers; a {type(tokenizer).__name__} has "
                         "no GGUF form (pass tokenizer=False to write the weights only)")
    spec = json.loads(tokenizer.hf_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    if not merges:
        raise ValueError("export_gguf: the BPE tokenizer has no merges (llama.cpp refuses an empty merges list)")
    tokens = [None] * len(vocab)
    for tok, i in vocab.items():
        tokens[i] = tok
    specials = {t["id"]: t["content"] for t in spec.get("added_tokens", [])}
    for i, t in specials.items():
        if i >= len(tokens):
            tokens.extend([None] * (i + 1 - len(tokens)))
        tokens[i] = t
    missing = [i for i, t in enumerate(tokens) if t is None]
    if missing:
        raise ValueError(f"export_gguf: the tokenizer's vocabulary has no token for id(s) {missing[:5]}")
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3 if i in specials else 1 for i in range(len(tokens))])  # 3 = control, 1 = normal
    w.add_token_merges(merges)
    for attr, add in (("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id),
                      ("pad_token_id", w.add_pad_token_id)):
        v = getattr(tokenizer, attr, None)
        if v is not None:
            add(int(v))


def export_gguf(model, path, tokenizer=None, *, overwrite: bool = False):
    """Write a Llama-architecture GoldbullText as a GGUF file (F32), atomically.

    Args:
        model: the model (LoRA merged: see ModelExporter).
        path: the .gguf file.
        tokenizer: a BPETokenizer (default ``model.tokenizer``); False writes no tokenizer metadata.
        overwrite: replace an existing file.
    """
    gguf = _gguf()
    _check(model)
    c = model.config
    tokenizer = getattr(model, "tokenizer", None) if tokenizer is None else tokenizer
    tensors = _tensors(model)

    def write(tmp):
        w = gguf.GGUFWriter(tmp, "llama")
        w.add_name(os.path.splitext(os.path.basename(os.fspath(path)))[0])
        w.add_context_length(c.block_size)
        w.add_embedding_length(c.n_embd)
        w.add_block_count(c.n_layer)
        w.add_feed_forward_length(c.mlp_hidden or 4 * c.n_embd)
        w.add_head_count(c.n_head)
        w.add_head_count_kv(c.n_kv_head)
        w.add_rope_dimension_count(c.head_dim)
        if c.head_dim * c.n_head != c.n_embd:  # llama.cpp's head size is n_embd / n_head unless told
            w.add_key_length(c.head_dim)
            w.add_value_length(c.head_dim)
        w.add_rope_freq_base(c.rope_theta)
        w.add_layer_norm_rms_eps(c.norm_eps)
        w.add_vocab_size(c.vocab_size)
        w.add_file_type(0)  # all F32
        if tokenizer not in (None, False):
            _add_tokenizer(w, tokenizer)
        for name, a in tensors.items():
            w.add_tensor(name, a)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    atomic_write(path, write, overwrite=overwrite)
    return path


__all__ = ["export_gguf", "permute_rotary"]
