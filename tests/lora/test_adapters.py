"""Bottleneck adapters (goldbull_np.nn.adapters)."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import optim
from goldbull_np.nn.adapters import AdapterConfig, AdapterTransformerBlock
from goldbull_np.text import GoldbullText, ModelConfig


def make_model(seed=0, **over):
    gb.manual_seed(seed)
    return GoldbullText(ModelConfig.tiny(n_layer=4, **over))


def ids(seed=0, B=2, T=12):
    return np.random.default_rng(seed).integers(0, 65, (B, T))


@pytest.mark.parametrize("init, tol", [("zeros", 0.0), ("near_zero", 1e-5), ("normal", 1e-3)])
def test_fresh_adapters_leave_output_unchanged(init, tol):
    m = make_model()
    x = ids()
    before = m(x)[0].data.copy()
    keys = set(m.state_dict())
    assert m.add_adapters_to_layers([3, 1], AdapterConfig(bottleneck_size=8, init_weights=init)) == [1, 3]
    m.eval()
    after = m(x)[0].data
    assert np.abs(after - before).max() <= tol
    assert isinstance(m.layers[1], AdapterTransformerBlock) and not isinstance(m.layers[0], AdapterTransformerBlock)
    new = set(m.state_dict()) - keys
    assert keys <= set(m.state_dict())  # base names unchanged
    assert new == {f"layers.{i}.{a}.{p}.{w}" for i in (1, 3) for a in ("attn_adapter", "mlp_adapter")
                   for p in ("down_proj", "up_proj") for w in ("weight", "bias")}


def test_adapter_changes_the_output_once_trained_weights_are_nonzero():
    m = make_model()
    x = ids()
    before = m(x)[0].data.copy()
    m.add_adapters_to_layers([0], AdapterConfig(bottleneck_size=4, init_weights="zeros", dropout=0.0))
    w = m.layers[0].mlp_adapter.up_proj.weight.data  # random, not constant: the LayerNorms remove constant shifts
    w[...] = np.random.default_rng(0).normal(0, 0.5, w.shape)
    assert np.abs(m(x)[0].data - before).max() > 1e-3


def test_index_out_of_range_names_the_valid_range():
    m = make_model()
    with pytest.raises(IndexError, match=r"index 4 is out of range.*4 layers.*valid indices are 0\.\.3"):
        m.add_adapters_to_layers([1, 4], AdapterConfig())
    with pytest.raises(IndexError, match=r"0\.\.3"):
        m.add_adapters_to_layers([-1])
    assert not any(isinstance(b, AdapterTransformerBlock) for b in m.layers)  # nothing half-done
    m.add_adapters_to_layers([2])
    with pytest.raises(ValueError, match="already has adapters"):
        m.add_adapters_to_layers([2])


def test_config_validation():
    with pytest.raises(ValueError, match="activation"):
        AdapterConfig(activation="swish")
    with pytest.raises(ValueError, match="init_weights"):
        AdapterConfig(init_weights="uniform")


def test_freeze_base_and_train_only_adapters():
    m = make_model()
    m.add_adapters_to_layers([1, 2], AdapterConfig(bottleneck_size=8, dropout=0.0, activation="gelu"))
    n = m.freeze_base_parameters()
    params = m.get_adapter_parameters()
    assert len(params) == 2 * 2 * 4
    assert n == sum(p.data.size for p in params) == 2 * 2 * (32 * 8 + 8 + 8 * 32 + 32)
    assert {id(p) for p in m.parameters() if p.requires_grad} == {id(p) for p in params}
    base = {k: v.copy() for k, v in m.state_dict().items() if "adapter" not in k}
    x = ids(B=4, T=16)
    y = np.roll(x, -1, axis=1)
    opt = optim.AdamW(params, lr=3e-2, weight_decay=0.0)
    losses = []
    for _ in range(15):
        _, loss = m(x, y)
        losses.append(loss.item())
        loss.backward()
        for name, p in m.named_parameters():
            assert (p.grad is not None) == ("adapter" in name), name
        opt.step()
        opt.zero_grad()
    assert losses[-1] < losses[0] - 0.05, losses  # the frozen tiny head bounds how far it can go
    for k, v in base.items():
        np.testing.assert_array_equal(m.state_dict()[k], v, err_msg=k)


def test_adapters_and_lora_together():
    from goldbull_np.nn.lora import LoRAConfig
    m = make_model()
    m.add_adapters_to_layers([0], AdapterConfig(bottleneck_size=4))
    m.add_lora_adapters(LoRAConfig(rank=2, target_modules=["q_proj"]))  # freezes everything else, adapters too
    assert not any(p.requires_grad for p in m.get_adapter_parameters())
    m.freeze_base_parameters()  # adapters and LoRA train
    trainable = {id(p) for p in m.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in m.get_adapter_parameters() + m.get_lora_parameters()}
