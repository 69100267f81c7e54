"""``Task``: what a batch means. The Trainer knows batches, a loss, a weight and metrics, never tokens or logits.

A model family brings its task (the language-modelling task lives in ``goldbull_np.text``, the
classification task in ``goldbull_np.vision``). A task answers three questions:

    loss(model, batch)     -> (loss Tensor, weight, counts)   in training mode, with grad
    evaluate(model, batch) -> counts                          in eval mode, under no_grad
    summarize(totals)      -> metrics                         from the counts summed over the data

``weight`` is what gradient accumulation weights a micro-batch's mean loss by: the number of tokens
that carry a label for a language model, the number of examples for a classifier. ``counts`` are
additive (sums over the batch: a loss times its weight, correct predictions, tokens, examples), so
summing them over batches, micro-batches and logging windows is exact; ``summarize`` turns the totals
into the reported metrics (mean loss, accuracy, perplexity, ...). Training counts are logged as
``<name>_per_second`` rates too (tokens/s for a language model).

A task may also supply ``collate(items) -> batch`` for the DataLoader the trainer builds around a
dataset: the batch is whatever the task's ``loss`` takes (arrays, tensors or dicts).
"""
import math


class Task:
    """Base class of tasks; subclasses implement :meth:`loss` and :meth:`evaluate`.

    Attributes:
        metric: the name of the metric (a key of :meth:`summarize`'s result) that picks the best
            checkpoint and drives early stopping by default.
        greater_is_better: whether a larger ``metric`` is better.
    """

    metric = "loss"
    greater_is_better = False

    def configure(self, config) -> None:
        """Read settings from the trainer's config (e.g. ``label_smoothing``); called by the Trainer."""

    def collate(self, items):
        """Turn a list of dataset items into one batch; None (the default) keeps the DataLoader's own."""
        return None

    def loss(self, model, batch):
        """``(loss, weight, counts)``: the batch's mean loss (a scalar Tensor), its weight (> 0; 0 means
        nothing to learn from) and a dict of additive counts."""
        raise NotImplementedError(f"{type(self).__name__}.loss")

    def evaluate(self, model, batch) -> dict:
        """Additive counts for one validation batch (e.g. ``{"loss_sum": ..., "examples": n}``)."""
        raise NotImplementedError(f"{type(self).__name__}.evaluate")

    def summarize(self, totals: dict) -> dict:
        """The metrics reported for a whole evaluation, from the counts summed over its batches."""
        return dict(totals)

    def load_dataset(self, path, model, tokenizer=None):
        """``(dataset, tokenizer)`` read from a file, for ``Trainer.train_on_dataset``."""
        raise NotImplementedError(f"{type(self).__name__} cannot read a dataset from a file")


class WeightedLossTask(Task):
    """A task whose ``evaluate`` reports ``loss_sum`` and ``weight`` (+ any counts): ``summarize`` gives
    the weighted mean ``loss`` and keeps the counts. Subclasses return ``(loss, weight, counts)`` from
    :meth:`loss` and call :meth:`loss_counts` from ``evaluate``."""

    @staticmethod
    def loss_counts(loss_value: float, weight: float, **counts) -> dict:
        return {"loss_sum": float(loss_value) * float(weight), "weight": float(weight), **counts}

    def summarize(self, totals: dict) -> dict:
        out = {k: v for k, v in totals.items() if k not in ("loss_sum", "weight")}
        w = totals.get("weight", 0.0)
        out["loss"] = totals.get("loss_sum", 0.0) / w if w else float("nan")
        return out


def call_model(model, batch):
    """``model(**batch)`` for a dict batch, ``model(*batch)`` for a tuple/list, ``model(batch)`` otherwise."""
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def safe_exp(x: float) -> float:
    """exp(x), inf above the float range, NaN for NaN."""
    if not math.isfinite(x):
        return x if math.isnan(x) else (math.inf if x > 0 else 0.0)
    return math.exp(x) if x < 700 else math.inf


__all__ = ["Task", "WeightedLossTask", "call_model", "safe_exp"]
