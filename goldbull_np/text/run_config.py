"""The ``goldbull train`` run config: ``[model] [data] [training] [checkpoint]`` tables in one TOML/JSON file.

    [model]       preset = "small" (tiny | small | default) and any ModelConfig field to override
    [data]        path, tokenizer = "char" | "byte", block_size, val_fraction, window_stride
    [training]    TextTrainingConfig fields
    [checkpoint]  CheckpointConfig fields

Command-line flags override the file; the file overrides the built-in defaults.
"""
import os
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from ..train.config import (CheckpointConfig, Choice, ConfigError, ConfigMixin, Int, Number, Str, config, option,
                            read_config_file)
from .trainer import TextTrainingConfig

DEFAULT_OUT = os.path.join("goldbull_runs", "default")
PRESETS = ("tiny", "small", "default")
TOKENIZERS = ("char", "byte")

# `goldbull train` with no arguments: a small GoldbullText on the embedded corpus (the README gives its time).
DEFAULT_MODEL = {"preset": "small", "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0}
# 1500 steps of 16 x 64 tokens plus 7 evaluations of 20 batches: long enough to write recognisable words.
DEFAULT_TRAINING = dict(learning_rate=2e-3, batch_size=16, gradient_accumulation_steps=1, warmup_steps=100,
                        max_grad_norm=1.0, weight_decay=0.1, lr_scheduler="cosine", min_learning_rate=2e-4,
                        beta1=0.9, beta2=0.99, max_steps=1500, save_steps=250, eval_steps=250, eval_iters=20,
                        logging_steps=10, seed=1337)


@config
class DataConfig(ConfigMixin):
    """The ``[data]`` table.

    Args:
        path: a UTF-8 text file (None: the embedded default corpus).
        tokenizer: "char" (vocabulary = the characters of the text) or "byte" (256 byte values).
        block_size: tokens per training sequence (None: the model's block_size).
        val_fraction: the last this fraction of the tokens is the validation set (nanoGPT's 90/10 split).
        window_stride: tokens between the starts of training sequences (None: block_size, i.e.
            non-overlapping; 1: a window at every offset, nanoGPT's random-offset sampling once shuffled).
    """

    path: Optional[str] = option(None, Str(allow_none=True))
    tokenizer: str = option("char", Choice(*TOKENIZERS))
    block_size: Optional[int] = option(None, Int(low=2, allow_none=True))
    val_fraction: float = option(0.1, Number(low=0, high=0.5))
    window_stride: Optional[int] = option(None, Int(low=1, allow_none=True))

    _section: ClassVar[Optional[str]] = "data"


@dataclass
class RunConfig:
    """A whole ``goldbull train`` run: model preset/overrides, data, training, checkpointing."""

    model: dict = field(default_factory=lambda: dict(DEFAULT_MODEL))
    data: DataConfig = field(default_factory=DataConfig)
    training: TextTrainingConfig = field(default_factory=lambda: TextTrainingConfig.from_dict(DEFAULT_TRAINING))
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    @classmethod
    def from_file(cls, path) -> "RunConfig":
        raw = read_config_file(path)
        unknown = sorted(set(raw) - {"model", "data", "training", "checkpoint"})
        if unknown:
            raise ConfigError(f"{path}: unknown table(s) {', '.join(unknown)} (known: model, data, training, "
                              "checkpoint)")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "RunConfig":
        try:
            model = dict(raw.get("model") or {})
            preset = model.get("preset", "small")
            if preset not in PRESETS:
                raise ConfigError(f"model.preset must be one of {', '.join(PRESETS)}, got {preset!r}")
            model.setdefault("preset", preset)
            training = TextTrainingConfig.from_dict({**DEFAULT_TRAINING, **(raw.get("training") or {})})
            checkpoint = CheckpointConfig.from_dict(raw.get("checkpoint") or {})
            return cls(model=model, data=DataConfig.from_dict(raw.get("data") or {}), training=training,
                       checkpoint=checkpoint)
        except ConfigError as exc:  # only config errors: a TypeError here is a bug, and must show as one
            raise ConfigError(f"{source}: {exc}") from None

    def checkpoint_config(self) -> CheckpointConfig:
        """The checkpoint manager's config: the ``[checkpoint]`` table, with ``[training] max_checkpoints``
        when that is set (both set and different is an error)."""
        keep = self.training.max_checkpoints
        if keep is None or keep == self.checkpoint.max_checkpoints:
            return self.checkpoint
        if self.checkpoint.max_checkpoints != CheckpointConfig().max_checkpoints:
            raise ConfigError(f"[training] max_checkpoints = {keep} and [checkpoint] max_checkpoints = "
                              f"{self.checkpoint.max_checkpoints} disagree: set one")
        return self.checkpoint.replace(max_checkpoints=keep)
