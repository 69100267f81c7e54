"""GoldbullText: names, init, forward/loss, gradients, overfitting, state_dict / save_pretrained round
trips and load errors."""
import math
import os

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.text import GoldbullText, ModelConfig

VARIANTS = {
    "gpt2": dict(),
    "llama": dict(position="rope", norm="rmsnorm", mlp="swiglu", bias=False, n_kv_head=1, tie_embeddings=False),
}


def batch(B=4, T=16, V=50, seed=0):
    ids = np.random.default_rng(seed).integers(0, V, (B, T))
    labels = np.roll(ids, -1, axis=1)  # already shifted: labels[t] = ids[t + 1]
    labels[:, -1] = -100
    return ids, labels


def test_module_names_and_tying():
    m = GoldbullText(ModelConfig.tiny(vocab_size=50))
    names = [n for n, _ in m.named_parameters()]
    assert names[:2] == ["embed_tokens.weight", "embed_positions.weight"]
    for n in ("layers.0.attn_norm.weight", "layers.0.attn.qkv_proj.weight", "layers.0.attn.o_proj.bias",
              "layers.1.mlp_norm.bias", "layers.1.mlp.up_proj.weight", "layers.1.mlp.down_proj.weight",
              "norm.weight"):
        assert n in names
    assert "lm_head.weight" not in names and m.lm_head.weight is m.embed_tokens.weight
    assert m.lm_head.bias is None
    llama = GoldbullText(ModelConfig.tiny(vocab_size=50, **VARIANTS["llama"]))
    lnames = [n for n, _ in llama.named_parameters()]
    assert "lm_head.weight" in lnames and "embed_positions.weight" not in lnames
    assert "layers.0.mlp.gate_proj.weight" in lnames and not any(n.endswith("bias") for n in lnames)
    assert llama.layers[0].attn.qkv_proj.weight.shape == ((2 + 2 * 1) * 16, 32)
    assert llama.num_parameters() == sum(p.data.size for p in llama.parameters())
    with pytest.raises(ValueError, match="cpu"):
        GoldbullText(ModelConfig.tiny(), device="cuda")


def test_gpt2_init_and_reproducibility():
    cfg = ModelConfig.tiny(vocab_size=50, n_embd=64, n_layer=2)
    gb.manual_seed(0)
    m = GoldbullText(cfg)
    std = lambda p: float(p.data.std())  # noqa: E731
    assert std(m.layers[0].attn.qkv_proj.weight) == pytest.approx(0.02, rel=0.05)
    assert std(m.layers[0].mlp.down_proj.weight) == pytest.approx(0.02 / math.sqrt(4), rel=0.05)
    assert std(m.layers[1].attn.o_proj.weight) == pytest.approx(0.01, rel=0.1)
    assert not m.layers[0].attn.qkv_proj.bias.data.any()
    assert (m.layers[0].attn_norm.weight.data == 1).all() and (m.norm.weight.data == 1).all()
    gb.manual_seed(0)
    m2 = GoldbullText(cfg)
    for (n, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=n)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_forward_logits_and_loss(variant):
    gb.manual_seed(1)
    m = GoldbullText(ModelConfig.tiny(vocab_size=50, **VARIANTS[variant]))
    ids, labels = batch()
    labels[0, :5] = -100
    logits, loss = m(ids, labels)
    assert logits.shape == (4, 16, 50) and logits.dtype == np.float32
    z = logits.data.astype(np.float64).reshape(-1, 50)
    y = labels.reshape(-1)
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    keep = y != -100
    expect = (lse[keep] - z[keep, y[keep]]).mean()
    assert loss.item() == pytest.approx(expect, rel=1e-5)
    assert m(gb.tensor(ids))[1] is None  # Tensor input, no labels
    logits1, _ = m(ids[0])  # 1-D input is one row
    np.testing.assert_allclose(logits1.data[0], logits.data[0], rtol=1e-5, atol=1e-6)
    # attention_mask (right padding) is accepted and changes nothing for the real tokens
    mask = np.ones_like(ids)
    mask[:, 12:] = 0
    np.testing.assert_array_equal(m(ids, attention_mask=mask)[0].data, logits.data)
    mask[1, 3] = 0
    with pytest.raises(ValueError, match="right padding"):
        m(ids, attention_mask=mask)
    with pytest.raises(ValueError, match="block_size"):
        m(np.zeros((1, 33), np.int64))
    with pytest.raises(ValueError, match="labels of shape"):
        m(ids, labels[:, :3])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_whole_model_gradcheck(variant):
    cfg = dict(VARIANTS[variant], vocab_size=5, n_layer=1, n_head=2, n_embd=4, block_size=4, mlp_hidden=4)
    if variant == "gpt2":
        cfg["dropout"] = 0.0
    gb.manual_seed(2)
    m = GoldbullText(ModelConfig(**cfg)).double()
    for p in m.parameters():  # larger weights than the 0.02 init, so every path matters numerically
        p.data[...] = np.random.default_rng(3).standard_normal(p.shape) * 0.5
    ids, labels = np.array([[1, 4, 0]]), np.array([[4, 0, 2]])
    assert gb.gradcheck(lambda *ps: m(ids, labels)[1], list(m.parameters()))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tiny_model_overfits_one_batch(variant):
    gb.manual_seed(0)
    m = GoldbullText(ModelConfig.tiny(vocab_size=50, **VARIANTS[variant]))
    ids, labels = batch()
    opt = gb.optim.AdamW(gb.optim.param_groups(m, weight_decay=0.0), lr=3e-3)
    for _ in range(200):
        _, loss = m(ids, labels)
        opt.zero_grad()
        loss.backward()
        gb.optim.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if loss.item() < 0.05:
            break
    assert loss.item() < 0.05


def test_state_dict_through_safetensors_gives_bit_identical_logits(tmp_path):
    from safetensors.numpy import load_file, save_file

    gb.manual_seed(3)
    cfg = ModelConfig.tiny(vocab_size=40, **VARIANTS["llama"])
    a = GoldbullText(cfg)
    save_file(dict(a.state_dict()), str(tmp_path / "w.safetensors"))
    gb.manual_seed(4)
    b = GoldbullText(cfg)
    ids, _ = batch(V=40)
    assert not np.array_equal(a(ids)[0].data, b(ids)[0].data)
    b.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    np.testing.assert_array_equal(a(ids)[0].data, b(ids)[0].data)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_save_pretrained_from_pretrained_round_trip(variant, tmp_path):
    from safetensors import safe_open

    gb.manual_seed(5)
    cfg = ModelConfig.tiny(vocab_size=40, **VARIANTS[variant])
    m = GoldbullText(cfg)
    m.save_pretrained(str(tmp_path / "model"))
    assert sorted(os.listdir(tmp_path / "model")) == ["config.json", "model.safetensors"]
    with safe_open(str(tmp_path / "model" / "model.safetensors"), framework="np") as f:
        keys = set(f.keys())
    assert ("lm_head.weight" in keys) == (not cfg.tie_embeddings)  # tied weights stored once
    assert not any("rotary" in k for k in keys)
    rng_before = gb.get_rng_state()
    m2 = GoldbullText.from_pretrained(str(tmp_path / "model"))
    assert gb.get_rng_state() == rng_before
    assert m2.config == cfg
    if cfg.tie_embeddings:
        assert m2.lm_head.weight is m2.embed_tokens.weight
    ids, _ = batch(V=40)
    np.testing.assert_array_equal(m(ids)[0].data, m2(ids)[0].data)


def _saved(tmp_path, **cfg):
    gb.manual_seed(6)
    m = GoldbullText(ModelConfig.tiny(vocab_size=20, **cfg))
    d = tmp_path / "m"
    m.save_pretrained(str(d))
    return m, d


def test_missing_unexpected_and_misshapen_tensors_name_file_and_tensor(tmp_path):
    from safetensors.numpy import load_file, save_file

    _, d = _saved(tmp_path)
    path = str(d / "model.safetensors")
    tensors = load_file(path)
    del tensors["layers.1.attn.o_proj.weight"]
    tensors["layers.0.mlp.up_proj.bias"] = np.zeros(3, np.float32)
    tensors["extra"] = np.zeros(1, np.float32)
    save_file(tensors, path)
    with pytest.raises(ValueError) as e:
        GoldbullText.from_pretrained(str(d))
    msg = str(e.value)
    for s in (path, "missing tensor(s) ['layers.1.attn.o_proj.weight']", "unexpected tensor(s) ['extra']",
              "'layers.0.mlp.up_proj.bias' has shape (3,), expected (128,)"):
        assert s in msg


def test_corrupt_or_absent_files(tmp_path):
    _, d = _saved(tmp_path)
    (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(ValueError, match="model.safetensors: safetensors header length 16 exceeds the file size"):
        GoldbullText.from_pretrained(str(d))
    os.remove(d / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        GoldbullText.from_pretrained(str(d))
    (d / "config.json").write_text('{"n_layer": "two"}')
    with pytest.raises(ValueError, match="config.json.*n_layer"):
        GoldbullText.from_pretrained(str(d))
