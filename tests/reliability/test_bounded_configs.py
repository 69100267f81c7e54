"""Item 2: a config is bounded before it is built. A config.json (native or Hugging Face) that describes
far more than its weights hold, or a [model] table / ModelConfig that cannot fit in memory, fails at
once (no layers built, nothing allocated), naming the file/field and the sizes."""
import json
import os
import sys
import time

import pytest

from goldbull_np.nn.model_base import check_memory
from goldbull_np.text import GoldbullText, ModelConfig
from goldbull_np.text.recipes import model_config
from goldbull_np.train.config import ConfigError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hf"))
import hf_helpers as H  # noqa: E402


@pytest.fixture
def fast():
    t0 = time.perf_counter()
    yield
    assert time.perf_counter() - t0 < 5.0, "a runaway config must fail at once, not after building it"


def _native(tmp_path, **over):
    m = GoldbullText(ModelConfig.tiny(vocab_size=20))
    m.save_pretrained(tmp_path)
    d = json.loads((tmp_path / "config.json").read_text())
    d.update(over)
    (tmp_path / "config.json").write_text(json.dumps(d))
    return tmp_path


@pytest.mark.parametrize("over", [dict(n_layer=10**9), dict(vocab_size=16_000_000), dict(block_size=10**12)])
def test_native_config_beyond_its_weights_fails_at_once(tmp_path, fast, over):
    with pytest.raises(ValueError, match=r"config.json.*(describes a model of|needs at least)"):
        GoldbullText.from_pretrained(_native(tmp_path, **over))


def test_small_mismatch_still_names_the_tensors(tmp_path):
    with pytest.raises(ValueError, match=r"model.safetensors: missing tensor"):
        GoldbullText.from_pretrained(_native(tmp_path, n_layer=3))


def test_hf_config_with_a_million_layers_fails_at_once(tmp_path, fast):
    cfg = H.gpt2_config()
    w = H.gpt2_weights(cfg)
    cfg["n_layer"] = 10**6
    _write_hf(tmp_path, cfg, w)
    with pytest.raises(ValueError, match=r"config.json: n_layer=1000000, but the weights hold \d+ tensors"):
        GoldbullText.from_pretrained(tmp_path)


def _write_hf(d, cfg, w):
    from goldbull_np.io import save_safetensors
    (d / "config.json").write_text(json.dumps(cfg))
    save_safetensors(w, d / "model.safetensors")


@pytest.mark.parametrize("over, vocab, field", [(dict(n_layer=10**9), 65, "n_layer"),
                                                (dict(block_size=10**12), 65, "block_size"),
                                                (dict(), 10**10, "vocab_size")])
def test_model_table_that_cannot_fit_is_a_config_error(fast, over, vocab, field):
    with pytest.raises(ConfigError, match=rf"\[model\]: .*{field}=.*needs at least .* more than this machine"):
        model_config({"preset": "tiny", **over}, vocab)


def test_cli_train_with_a_runaway_model_table_is_a_usage_error(tmp_path, fast, capsys):
    from goldbull_np.cli import main
    cfg = tmp_path / "run.toml"
    cfg.write_text("[model]\npreset = \"tiny\"\nn_layer = 1000000000\n")
    code = main(["train", "--config", str(cfg), "--out", str(tmp_path / "o"), "--no-progress", "--sample-tokens", "0"])
    assert code in (1, 2)
    assert "n_layer" in capsys.readouterr().err


def test_memory_estimate_is_a_lower_bound_of_what_is_built():
    for kw in [dict(), dict(position="rope", norm="rmsnorm", mlp="swiglu", bias=False, n_head=4, n_kv_head=2),
               dict(tie_embeddings=False, mlp_hidden=48)]:
        c = ModelConfig.tiny(vocab_size=30, **kw)
        m = GoldbullText(c)
        assert c.num_parameters() == m.num_parameters()
        assert c.memory_bytes() >= 4 * m.num_parameters()


def test_check_memory_names_what():
    with pytest.raises(ValueError, match="the thing needs at least 2.0 GiB"):
        check_memory(2 << 30, "the thing", available=1 << 30)


@pytest.mark.parametrize("field, value", [("init_std", "0.02"), ("init_std", float("nan")), ("dropout", "0.1"),
                                          ("norm_eps", float("inf")), ("rope_theta", None)])
def test_non_numeric_model_fields_are_named(field, value):
    with pytest.raises(ValueError, match=rf"ModelConfig.{field} must be a finite number"):
        ModelConfig.tiny(**{field: value})
