"""``ImageClassificationTask``: what a batch of labelled images means to the shared Trainer.

A batch (``collate``) is ``{"images": uint8 (B, H, W, C), "labels": int64 (B,)}``. Training (``loss``):
augmentation (``augmentation_probability``), normalisation to the model's input, mixup/cutmix soft
targets (timm's, label smoothing folded in) and a cross-entropy with class weights; the random draws
come from the global goldbull_np generator, which checkpoints carry, so a resumed run augments exactly
as the uninterrupted one. Evaluation: plain cross-entropy, accuracy, top-5, per-class accuracy and
the confusion matrix (rows = true class, columns = predicted).

Class weights with hard targets are torch's ``cross_entropy(weight=..., label_smoothing=...)``; with
soft (mixed) targets each example weighs ``sum_c t_c w_c`` and the loss is the weighted mean of
``-sum_c t_c log p_c`` (timm's SoftTargetCrossEntropy, weighted).
"""
import numpy as np

from .. import random as gb_random
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..train.task import WeightedLossTask
from .transforms import Augmentation, Mixup, match_channels, normalize


def balanced_class_weights(counts):
    """sklearn's "balanced": n_samples / (n_classes * count_c)."""
    counts = np.asarray(counts, np.float64)
    if (counts <= 0).any():
        raise ValueError(f"balanced class weights need an example of every class, got counts {counts.tolist()}")
    return (counts.sum() / (len(counts) * counts)).astype(np.float32)


def resolve_class_weights(class_weights, counts, num_classes):
    """None, a list of num_classes positive numbers, or "balanced" (from ``counts``) -> (C,) float32 or None."""
    if class_weights is None:
        return None
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(f"class_weights must be None, a list or 'balanced', got {class_weights!r}")
        if counts is None:
            raise ValueError("class_weights='balanced' needs the training labels' counts")
        return balanced_class_weights(counts)
    w = np.asarray(class_weights, np.float32)
    if w.shape != (num_classes,) or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError(f"class_weights must be {num_classes} non-negative numbers, got {list(class_weights)}")
    return w


class ImageClassificationTask(WeightedLossTask):
    """Image classification; weight = examples; metric = accuracy (greater is better).

    Args:
        label_smoothing, mixup_alpha, cutmix_alpha, augmentation_probability, class_weights: None =
            the trainer config's (VisionTrainingConfig fields; 0 / None when the config lacks them).
        augmentation: an :class:`Augmentation` (default built from the config).
        num_classes: default the model's.
    """

    metric = "accuracy"
    greater_is_better = True

    def __init__(self, label_smoothing=None, mixup_alpha=None, cutmix_alpha=None, augmentation_probability=None,
                 class_weights=None, augmentation=None, class_counts=None):
        self.label_smoothing, self.mixup_alpha, self.cutmix_alpha = label_smoothing, mixup_alpha, cutmix_alpha
        self.augmentation_probability, self.class_weights_spec = augmentation_probability, class_weights
        self.augmentation, self.class_counts = augmentation, class_counts
        self.weights = None
        self._configured = False

    def configure(self, config) -> None:
        g = lambda name, default: getattr(config, name, default)  # noqa: E731
        if self.label_smoothing is None:
            self.label_smoothing = float(g("label_smoothing", 0.0))
        if self.mixup_alpha is None:
            self.mixup_alpha = float(g("mixup_alpha", 0.0))
        if self.cutmix_alpha is None:
            self.cutmix_alpha = float(g("cutmix_alpha", 0.0))
        if self.augmentation_probability is None:
            self.augmentation_probability = float(g("augmentation_probability", 0.0))
        if self.class_weights_spec is None:
            self.class_weights_spec = g("class_weights", None)
        if self.augmentation is None:
            self.augmentation = Augmentation(p=self.augmentation_probability, hflip=bool(g("horizontal_flip", True)),
                                             rotation=float(g("rotation_degrees", 10.0)),
                                             scale=(float(g("crop_scale_min", 0.6)), 1.0))
        self.mixup_prob = float(g("mixup_prob", 1.0))
        self._configured = True

    def set_class_counts(self, counts):
        """The training labels' counts (for class_weights='balanced')."""
        self.class_counts = np.asarray(counts)
        self.weights = None

    def _weights(self, C):
        if self.weights is None and self.class_weights_spec is not None:
            self.weights = resolve_class_weights(self.class_weights_spec, self.class_counts, C)
        return self.weights

    def collate(self, items):
        images = np.stack([np.asarray(it[0]) for it in items])          # (B, H, W, C) uint8
        labels = np.asarray([int(it[1]) for it in items], np.int64)      # (B,)
        return {"images": images, "labels": labels}

    def inputs(self, model, images):
        """uint8 (B, H, W, C) -> the model's normalised (B, C, H, W) float32."""
        a = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else np.asarray(images, np.float32)
        return a

    def loss(self, model, batch):
        if not self._configured:
            self.configure(object())
        images, y = batch["images"], np.asarray(batch["labels"], np.int64)
        cfg = model.config
        C = cfg.num_classes
        rng = gb_random.default_generator()
        a = match_channels(self.inputs(model, images), cfg.in_channels)   # (B, H, W, C) in [0, 1]
        if self.augmentation is not None and self.augmentation.p > 0:
            a = self.augmentation(a, rng)
        x = normalize(a, cfg)                                              # (B, C, H, W)
        w = self._weights(C)
        counts = {"examples": int(len(y))}
        if self.mixup_alpha or self.cutmix_alpha:
            mix = Mixup(self.mixup_alpha, self.cutmix_alpha, prob=self.mixup_prob,
                        label_smoothing=self.label_smoothing, num_classes=C)
            x, target, _ = mix(x, y, rng)
            logits, _ = model(Tensor(x))
            logp = F.log_softmax(logits, 1)                                # (B, C)
            per = -(logp * Tensor(target)).sum(1)                          # (B,)
            if w is None:
                loss = per.mean()
            else:
                sw = (target * w).sum(1).astype(np.float32)                # (B,) per-example weights
                loss = (per * Tensor(sw)).sum() / float(sw.sum())
        else:
            logits, _ = model(Tensor(x))
            loss = F.cross_entropy(logits, y, weight=None if w is None else Tensor(w),
                                   label_smoothing=self.label_smoothing)
        pred = np.argmax(logits.data, axis=1)
        counts["correct"] = int((pred == y).sum())
        return loss, len(y), counts

    def evaluate(self, model, batch) -> dict:
        images, y = batch["images"], np.asarray(batch["labels"], np.int64)
        cfg = model.config
        C = cfg.num_classes
        x = normalize(match_channels(self.inputs(model, images), cfg.in_channels), cfg)
        logits, loss = model(Tensor(x), y)
        z = logits.data                                                    # (B, C)
        pred = np.argmax(z, axis=1)
        k = min(5, C)
        topk = np.argpartition(-z, k - 1, axis=1)[:, :k]
        conf = np.zeros((C, C), np.int64)
        np.add.at(conf, (y, pred), 1)
        return self.loss_counts(float(loss.data), len(y), correct=int((pred == y).sum()),
                                top5_correct=int((topk == y[:, None]).any(axis=1).sum()),
                                confusion=conf)

    def summarize(self, totals: dict) -> dict:
        n = totals.get("weight", 0)
        if not n:
            return {"loss": float("nan"), "accuracy": float("nan"), "top5_accuracy": float("nan"), "examples": 0}
        conf = np.asarray(totals.get("confusion", np.zeros((0, 0))))
        rows = conf.sum(axis=1) if conf.size else np.zeros(0)
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN for a class with no validation example
            per_class = (np.diag(conf) / rows).tolist() if conf.size else []
        return {"loss": totals["loss_sum"] / n, "accuracy": totals.get("correct", 0) / n,
                "top5_accuracy": totals.get("top5_correct", 0) / n, "examples": int(n),
                "per_class_accuracy": per_class, "confusion_matrix": conf.tolist()}


__all__ = ["ImageClassificationTask", "balanced_class_weights", "resolve_class_weights"]
