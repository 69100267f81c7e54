"""LoRA (goldbull_np.nn.lora): wrapping, fused q/k/v slices, merge/unmerge, save/load, rsLoRA, DoRA,
frozen weights without gradients or optimizer state."""
import json
import math
import os

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import goldbull_np as gb
from goldbull_np import optim
from goldbull_np.nn.lora import LoRAConfig, LoRALinear, lora_state_dict
from goldbull_np.text import GoldbullText, ModelConfig

LLAMA = dict(n_kv_head=1, position="rope", norm="rmsnorm", mlp="swiglu", bias=False)


def make_model(seed=0, **over):
    gb.manual_seed(seed)
    return GoldbullText(ModelConfig.tiny(**over))


def batch(seed=0, B=2, T=12, V=65):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, (B, T))
    return ids, np.roll(ids, -1, axis=1)


def randomize_lora(model, seed=1, std=0.1):
    rng = np.random.default_rng(seed)
    for p in model.get_lora_parameters():
        p.data[...] = rng.normal(0, std, p.shape).astype(p.dtype)


def test_fresh_adapters_leave_logits_unchanged_and_freeze_the_base():
    m = make_model()
    ids, _ = batch()
    before = m(ids)[0].data.copy()
    wrapped = m.add_lora_adapters(LoRAConfig(rank=4))
    assert wrapped == [f"layers.{i}.attn.{n}" for i in range(2) for n in ("qkv_proj", "o_proj")]
    np.testing.assert_array_equal(m(ids)[0].data, before)
    lora_ids = {id(p) for p in m.get_lora_parameters()}
    assert len(lora_ids) == 2 * (3 + 1) * 2  # layers x (q, k, v, o) x (A, B)
    for name, p in m.named_parameters():
        assert p.requires_grad == (id(p) in lora_ids), name
    # the base state-dict names are unchanged
    assert "layers.0.attn.qkv_proj.weight" in m.state_dict()
    assert set(lora_state_dict(m)) >= {"layers.0.attn.q_proj.lora_A.weight", "layers.1.attn.o_proj.lora_B.weight"}


def test_fused_qkv_slices_get_their_own_rows():
    m = make_model(**LLAMA)  # GQA: q rows 32, k rows 16, v rows 16
    m.add_lora_adapters(LoRAConfig(rank=3, alpha=6, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    lin = m.layers[0].attn.qkv_proj
    assert isinstance(lin, LoRALinear)
    assert lin.slices == {"q_proj": (0, 32), "v_proj": (48, 64)}
    assert lin.lora["v_proj"].lora_B.shape == (16, 3)
    randomize_lora(m)
    x = gb.randn(2, 5, 32)
    W = lin.weight.data.astype(np.float64)
    expected = x.data @ W.T
    s = 6 / 3
    for name, (lo, hi) in lin.slices.items():
        A, B = lin.lora[name].lora_A.data, lin.lora[name].lora_B.data
        expected[..., lo:hi] += s * (x.data @ A.T) @ B.T
    np.testing.assert_allclose(lin(x).data, expected, rtol=1e-5, atol=1e-5)
    W0 = lin.weight.data.copy()
    lin.merge()
    changed = np.abs(lin.weight.data - W0).max(axis=1) > 0
    assert changed[:32].all() and not changed[32:48].any() and changed[48:].all()  # k rows untouched


def test_merge_then_unmerge_restores_weights_and_logits():
    m = make_model(**LLAMA)
    m.add_lora_adapters(LoRAConfig(rank=4, dropout=0.1, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                        "gate_proj", "up_proj", "down_proj"]))
    randomize_lora(m)
    m.eval()
    ids, _ = batch()
    base = {k: v.copy() for k, v in m.state_dict().items() if "lora" not in k}
    unmerged = m(ids)[0].data.copy()
    assert m.merge_lora() == 2 * 5
    merged = m(ids)[0].data.copy()
    np.testing.assert_allclose(merged, unmerged, atol=1e-5, rtol=0)
    assert np.abs(m.layers[0].mlp.up_proj.weight.data - base["layers.0.mlp.up_proj.weight"]).max() > 1e-3
    m.unmerge_lora()
    for k, v in base.items():
        np.testing.assert_allclose(m.state_dict()[k], v, atol=1e-6, rtol=0, err_msg=k)
    np.testing.assert_allclose(m(ids)[0].data, unmerged, atol=1e-6, rtol=0)


def test_dora_merge_unmerge_and_forward_formula():
    m = make_model()
    m.add_lora_adapters(LoRAConfig(rank=4, dropout=0.0, use_dora=True, target_modules=["q_proj", "o_proj"]))
    lin = m.layers[1].attn.qkv_proj
    pair = lin.lora["q_proj"]
    W = lin.weight.data.astype(np.float64)
    np.testing.assert_allclose(pair.lora_magnitude_vector.data, np.linalg.norm(W[:32], axis=1), rtol=1e-6)
    randomize_lora(m, std=0.2)
    x = gb.randn(3, 32)
    s = lin.scaling
    A, B, mag = (pair.lora_A.data.astype(np.float64), pair.lora_B.data.astype(np.float64),
                 pair.lora_magnitude_vector.data.astype(np.float64))
    Wq = W[:32] + s * B @ A
    expected = x.data @ W.T + lin.bias.data
    expected[:, :32] = (x.data @ Wq.T) * (mag / np.linalg.norm(Wq, axis=1)) + lin.bias.data[:32]
    np.testing.assert_allclose(lin(x).data, expected, rtol=1e-5, atol=1e-5)
    ids, _ = batch()
    m.eval()
    W0 = lin.weight.data.copy()
    before = m(ids)[0].data.copy()
    m.merge_lora()
    np.testing.assert_allclose(m(ids)[0].data, before, atol=1e-5, rtol=0)
    m.unmerge_lora()
    np.testing.assert_allclose(lin.weight.data, W0, atol=1e-6, rtol=0)


def test_lora_gradients_match_finite_differences():
    m = make_model(**LLAMA).double()
    m.add_lora_adapters(LoRAConfig(rank=2, dropout=0.0, target_modules=["k_proj", "down_proj"]))
    randomize_lora(m)
    ids, labels = batch(T=6)
    _, loss = m(ids, labels)
    loss.backward()
    rng = np.random.default_rng(0)
    for p in m.get_lora_parameters():
        assert p.grad is not None and p.grad.shape == p.shape
        for _ in range(3):
            idx = tuple(rng.integers(0, n) for n in p.shape)
            old = p.data[idx]
            p.data[idx] = old + 1e-6
            up = m(ids, labels)[1].item()
            p.data[idx] = old - 1e-6
            down = m(ids, labels)[1].item()
            p.data[idx] = old
            assert p.grad[idx] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-8)


def test_frozen_weights_get_no_grads_and_no_optimizer_state():
    m = make_model()
    m.add_lora_adapters(LoRAConfig(rank=4))
    ids, labels = batch()
    trainable = [p for p in m.parameters() if p.requires_grad]
    opt = optim.AdamW(trainable, lr=1e-2)
    _, loss = m(ids, labels)
    loss.backward()
    for name, p in m.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    opt.step()
    n_lora = sum(p.data.size for p in m.get_lora_parameters())
    assert opt._flat.size == n_lora == opt._flat_m.size == opt._flat_grad.size
    assert {id(p) for p in opt.state} == {id(p) for p in m.get_lora_parameters()}
    assert n_lora < 0.2 * m.num_parameters()


def _train(m, steps=15, lr=2e-2):
    ids, labels = batch(B=4, T=16)
    opt = optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        _, loss = m(ids, labels)
        losses.append(loss.item())
        loss.backward()
        opt.step()
        opt.zero_grad()
    return losses


@pytest.mark.parametrize("kind", ["lora", "rslora", "dora"])
def test_variants_train_with_a_frozen_base(kind):
    m = make_model(**LLAMA)
    cfg = LoRAConfig(rank=4, alpha=8, dropout=0.0, use_rslora=kind == "rslora", use_dora=kind == "dora",
                     target_modules=["q_proj", "v_proj", "o_proj", "up_proj"])
    m.add_lora_adapters(cfg)
    assert m.layers[0].attn.o_proj.scaling == (8 / 2 if kind == "rslora" else 8 / 4)
    base = {k: v.copy() for k, v in m.state_dict().items() if "lora" not in k}
    losses = _train(m)
    assert losses[-1] < losses[0] - 0.15, losses
    for k, v in base.items():  # the base never moved
        np.testing.assert_array_equal(m.state_dict()[k], v, err_msg=k)
    if kind == "dora":
        mags = [p for n, p in m.named_parameters() if n.endswith("lora_magnitude_vector")]
        assert len(mags) == 2 * 4
        o = m.layers[0].attn.o_proj  # the magnitude moved away from its init ||W||_row
        W = o.weight.data.astype(np.float64)
        assert np.abs(o.lora["o_proj"].lora_magnitude_vector.data - np.linalg.norm(W, axis=1)).max() > 1e-4


def test_rslora_scaling_value():
    assert LoRAConfig(rank=16, alpha=8, use_rslora=True).scaling == pytest.approx(8 / math.sqrt(16))
    assert LoRAConfig(rank=16, alpha=8).scaling == pytest.approx(0.5)


def test_save_and_load_roundtrip(tmp_path):
    m = make_model()
    m.add_lora_adapters(LoRAConfig(rank=4, dropout=0.0, target_modules=["q_proj", "v_proj", "up_proj"]))
    randomize_lora(m)
    ids, _ = batch()
    want = m(ids)[0].data.copy()
    m.save_lora(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["adapter_config.json", "adapter_model.safetensors"]
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert set(saved) == set(lora_state_dict(m))
    assert all("lora_" in k for k in saved) and "layers.1.mlp.up_proj.lora_B.weight" in saved
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["rank"] == 4 and cfg["target_modules"] == ["q_proj", "v_proj", "up_proj"]
    fresh = make_model()  # same base, no adapters: load_lora adds them from the saved config
    assert not np.allclose(fresh(ids)[0].data, want)
    fresh.load_lora(tmp_path)
    np.testing.assert_array_equal(fresh(ids)[0].data, want)


def test_save_refuses_empty_adapters(tmp_path):
    m = make_model()
    with pytest.raises(ValueError, match="no LoRA adapters"):
        m.save_lora(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_load_errors_list_every_bad_tensor(tmp_path):
    src = make_model()
    src.add_lora_adapters(LoRAConfig(rank=8, target_modules=["q_proj", "o_proj"]))
    src.save_lora(tmp_path)
    dst = make_model()
    dst.add_lora_adapters(LoRAConfig(rank=4, target_modules=["q_proj", "o_proj"]))
    with pytest.raises(ValueError) as e:
        dst.load_lora(tmp_path)
    msg = str(e.value)
    for i in range(2):
        for n in ("q_proj", "o_proj"):
            assert f"layers.{i}.attn.{n}.lora_A.weight' has shape (8, 32), expected (4, 32) (rank 8 in the file, 4" in msg
            assert f"layers.{i}.attn.{n}.lora_B.weight" in msg
    # missing and unexpected keys
    arrays = load_file(tmp_path / "adapter_model.safetensors")
    arrays.pop("layers.1.attn.q_proj.lora_B.weight")
    arrays["layers.0.attn.k_proj.lora_A.weight"] = np.zeros((8, 32), np.float32)
    save_file(arrays, str(tmp_path / "adapter_model.safetensors"))
    dst = make_model()
    with pytest.raises(ValueError) as e:
        dst.load_lora(tmp_path)
    msg = str(e.value)
    assert "missing tensor 'layers.1.attn.q_proj.lora_B.weight'" in msg
    assert "unexpected tensor 'layers.0.attn.k_proj.lora_A.weight'" in msg


def test_target_validation_and_tied_head():
    m = make_model()
    with pytest.raises(ValueError, match=r"\['gate_proj'\] match no Linear.*known names: .*q_proj"):
        m.add_lora_adapters(LoRAConfig(target_modules=["q_proj", "gate_proj"]))
    with pytest.raises(ValueError, match="tied"):
        m.add_lora_adapters(LoRAConfig(target_modules=["lm_head"]))
    with pytest.raises(ValueError, match="both qkv_proj"):
        m.add_lora_adapters(LoRAConfig(target_modules=["qkv_proj", "q_proj"]))
    assert all(p.requires_grad for p in m.parameters())  # failed calls changed nothing
    m.add_lora_adapters(LoRAConfig(target_modules=["qkv_proj"], layers_to_transform=[1]))
    assert not isinstance(m.layers[0].attn.qkv_proj, LoRALinear)
    assert m.layers[1].attn.qkv_proj.slices == {"qkv_proj": (0, 96)}
    with pytest.raises(ValueError, match="already has LoRA"):
        m.add_lora_adapters(LoRAConfig())


@pytest.mark.parametrize("bias", ["all", "lora_only"])
def test_bias_modes_train_and_save_biases(bias, tmp_path):
    m = make_model()
    m.add_lora_adapters(LoRAConfig(rank=2, bias=bias, target_modules=["o_proj"]))
    trainable = {n for n, p in m.named_parameters() if p.requires_grad and "lora" not in n}
    o_biases = {f"layers.{i}.attn.o_proj.bias" for i in range(2)}
    if bias == "lora_only":
        assert trainable == o_biases
    else:
        assert trainable > o_biases and "layers.0.mlp.up_proj.bias" in trainable
        assert all(n.endswith(".bias") for n in trainable)
    m.save_lora(tmp_path)
    assert trainable <= set(load_file(tmp_path / "adapter_model.safetensors"))
