"""Reading HF weights goes through the one validating safetensors reader (goldbull_np.io), and a shard
index cannot point outside the model directory."""
import json
import os
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_helpers as H  # noqa: E402

from goldbull_np.io import load_safetensors, save_safetensors  # noqa: E402
from goldbull_np.text import GoldbullText, hf  # noqa: E402


def write_index(directory, weight_map):
    path = os.path.join(directory, "model.safetensors.index.json")
    with open(path, "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    return path


def test_read_safetensors_is_the_io_reader():
    assert hf.read_safetensors is load_safetensors


def test_hostile_model_file_is_refused(tmp_path):
    cfg = H.llama_config(tie_word_embeddings=True)
    H.write_checkpoint(tmp_path, cfg, {})
    # two tensors over the same bytes: the old reader only checked each range against the file
    header = json.dumps({"model.norm.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "model.embed_tokens.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + bytes(8))
    with pytest.raises(ValueError, match="overlap") as info:
        GoldbullText.from_pretrained(tmp_path)
    assert str(path) in str(info.value)
    save_safetensors({"model.norm.weight": np.ones(2, np.float32)}, path)
    path.write_bytes(path.read_bytes() + b"junk")  # trailing bytes
    with pytest.raises(ValueError, match="trailing"):
        hf.read_hf_weights(tmp_path)


def sharded_dir(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    save_safetensors({"a": np.ones(2, np.float32)}, model / "s1.safetensors")
    save_safetensors({"b": np.zeros(3, np.float32)}, tmp_path / "outside.safetensors")
    return model


@pytest.mark.parametrize("entry", ["../outside.safetensors", "ABS", "sub/../../outside.safetensors", "LINK",
                                   "LINKDIR/outside.safetensors", "", 3, "."])
def test_shard_entries_outside_the_directory_are_refused(tmp_path, entry):
    model = sharded_dir(tmp_path)
    if entry == "ABS":
        entry = str(tmp_path / "outside.safetensors")
    elif entry == "LINK":
        os.symlink(tmp_path / "outside.safetensors", model / "link.safetensors")
        entry = "link.safetensors"
    elif entry.__class__ is str and entry.startswith("LINKDIR"):
        os.symlink(tmp_path, model / "up")
        entry = "up/outside.safetensors"
    index = write_index(model, {"a": "s1.safetensors", "b": entry})
    with pytest.raises(ValueError) as info:
        hf.read_hf_weights(model)
    msg = str(info.value)
    assert index in msg and "'b'" in msg and repr(entry) in msg, msg


def test_shards_inside_the_directory_load(tmp_path):
    model = sharded_dir(tmp_path)
    (model / "sub").mkdir()
    save_safetensors({"b": np.zeros(3, np.float32)}, model / "sub" / "s2.safetensors")
    os.symlink(model / "sub" / "s2.safetensors", model / "alias.safetensors")  # a symlink that stays inside
    write_index(model, {"a": "s1.safetensors", "b": "alias.safetensors"})
    out = hf.read_hf_weights(model)
    assert sorted(out) == ["a", "b"]
    write_index(model, {"a": "./s1.safetensors", "b": "sub/s2.safetensors"})
    assert sorted(hf.read_hf_weights(model)) == ["a", "b"]


def test_malformed_index_and_tensor_in_two_shards(tmp_path):
    model = sharded_dir(tmp_path)
    path = os.path.join(model, "model.safetensors.index.json")
    with open(path, "w") as f:
        json.dump([1, 2], f)
    with pytest.raises(ValueError, match="no weight_map"):
        hf.read_hf_weights(model)
    save_safetensors({"a": np.ones(2, np.float32)}, model / "s2.safetensors")
    write_index(model, {"a": "s1.safetensors", "a2": "s2.safetensors"})
    with pytest.raises(ValueError, match="'a' is in two shards"):
        hf.read_hf_weights(model)
