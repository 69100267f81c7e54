"""The Trainer: gradient accumulation, clipping, LR schedule, evaluation, logging, checkpoints, exact resume.

One loop serves both the generic :class:`Trainer` (the seed's ``TrainingConfig``) and
``goldbull_np.text.TextTrainer`` (``TextTrainingConfig``): each turns its config into a :class:`Plan`.

A model is anything called as ``logits, loss = model(input_ids, labels)`` with ``loss`` the mean over the
non-ignored labels (-100 = ignored); a batch is a dict of int64 arrays ``input_ids`` (B, T) and ``labels``
(B, T), already shifted.

An optimizer step over micro-batches ``b_1..b_k`` weights each micro-batch's mean loss by its share
``n_i / N`` of the non-ignored tokens, so the accumulated gradient is the gradient of the mean loss over the
whole large batch, exactly as if it had been one batch.
"""
import gc
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable

import numpy as np

from .. import random as gb_random
from ..autograd import no_grad
from .checkpoint import CheckpointManager, load_checkpoint
from .config import OptimizerConfig, TrainingConfig, config_diff
from .cursor import DataCursor
from .metrics import TrainingMetrics, ValidationMetrics

IGNORE_INDEX = -100


class NonFiniteLossError(RuntimeError):
    """Training stopped because too many consecutive steps had a non-finite loss or gradient norm."""


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
class Plan:
    """Everything the loop needs, normalised from a trainer config."""

    learning_rate: float
    batch_size: int
    num_epochs: int = 1
    gradient_accumulation_steps: int = 1
    max_steps: Optional[int] = None  # overrides num_epochs when set
    warmup_steps: int = 0
    lr_scheduler: str = "constant"  # "constant" | "linear" | "cosine" (goldbull_np.optim.lr_scheduler)
    min_learning_rate: float = 0.0
    lr_decay_steps: Optional[int] = None  # None: decay until the last step
    max_grad_norm: float = 0.0  # 0: no clipping (the norm is still measured)
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    save_steps: int = 0  # 0: save at the end only
    eval_steps: int = 0  # 0: evaluate at the end of each epoch
    eval_iters: Optional[int] = None  # None: the whole validation set
    logging_steps: int = 10
    early_stopping_patience: Optional[int] = None
    max_consecutive_nonfinite: int = 10
    seed: int = 1337
    output_dir: Optional[str] = None


# Fields that must match for a resume to reproduce the original run (checked unless overridden).
RESUME_CRITICAL = ("batch_size", "gradient_accumulation_steps", "seed")


@dataclass
class TrainerState:
    """Counters carried in trainer_state.json."""

    step: int = 0  # optimizer steps taken (including skipped ones)
    epoch: int = 0
    tokens_seen: int = 0
    nonfinite_steps: int = 0
    consecutive_nonfinite: int = 0
    best_metric: Optional[float] = None
    best_step: Optional[int] = None
    evals_without_improvement: int = 0
    last_eval: Optional[dict] = None
    elapsed: float = 0.0  # seconds of training, summed over resumed runs
    stopped_early: bool = False


class Trainer:
    """Trains ``model`` with AdamW (by default), a warmup+decay schedule and checkpoints.

    Args:
        model: a Module called as ``logits, loss = model(input_ids, labels)``.
        config: a :class:`TrainingConfig`.
        tokenizer: saved into checkpoints (and used by :meth:`train_on_dataset`).
        progress: show a tqdm progress bar (loss, lr, tokens/s).
    """

    def __init__(self, model, config: Optional[TrainingConfig] = None, *, tokenizer=None, progress: bool = True):
        self.model = model
        self.config = config if config is not None else TrainingConfig()
        self.tokenizer = tokenizer
        self.progress = progress
        self.optimizer = None
        self.scheduler = None  # set_lr_scheduler's, else built by train() from the plan
        self.checkpoint_manager: Optional[CheckpointManager] = None
        self.loggers = []
        self.state = TrainerState()
        self.data_fingerprint = None
        self.last_checkpoint: Optional[Path] = None
        self._cursor: Optional[DataCursor] = None
        self._optimizer_spec = ("adamw", None)

    # ------------------------------------------------------------------ configuration
    def plan(self) -> Plan:
        """The loop settings from :attr:`config` (TextTrainer overrides this)."""
        c = self.config
        return Plan(learning_rate=c.learning_rate, batch_size=c.batch_size, num_epochs=c.num_epochs,
                    max_grad_norm=c.gradient_clipping, weight_decay=c.weight_decay,
                    save_steps=c.save_frequency, seed=c.seed, max_consecutive_nonfinite=c.max_consecutive_nonfinite)

    def add_logger(self, logger) -> None:
        """Add a logger: any object with ``log_step(step, loss, lr, grad_norm, **extra)`` and/or
        ``log_epoch(epoch, train_metrics, val_metrics, **extra)`` (a :class:`MetricsLogger`, ...)."""
        self.loggers.append(logger)

    def set_lr_scheduler(self, scheduler) -> None:
        """Use a scheduler (``goldbull_np.optim.lr_scheduler``, or anything with ``step()``,
        ``state_dict()``, ``load_state_dict()``) instead of the one the config names; it is attached
        to the optimizer when it has none. ``step()`` is called once per optimizer step."""
        self.scheduler = scheduler

    def set_optimizer(self, name: str = "adamw", config: Optional[OptimizerConfig] = None) -> None:
        """Choose the optimizer: "adamw", "adam" or "sgd", with an :class:`OptimizerConfig`."""
        name = name.lower()
        if name not in ("adamw", "adam", "sgd"):
            raise ValueError(f"unknown optimizer {name!r} (known: adamw, adam, sgd)")
        self._optimizer_spec = (name, config)
        self.optimizer = None
        self._ensure_optimizer()

    def set_checkpoint_manager(self, manager: CheckpointManager) -> None:
        self.checkpoint_manager = manager

    def _ensure_optimizer(self):
        if self.optimizer is not None:
            return self.optimizer
        from .. import optim
        p = self.plan()
        name, oc = self._optimizer_spec
        lr = oc.learning_rate if oc is not None and oc.learning_rate is not None else p.learning_rate
        self._base_lr = lr
        wd = oc.weight_decay if oc is not None else p.weight_decay
        params = [q for q in self.model.parameters() if q.requires_grad]
        # nanoGPT: decay matrices (embeddings, linear weights), not biases and norm gains
        groups = [{"params": [q for q in params if q.ndim >= 2], "weight_decay": wd},
                  {"params": [q for q in params if q.ndim < 2], "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        if name == "sgd":
            self.optimizer = optim.SGD(groups, lr=lr, momentum=oc.momentum if oc else 0.0)
        else:
            betas = (oc.beta1, oc.beta2) if oc is not None else tuple(p.betas)
            eps = oc.epsilon if oc is not None else p.eps
            cls = optim.AdamW if name == "adamw" else optim.Adam  # Adam: weight decay as L2 (torch's)
            self.optimizer = cls(groups, lr=lr, betas=betas, eps=eps)
        return self.optimizer

    # ------------------------------------------------------------------ one optimizer step
    def train_step(self, batch) -> float:
        """One optimizer step on ``batch`` (a batch dict, or a list of micro-batch dicts to accumulate).

        Returns:
            The mean loss over the non-ignored tokens of the whole step, or NaN when the step was skipped
            because the loss or the gradient norm was not finite.
        """
        micro = batch if isinstance(batch, (list, tuple)) else [batch]
        return self._step(micro, self.plan())[0]

    def _step(self, micro, plan: Plan):
        """Forward/backward over micro-batches, clip, optimizer step.

        Returns:
            (mean loss or NaN if skipped, grad norm, input tokens, non-ignored label tokens)
        """
        opt = self._ensure_optimizer()
        model = self.model
        if not model.training:
            model.train()
        counts = [int(np.count_nonzero(np.asarray(b["labels"]) != IGNORE_INDEX)) for b in micro]
        total = sum(counts)
        n_inputs = sum(int(np.asarray(b["input_ids"]).size) for b in micro)
        loss_sum, finite = 0.0, total > 0
        if finite:
            for b, n in zip(micro, counts):
                if n == 0:
                    continue
                _, loss = model(b["input_ids"], b["labels"])
                value = float(loss.data)
                if not math.isfinite(value):
                    finite = False
                    break
                loss_sum += value * n
                loss.backward(gradient=np.asarray(n / total, dtype=loss.data.dtype))
                del loss
        grad_norm = float("nan")
        if finite:
            from ..nn.utils import clip_grad_norm_
            grad_norm = clip_grad_norm_(self._params(), plan.max_grad_norm if plan.max_grad_norm > 0 else math.inf)
            finite = math.isfinite(grad_norm)
        st = self.state
        if not finite:
            opt.zero_grad(set_to_none=True)
            st.nonfinite_steps += 1
            st.consecutive_nonfinite += 1
            st.step += 1
            if self.scheduler is not None:
                self.scheduler.step()  # the schedule follows the step count, skipped steps included
            if st.consecutive_nonfinite >= plan.max_consecutive_nonfinite:
                first = st.step - st.consecutive_nonfinite + 1
                raise NonFiniteLossError(
                    f"non-finite loss or gradient at step {st.step} ({st.consecutive_nonfinite} consecutive "
                    f"steps since step {first}; {st.nonfinite_steps} skipped in total); lower the learning "
                    f"rate or check the data")
            return float("nan"), grad_norm, n_inputs, total
        self._last_lr = float(opt.param_groups[0]["lr"])  # the lr this step used (logged)
        opt.step()
        # A fused AdamW keeps gradients in one flat buffer: zeroing it re-points each p.grad at its
        # view, so the next backward accumulates in place and step() copies nothing (a
        # per-parameter gradient array per step otherwise, 43 MB on the 10M model).
        opt.zero_grad(set_to_none=getattr(opt, "_flat", None) is None)
        if self.scheduler is not None:
            self.scheduler.step()
        st.step += 1
        st.consecutive_nonfinite = 0
        st.tokens_seen += n_inputs
        return loss_sum / total, grad_norm, n_inputs, total

    def _params(self):
        if not hasattr(self, "_param_list"):
            self._param_list = [p for p in self.model.parameters() if p.requires_grad]
        return self._param_list

    def current_lr(self) -> float:
        return float(self._ensure_optimizer().param_groups[0]["lr"])

    _total_steps: Optional[int] = None

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, dataset, max_batches: Optional[int] = None) -> ValidationMetrics:
        """Loss, accuracy and perplexity over ``dataset`` (a dataset or a loader), in eval mode, no grad.

        Args:
            dataset: validation data.
            max_batches: only the first this many batches (nanoGPT's ``eval_iters``); deterministic.
        """
        plan = self.plan()
        loader = dataset if _is_loader(dataset) else self._make_loader(dataset, plan, shuffle=False, drop_last=False)
        _rewind(loader)
        if max_batches is None:
            max_batches = plan.eval_iters
        was_training = getattr(self.model, "training", True)
        self.model.eval()
        loss_sum, correct, tokens = 0.0, 0, 0
        it = iter(loader)
        try:
            with no_grad():
                for i, b in enumerate(it):
                    if max_batches is not None and i >= max_batches:
                        break
                    labels = np.asarray(b["labels"])
                    mask = labels != IGNORE_INDEX
                    n = int(np.count_nonzero(mask))
                    if n == 0:
                        continue
                    logits, loss = self.model(b["input_ids"], labels)
                    loss_sum += float(loss.data) * n
                    pred = np.argmax(logits.data, axis=-1)
                    correct += int(np.count_nonzero((pred == labels) & mask))
                    tokens += n
        finally:
            if hasattr(it, "close"):
                it.close()
            _rewind(loader)
            self.model.train(was_training)
        return ValidationMetrics.from_sums(loss_sum, correct, tokens)

    def validate(self, dataset) -> ValidationMetrics:
        """The :class:`Trainable` name of :meth:`evaluate`."""
        return self.evaluate(dataset)

    # ------------------------------------------------------------------ data
    def _make_loader(self, dataset, plan: Plan, shuffle: bool, drop_last: bool = True):
        from ..data import DataLoader
        return DataLoader(dataset, batch_size=plan.batch_size, shuffle=shuffle, drop_last=drop_last, seed=plan.seed)

    def train_on_dataset(self, path, epochs: Optional[int] = None, val_fraction: float = 0.1):
        """Train on a file (the seed's ``train_on_dataset``): ``TextDataset.from_file`` with
        :attr:`tokenizer` (byte-level if none was given) and the model's ``block_size``; the last
        ``val_fraction`` of the items validate. Trains ``epochs`` epochs (default: the config's)."""
        from ..data import ByteTokenizer, PreprocessConfig, TextDataset
        from .data import Subset
        if self.tokenizer is None:
            self.tokenizer = ByteTokenizer()
        if epochs is not None:
            over = {"num_epochs": int(epochs)}
            if getattr(self.config, "max_steps", None) is not None:
                over["max_steps"] = None  # epochs asked for explicitly: they decide the length
            self.config = self.config.replace(**over)
        block = int(self.model.config.block_size)
        ds = TextDataset.from_file(path, PreprocessConfig(max_sequence_length=block), self.tokenizer)
        n_val = int(len(ds) * val_fraction) if len(ds) > 1 else 0
        idx = np.arange(len(ds))
        train = Subset(ds, idx[: len(ds) - n_val])
        val = Subset(ds, idx[len(ds) - n_val:]) if n_val else None
        return self.train(train, val)

    # ------------------------------------------------------------------ the loop
    def train(self, train_dataset, val_dataset=None, *, resume_from=None, allow_mismatch: bool = False):
        """Train until ``max_steps``/``num_epochs``, early stopping or a non-finite streak.

        Args:
            train_dataset: a dataset (batched with the plan's batch size, shuffled per epoch) or a loader.
            val_dataset: optional validation dataset or loader.
            resume_from: a checkpoint directory (or a run directory: its latest checkpoint) to resume.
            allow_mismatch: resume even if batch size, accumulation, seed, data or model differ.

        Returns:
            The :class:`TrainerState` at the end.
        """
        plan = self.plan()
        loader = train_dataset if _is_loader(train_dataset) else self._make_loader(train_dataset, plan, shuffle=True)
        val_loader = None
        if val_dataset is not None:
            val_loader = val_dataset if _is_loader(val_dataset) else self._make_loader(
                val_dataset, plan, shuffle=False, drop_last=False)
        if self.data_fingerprint is None:
            self.data_fingerprint = dataset_fingerprint(train_dataset, val_dataset)
        if self.checkpoint_manager is None and plan.output_dir:
            self.checkpoint_manager = CheckpointManager(Path(plan.output_dir))
        self._ensure_optimizer()
        self._cursor = DataCursor(loader, None if plan.max_steps is not None else plan.num_epochs)
        if plan.max_steps is not None:
            self._total_steps = plan.max_steps
        else:
            self._total_steps = plan.num_epochs * _ceil_div(len(loader), plan.gradient_accumulation_steps)
        if self.scheduler is None:
            from ..optim.lr_scheduler import get_scheduler
            decay = plan.lr_decay_steps if plan.lr_decay_steps is not None else self._total_steps
            self.scheduler = get_scheduler(plan.lr_scheduler, self.optimizer, base_lr=self._base_lr,
                                           total_steps=max(int(decay), 1), warmup_steps=plan.warmup_steps,
                                           min_lr=plan.min_learning_rate)
        elif getattr(self.scheduler, "optimizer", True) is None:
            self.scheduler.attach(self.optimizer)
        if resume_from is not None:
            self._resume(resume_from, allow_mismatch)
        gc.freeze()  # the model, optimizer and data are long-lived: keep them out of the cyclic GC's scans
        try:
            return self._loop(plan, val_loader)
        finally:
            gc.unfreeze()

    def _loop(self, plan: Plan, val_loader):
        st, cursor = self.state, self._cursor
        total = self._total_steps
        pbar = _progress(total, st.step, self.progress)
        epoch_metrics = TrainingMetrics()
        window_loss, window_tok, window_inputs, window_t0 = 0.0, 0, 0, time.perf_counter()
        run_t0, elapsed0 = time.perf_counter(), st.elapsed
        start_epoch = cursor.epoch
        stop = False
        try:
            while st.step < total and not stop:
                micro = []
                for _ in range(plan.gradient_accumulation_steps):
                    b = cursor.next()
                    if b is None:
                        break
                    micro.append(b)
                if not micro:
                    break
                loss, grad_norm, n_inputs, n_tok = self._step(micro, plan)
                step = st.step
                st.elapsed = elapsed0 + (time.perf_counter() - run_t0)
                epoch_metrics.add_loss(loss, n_tok)
                if math.isfinite(loss):
                    window_loss += loss * n_tok
                    window_tok += n_tok
                window_inputs += n_inputs
                if pbar is not None:
                    pbar.update(1)
                if plan.logging_steps and (step % plan.logging_steps == 0 or step == total):
                    now = time.perf_counter()
                    tps = window_inputs / max(now - window_t0, 1e-9)
                    avg = window_loss / window_tok if window_tok else float("nan")
                    lr = self._last_lr if self._last_lr is not None else self.current_lr()
                    self._emit_step(step, avg, lr, grad_norm, tokens_per_second=tps, elapsed=st.elapsed,
                                    epoch=cursor.epoch, skipped_steps=st.nonfinite_steps)
                    if pbar is not None:
                        pbar.set_postfix(loss=f"{avg:.4f}", lr=f"{lr:.2e}", tok_s=f"{tps:,.0f}", refresh=False)
                    window_loss, window_tok, window_inputs, window_t0 = 0.0, 0, 0, now
                new_epoch = cursor.epoch != start_epoch
                due_eval = val_loader is not None and (
                    (plan.eval_steps and step % plan.eval_steps == 0) or (new_epoch and not plan.eval_steps)
                    or step == total)
                metric = None
                if due_eval:
                    metric, stop = self._evaluate_and_track(val_loader, plan, epoch_metrics, start_epoch)
                    self._metric_at = (step, metric)
                elif new_epoch:  # an epoch ended between evaluations: log its training loss
                    for lg in self.loggers:
                        if hasattr(lg, "log_epoch"):
                            lg.log_epoch(start_epoch, epoch_metrics, None, step=step, elapsed=st.elapsed)
                if new_epoch:
                    start_epoch = cursor.epoch
                    epoch_metrics = TrainingMetrics()
                mgr = self.checkpoint_manager
                if mgr is not None:
                    every = mgr.config.save_frequency or plan.save_steps
                    new_best = metric is not None and st.best_step == step and mgr.config.best_metric is not None
                    if (every and step % every == 0) or new_best:
                        self._save(metric)
        finally:
            if pbar is not None:
                pbar.close()
        if self.checkpoint_manager is not None and (self.last_checkpoint is None
                                                    or self._saved_step != st.step):
            at, metric = self._metric_at
            self._save(metric if at == st.step else None)
        for lg in self.loggers:
            if hasattr(lg, "plot"):
                lg.plot()
        return st

    def _evaluate_and_track(self, val_loader, plan, epoch_metrics, epoch):
        """Evaluate, log, update best/early stopping. Returns (metric for checkpoints, stop?)."""
        st = self.state
        vm = self.evaluate(val_loader)
        st.last_eval = {"step": st.step, **vm.to_dict()}
        for lg in self.loggers:
            if hasattr(lg, "log_epoch"):
                lg.log_epoch(epoch, epoch_metrics, vm, step=st.step, elapsed=st.elapsed)
        name = self.checkpoint_manager.config.best_metric if self.checkpoint_manager else "validation_loss"
        value = {"validation_accuracy": vm.accuracy, "val_accuracy": vm.accuracy, "accuracy": vm.accuracy,
                 "validation_perplexity": vm.perplexity, "perplexity": vm.perplexity,
                 "train_loss": epoch_metrics.average_loss(), "loss": epoch_metrics.average_loss()}.get(name, vm.loss)
        maximize = name in ("validation_accuracy", "val_accuracy", "accuracy")
        improved = math.isfinite(value) and (st.best_metric is None or
                                             (value > st.best_metric if maximize else value < st.best_metric))
        if improved:
            st.best_metric, st.best_step, st.evals_without_improvement = float(value), st.step, 0
        else:
            st.evals_without_improvement += 1
        stop = bool(plan.early_stopping_patience) and st.evals_without_improvement >= plan.early_stopping_patience
        if stop:
            st.stopped_early = True
        return (value if math.isfinite(value) else None), stop

    def _emit_step(self, step, loss, lr, grad_norm, **extra):
        for lg in self.loggers:
            if hasattr(lg, "log_step"):
                lg.log_step(step, loss, lr, grad_norm, **extra)

    # ------------------------------------------------------------------ checkpoints
    _saved_step: Optional[int] = None
    _metric_at = (None, None)  # (step, metric value) of the last evaluation
    _last_lr: Optional[float] = None

    def trainer_state(self) -> dict:
        """The JSON-serialisable state of the run (what trainer_state.json holds, minus optimizer)."""
        plan = self.plan()
        sched = _jsonify(self.scheduler.state_dict()) if self.scheduler is not None else None
        return {
            "trainer": asdict(self.state),
            "epoch": self._cursor.epoch if self._cursor else self.state.epoch,
            "rng": gb_random.get_rng_state(),
            "data": self._cursor.state_dict() if self._cursor else None,
            "scheduler": sched,
            "config": _jsonify(self.config.to_dict()),
            "plan": _jsonify(asdict(plan)),
            "fingerprint": {"data": self.data_fingerprint, "model": _model_config(self.model)},
        }

    def _save(self, metric) -> Path:
        mgr = self.checkpoint_manager
        self.last_checkpoint = mgr.save(self.state.step, model=self.model, optimizer=self.optimizer,
                                        tokenizer=self.tokenizer, trainer_state=self.trainer_state(), metric=metric)
        self._saved_step = self.state.step
        return self.last_checkpoint

    def save_checkpoint(self, path) -> Path:
        """Write a complete checkpoint directory at ``path`` (atomically), outside any rotation."""
        from .checkpoint import write_checkpoint
        return write_checkpoint(path, step=self.state.step, model=self.model, trainer_state=self.trainer_state(),
                                optimizer=self._ensure_optimizer(), tokenizer=self.tokenizer)

    def load_checkpoint(self, path) -> None:
        """Restore model, optimizer, scheduler, RNG and counters from a checkpoint (no data position
        unless :meth:`train` is resuming)."""
        self._ensure_optimizer()
        st = load_checkpoint(path, model=self.model, optimizer=self.optimizer)
        self._restore(st)

    def _restore(self, st: dict) -> None:
        self.state = TrainerState(**st["trainer"])
        gb_random.set_rng_state(st["rng"])
        sched = st.get("scheduler")
        if self.scheduler is not None and sched:
            self.scheduler.load_state_dict(sched)

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
        for lg in self.loggers:
            if hasattr(lg, "truncate_after"):
                lg.truncate_after(self.state.step)

    def check_resume_compatible(self, saved: dict, allow_mismatch: bool = False) -> list:
        """Compare a checkpoint's plan, data and model with this run's; raise with a field-by-field diff.

        Returns the list of differences that were allowed (``allow_mismatch``) or are harmless.
        """
        now_plan = _jsonify(asdict(self.plan()))
        diffs = config_diff(saved.get("plan", {}), now_plan, RESUME_CRITICAL)
        fp = saved.get("fingerprint", {})
        if fp.get("data") != _jsonify(self.data_fingerprint):
            diffs.append(("data", fp.get("data"), _jsonify(self.data_fingerprint)))
        model_now = _model_config(self.model)
        if fp.get("model") is not None and model_now is not None:
            diffs += [(f"model.{k}", a, b) for k, a, b in config_diff(fp["model"], model_now)]
        if diffs and not allow_mismatch:
            lines = "\n".join(f"  {k}: checkpoint={a!r}  now={b!r}" for k, a, b in diffs)
            raise ResumeMismatchError("cannot resume: the run differs from the checkpoint in\n" + lines +
                                      "\n(pass allow_mismatch=True / --allow-config-change to resume anyway)")
        return diffs


# ---------------------------------------------------------------------------------------------------------

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


def _model_config(model):
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None
    if hasattr(cfg, "to_dict"):
        return _jsonify(cfg.to_dict())
    try:
        return _jsonify(asdict(cfg))
    except TypeError:
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


def _progress(total, initial, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
        return None
    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True, mininterval=0.5,
                file=sys.stderr)
