"""Config dataclasses: defaults, TOML/JSON loading, and validation errors that name the field."""
import json
from pathlib import Path

import numpy as np
import pytest

from goldbull_np.text import TextTrainingConfig
from goldbull_np.train import CheckpointConfig, ConfigError, OptimizerConfig, TrainingConfig

ROOT = Path(__file__).resolve().parents[2]


def test_training_config_seed_fields_and_defaults():
    c = TrainingConfig(learning_rate=1e-4, batch_size=8, num_epochs=5, gradient_clipping=1.0, weight_decay=0.01,
                       save_frequency=100)
    assert (c.learning_rate, c.batch_size, c.num_epochs, c.gradient_clipping, c.weight_decay,
            c.save_frequency) == (1e-4, 8, 5, 1.0, 0.01, 100)


def test_text_training_config_guide_fields():
    c = TextTrainingConfig(learning_rate=5e-5, batch_size=4, gradient_accumulation_steps=2, num_epochs=3,
                           warmup_steps=100, max_grad_norm=1.0, weight_decay=0.01, lr_scheduler="cosine",
                           save_steps=500, eval_steps=100, logging_steps=10, seed=1, output_dir="x", max_steps=7,
                           early_stopping_patience=2)
    assert c.effective_batch_size == 8
    assert c.lr_scheduler == "cosine" and c.max_steps == 7 and c.early_stopping_patience == 2


@pytest.mark.parametrize("cls, field, value", [
    (TrainingConfig, "learning_rate", -1e-3),
    (TrainingConfig, "learning_rate", float("nan")),
    (TrainingConfig, "batch_size", 0),
    (TrainingConfig, "batch_size", 2.5),
    (TrainingConfig, "num_epochs", True),
    (TrainingConfig, "gradient_clipping", -1.0),
    (TrainingConfig, "weight_decay", "0.1"),
    (TrainingConfig, "save_frequency", -5),
    (TextTrainingConfig, "gradient_accumulation_steps", 0),
    (TextTrainingConfig, "warmup_steps", -1),
    (TextTrainingConfig, "max_grad_norm", float("inf")),
    (TextTrainingConfig, "lr_scheduler", "exponential"),
    (TextTrainingConfig, "eval_steps", -1),
    (TextTrainingConfig, "max_steps", 0),
    (TextTrainingConfig, "early_stopping_patience", 0),
    (TextTrainingConfig, "beta2", 1.0),
    (TextTrainingConfig, "output_dir", ""),
    (CheckpointConfig, "max_checkpoints", 0),
    (CheckpointConfig, "best_metric", "bleu"),
    (CheckpointConfig, "save_optimizer_state", 1),
    (OptimizerConfig, "beta1", 1.5),
    (OptimizerConfig, "epsilon", 0.0),
])
def test_invalid_field_is_named(cls, field, value):
    with pytest.raises(ConfigError) as e:
        cls(**{field: value})
    msg = str(e.value)
    assert f"{cls.__name__}.{field}" in msg and repr(value) in msg


def test_min_lr_above_lr_is_rejected():
    with pytest.raises(ConfigError, match="min_learning_rate"):
        TextTrainingConfig(learning_rate=1e-3, min_learning_rate=1e-2)


def test_integral_float_is_accepted_as_int():
    assert TrainingConfig(batch_size=4.0).batch_size == 4


def test_toml_and_json_round_trip(tmp_path):
    t = tmp_path / "cfg.toml"
    t.write_text('[training]\nlearning_rate = 3e-4\nbatch_size = 6\nlr_scheduler = "linear"\nmax_steps = 9\n')
    c = TextTrainingConfig.from_file(t)
    assert (c.learning_rate, c.batch_size, c.lr_scheduler, c.max_steps) == (3e-4, 6, "linear", 9)
    j = tmp_path / "cfg.json"
    c.to_json(j)
    assert TextTrainingConfig.from_file(j) == c
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"learning_rate": 0.1, "batch_size": 3}))
    assert TrainingConfig.from_file(flat).batch_size == 3


def test_file_errors_name_file_and_field(tmp_path):
    t = tmp_path / "bad.toml"
    t.write_text("[training]\nbatch_size = -2\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*TextTrainingConfig\.batch_size"):
        TextTrainingConfig.from_file(t)
    t.write_text("[training]\nbatchsize = 2\n")
    with pytest.raises(ConfigError, match="unknown field.*batchsize"):
        TextTrainingConfig.from_file(t)
    t.write_text("[training\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        TextTrainingConfig.from_file(t)
    with pytest.raises(ConfigError, match="unknown config format"):
        TrainingConfig.from_file(tmp_path / "x.yaml")
    with pytest.raises(ConfigError, match="not found"):
        TrainingConfig.from_file(tmp_path / "missing.toml")


def test_shipped_configs_load():
    from goldbull_np.text.run_config import RunConfig
    run = RunConfig.from_file(ROOT / "configs" / "shakespeare_char.toml")
    t = run.training
    assert (t.learning_rate, t.batch_size, t.warmup_steps, t.min_learning_rate, t.lr_decay_steps, t.max_steps) == \
        (1e-3, 12, 100, 1e-4, 2000, 2000)
    assert (t.beta1, t.beta2, t.weight_decay, t.max_grad_norm) == (0.9, 0.99, 0.1, 1.0)
    assert run.model["n_layer"] == 4 and run.model["n_embd"] == 128 and run.model["block_size"] == 64
    assert run.data.tokenizer == "char" and run.data.val_fraction == 0.1
    assert run.model["position"] == "rope"
    nanogpt = RunConfig.from_file(ROOT / "configs" / "shakespeare_char_nanogpt.toml")
    assert nanogpt.model["position"] == "learned"
    assert {k: v for k, v in nanogpt.model.items() if k != "position"} == \
        {k: v for k, v in run.model.items() if k != "position"}
    assert nanogpt.training == run.training and nanogpt.data == run.data
    for p in (ROOT / "configs").glob("*.toml"):
        RunConfig.from_file(p)


def test_window_stride_is_validated_and_reaches_the_training_split(tmp_path):
    from goldbull_np.text.run_config import DataConfig
    from goldbull_np.train.config import ConfigError
    from goldbull_np.train.data import split_tokens

    with pytest.raises((ConfigError, ValueError), match="window_stride"):
        DataConfig(window_stride=0)
    train, val = split_tokens(np.arange(1000), 16, 0.1, train_stride=1)
    assert len(train) == 900 - 16 and train.stride == 1
    assert val.stride == 16 and len(val) == (100 - 1) // 16


def test_aliases_name_one_setting():
    c = TrainingConfig(gradient_clipping=0.5, save_frequency=7)
    assert (c.max_grad_norm, c.gradient_clipping, c.save_steps, c.save_frequency) == (0.5, 0.5, 7, 7)
    assert TrainingConfig.from_dict({"gradient_clipping": 2.0}).max_grad_norm == 2.0
    assert c.replace(save_frequency=3).save_steps == 3
    c.gradient_clipping = 0.25
    assert c.max_grad_norm == 0.25 and "gradient_clipping" not in c.to_dict()
    assert TrainingConfig(gradient_clipping=1.0, max_grad_norm=1.0).max_grad_norm == 1.0
    with pytest.raises(ConfigError, match="gradient_clipping and max_grad_norm name one setting"):
        TrainingConfig(gradient_clipping=1.0, max_grad_norm=2.0)


def test_family_configs_add_fields_and_defaults_and_keep_the_checks():
    from goldbull_np.text import FineTuningConfig, TextTrainingConfig
    t = TextTrainingConfig()
    assert isinstance(t, TrainingConfig) and (t.learning_rate, t.gradient_accumulation_steps) == (5e-5, 2)
    f = FineTuningConfig()
    assert isinstance(f, TrainingConfig) and f.lora_rank == 8 and f.weight_decay == 0.0
    assert set(TrainingConfig.field_names()) < set(FineTuningConfig.field_names())
    for cls in (TextTrainingConfig, FineTuningConfig):  # a redeclared default keeps the base's check
        with pytest.raises(ConfigError, match=f"{cls.__name__}.learning_rate must be"):
            cls(learning_rate=-1.0)
    with pytest.raises(ConfigError, match="FineTuningConfig.target_layers"):
        FineTuningConfig(target_layers=[])
    assert f.training_config() == TrainingConfig.from_dict(f.training_fields())


def test_checkpoint_tables_max_checkpoints_is_kept():
    """[checkpoint] max_checkpoints used to be overwritten by the [training] default."""
    from goldbull_np.text.run_config import RunConfig
    run = RunConfig.from_dict({"checkpoint": {"max_checkpoints": 5}})
    assert run.checkpoint_config().max_checkpoints == 5
    run = RunConfig.from_dict({"training": {"max_checkpoints": 4}})
    assert run.checkpoint_config().max_checkpoints == 4
    run = RunConfig.from_dict({"training": {"max_checkpoints": 4}, "checkpoint": {"max_checkpoints": 5}})
    with pytest.raises(ConfigError, match="disagree"):
        run.checkpoint_config()


def test_a_type_error_while_building_a_config_is_not_a_config_error(monkeypatch):
    """A TypeError is a bug, not a bad value: it must surface as itself."""
    from goldbull_np.text import run_config

    def broken(cls, data):
        raise TypeError("a bug")

    monkeypatch.setattr(run_config.DataConfig, "from_dict", classmethod(broken))
    with pytest.raises(TypeError, match="a bug"):
        run_config.RunConfig.from_dict({})
    from goldbull_np.text.recipes import model_config
    with pytest.raises(ConfigError, match=r"\[model\]: unknown field\(s\) n_layers"):  # was a caught TypeError
        model_config({"n_layers": 2}, 65)
