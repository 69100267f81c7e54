"""The Trainer: one loop for every model family.

    Trainer(model, config, task=..., optimizer=None, scheduler=None, callbacks=())
      task.loss(model, batch) -> (loss, weight, counts)     the task says what a batch means
      OptimizerStep: accumulate -> after-backward hooks -> clip -> step -> schedule -> zero
      callbacks: train begin/end, step begin/end, after backward, log, epoch end, evaluate, save

The loop knows batches, a loss, a weight and metrics; never tokens or logits. It adds what every
family needs: gradient accumulation equal to the big batch, evaluation every ``eval_steps``,
checkpoints (the best one by the task's metric kept), early stopping, non-finite steps skipped and
counted, and exact resume (weights, optimizer, scheduler, RNG, data position, callbacks' state).
"""
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable

import numpy as np

from .. import random as gb_random
from .. import runtime
from ..autograd import no_grad
from ..nn import Dropout
from ..nn.model_base import PreTrainedModel
from ..optim import AdamW, Adam, SGD, OptimizerStep, StepCounters, param_groups
from ..optim.step import NonFiniteLossError
from .callbacks import Callback, CallbackList, EarlyStopping, ProgressBar
from .checkpoint import CheckpointManager, load_checkpoint
from .config import CheckpointConfig, OptimizerConfig, TrainingConfig, config_diff
from .cursor import DataCursor
from .interrupt import TrainingInterrupted, graceful_interrupt
from .metrics import TrainingMetrics, ValidationMetrics
from .task import Task

# Fields that must match for a resume to reproduce the original run (checked unless overridden).
RESUME_CRITICAL = ("batch_size", "gradient_accumulation_steps", "seed")


class ResumeMismatchError(ValueError):
    """The checkpoint was made with a different batch size, accumulation, seed, data or model."""


@runtime_checkable
class Trainable(Protocol):
    """What a trainer offers (the seed's ``Trainable`` trait)."""

    def train_step(self, batch) -> float: ...

    def validate(self, dataset) -> ValidationMetrics: ...

    def save_checkpoint(self, path) -> None: ...

    def load_checkpoint(self, path) -> None: ...


@dataclass
class TrainerState(StepCounters):
    """The run's counters, carried in trainer_state.json (``step``, ``nonfinite_steps``,
    ``consecutive_nonfinite`` are the optimizer step's, see :class:`~goldbull_np.optim.StepCounters`)."""

    epoch: int = 0
    counts: dict = field(default_factory=dict)  # the task's training counts summed over the run
    best_metric: Optional[float] = None
    best_step: Optional[int] = None
    last_eval: Optional[dict] = None
    elapsed: float = 0.0  # seconds of training, summed over resumed runs
    stopped_early: bool = False

    @property
    def tokens_seen(self) -> int:
        """Training tokens so far, for tasks that count ``tokens``."""
        return int(self.counts.get("tokens", 0))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainerState":
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


class Trainer:
    """Trains ``model`` on a :class:`Task` with AdamW (by default), a warmup+decay schedule and checkpoints.

    Args:
        model: a Module.
        config: a :class:`TrainingConfig` (or a family's subclass).
        task: what a batch means (:class:`Task`); default: the model's ``default_task()`` (models on the
            model base, e.g. GoldbullText's language modelling).
        optimizer: default AdamW over ``optim.param_groups(model, config.weight_decay)``.
        scheduler: default the config's ``lr_scheduler`` with ``warmup_steps``.
        callbacks: :class:`Callback` instances (loggers, early stopping, ...). A ProgressBar is added when
            ``config.progress_bar`` (or ``progress``) and an EarlyStopping when ``early_stopping_patience``.
        tokenizer: saved into every checkpoint.
        progress: overrides ``config.progress_bar``.
    """

    def __init__(self, model, config: Optional[TrainingConfig] = None, *, task: Optional[Task] = None,
                 optimizer=None, scheduler=None, callbacks=(), tokenizer=None, progress: Optional[bool] = None):
        self.model = model
        self.config = config if config is not None else TrainingConfig()
        if not isinstance(self.config, TrainingConfig):
            raise TypeError(f"config must be a TrainingConfig (or a subclass), got {type(self.config).__name__}")
        self.task = task if task is not None else _default_task(model)
        self.task.configure(self.config)
        self.tokenizer = tokenizer
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.callbacks = CallbackList(callbacks)
        if self.config.progress_bar if progress is None else progress:
            self.callbacks.add(ProgressBar())
        if self.config.early_stopping_patience:
            self.callbacks.add(EarlyStopping(self.config.early_stopping_patience))
        self.checkpoint_manager: Optional[CheckpointManager] = None
        self.state = TrainerState()
        self.data_fingerprint = None
        self.last_checkpoint: Optional[Path] = None
        self.resumed_from: Optional[Path] = None
        self.should_stop = False
        self.total_steps: Optional[int] = None
        self.optimizer_step: Optional[OptimizerStep] = None
        self._cursor: Optional[DataCursor] = None
        self._optimizer_spec = ("adamw", None)
        self._saved_step: Optional[int] = None
        self._last_eval_metric = (None, None)  # (step, value of the best metric) of the last evaluation

    # ------------------------------------------------------------------ configuration
    def add_callback(self, callback: Callback) -> Callback:
        """Add a :class:`Callback`; returns it."""
        return self.callbacks.add(callback)

    def add_logger(self, logger: Callback) -> Callback:
        """Add a logger (a :class:`Callback`, e.g. :class:`MetricsLogger`): the seed's name of add_callback."""
        return self.callbacks.add(logger)

    def set_lr_scheduler(self, scheduler) -> None:
        """Use a scheduler (``goldbull_np.optim.lr_scheduler``, or anything with ``step()``, ``state_dict()``,
        ``load_state_dict()``) instead of the config's; ``step()`` is called once per optimizer step."""
        self.scheduler = scheduler
        self.optimizer_step = None

    def set_optimizer(self, name: str = "adamw", config: Optional[OptimizerConfig] = None) -> None:
        """Choose the optimizer: "adamw", "adam" or "sgd", with an :class:`OptimizerConfig`."""
        name = name.lower()
        if name not in ("adamw", "adam", "sgd"):
            raise ValueError(f"unknown optimizer {name!r} (known: adamw, adam, sgd)")
        self._optimizer_spec = (name, config)
        self.optimizer = None
        self.optimizer_step = None
        self._ensure_optimizer()

    def set_checkpoint_manager(self, manager: CheckpointManager) -> None:
        self.checkpoint_manager = manager

    def _ensure_optimizer(self):
        if self.optimizer is not None:
            return self.optimizer
        c = self.config
        name, oc = self._optimizer_spec
        lr = oc.learning_rate if oc is not None and oc.learning_rate is not None else c.learning_rate
        wd = oc.weight_decay if oc is not None else c.weight_decay
        groups = [g for g in param_groups(self.model, wd) if g["params"]]  # the one weight-decay rule
        if not groups:
            raise ValueError("the model has no trainable parameters (everything is frozen)")
        if name == "sgd":
            self.optimizer = SGD(groups, lr=lr, momentum=oc.momentum if oc else 0.0)
        else:
            betas = (oc.beta1, oc.beta2) if oc is not None else (c.beta1, c.beta2)
            eps = oc.epsilon if oc is not None else c.eps
            cls = AdamW if name == "adamw" else Adam  # Adam: weight decay as L2 (torch's)
            self.optimizer = cls(groups, lr=lr, betas=betas, eps=eps)
        return self.optimizer

    def _ensure_optimizer_step(self) -> OptimizerStep:
        opt = self._ensure_optimizer()
        if self.optimizer_step is None or self.optimizer_step.optimizer is not opt:
            self.optimizer_step = OptimizerStep(
                opt, self.scheduler, max_grad_norm=self.config.max_grad_norm,
                max_consecutive_nonfinite=self.config.max_consecutive_nonfinite,
                parameters=self.model.parameters, counters=self.state)
            self.optimizer_step.after_backward.append(lambda _step: self.callbacks.fire("on_after_backward", self))
        self.optimizer_step.scheduler = self.scheduler
        self.optimizer_step.counters = self.state
        return self.optimizer_step

    def current_lr(self) -> float:
        return float(self._ensure_optimizer().param_groups[0]["lr"])

    # ------------------------------------------------------------------ one optimizer step
    def _loss(self, batch):
        return self.task.loss(self.model, batch)

    def train_step(self, batch) -> float:
        """One optimizer step on ``batch`` (a batch, or a list of micro-batches to accumulate).

        Returns:
            The step's weight-averaged loss, or NaN when the step was skipped because the loss or the
            gradient norm was not finite.
        """
        micro = list(batch) if isinstance(batch, list) else [batch]
        if not self.model.training:
            self.model.train()
        return self._ensure_optimizer_step()(micro, self._loss).loss

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, dataset, max_batches: Optional[int] = None) -> ValidationMetrics:
        """The task's metrics over ``dataset`` (a dataset or a loader), in eval mode, without grad.

        Args:
            dataset: validation data.
            max_batches: only the first this many batches (nanoGPT's ``eval_iters``; default the
                config's); deterministic.
        """
        loader = self._loader(dataset, shuffle=False, drop_last=False)
        _rewind(loader)
        if max_batches is None:
            max_batches = self.config.eval_iters
        was_training = getattr(self.model, "training", True)
        self.model.eval()
        totals = {}
        it = iter(loader)
        try:
            with no_grad():
                for i, b in enumerate(it):
                    if max_batches is not None and i >= max_batches:
                        break
                    for k, v in self.task.evaluate(self.model, b).items():
                        totals[k] = totals.get(k, 0) + v
        finally:
            if hasattr(it, "close"):
                it.close()
            _rewind(loader)
            self.model.train(was_training)
        return ValidationMetrics(self.task.summarize(totals))

    def validate(self, dataset) -> ValidationMetrics:
        """The :class:`Trainable` name of :meth:`evaluate`."""
        return self.evaluate(dataset)

    # ------------------------------------------------------------------ data
    def _loader(self, data, shuffle: bool, drop_last: bool):
        if _is_loader(data):
            return data
        from ..data import DataLoader
        return DataLoader(data, batch_size=self.config.batch_size, shuffle=shuffle, drop_last=drop_last,
                          seed=self.config.seed, collate_fn=_task_collate(self.task))

    def train_on_dataset(self, path, epochs: Optional[int] = None, val_fraction: float = 0.1):
        """Train on a file (the seed's ``train_on_dataset``): the task reads it (``task.load_dataset``;
        a language model's: ``TextDataset.from_file`` with :attr:`tokenizer`, byte-level if none), the
        last ``val_fraction`` of the items validate. Trains ``epochs`` epochs (default: the config's)."""
        from .data import Subset
        if epochs is not None:
            over = {"num_epochs": int(epochs)}
            if self.config.max_steps is not None:
                over["max_steps"] = None  # epochs asked for explicitly: they decide the length
            self.config = self.config.replace(**over)
        ds, self.tokenizer = self.task.load_dataset(path, self.model, self.tokenizer)
        n_val = int(len(ds) * val_fraction) if len(ds) > 1 else 0
        idx = np.arange(len(ds))
        train = Subset(ds, idx[: len(ds) - n_val])
        val = Subset(ds, idx[len(ds) - n_val:]) if n_val else None
        return self.train(train, val)

    # ------------------------------------------------------------------ the loop
    def train(self, train_dataset, val_dataset=None, *, resume_from=None, allow_mismatch: bool = False):
        """Train until ``max_steps``/``num_epochs``, a callback's stop (early stopping) or a non-finite streak.

        Args:
            train_dataset: a dataset (batched with the config's batch size, shuffled per epoch) or a loader.
            val_dataset: optional validation dataset or loader.
            resume_from: a checkpoint directory (or a run directory: its latest checkpoint) to resume.
            allow_mismatch: resume even if batch size, accumulation, seed, data or model differ.

        Returns:
            The :class:`TrainerState` at the end.
        """
        c = self.config
        loader = self._loader(train_dataset, shuffle=True, drop_last=True)
        val_loader = None if val_dataset is None else self._loader(val_dataset, shuffle=False, drop_last=False)
        if self.data_fingerprint is None:
            self.data_fingerprint = dataset_fingerprint(train_dataset, val_dataset)
        if self.checkpoint_manager is None and c.output_dir:
            ck = CheckpointConfig() if c.max_checkpoints is None else CheckpointConfig(max_checkpoints=c.max_checkpoints)
            self.checkpoint_manager = CheckpointManager(Path(c.output_dir), ck)
        # One writer per run directory: a second process gets DirectoryLockedError (naming our pid) here,
        # before it writes a log line or a checkpoint; the lock is held until the run ends.
        run_lock = self.checkpoint_manager.lock().acquire() if self.checkpoint_manager is not None else None
        try:
            return self._train(loader, val_loader, resume_from, allow_mismatch)
        finally:
            if run_lock is not None:
                run_lock.release()

    def _train(self, loader, val_loader, resume_from, allow_mismatch):
        c = self.config
        self._ensure_optimizer()
        self._cursor = DataCursor(loader, None if c.max_steps is not None else c.num_epochs)
        if c.max_steps is not None:
            self.total_steps = c.max_steps
        else:
            self.total_steps = c.num_epochs * _ceil_div(len(loader), c.gradient_accumulation_steps)
        if self.scheduler is None:
            from ..optim.lr_scheduler import get_scheduler
            decay = c.lr_decay_steps if c.lr_decay_steps is not None else self.total_steps
            base_lr = float(self.optimizer.param_groups[0]["lr"])
            self.scheduler = get_scheduler(c.lr_scheduler, self.optimizer, base_lr=base_lr,
                                           total_steps=max(int(decay), 1), warmup_steps=c.warmup_steps,
                                           min_lr=c.min_learning_rate)
        elif getattr(self.scheduler, "optimizer", True) is None:
            self.scheduler.attach(self.optimizer)
        if c.dropout_rate is not None:
            self._set_dropout(c.dropout_rate)
        self.resumed_from = None
        if resume_from is not None:
            self._resume(resume_from, allow_mismatch)
        self._ensure_optimizer_step()
        self.should_stop = False
        # Ctrl-C: the first stops after this step and saves a checkpoint (the loop's final save), a second at once
        with runtime.frozen_gc(), graceful_interrupt() as self._interrupt:
            state = self._loop(val_loader)
        if self._interrupt.requested:
            raise TrainingInterrupted(state.step, self.last_checkpoint)
        return state

    def _set_dropout(self, p: float) -> None:
        drops = [m for m in self.model.modules() if isinstance(m, Dropout)]
        if not drops and p > 0:
            raise ValueError(f"TrainingConfig.dropout_rate = {p}, but the {type(self.model).__name__} has no Dropout "
                             "layers to set (a model built with dropout 0 may have left them out: set its own "
                             "config's dropout instead)")
        for m in drops:
            m.p = p

    def _loop(self, val_loader):
        st, cursor, c = self.state, self._cursor, self.config
        step_fn = self.optimizer_step
        epoch_metrics = TrainingMetrics()
        window = _Window()
        run_t0, elapsed0 = time.perf_counter(), st.elapsed
        start_epoch = cursor.epoch
        if not self.model.training:
            self.model.train()
        self.callbacks.fire("on_train_begin", self)
        interrupt = getattr(self, "_interrupt", None)
        while st.step < self.total_steps and not self.should_stop and not (interrupt and interrupt.requested):
            micro = []
            for _ in range(c.gradient_accumulation_steps):
                b = cursor.next()
                if b is None:
                    break
                micro.append(b)
            if not micro:
                break
            self.callbacks.fire("on_step_begin", self)
            result = step_fn(micro, self._loss)
            st.elapsed = elapsed0 + (time.perf_counter() - run_t0)
            for k, v in result.metrics.items():
                st.counts[k] = st.counts.get(k, 0) + v
            epoch_metrics.add_loss(result.loss, result.weight)
            window.add(result)
            self.callbacks.fire("on_step_end", self, result)
            step = st.step
            if c.logging_steps and (step % c.logging_steps == 0 or step == self.total_steps):
                self.callbacks.fire("on_log", self, window.logs(step, cursor.epoch, st))
                window = _Window()
            new_epoch = cursor.epoch != start_epoch
            due_eval = val_loader is not None and (
                (c.eval_steps and step % c.eval_steps == 0) or (new_epoch and not c.eval_steps)
                or step == self.total_steps)
            metric = None
            if due_eval:
                metric = self._evaluate_and_track(val_loader, epoch_metrics, start_epoch)
            if new_epoch:
                self.callbacks.fire("on_epoch_end", self, start_epoch,
                                    {"train_loss": epoch_metrics.average_loss(), "evaluated": due_eval})
                start_epoch = cursor.epoch
                epoch_metrics = TrainingMetrics()
            mgr = self.checkpoint_manager
            if mgr is not None:
                every = mgr.config.save_frequency or c.save_steps
                new_best = metric is not None and st.best_step == step and mgr.config.best_metric is not None
                if (every and step % every == 0) or new_best:
                    self._save(metric)
        if self.checkpoint_manager is not None and (self.last_checkpoint is None or self._saved_step != st.step):
            at, metric = self._last_eval_metric
            self._save(metric if at == st.step else None)
        self.callbacks.fire("on_train_end", self)
        return st

    def _evaluate_and_track(self, val_loader, epoch_metrics, epoch):
        """Evaluate, fire on_evaluate, update the best metric. Returns the best metric's value (or None)."""
        st = self.state
        vm = self.evaluate(val_loader)
        st.last_eval = {"step": st.step, **_jsonify(dict(vm))}
        train_loss = epoch_metrics.average_loss()
        self.callbacks.fire("on_evaluate", self, {**vm, "step": st.step, "epoch": epoch, "train_loss": train_loss})
        name, bigger = self._best_metric()
        value = train_loss if name == "train_loss" else vm.get(name, float("nan"))
        value = float(value) if value is not None else float("nan")
        if math.isfinite(value) and (st.best_metric is None or
                                     (value > st.best_metric if bigger else value < st.best_metric)):
            st.best_metric, st.best_step = value, st.step
        metric = value if math.isfinite(value) else None
        self._last_eval_metric = (st.step, metric)
        return metric

    def _best_metric(self):
        """(metric name in the task's summary, greater is better) that picks the best checkpoint."""
        mgr = self.checkpoint_manager
        name = mgr.config.best_metric if mgr is not None else None
        if name is None:
            return self.task.metric, self.task.greater_is_better
        if name in ("train_loss",):
            return name, False
        for prefix in ("validation_", "val_"):
            if name.startswith(prefix):
                name = name[len(prefix):]
        return name, mgr.config.best_mode == "max"

    # ------------------------------------------------------------------ checkpoints
    def trainer_state(self) -> dict:
        """The JSON-serialisable state of the run (what trainer_state.json holds, minus optimizer)."""
        sched = _jsonify(self.scheduler.state_dict()) if self.scheduler is not None else None
        return {
            "trainer": _jsonify(asdict(self.state)),
            "epoch": self._cursor.epoch if self._cursor else self.state.epoch,
            "rng": gb_random.get_rng_state(),
            "data": self._cursor.state_dict() if self._cursor else None,
            "scheduler": sched,
            "callbacks": _jsonify(self.callbacks.state_dict()),
            "config": _jsonify(self.config.to_dict()),
            "config_class": type(self.config).__name__,
            "training": self.config.training_fields(),
            "fingerprint": {"data": self.data_fingerprint, "model": _model_config(self.model)},
        }

    def _save(self, metric) -> Path:
        mgr = self.checkpoint_manager
        self.last_checkpoint = mgr.save(self.state.step, model=self.model, optimizer=self.optimizer,
                                        tokenizer=self.tokenizer, trainer_state=self.trainer_state(), metric=metric)
        self._saved_step = self.state.step
        self.callbacks.fire("on_save", self, self.last_checkpoint)
        return self.last_checkpoint

    def save_checkpoint(self, path) -> Path:
        """Write a complete checkpoint directory at ``path`` (atomically), outside any rotation."""
        from .checkpoint import write_checkpoint
        path = write_checkpoint(path, step=self.state.step, model=self.model, trainer_state=self.trainer_state(),
                                optimizer=self._ensure_optimizer(), tokenizer=self.tokenizer)
        self.callbacks.fire("on_save", self, path)
        return path

    def load_checkpoint(self, path) -> None:
        """Restore model, optimizer, scheduler, RNG, callbacks and counters from a checkpoint (no data
        position unless :meth:`train` is resuming)."""
        self._ensure_optimizer()
        self._restore(load_checkpoint(path, model=self.model, optimizer=self.optimizer))

    def _restore(self, st: dict) -> None:
        self.state = TrainerState.from_dict(st["trainer"])
        if self.optimizer_step is not None:
            self.optimizer_step.counters = self.state
        try:
            gb_random.set_rng_state(st["rng"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"trainer_state.json: field rng is not a generator state this NumPy can restore "
                             f"({type(exc).__name__}: {exc})") from None
        sched = st.get("scheduler")
        if self.scheduler is not None and sched:
            try:
                self.scheduler.load_state_dict(sched)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"trainer_state.json: cannot restore the LR scheduler: {exc}") from None
        self.callbacks.load_state_dict(st.get("callbacks") or {})

    def _resume(self, path, allow_mismatch: bool) -> None:
        from .checkpoint import read_trainer_state
        path = Path(path)
        if (path / "trainer_state.json").is_file():
            ck = path
        else:
            mgr = self.checkpoint_manager or CheckpointManager(path)
            ck = mgr.latest()
            if ck is None:
                raise FileNotFoundError(f"no checkpoint to resume from in {path}")
        saved = read_trainer_state(ck)
        self.check_resume_compatible(saved, allow_mismatch)
        st = load_checkpoint(ck, model=self.model, optimizer=self._ensure_optimizer())
        if self.checkpoint_manager is not None and st.get("run_id"):
            self.checkpoint_manager.run_id = st["run_id"]
        self._restore(st)
        self._cursor.load_state_dict(st["data"])
        self._saved_step = self.state.step
        self.last_checkpoint = ck
        self.resumed_from = ck

    def check_resume_compatible(self, saved: dict, allow_mismatch: bool = False) -> list:
        """Compare a checkpoint's training config, data and model with this run's; raise with a
        field-by-field diff. Returns the list of differences that were allowed (``allow_mismatch``)."""
        diffs = config_diff(saved.get("training", saved.get("plan", {})), self.config.training_fields(),
                            RESUME_CRITICAL)
        fp = saved.get("fingerprint", {})
        if not _same_data(fp.get("data"), _jsonify(self.data_fingerprint)):
            diffs.append(("data", fp.get("data"), _jsonify(self.data_fingerprint)))
        model_now = _model_config(self.model)
        if fp.get("model") is not None and model_now is not None:
            saved_model = _with_new_defaults(self.model, fp["model"])
            diffs += [(f"model.{k}", a, b) for k, a, b in config_diff(saved_model, model_now)]
        if diffs and not allow_mismatch:
            lines = "\n".join(f"  {k}: checkpoint={a!r}  now={b!r}" for k, a, b in diffs)
            raise ResumeMismatchError("cannot resume: the run differs from the checkpoint in\n" + lines +
                                      "\n(pass allow_mismatch=True / --allow-config-change to resume anyway)")
        return diffs


# ---------------------------------------------------------------------------------------------------------

class _Window:
    """Sums over the steps between two logs: the loss (by weight), the task's counts, the time."""

    def __init__(self):
        self.loss_sum, self.weight, self.counts, self.t0 = 0.0, 0.0, {}, time.perf_counter()
        self.grad_norm, self.lr = float("nan"), float("nan")

    def add(self, result) -> None:
        if math.isfinite(result.loss):
            self.loss_sum += result.loss * result.weight
            self.weight += result.weight
        for k, v in result.metrics.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self.grad_norm, self.lr = result.grad_norm, result.lr

    def logs(self, step, epoch, st) -> dict:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        out = {"step": step, "epoch": epoch, "loss": self.loss_sum / self.weight if self.weight else float("nan"),
               "lr": self.lr, "grad_norm": self.grad_norm}
        out.update({f"{k}_per_second": v / dt for k, v in self.counts.items()})
        out.update(elapsed=st.elapsed, skipped_steps=st.nonfinite_steps)
        return out


def _default_task(model) -> Task:
    if isinstance(model, PreTrainedModel):
        return model.default_task()
    raise TypeError(f"Trainer needs task=... for a {type(model).__name__} (only models on the model base, "
                    "goldbull_np.nn.PreTrainedModel, bring a default task)")


def _task_collate(task: Task):
    """The task's collate function, or None when it keeps the DataLoader's."""
    if type(task).collate is Task.collate:
        return None
    return task.collate


def dataset_fingerprint(train, val=None) -> dict:
    """A cheap identity of the data: sizes and a hash of the token arrays when the datasets expose them."""
    import hashlib

    def one(ds):
        if ds is None:
            return None
        if hasattr(ds, "fingerprint"):
            fp = ds.fingerprint
            return fp() if callable(fp) else fp
        ds = getattr(ds, "dataset", ds)
        out = {"type": type(ds).__name__}
        try:
            out["len"] = len(ds)
        except TypeError:
            pass
        for attr in ("tokens", "ids", "data"):
            arr = getattr(ds, attr, None)
            if isinstance(arr, np.ndarray):
                out["sha256"] = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]
                break
        return out

    return {"train": one(train), "val": one(val)}


def _same_data(a, b) -> bool:
    """Two data fingerprints describe the same data: equal, or equal content hashes whatever path named them
    (the same file given as ./x.txt and /abs/x.txt, or moved, resumes)."""
    if a == b:
        return True
    if isinstance(a, dict) and isinstance(b, dict) and a.get("sha256") and a.get("sha256") == b.get("sha256"):
        return {k: v for k, v in a.items() if k != "source"} == {k: v for k, v in b.items() if k != "source"}
    return False


def _with_new_defaults(model, saved: dict) -> dict:
    """A checkpoint's model config as the current config class reads it: a field added since the checkpoint
    was written takes its default (derived) value instead of counting as a difference."""
    try:
        return _jsonify(type(model.config).from_dict(dict(saved)).to_dict())
    except (ValueError, TypeError):
        return saved


def _model_config(model):
    if isinstance(model, PreTrainedModel):
        return _jsonify(model.config.to_dict())
    return None


def _jsonify(obj):
    import json
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _rewind(loader) -> None:
    """Put an evaluation loader back at the start of epoch 0 (evaluation always sees the same batches)."""
    if hasattr(loader, "load_state_dict") and hasattr(loader, "state_dict"):
        loader.load_state_dict({**loader.state_dict(), "epoch": 0, "position": 0})
    elif hasattr(loader, "set_epoch"):
        loader.set_epoch(0)


def _is_loader(obj) -> bool:
    return obj is not None and hasattr(obj, "__iter__") and hasattr(obj, "batch_size") and not hasattr(obj, "__getitem__")


def _ceil_div(a, b):
    return -(-a // b)


__all__ = ["Trainer", "TrainerState", "Trainable", "ResumeMismatchError", "NonFiniteLossError", "RESUME_CRITICAL",
           "dataset_fingerprint"]
