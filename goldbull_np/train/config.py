"""Training configs: dataclasses with commented defaults, loadable from TOML and JSON, validated field by field.

Every check raises :class:`ConfigError` (a ``ValueError``) whose message names the config and the field::

    TrainingConfig.learning_rate must be a finite number > 0, got -0.1
"""
import dataclasses
import functools
import json
import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

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
    except RecursionError:
        raise ConfigError(f"{path}: cannot parse: nested too deeply") from None
    raise ConfigError(f"{path}: unknown config format {ext!r} (use .toml or .json)")


class ConfigMixin:
    """``from_dict``/``from_file``/``to_dict``/``replace`` for a config dataclass made with :func:`config`.

    Each field's check is declared beside the field (``field: int = option(1, Int(low=1))``) and run on
    construction; a subclass may redeclare a field to change its default and keeps the check. Cross-field
    rules go in :meth:`validate`. ``_aliases`` maps a second name of a field to the field.
    """

    _section: ClassVar[Optional[str]] = None  # the table this config reads from a multi-section file
    _aliases: ClassVar[dict] = {}

    def __post_init__(self):
        cls = type(self)
        for f in dataclasses.fields(self):
            check = _field_check(cls, f.name)
            if check is not None:
                setattr(self, f.name, check(self, f.name, getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """Rules between fields (a subclass overrides it); raise :class:`ConfigError`."""

    @classmethod
    def field_names(cls) -> list:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict):
        """Build from a dict; unknown keys are an error naming them and the known ones."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a table/object, got {type(data).__name__}")
        names = set(cls.field_names()) | set(cls._aliases)
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(names))})")
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
        from ..io import atomic_write_json
        atomic_write_json(path, self.to_dict())

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **_resolve_aliases(type(self), changes))


def config(cls):
    """Make ``cls`` (a ConfigMixin subclass) a dataclass whose fields are checked on construction and
    whose ``_aliases`` are accepted as keyword arguments and readable/settable attributes."""
    cls = dataclass(cls)
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        resolved = _resolve_aliases(cls, kwargs)
        try:
            init(self, *args, **resolved)
        except ConfigError as exc:  # name the field as the caller spelled it
            msg = str(exc)
            for alias, target in cls._aliases.items():
                if alias in kwargs:
                    msg = msg.replace(f".{target} ", f".{alias} (= {target}) ")
            raise ConfigError(msg) from None

    cls.__init__ = __init__
    for alias, target in cls._aliases.items():
        setattr(cls, alias, property(lambda self, t=target: getattr(self, t),
                                     lambda self, v, t=target: setattr(self, t, v),
                                     doc=f"Another name of ``{target}``."))
    return cls


def _resolve_aliases(cls, kwargs: dict) -> dict:
    if not cls._aliases or not any(a in kwargs for a in cls._aliases):
        return kwargs
    kwargs = dict(kwargs)
    for alias, target in cls._aliases.items():
        if alias in kwargs:
            value = kwargs.pop(alias)
            if target in kwargs and kwargs[target] != value:
                raise ConfigError(f"{cls.__name__}: {alias} and {target} name one setting; got {alias}={value!r} "
                                  f"and {target}={kwargs[target]!r}")
            kwargs[target] = value
    return kwargs


def option(default=dataclasses.MISSING, check=None, *, default_factory=dataclasses.MISSING):
    """A config field with its check beside it: ``lr: float = option(1e-3, Number(low=0, low_open=True))``."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"check": check})


def _field_check(cls, name):
    """The check declared for field ``name`` by ``cls`` or the nearest base class that declares one."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata.get("check") is not None:
            return f.metadata["check"]
    return None


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


class Number:
    """Field check: a finite number in [low, high] (``low_open``: > low), or None with ``allow_none``."""

    def __init__(self, low=None, high=None, *, low_open=False, high_open=False, allow_none=False):
        self.low, self.high, self.low_open, self.high_open, self.allow_none = low, high, low_open, high_open, allow_none

    def __call__(self, owner, name, value):
        value = check_number(owner, name, value, low=self.low, high=self.high, low_open=self.low_open,
                             allow_none=self.allow_none)
        if self.high_open and value is not None and value >= self.high:
            _fail(owner, name, f"a number < {self.high}", value)
        return value


class Int:
    """Field check: an integer >= low (bools are not integers here), or None with ``allow_none``."""

    def __init__(self, low=None, *, allow_none=False):
        self.low, self.allow_none = low, allow_none

    def __call__(self, owner, name, value):
        return check_int(owner, name, value, low=self.low, allow_none=self.allow_none)


class Choice:
    """Field check: one of ``choices`` (case-insensitive; stored lower-case), or None with ``allow_none``."""

    def __init__(self, *choices, allow_none=False):
        self.choices, self.allow_none = tuple(choices), allow_none

    def __call__(self, owner, name, value):
        if value is None and self.allow_none:
            return None
        return check_choice(owner, name, value, self.choices)


class Bool:
    """Field check: true or false."""

    def __call__(self, owner, name, value):
        return check_bool(owner, name, value)


class Str:
    """Field check: a non-empty string or path (stored as str), or None with ``allow_none``."""

    def __init__(self, *, allow_none=False):
        self.allow_none = allow_none

    def __call__(self, owner, name, value):
        return check_str(owner, name, value, allow_none=self.allow_none)


class ChoiceList:
    """Field check: a non-empty list of ``choices`` (a single string is a one-item list)."""

    def __init__(self, *choices):
        self.choices = tuple(choices)

    def __call__(self, owner, name, value):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            _fail(owner, name, f"a non-empty list of {', '.join(repr(c) for c in self.choices)}", value)
        return [check_choice(owner, name, v, self.choices) for v in items]


# ---------------------------------------------------------------------------------------------------------

SCHEDULES = ("constant", "linear", "cosine")  # goldbull_np.optim.lr_scheduler.get_scheduler's names

METRIC_MODES = {"validation_loss": "min", "val_loss": "min", "loss": "min", "train_loss": "min",
                "validation_accuracy": "max", "val_accuracy": "max", "accuracy": "max",
                "validation_perplexity": "min", "perplexity": "min"}


@config
class TrainingConfig(ConfigMixin):
    """How a :class:`~goldbull_np.train.Trainer` trains: the one training config of every model family.

    The seed's ``TrainingConfig`` fields come first, then the ``TextTrainingConfig`` ones; a model
    family's config (TextTrainingConfig, FineTuningConfig, VisionTrainingConfig, ...) subclasses this
    and adds only its own fields (or other defaults). ``gradient_clipping`` is another name of
    ``max_grad_norm`` and ``save_frequency`` of ``save_steps``.

    Args:
        learning_rate: peak learning rate (after warmup).
        batch_size: examples (sequences, images) per micro-batch.
        num_epochs: passes over the training data (unless ``max_steps``).
        max_grad_norm (alias gradient_clipping): clip the global gradient norm to this (0: no clipping).
        weight_decay: decoupled weight decay on matrices and embedding tables, none on biases and norm
            gains (``goldbull_np.optim.param_groups``).
        save_steps (alias save_frequency): save a checkpoint every this many optimizer steps (0: at the end).
        dropout_rate: set every Dropout of the model to this probability for training (None: the model's own).
        label_smoothing: label smoothing of the task's cross-entropy (tasks that have one).
        gradient_accumulation_steps: micro-batches per optimizer step (effective batch = product).
        warmup_steps: optimizer steps of linear warmup.
        lr_scheduler: "constant", "linear" or "cosine" after warmup.
        eval_steps: evaluate every this many steps (0: at the end of each epoch).
        logging_steps: log every this many steps (0: never).
        seed: seeds the model init, dropout and the data order.
        output_dir: where checkpoints and logs go (None: no checkpoints unless a manager is set).
        max_steps: stop after this many optimizer steps (overrides num_epochs).
        early_stopping_patience: stop after this many evaluations without a better best_metric.
        min_learning_rate: where the decay ends (nanoGPT's min_lr).
        lr_decay_steps: decay until this step (None: the last step).
        beta1, beta2, eps: AdamW's.
        eval_iters: evaluate on this many validation batches (None: all of them).
        max_checkpoints: keep this many recent checkpoints plus the best (None: the CheckpointConfig's).
        max_consecutive_nonfinite: stop with an error after this many skipped steps in a row.
        progress_bar: show a progress bar (a ProgressBar callback).
    """

    learning_rate: float = option(1e-4, Number(low=0, low_open=True))
    batch_size: int = option(8, Int(low=1))
    num_epochs: int = option(1, Int(low=1))
    max_grad_norm: float = option(1.0, Number(low=0))
    weight_decay: float = option(0.01, Number(low=0))
    save_steps: int = option(100, Int(low=0))
    dropout_rate: Optional[float] = option(None, Number(low=0, high=1, high_open=True, allow_none=True))
    label_smoothing: float = option(0.0, Number(low=0, high=1))
    gradient_accumulation_steps: int = option(1, Int(low=1))
    warmup_steps: int = option(0, Int(low=0))
    lr_scheduler: str = option("constant", Choice(*SCHEDULES))
    eval_steps: int = option(0, Int(low=0))
    logging_steps: int = option(10, Int(low=0))
    seed: int = option(1337, Int(low=0))
    output_dir: Optional[str] = option(None, Str(allow_none=True))
    max_steps: Optional[int] = option(None, Int(low=1, allow_none=True))
    early_stopping_patience: Optional[int] = option(None, Int(low=1, allow_none=True))
    min_learning_rate: float = option(0.0, Number(low=0))
    lr_decay_steps: Optional[int] = option(None, Int(low=1, allow_none=True))
    beta1: float = option(0.9, Number(low=0, high=1, high_open=True))
    beta2: float = option(0.999, Number(low=0, high=1, high_open=True))
    eps: float = option(1e-8, Number(low=0, low_open=True))
    eval_iters: Optional[int] = option(None, Int(low=1, allow_none=True))
    max_checkpoints: Optional[int] = option(None, Int(low=1, allow_none=True))
    max_consecutive_nonfinite: int = option(10, Int(low=1))
    progress_bar: bool = option(True, Bool())

    _section: ClassVar[Optional[str]] = "training"
    _aliases: ClassVar[dict] = {"gradient_clipping": "max_grad_norm", "save_frequency": "save_steps"}

    def validate(self) -> None:
        if self.min_learning_rate > self.learning_rate:
            _fail(self, "min_learning_rate", f"<= learning_rate ({self.learning_rate})", self.min_learning_rate)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps

    def training_fields(self) -> dict:
        """The :class:`TrainingConfig` fields only (what every trainer reads), as JSON values."""
        d = self.to_dict()
        return {f.name: d[f.name] for f in dataclasses.fields(TrainingConfig)}


@config
class CheckpointConfig(ConfigMixin):
    """How a :class:`~goldbull_np.train.CheckpointManager` saves and rotates checkpoints.

    Args:
        save_frequency: save every this many optimizer steps; None uses the training config's ``save_steps``.
        max_checkpoints: how many of the most recent checkpoints to keep (the best is kept on top of these).
        save_optimizer_state: write ``optimizer.safetensors`` (needed for exact resume).
        save_scheduler_state: write the LR scheduler state into ``trainer_state.json``.
        best_metric: the metric that picks the best checkpoint ("validation_loss", "validation_accuracy",
            "validation_perplexity", "train_loss"; accuracy is maximised, the others minimised), or None.
    """

    save_frequency: Optional[int] = option(None, Int(low=1, allow_none=True))
    max_checkpoints: int = option(3, Int(low=1))
    save_optimizer_state: bool = option(True, Bool())
    save_scheduler_state: bool = option(True, Bool())
    best_metric: Optional[str] = option("validation_loss", Choice(*METRIC_MODES, allow_none=True))

    _section: ClassVar[Optional[str]] = "checkpoint"

    @property
    def best_mode(self) -> str:
        """"min" or "max": how the best metric compares."""
        return METRIC_MODES.get(self.best_metric or "validation_loss", "min")


@config
class OptimizerConfig(ConfigMixin):
    """Optimizer hyperparameters for :meth:`Trainer.set_optimizer` (the guide's ``OptimizerConfig``).

    ``learning_rate`` None keeps the trainer config's learning rate.
    """

    learning_rate: Optional[float] = option(None, Number(low=0, low_open=True, allow_none=True))
    weight_decay: float = option(0.01, Number(low=0))
    beta1: float = option(0.9, Number(low=0, high=1, high_open=True))
    beta2: float = option(0.999, Number(low=0, high=1, high_open=True))
    epsilon: float = option(1e-8, Number(low=0, low_open=True))
    momentum: float = option(0.0, Number(low=0, high=1))  # SGD only

    _section: ClassVar[Optional[str]] = "optimizer"


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
