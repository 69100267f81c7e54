"""Training metrics, the JSONL/CSV metrics logger, and the optional loss-curve plot."""
import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..io import atomic_write, atomic_write_text
from .callbacks import Callback


class ValidationMetrics(dict):
    """The metrics of one evaluation by name (a task's ``summarize``), also readable as attributes:
    ``vm.loss``, ``vm.accuracy``, ``vm.perplexity``, ``vm.tokens`` for a language model.

    ``ValidationMetrics(loss, accuracy, perplexity, tokens)`` (positional, the language-model order),
    ``ValidationMetrics({"loss": ..., ...})`` or keywords.
    """

    _POSITIONAL = ("loss", "accuracy", "perplexity", "tokens")

    def __init__(self, *args, **metrics):
        if len(args) == 1 and isinstance(args[0], dict):
            metrics = {**args[0], **metrics}
        elif args:
            if len(args) > len(self._POSITIONAL):
                raise TypeError(f"ValidationMetrics takes at most {len(self._POSITIONAL)} positional metrics")
            metrics = {**dict(zip(self._POSITIONAL, args)), **metrics}
        super().__init__(metrics)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no metric {name!r} (have: {', '.join(sorted(self))})") from None

    @classmethod
    def from_sums(cls, loss_sum: float, correct: int, tokens: int) -> "ValidationMetrics":
        """A language model's metrics from summed token loss, correct argmax predictions and token count."""
        if tokens == 0:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        loss = loss_sum / tokens
        return cls(loss, correct / tokens, math.exp(loss) if loss < 700 else float("inf"), tokens)

    def to_dict(self) -> dict:
        return dict(self)


@dataclass
class TrainingMetrics:
    """Running statistics of one epoch (or any span of steps): the seed's ``TrainingMetrics``.

    ``add_loss(loss, tokens)`` weights each step's loss by its token count when given.
    """

    losses: list = field(default_factory=list)
    tokens: int = 0
    steps: int = 0
    skipped_steps: int = 0
    start_time: float = field(default_factory=time.perf_counter)
    _weighted_sum: float = 0.0
    _weight: float = 0.0

    def add_loss(self, loss: float, tokens: int = 0) -> None:
        loss = float(loss)
        if not math.isfinite(loss):
            self.skipped_steps += 1
            return
        self.losses.append(loss)
        self.steps += 1
        self.tokens += int(tokens)
        w = float(tokens) if tokens else 1.0
        self._weighted_sum += loss * w
        self._weight += w

    def average_loss(self) -> float:
        """Token-weighted mean loss of the finite steps (NaN before any)."""
        return self._weighted_sum / self._weight if self._weight else float("nan")

    def elapsed(self) -> float:
        return time.perf_counter() - self.start_time

    def tokens_per_second(self) -> float:
        t = self.elapsed()
        return self.tokens / t if t > 0 else 0.0

    def to_dict(self) -> dict:
        return {"average_loss": self.average_loss(), "steps": self.steps, "skipped_steps": self.skipped_steps,
                "tokens": self.tokens, "elapsed": self.elapsed(), "tokens_per_second": self.tokens_per_second()}


# the standard CSV columns; a task's own (tokens_per_second, val_accuracy, ...) follow, from the first row
STEP_FIELDS = ["step", "epoch", "loss", "lr", "grad_norm", "elapsed", "skipped_steps"]
EPOCH_FIELDS = ["epoch", "step", "train_loss", "val_loss", "elapsed"]


class MetricsLogger(Callback):
    """Appends one row per logged step / per epoch (or evaluation) to JSONL and CSV files in ``directory``.

    Files: ``steps.jsonl``, ``steps.csv``, ``epochs.jsonl``, ``epochs.csv`` (``loss_curve.png`` from
    :meth:`plot`, drawn at the end of training when matplotlib is installed). Rows are appended and
    flushed, so a killed run keeps everything logged so far; on resume the rows after the checkpoint's
    step are dropped (the resumed run logs them again). As a trainer callback it logs ``on_log``,
    ``on_epoch_end`` and ``on_evaluate``; ``log_step``/``log_epoch`` can also be called directly.
    """

    def __init__(self, directory, plot: bool = True):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.plot_at_end = plot
        self._files = {}

    # ---- trainer events ----
    def on_train_begin(self, trainer):
        if trainer.resumed_from is not None:
            self.truncate_after(trainer.state.step)

    def on_log(self, trainer, logs):
        extra = {k: v for k, v in logs.items() if k not in ("step", "loss", "lr", "grad_norm")}
        self.log_step(logs["step"], logs["loss"], logs["lr"], logs["grad_norm"], **extra)

    def on_epoch_end(self, trainer, epoch, metrics):
        if not metrics.get("evaluated"):  # an evaluation at the epoch's end logged it already
            self.log_epoch(epoch, None, None, step=trainer.state.step, train_loss=metrics.get("train_loss"),
                           elapsed=trainer.state.elapsed)

    def on_evaluate(self, trainer, metrics):
        val = {k: v for k, v in metrics.items() if k not in ("epoch", "step", "train_loss")}
        self.log_epoch(metrics["epoch"], None, val, step=metrics["step"], train_loss=metrics.get("train_loss"),
                       elapsed=trainer.state.elapsed)

    def on_train_end(self, trainer):
        self.close()
        if self.plot_at_end:
            self.plot()

    def _write(self, kind: str, fields: list, row: dict) -> None:
        if kind not in self._files:
            jpath, cpath = self.directory / f"{kind}.jsonl", self.directory / f"{kind}.csv"
            header = _csv_header(cpath)
            jf = open(jpath, "a", encoding="utf-8")
            cf = open(cpath, "a", encoding="utf-8", newline="")
            # the columns: an existing file's, else the standard ones plus the task's (e.g. examples_per_second)
            columns = header or fields + [k for k in row if k not in fields]
            writer = csv.DictWriter(cf, fieldnames=columns, extrasaction="ignore")
            if not header:
                writer.writeheader()
            self._files[kind] = (jf, cf, writer)
        jf, cf, writer = self._files[kind]
        jf.write(json.dumps(row, allow_nan=True) + "\n")
        writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
        jf.flush()
        cf.flush()

    def log_step(self, step: int, loss: float, learning_rate: float, grad_norm: Optional[float] = None,
                 **extra) -> None:
        """One training step: step, loss, lr, grad_norm (+ any extras: elapsed, the task's rates such as
        tokens_per_second, ...)."""
        row = {"step": int(step), "loss": _f(loss), "lr": _f(learning_rate), "grad_norm": _f(grad_norm)}
        row.update({k: _f(v) for k, v in extra.items()})
        self._write("steps", STEP_FIELDS, row)

    def log_epoch(self, epoch: int, train_metrics=None, val_metrics=None, **extra) -> None:
        """An epoch end or an evaluation: the train average and the validation metrics."""
        row = {"epoch": int(epoch)}
        if train_metrics is not None:
            row["train_loss"] = _f(train_metrics.average_loss())
        if val_metrics is not None:
            row.update({f"val_{k}": _f(v) for k, v in val_metrics.items()})
        row.update({k: _f(v) for k, v in extra.items()})
        self._write("epochs", EPOCH_FIELDS, row)

    def close(self) -> None:
        for jf, cf, _ in self._files.values():
            jf.close()
            cf.close()
        self._files.clear()

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resumed run re-does those steps; called on resume)."""
        self.close()
        for kind, fields in (("steps", STEP_FIELDS), ("epochs", EPOCH_FIELDS)):
            jpath = self.directory / f"{kind}.jsonl"
            if not jpath.exists():
                continue
            rows = [r for r in _read_jsonl(jpath) if int(r.get("step", 0)) <= step]
            atomic_write_text(jpath, "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
            cpath = self.directory / f"{kind}.csv"
            columns = _csv_header(cpath) or fields
            with open(cpath, "w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
                w.writeheader()
                for r in rows:
                    w.writerow({k: r.get(k, "") for k in columns})

    def read_steps(self) -> list:
        return _read_jsonl(self.directory / "steps.jsonl")

    def read_epochs(self) -> list:
        return _read_jsonl(self.directory / "epochs.jsonl")

    def plot(self, path=None) -> Optional[Path]:
        """Draw train (and validation) loss against step to ``loss_curve.png``; None without matplotlib."""
        return plot_loss_curve(self.read_steps(), self.read_epochs(), path or self.directory / "loss_curve.png")


def plot_loss_curve(steps: list, evals: list, path) -> Optional[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [r["step"] for r in steps if _finite(r.get("loss"))]
    ax.plot(xs, [r["loss"] for r in steps if _finite(r.get("loss"))], label="train loss")
    ev = [r for r in evals if _finite(r.get("val_loss"))]
    if ev:
        ax.plot([r["step"] for r in ev], [r["val_loss"] for r in ev], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)
    return Path(path)


def _csv_header(path) -> list:
    """The column names of an existing non-empty CSV file, else []."""
    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return next(csv.reader(f), [])


def _read_jsonl(path) -> list:
    if not Path(path).exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _f(v):
    if v is None:
        return None
    try:
        return float(v) if not isinstance(v, (int, str)) or isinstance(v, bool) else v
    except (TypeError, ValueError):
        return v


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
