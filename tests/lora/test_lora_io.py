"""save_lora / load_lora through goldbull_np.io: atomic files the safetensors library reads, hostile
adapter files refused, and load_lora all-or-nothing (a failed load leaves the model exactly as it was)."""
import json
import os
import shutil
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file

import goldbull_np as gb
from goldbull_np import nn
from goldbull_np.nn.lora import (ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, LoRAConfig, LoRALinear,
                                 add_lora_adapters, load_lora, lora_state_dict, save_lora)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(8, 8)
        self.v_proj = nn.Linear(8, 6, bias=False)
        self.norm = nn.LayerNorm(6)

    def forward(self, x):
        return self.norm(self.v_proj(self.q_proj(x)))


class Toy(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        gb.manual_seed(seed)
        self.layers = nn.ModuleList([Block(), Block()])
        self.layers[1].q_proj = nn.Linear(6, 8)
        self.head = nn.Linear(6, 3)


def cfg(**over):
    kw = dict(rank=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    kw.update(over)
    return LoRAConfig(**kw)


def saved(tmp_path, name, config, seed=3):
    m = Toy()
    add_lora_adapters(m, config)
    rng = np.random.default_rng(seed)
    for t in lora_state_dict(m, keep_vars=True).values():
        t.data[...] = rng.normal(0, 0.1, t.shape)
    d = tmp_path / name
    save_lora(m, d)
    return d, m


def snapshot(model):
    return ([(n, type(m), id(m)) for n, m in model.named_modules()],
            [(n, p.requires_grad, id(p)) for n, p in model.named_parameters()],
            {k: v.copy() for k, v in model.state_dict().items()},
            "lora_config" in model.__dict__)


def assert_unchanged(model, before):
    mods, flags, state, had_config = snapshot(model)
    assert mods == before[0]
    assert flags == before[1]
    assert list(state) == list(before[2])
    for k in state:
        np.testing.assert_array_equal(state[k], before[2][k], err_msg=k)
    assert had_config == before[3]
    assert not any(isinstance(m, LoRALinear) for m in model.modules())


def test_save_writes_atomic_files_the_library_reads(tmp_path):
    d, m = saved(tmp_path, "a", cfg())
    assert sorted(os.listdir(d)) == [ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME]  # no temporaries left
    lib = load_file(str(d / ADAPTER_WEIGHTS_NAME))
    ours = lora_state_dict(m)
    assert set(lib) == set(ours)
    for k in ours:
        np.testing.assert_array_equal(lib[k], ours[k])
    meta = json.loads((d / ADAPTER_CONFIG_NAME).read_text())
    assert meta["rank"] == 4 and meta["peft_type"] == "LORA" and meta["tensors"] == sorted(ours)


def test_round_trip_and_the_generator_is_left_alone(tmp_path):
    d, m = saved(tmp_path, "a", cfg())
    fresh = Toy()
    gb.manual_seed(123)
    state = gb.get_rng_state()
    load_lora(fresh, d)
    assert gb.get_rng_state() == state
    want = lora_state_dict(m)
    got = lora_state_dict(fresh)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def mismatched_rank(tmp_path):
    """adapter_model.safetensors of rank 4 beside an adapter_config.json that says rank 2."""
    d4, _ = saved(tmp_path, "r4", cfg(rank=4))
    d2, _ = saved(tmp_path, "r2", cfg(rank=2))
    shutil.copy(d2 / ADAPTER_CONFIG_NAME, d4 / ADAPTER_CONFIG_NAME)
    return d4


@pytest.mark.parametrize("frozen", [None, "layers.0.norm.weight", "head.weight"])
def test_failed_load_leaves_the_model_exactly_as_it_was(tmp_path, frozen):
    d = mismatched_rank(tmp_path)
    model = Toy(seed=7)
    if frozen is not None:  # unusual flags must come back as they were, not as "all trainable"
        dict(model.named_parameters())[frozen].requires_grad_(False)
    before = snapshot(model)
    gb.manual_seed(5)
    rng = gb.get_rng_state()
    with pytest.raises(ValueError, match="rank 4 in the file, 2 in the model") as info:
        load_lora(model, d)
    assert str(d / ADAPTER_WEIGHTS_NAME) in str(info.value)
    assert_unchanged(model, before)
    assert gb.get_rng_state() == rng
    # and it still works afterwards: the model takes the right adapters
    d_ok, _ = saved(tmp_path, "ok", cfg(rank=2))
    load_lora(model, d_ok)
    assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 4


def test_missing_and_unexpected_tensors_roll_back_too(tmp_path):
    d, _ = saved(tmp_path, "a", cfg())
    meta = json.loads((d / ADAPTER_CONFIG_NAME).read_text())
    meta["target_modules"] = ["q_proj"]  # the file also holds v_proj's adapters: unexpected
    (d / ADAPTER_CONFIG_NAME).write_text(json.dumps(meta))
    model = Toy()
    before = snapshot(model)
    with pytest.raises(ValueError, match="unexpected tensor 'layers.0.v_proj.lora_A.weight'"):
        load_lora(model, d)
    assert_unchanged(model, before)
    meta["target_modules"] = ["q_proj", "v_proj", "head"]  # head's adapters are not in the file: missing
    (d / ADAPTER_CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="missing tensor 'head.lora_A.weight'"):
        load_lora(model, d)
    assert_unchanged(model, before)


def test_config_that_matches_no_linear_rolls_back(tmp_path):
    d, _ = saved(tmp_path, "a", cfg())
    meta = json.loads((d / ADAPTER_CONFIG_NAME).read_text())
    meta["target_modules"] = ["q_proj", "o_proj"]
    (d / ADAPTER_CONFIG_NAME).write_text(json.dumps(meta))
    model = Toy()
    before = snapshot(model)
    with pytest.raises(ValueError, match="o_proj"):
        load_lora(model, d)
    assert_unchanged(model, before)


def test_interrupted_load_rolls_back(tmp_path, monkeypatch):
    d, _ = saved(tmp_path, "a", cfg())
    model = Toy()
    before = snapshot(model)
    from goldbull_np.nn import lora

    monkeypatch.setattr(lora, "_mismatches", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        load_lora(model, d)
    assert_unchanged(model, before)


def test_failed_load_into_existing_adapters_copies_nothing(tmp_path):
    d = mismatched_rank(tmp_path)  # config rank 2, tensors rank 4
    model = Toy()
    add_lora_adapters(model, cfg(rank=2))
    before = {k: v.copy() for k, v in lora_state_dict(model).items()}
    with pytest.raises(ValueError, match="rank"):
        load_lora(model, d)
    after = lora_state_dict(model)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def test_hostile_adapter_file_is_refused_before_anything_changes(tmp_path):
    d, _ = saved(tmp_path, "a", cfg())
    path = d / ADAPTER_WEIGHTS_NAME
    blob = path.read_bytes()
    path.write_bytes(blob + b"\0" * 4)  # trailing bytes
    model = Toy()
    before = snapshot(model)
    with pytest.raises(ValueError, match="trailing") as info:
        load_lora(model, d)
    assert str(path) in str(info.value)
    assert_unchanged(model, before)
    header = json.dumps({"layers.0.q_proj.lora_A.weight": {"dtype": "F32", "shape": [4, 8],
                                                          "data_offsets": [0, 128]},
                         "layers.0.q_proj.lora_B.weight": {"dtype": "F32", "shape": [8, 4],
                                                          "data_offsets": [0, 128]}})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + bytes(128))  # overlapping tensors
    with pytest.raises(ValueError, match="overlap"):
        load_lora(model, d)
    assert_unchanged(model, before)
