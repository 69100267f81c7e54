"""GoldbullText.from_pretrained on Hugging Face-format directories (GPT-2, Llama): logits against a
plain-NumPy reference forward over the HF tensors, name/layout mapping, sharding, BF16, tokenizer,
and errors that name the tensor or config field."""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_helpers as H  # noqa: E402

import goldbull_np as gb  # noqa: E402
from goldbull_np.text import GoldbullText  # noqa: E402


def ids_for(vocab, B=2, T=11, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, (B, T))


def check_logits(model, reference, ids):
    logits = model(ids)[0].data
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-4)
    assert np.abs(reference).max() > 1.0  # the comparison is not between near-zero numbers


@pytest.mark.parametrize("prefix", ["transformer.", ""])
@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_logits_match_reference(tmp_path, prefix, tied):
    cfg = H.gpt2_config(tie_word_embeddings=tied, n_inner=40 if tied else None)
    w = H.gpt2_weights(cfg, prefix=prefix)
    H.write_checkpoint(tmp_path, cfg, w)
    state = gb.get_rng_state()
    m = GoldbullText.from_pretrained(tmp_path)
    assert gb.get_rng_state() == state
    c = m.config
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.gelu_approximate) == (2, 4, 32, 24, "tanh")
    assert c.tie_embeddings == tied and (m.lm_head.weight is m.embed_tokens.weight) == tied
    assert m.tokenizer is None
    ids = ids_for(cfg["vocab_size"])
    check_logits(m, H.gpt2_reference(cfg, w, ids), ids)


@pytest.mark.parametrize("kv_heads, tied, bias", [(2, False, False), (4, True, False), (1, False, True)])
def test_llama_logits_match_reference(tmp_path, kv_heads, tied, bias):
    cfg = H.llama_config(kv_heads=kv_heads, tie_word_embeddings=tied, attention_bias=bias, mlp_bias=bias,
                         rope_theta=500000.0 if bias else 10000.0)
    w = H.llama_weights(cfg)
    H.write_checkpoint(tmp_path, cfg, w)
    m = GoldbullText.from_pretrained(tmp_path)
    c = m.config
    assert (c.norm, c.mlp, c.position, c.n_kv_head, c.mlp_hidden, c.bias) == ("rmsnorm", "swiglu", "rope", kv_heads,
                                                                             48, bias)
    ids = ids_for(cfg["vocab_size"], T=16)
    check_logits(m, H.llama_reference(cfg, w, ids), ids)
    # the fused projection holds q | k | v rows
    q = w["model.layers.1.self_attn.q_proj.weight"]
    np.testing.assert_array_equal(m.layers[1].attn.qkv_proj.weight.data[:q.shape[0]], q)


def test_sharded_llama_without_prefix_and_kv_cache_generation(tmp_path):
    cfg = H.llama_config()
    w = H.llama_weights(cfg, prefix="")
    w["layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(4, np.float32)  # older checkpoints carry this buffer
    H.write_checkpoint(tmp_path, cfg, w, shards=3)
    assert not (tmp_path / "model.safetensors").exists()
    m = GoldbullText.from_pretrained(tmp_path)
    ids = ids_for(cfg["vocab_size"])
    check_logits(m, H.llama_reference(cfg, w, ids), ids)
    a = m.generate(ids[:1, :4], 6, temperature=0, use_cache=True).data
    b = m.generate(ids[:1, :4], 6, temperature=0, use_cache=False).data
    np.testing.assert_array_equal(a, b)


def test_bf16_checkpoint_is_converted_to_float32(tmp_path):
    cfg = H.llama_config(tie_word_embeddings=True)
    w = H.llama_weights(cfg)
    H.write_checkpoint(tmp_path, cfg, {})
    os.remove(tmp_path / "model.safetensors")
    H.save_bf16_safetensors(tmp_path / "model.safetensors", w)
    m = GoldbullText.from_pretrained(tmp_path)
    rounded = {k: H.to_bf16(v)[1] for k, v in w.items()}
    np.testing.assert_array_equal(m.embed_tokens.weight.data, rounded["model.embed_tokens.weight"])
    ids = ids_for(cfg["vocab_size"])
    check_logits(m, H.llama_reference(cfg, rounded, ids), ids)


def test_tokenizer_json_is_loaded(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(["hello world, the quick brown fox"] * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.save(str(tmp_path / "tokenizer.json"))
    cfg = H.gpt2_config(vocab=tk.get_vocab_size())
    H.write_checkpoint(tmp_path, cfg, H.gpt2_weights(cfg))
    m = GoldbullText.from_pretrained(tmp_path)
    ids = m.tokenizer.encode("hello world")
    assert ids == tk.encode("hello world").ids and m.tokenizer.decode(ids) == "hello world"
    assert m.tokenizer.eos_token_id == tk.token_to_id("<|endoftext|>")
    assert m(np.asarray([ids]))[0].shape == (1, len(ids), cfg["vocab_size"])


def test_save_pretrained_after_hf_load_round_trips(tmp_path):
    cfg = H.gpt2_config()
    H.write_checkpoint(tmp_path / "hf", cfg, H.gpt2_weights(cfg))
    m = GoldbullText.from_pretrained(tmp_path / "hf")
    m.save_pretrained(tmp_path / "ours")
    m2 = GoldbullText.from_pretrained(tmp_path / "ours")
    ids = ids_for(cfg["vocab_size"])
    np.testing.assert_array_equal(m2(ids)[0].data, m(ids)[0].data)


# ---- errors -------------------------------------------------------------------------------------------


def _write(tmp_path, cfg, w):
    H.write_checkpoint(tmp_path, cfg, w)
    return tmp_path


def test_unknown_architecture(tmp_path):
    cfg = {"model_type": "mamba", "architectures": ["MambaForCausalLM"], "hidden_size": 32}
    with pytest.raises(ValueError, match=r"unsupported architecture \(model_type='mamba'.*supported: .*gpt2.*llama"):
        GoldbullText.from_pretrained(_write(tmp_path, cfg, {"x": np.zeros(1, np.float32)}))


def test_missing_unexpected_and_misshapen_tensors_are_named(tmp_path):
    cfg = H.gpt2_config()
    w = H.gpt2_weights(cfg)
    del w["transformer.h.1.mlp.c_fc.bias"]
    w["transformer.h.0.attn.c_attn.weight"] = w["transformer.h.0.attn.c_attn.weight"].T.copy()  # (96, 32)
    w["transformer.h.0.attn.extra"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError) as e:
        GoldbullText.from_pretrained(_write(tmp_path, cfg, w))
    msg = str(e.value)
    assert "missing tensor(s) ['h.1.mlp.c_fc.bias']" in msg
    assert "tensor 'h.0.attn.c_attn.weight' has shape (96, 32), expected (32, 96)" in msg
    assert "unexpected tensor(s) ['h.0.attn.extra']" in msg


def test_untied_llama_without_lm_head_is_an_error(tmp_path):
    cfg = H.llama_config()
    w = H.llama_weights(cfg)
    del w["lm_head.weight"]
    with pytest.raises(ValueError, match=r"missing tensor\(s\) \['lm_head.weight'\]"):
        GoldbullText.from_pretrained(_write(tmp_path, cfg, w))


@pytest.mark.parametrize("over, field", [
    ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope_scaling"),
    ({"attention_bias": True}, "attention_bias"),
    ({"hidden_act": "gelu"}, "hidden_act"),
])
def test_llama_fields_that_do_not_fit_are_errors(tmp_path, over, field):
    cfg = H.llama_config(**over)
    with pytest.raises(ValueError, match=f"config field {field}=.* is not supported"):
        GoldbullText.from_pretrained(_write(tmp_path, cfg, H.llama_weights(H.llama_config())))


def test_a_llama_head_dim_other_than_hidden_over_heads_loads(tmp_path):
    """head_dim 16 with 4 heads on hidden 32: q/k/v project to 64, o_proj back to 32 (H * D != C)."""
    cfg = H.llama_config(head_dim=16)
    m = GoldbullText.from_pretrained(_write(tmp_path, cfg, H.llama_weights(cfg)))
    assert m.config.head_dim == 16 and m.layers[0].attn.qkv_proj.weight.shape == ((4 + 2 * 2) * 16, 32)
    m.eval()
    ids = np.random.default_rng(0).integers(0, 101, (2, 9))
    full = m(ids)[0].data
    step = m.generate(ids[:, :5], max_new_tokens=4, temperature=0).data  # the KV-cache path agrees
    assert step.shape == (2, 9) and np.isfinite(full).all()
    try:
        import torch
        import transformers
    except ImportError:
        return
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path)
    hf.eval()
    with torch.no_grad():
        np.testing.assert_allclose(hf(torch.from_numpy(ids)).logits.numpy(), full, atol=1e-4)


def test_gpt2_activation_and_attention_scaling_fields(tmp_path):
    cfg = H.gpt2_config(activation_function="relu")
    with pytest.raises(ValueError, match="config field activation_function='relu' is not supported"):
        GoldbullText.from_pretrained(_write(tmp_path / "a", cfg, H.gpt2_weights(cfg)))
    cfg = H.gpt2_config(scale_attn_by_inverse_layer_idx=True)
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        GoldbullText.from_pretrained(_write(tmp_path / "b", cfg, H.gpt2_weights(cfg)))


def test_pickle_checkpoints_are_refused_and_missing_weights_reported(tmp_path):
    cfg = H.gpt2_config()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        GoldbullText.from_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match="only safetensors"):
        GoldbullText.from_pretrained(tmp_path)


def test_goldbull_directories_still_load(tmp_path):
    gb.manual_seed(0)
    m = GoldbullText(gb.ModelConfig.tiny())
    m.save_pretrained(tmp_path)
    ids = ids_for(65)
    np.testing.assert_array_equal(GoldbullText.from_pretrained(tmp_path)(ids)[0].data, m(ids)[0].data)
