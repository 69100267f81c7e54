"""Callbacks: the Trainer's named events, and the callbacks it ships (progress bar, early stopping, printing).

Events, in the order a run fires them::

    on_train_begin(trainer)
      on_step_begin(trainer)
        on_after_backward(trainer)        every micro-batch's backward done, before unscale/clip
      on_step_end(trainer, result)        result: goldbull_np.optim.StepResult
      on_log(trainer, logs)               every logging_steps: step, epoch, loss, lr, grad_norm, rates...
      on_epoch_end(trainer, epoch, metrics)
      on_evaluate(trainer, metrics)       validation metrics (+ step, epoch, train_loss)
      on_save(trainer, path)              a checkpoint was written
    on_train_end(trainer)

A callback overrides the events it needs; the base class's are no-ops, so the trainer calls every
callback for every event. A callback with state returns it (JSON values) from ``state_dict`` and takes
it back in ``load_state_dict``: the trainer saves it in ``trainer_state.json`` under ``state_key``, so
an exact resume restores it. A callback asks the run to stop by setting ``trainer.should_stop = True``.
"""
import math
import sys
from typing import Optional


class Callback:
    """Base class: every event is a no-op; override the ones you need."""

    @property
    def state_key(self) -> str:
        """The key of this callback's state in ``trainer_state.json`` (unique among a trainer's callbacks)."""
        return type(self).__name__

    def state_dict(self) -> dict:
        """JSON-serialisable state for exact resume ({} when there is none)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""

    def on_train_begin(self, trainer) -> None: ...

    def on_train_end(self, trainer) -> None: ...

    def on_step_begin(self, trainer) -> None: ...

    def on_after_backward(self, trainer) -> None: ...

    def on_step_end(self, trainer, result) -> None: ...

    def on_log(self, trainer, logs: dict) -> None: ...

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None: ...

    def on_evaluate(self, trainer, metrics: dict) -> None: ...

    def on_save(self, trainer, path) -> None: ...


EVENTS = tuple(name for name in vars(Callback) if name.startswith("on_"))


class CallbackList:
    """The trainer's callbacks; ``callbacks.fire("on_log", trainer, logs)`` calls each in order."""

    def __init__(self, callbacks=()):
        self.callbacks = []
        for cb in callbacks:
            self.add(cb)

    def add(self, callback: Callback) -> Callback:
        if not isinstance(callback, Callback):
            raise TypeError(f"a callback must be a goldbull_np.train.Callback (subclass it and override the "
                            f"events it needs), got {type(callback).__name__}")
        self.callbacks.append(callback)
        return callback

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def fire(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(*args)

    def _keys(self):
        keys, seen = [], {}
        for cb in self.callbacks:
            k = cb.state_key
            seen[k] = seen.get(k, 0) + 1
            keys.append(k if seen[k] == 1 else f"{k}.{seen[k] - 1}")
        return keys

    def state_dict(self) -> dict:
        out = {}
        for key, cb in zip(self._keys(), self.callbacks):
            st = cb.state_dict()
            if st:
                out[key] = st
        return out

    def load_state_dict(self, state: dict) -> None:
        for key, cb in zip(self._keys(), self.callbacks):
            if key in state:
                cb.load_state_dict(state[key])


class ProgressBar(Callback):
    """A tqdm bar on stderr: steps, with loss, lr and the task's rates (tokens/s) at each log."""

    def __init__(self, desc: str = "train"):
        self.desc = desc
        self.bar = None

    def on_train_begin(self, trainer):
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
            return
        self.bar = tqdm(total=trainer.total_steps, initial=trainer.state.step, desc=self.desc, unit="step",
                        dynamic_ncols=True, mininterval=0.5, file=sys.stderr)

    def on_step_end(self, trainer, result):
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, trainer, logs):
        if self.bar is None:
            return
        post = {"loss": f"{logs['loss']:.4f}", "lr": f"{logs['lr']:.2e}"}
        post.update({k.replace("_per_second", "_s"): f"{v:,.0f}" for k, v in logs.items() if k.endswith("_per_second")})
        self.bar.set_postfix(post, refresh=False)

    def on_train_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EarlyStopping(Callback):
    """Stop after ``patience`` evaluations without an improvement of ``metric`` by more than ``min_delta``.

    Args:
        patience: evaluations to wait.
        metric: a validation metric name (default: the task's ``metric``, the loss).
        greater_is_better: default: the task's (False for the loss).
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(self, patience: int, metric: Optional[str] = None, greater_is_better: Optional[bool] = None,
                 min_delta: float = 0.0):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping.patience must be a positive integer, got {patience!r}")
        self.patience, self.metric, self.greater_is_better, self.min_delta = patience, metric, greater_is_better, min_delta
        self.best: Optional[float] = None
        self.wait = 0

    def on_evaluate(self, trainer, metrics):
        name = self.metric or trainer.task.metric
        bigger = trainer.task.greater_is_better if self.greater_is_better is None else self.greater_is_better
        value = metrics.get(name)
        if value is None:
            raise KeyError(f"EarlyStopping: no validation metric {name!r} (have: {', '.join(sorted(metrics))})")
        better = math.isfinite(value) and (self.best is None or (
            value > self.best + self.min_delta if bigger else value < self.best - self.min_delta))
        if better:
            self.best, self.wait = float(value), 0
        else:
            self.wait += 1
        if self.wait >= self.patience:
            trainer.should_stop = True
            trainer.state.stopped_early = True

    def state_dict(self):
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state):
        self.best, self.wait = state.get("best"), int(state.get("wait", 0))


class PrintLogger(Callback):
    """Prints one line per log and per evaluation through ``print_fn`` (the CLI's recipes use it)."""

    def __init__(self, print_fn=print, every_log: bool = False):
        self.print_fn, self.every_log = print_fn, every_log

    def on_log(self, trainer, logs):
        if self.every_log:
            self.print_fn(f"step {logs['step']}: loss {logs['loss']:.4f}, lr {logs['lr']:.2e}")

    def on_evaluate(self, trainer, metrics):
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                          if k not in ("step", "epoch") and isinstance(v, float))
        self.print_fn(f"step {metrics['step']}: validation {shown}")


__all__ = ["Callback", "CallbackList", "ProgressBar", "EarlyStopping", "PrintLogger", "EVENTS"]
