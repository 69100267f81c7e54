"""Item 7: load_lora into a model that already has adapters compares the saved adapter_config.json
with them and refuses a mismatch, naming each field; the model is left as it was."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn
from goldbull_np.nn.lora import LoRAConfig, add_lora_adapters, load_lora, lora_state_dict, save_lora


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        gb.manual_seed(0)
        self.q_proj = nn.Linear(8, 8)
        self.v_proj = nn.Linear(8, 8)

    def forward(self, x):
        return self.v_proj(self.q_proj(x))


def cfg(**over):
    kw = dict(rank=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    kw.update(over)
    return LoRAConfig(**kw)


def _saved(tmp_path, config):
    m = Toy()
    add_lora_adapters(m, config)
    rng = np.random.default_rng(1)
    for t in lora_state_dict(m, keep_vars=True).values():
        t.data[...] = rng.normal(0, 0.1, t.shape)
    save_lora(m, tmp_path / "ad")
    return tmp_path / "ad", m


@pytest.mark.parametrize("over, field", [(dict(alpha=64), "alpha"), (dict(use_rslora=True), "use_rslora"),
                                         (dict(target_modules=["q_proj"]), "target_modules"),
                                         (dict(bias="all"), "bias")])
def test_existing_adapters_with_another_config_are_refused(tmp_path, over, field):
    d, _ = _saved(tmp_path, cfg())
    m = Toy()
    add_lora_adapters(m, cfg(**over))
    before = {k: v.copy() for k, v in lora_state_dict(m).items()}
    with pytest.raises(ValueError, match=rf"adapter_config.json.*\n  {field}: "):
        load_lora(m, d)
    after = lora_state_dict(m)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def test_same_config_loads_into_existing_adapters_and_logits_match(tmp_path):
    d, src = _saved(tmp_path, cfg())
    m = Toy()
    add_lora_adapters(m, cfg(dropout=0.1))  # dropout is the model's own training choice: not compared
    load_lora(m, d)
    x = gb.tensor(np.random.default_rng(2).normal(size=(2, 8)).astype(np.float32))
    m.eval(), src.eval()
    np.testing.assert_allclose(m(x).data, src(x).data, rtol=1e-6)


def test_scaling_of_the_modules_is_checked_even_without_lora_config(tmp_path):
    d, _ = _saved(tmp_path, cfg())
    m = Toy()
    add_lora_adapters(m, cfg(alpha=64))
    m.__dict__.pop("lora_config")
    with pytest.raises(ValueError, match="scaling"):
        load_lora(m, d)


@pytest.mark.parametrize("field, value", [("target_modules", ["q_proj", 3]), ("alpha", float("nan")),
                                          ("rank", "2"), ("dropout", "x"), ("bias", None)])
def test_hostile_adapter_config_fields_are_named(tmp_path, field, value):
    import json
    d, _ = _saved(tmp_path, cfg())
    c = json.loads((d / "adapter_config.json").read_text())
    c[field] = value
    (d / "adapter_config.json").write_text(json.dumps(c))
    for existing in (False, True):
        m = Toy()
        if existing:
            add_lora_adapters(m, cfg())
        with pytest.raises(ValueError, match=rf"adapter_config.json: .*{field}"):
            load_lora(m, d)
