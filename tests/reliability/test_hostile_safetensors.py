"""Item 1 at every door: each place that opens a safetensors file (model weights, LoRA adapters, a Hugging
Face directory, an optimizer state on resume) goes through the one validating reader, so aliasing,
holes, trailing bytes, duplicate names and Git LFS pointers are refused there, naming the file and the
tensor. (The reader's rules themselves: tests/io/test_safetensors_io.py; shard escapes: tests/hf.)"""
import json
import struct

import numpy as np
import pytest

from goldbull_np.io import save_safetensors
from goldbull_np.nn.lora import LoRAConfig, add_lora_adapters, load_lora, save_lora
from goldbull_np.text import GoldbullText
from rel_helpers import tiny_model

LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 4096\n"


def _raw(header: dict, data: bytes) -> bytes:
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


def _hostile(kind, name):
    f32 = lambda b, e: {"dtype": "F32", "shape": [(e - b) // 4], "data_offsets": [b, e]}  # noqa: E731
    if kind == "alias":
        return _raw({name: f32(0, 8), "other": f32(0, 8)}, bytes(8)), "overlap"
    if kind == "trailing":
        return _raw({name: f32(0, 8)}, bytes(12)), "trailing bytes"
    if kind == "hole":
        return _raw({name: f32(4, 12)}, bytes(12)), "hole"
    if kind == "duplicate":
        blob = ('{"%s": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
                '"%s": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}' % (name, name)).encode()
        return struct.pack("<Q", len(blob)) + blob + bytes(16), "duplicate key"
    if kind == "lfs":
        return LFS, "Git LFS pointer"
    raise KeyError(kind)


KINDS = ["alias", "trailing", "hole", "duplicate", "lfs"]


@pytest.mark.parametrize("kind", KINDS)
def test_model_weights(tmp_path, kind):
    tiny_model(12).save_pretrained(tmp_path)
    data, what = _hostile(kind, "norm.weight")
    (tmp_path / "model.safetensors").write_bytes(data)
    with pytest.raises(ValueError, match=rf"model.safetensors: .*{what}"):
        GoldbullText.from_pretrained(tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_lora_adapters(tmp_path, kind):
    m = tiny_model(12)
    add_lora_adapters(m, LoRAConfig(rank=2, alpha=4, dropout=0.0, target_modules=["q_proj"]))
    save_lora(m, tmp_path)
    data, what = _hostile(kind, "layers.0.attn.qkv_proj.lora.q_proj.lora_A.weight")
    (tmp_path / "adapter_model.safetensors").write_bytes(data)
    with pytest.raises(ValueError, match=rf"adapter_model.safetensors: .*{what}"):
        load_lora(tiny_model(12), tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_hugging_face_directory(tmp_path, kind):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 8,
                                                      "vocab_size": 11, "n_positions": 8}))
    data, what = _hostile(kind, "wte.weight")
    (tmp_path / "model.safetensors").write_bytes(data)
    with pytest.raises(ValueError, match=rf"model.safetensors: .*{what}"):
        GoldbullText.from_pretrained(tmp_path)


def test_index_entry_outside_the_directory(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 8,
                                                      "vocab_size": 11, "n_positions": 8}))
    save_safetensors({"wte.weight": np.zeros((11, 8), np.float32)}, tmp_path.parent / "x.safetensors")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"wte.weight": "../x.safetensors"}}))
    with pytest.raises(ValueError, match=r"index.json: weight_map entry 'wte.weight' -> '../x.safetensors' points outside"):
        GoldbullText.from_pretrained(tmp_path)
