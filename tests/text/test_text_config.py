"""ModelConfig: presets, validation messages, JSON round trip and malformed files."""
import dataclasses
import json

import pytest

import goldbull_np as gb
from goldbull_np.text import ModelConfig


def test_presets():
    assert gb.ModelConfig is ModelConfig
    d = ModelConfig.default()
    assert (d.n_layer, d.n_head, d.n_embd, d.block_size, d.vocab_size) == (6, 6, 384, 256, 65)
    assert d == ModelConfig()
    s = ModelConfig.small(vocab_size=100)
    assert (s.n_layer, s.n_head, s.n_embd, s.block_size, s.dropout, s.vocab_size) == (4, 4, 128, 64, 0.0, 100)
    t = ModelConfig.tiny(vocab_size=11, position="rope")
    assert t.n_layer == 2 and t.position == "rope"
    assert d.n_kv_head == d.n_head and d.bias and d.tie_embeddings
    assert (d.norm, d.mlp, d.position) == ("layernorm", "gelu", "learned")


@pytest.mark.parametrize("kw,msg", [
    (dict(n_embd=100, n_head=6), "divisible by n_head"),
    (dict(n_head=6, n_kv_head=4), "multiple of n_kv_head"),
    (dict(norm="batchnorm"), "norm must be one of"),
    (dict(mlp="relu"), "mlp must be one of"),
    (dict(position="alibi"), "position must be one of"),
    (dict(n_layer=0), "n_layer must be a positive integer"),
    (dict(vocab_size=2.5), "vocab_size"),
    (dict(dropout=1.0), "dropout"),
    (dict(n_embd=36, n_head=4, position="rope"), "even head dim"),
    (dict(rope_theta=0.0), "rope_theta"),
    (dict(bias="yes"), "bias must be a bool"),
])
def test_validation_messages(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ModelConfig(**kw)


def test_json_round_trip(tmp_path):
    cfg = ModelConfig.tiny(vocab_size=33, n_kv_head=1, position="rope", norm="rmsnorm", mlp="swiglu")
    path = tmp_path / "config.json"
    cfg.to_json_file(path)
    raw = json.loads(path.read_text())
    assert raw["model_type"] == "goldbull_text" and raw["architectures"] == ["GoldbullText"]
    assert {f.name for f in dataclasses.fields(ModelConfig)} <= set(raw)
    assert ModelConfig.from_json_file(path) == cfg
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


@pytest.mark.parametrize("text,msg", [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"n_layer": 2, "n_heads": 3}', r"unknown ModelConfig field\(s\) \['n_heads'\]"),
    ('{"model_type": "llama"}', "model_type is 'llama'"),
    ('{"n_embd": 10, "n_head": 3}', "divisible by n_head"),
])
def test_malformed_config_names_the_file(tmp_path, text, msg):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=msg) as e:
        ModelConfig.from_json_file(path)
    assert str(path) in str(e.value)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        ModelConfig.from_json_file(tmp_path / "nope.json")
