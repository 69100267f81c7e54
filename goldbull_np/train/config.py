"""Training configs: dataclasses with commented defaults, loadable from TOML and JSON, validated field by field.

Every check raises :class:`ConfigError` (a ``ValueError``) whose message names the config and the field::

    TrainingConfig.learning_rate must be a finite number > 0, got -0.1
"""
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Optional

from .._config_io import unknown_fields

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    try:
        import tomli as _toml
    except ModuleNotFoundError:
        _toml = None


class ConfigError(ValueError):
    """A config field has a wrong type or value; the message names the field."""


def read_config_file(path) -> dict:
    """Read a ``.toml`` or ``.json`` file into a dict (the format is chosen by the extension)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".toml":
            if _toml is None:
                raise ConfigError(f"{path}: reading TOML needs Python >= 3.11 or the 'tomli' package")
            with open(path, "rb") as f:
                return _toml.load(f)
        if ext == ".json":
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a JSON object at the top level")
            return data
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: cannot parse: {exc}") from None
    raise ConfigError(f"{path}: unknown config format {ext!r} (use .toml or .json)")


class ConfigMixin:
    """``from_dict``/``from_file``/``to_dict``/``replace`` for a config dataclass that validates itself."""

    _section: Optional[str] = None  # the table this config reads from a multi-section file, e.g. "training"

    @classmethod
    def from_dict(cls, data: dict):
        """Build from a dict; unknown keys are an error naming them and the known ones."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a table/object, got {type(data).__name__}")
        unknown = unknown_fields(cls, data)
        if unknown:
            names = [f.name for f in dataclasses.fields(cls)]
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)} "
                              f"(known: {', '.join(names)})")
        return cls(**data)

    @classmethod
    def from_file(cls, path, section: Optional[str] = None):
        """Load from a TOML or JSON file: the whole file, or its ``[section]`` table when it has one."""
        data = read_config_file(path)
        section = section or cls._section
        if section and isinstance(data.get(section), dict):
            data = data[section]
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{os.fspath(path)}: {exc}") from None

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of the fields (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------------------------
# field checks: each takes (owner, field name, value) and returns the (possibly coerced) value

def _fail(owner, name, what, value):
    raise ConfigError(f"{type(owner).__name__}.{name} must be {what}, got {value!r}")


def check_number(owner, name, value, *, low=None, high=None, low_open=False, allow_none=False):
    """A finite real number in [low, high] (or (low, high] with low_open); returns it as float."""
    if value is None and allow_none:
        return None
    bound = ""
    if low is not None:
        bound = f" {'>' if low_open else '>='} {low}"
    if high is not None:
        bound += f"{' and' if bound else ''} <= {high}"
    what = f"a finite number{bound}" + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np
            if not isinstance(value, (np.integer, np.floating)):
                _fail(owner, name, what, value)
        except ImportError:  # pragma: no cover
            _fail(owner, name, what, value)
    value = float(value)
    if not math.isfinite(value):
        _fail(owner, name, what, value)
    if low is not None and (value < low or (low_open and value == low)):
        _fail(owner, name, what, value)
    if high is not None and value > high:
        _fail(owner, name, what, value)
    return value


def check_int(owner, name, value, *, low=None, allow_none=False):
    """An integer >= low (bools are not integers here); returns it as int."""
    if value is None and allow_none:
        return None
    what = "an integer" + (f" >= {low}" if low is not None else "") + (" or None" if allow_none else "")
    if isinstance(value, bool):
        _fail(owner, name, what, value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        import numpy as np
        if isinstance(value, np.integer):
            value = int(value)
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(value, int) or (low is not None and value < low):
        _fail(owner, name, what, value)
    return value


def check_choice(owner, name, value, choices):
    if not isinstance(value, str) or value.lower() not in choices:
        _fail(owner, name, f"one of {', '.join(repr(c) for c in choices)}", value)
    return value.lower()


def check_str(owner, name, value, *, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        _fail(owner, name, "a non-empty string" + (" or None" if allow_none else ""), value)
    return os.fspath(value)


def check_bool(owner, name, value):
    if not isinstance(value, bool):
        _fail(owner, name, "true or false", value)
    return value


# ---------------------------------------------------------------------------------------------------------

@dataclass
class TrainingConfig(ConfigMixin):
    """The generic trainer's config (the seed's ``TrainingConfig``).

    Args:
        learning_rate: peak learning rate of the optimizer.
        batch_size: sequences per optimizer step.
        num_epochs: passes over the training data.
        gradient_clipping: clip the global gradient norm to this (0 disables clipping).
        weight_decay: decoupled weight decay (AdamW) on matrices; biases and norms are not decayed.
        save_frequency: save a checkpoint every this many optimizer steps (0: only at the end).
    """

    learning_rate: float = 1e-4
    batch_size: int = 8
    num_epochs: int = 1
    gradient_clipping: float = 1.0
    weight_decay: float = 0.01
    save_frequency: int = 100
    seed: int = 1337  # seeds the model init, dropout and the data order
    max_consecutive_nonfinite: int = 10  # stop with an error after this many skipped steps in a row

    _section = "training"

    def __post_init__(self):
        self.learning_rate = check_number(self, "learning_rate", self.learning_rate, low=0, low_open=True)
        self.batch_size = check_int(self, "batch_size", self.batch_size, low=1)
        self.num_epochs = check_int(self, "num_epochs", self.num_epochs, low=1)
        self.gradient_clipping = check_number(self, "gradient_clipping", self.gradient_clipping, low=0)
        self.weight_decay = check_number(self, "weight_decay", self.weight_decay, low=0)
        self.save_frequency = check_int(self, "save_frequency", self.save_frequency, low=0)
        self.seed = check_int(self, "seed", self.seed, low=0)
        self.max_consecutive_nonfinite = check_int(self, "max_consecutive_nonfinite",
                                                   self.max_consecutive_nonfinite, low=1)


SCHEDULES = ("constant", "linear", "cosine")  # goldbull_np.optim.lr_scheduler.get_scheduler's names

METRIC_MODES = {"validation_loss": "min", "val_loss": "min", "loss": "min", "train_loss": "min",
                "validation_accuracy": "max", "val_accuracy": "max", "accuracy": "max",
                "validation_perplexity": "min", "perplexity": "min"}


@dataclass
class CheckpointConfig(ConfigMixin):
    """How a :class:`~goldbull_np.train.CheckpointManager` saves and rotates checkpoints.

    Args:
        save_frequency: save every this many optimizer steps; None uses the trainer config's
            ``save_steps``/``save_frequency``.
        max_checkpoints: how many of the most recent checkpoints to keep (the best is kept on top of these).
        save_optimizer_state: write ``optimizer.safetensors`` (needed for exact resume).
        save_scheduler_state: write the LR scheduler state into ``trainer_state.json``.
        best_metric: the metric that picks the best checkpoint ("validation_loss", "validation_accuracy",
            "validation_perplexity", "train_loss"; accuracy is maximised, the others minimised), or None.
    """

    save_frequency: Optional[int] = None
    max_checkpoints: int = 3
    save_optimizer_state: bool = True
    save_scheduler_state: bool = True
    best_metric: Optional[str] = "validation_loss"

    _section = "checkpoint"

    def __post_init__(self):
        self.save_frequency = check_int(self, "save_frequency", self.save_frequency, low=1, allow_none=True)
        self.max_checkpoints = check_int(self, "max_checkpoints", self.max_checkpoints, low=1)
        self.save_optimizer_state = check_bool(self, "save_optimizer_state", self.save_optimizer_state)
        self.save_scheduler_state = check_bool(self, "save_scheduler_state", self.save_scheduler_state)
        if self.best_metric is not None:
            self.best_metric = check_choice(self, "best_metric", self.best_metric, tuple(METRIC_MODES))

    @property
    def best_mode(self) -> str:
        """"min" or "max": how the best metric compares."""
        return METRIC_MODES.get(self.best_metric or "validation_loss", "min")


@dataclass
class OptimizerConfig(ConfigMixin):
    """Optimizer hyperparameters for :meth:`Trainer.set_optimizer` (the guide's ``OptimizerConfig``).

    ``learning_rate`` None keeps the trainer config's learning rate.
    """

    learning_rate: Optional[float] = None
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    momentum: float = 0.0  # SGD only

    _section = "optimizer"

    def __post_init__(self):
        self.learning_rate = check_number(self, "learning_rate", self.learning_rate, low=0, low_open=True,
                                          allow_none=True)
        self.weight_decay = check_number(self, "weight_decay", self.weight_decay, low=0)
        self.beta1 = check_number(self, "beta1", self.beta1, low=0, high=1)
        self.beta2 = check_number(self, "beta2", self.beta2, low=0, high=1)
        if self.beta1 >= 1 or self.beta2 >= 1:
            _fail(self, "beta1" if self.beta1 >= 1 else "beta2", "a number in [0, 1)",
                  self.beta1 if self.beta1 >= 1 else self.beta2)
        self.epsilon = check_number(self, "epsilon", self.epsilon, low=0, low_open=True)
        self.momentum = check_number(self, "momentum", self.momentum, low=0, high=1)


def config_diff(saved: dict, current: dict, fields=None) -> list:
    """``[(field, saved value, current value)]`` for the fields (default: all) whose values differ."""
    keys = fields if fields is not None else sorted(set(saved) | set(current))
    out = []
    for k in keys:
        a, b = saved.get(k, "<missing>"), current.get(k, "<missing>")
        if _norm(a) != _norm(b):
            out.append((k, a, b))
    return out


def _norm(v: Any):
    return json.loads(json.dumps(v, default=str))
