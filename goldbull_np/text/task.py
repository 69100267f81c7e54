"""``LanguageModelingTask``: next-token prediction, the task a Trainer trains a GoldbullText on.

A batch is a dict of int64 arrays ``input_ids`` (B, T) and ``labels`` (B, T), already shifted (labels[b, t]
is the token after position t), with ``IGNORE_INDEX`` (-100) where no loss is taken. The model is
anything called as ``logits, loss = model(input_ids, labels)`` with ``loss`` the mean over the labelled
positions. A micro-batch weighs as many as its labelled tokens, so accumulation equals the big batch.
"""
import numpy as np

from ..nn import functional as F
from ..kernels import IGNORE_INDEX
from ..train.task import WeightedLossTask, safe_exp


class LanguageModelingTask(WeightedLossTask):
    """Next-token prediction: loss = mean cross-entropy over labelled tokens; weight = labelled tokens.

    Evaluation reports ``loss``, ``accuracy`` (argmax == label over labelled tokens), ``perplexity``
    (exp loss) and ``tokens``; training counts ``tokens`` (inputs), logged as tokens/s.

    Args:
        label_smoothing: cross-entropy label smoothing in training (None: the trainer config's
            ``label_smoothing``). Evaluation always reports the plain cross-entropy.
    """

    metric = "loss"
    greater_is_better = False

    def __init__(self, label_smoothing=None):
        self.label_smoothing = label_smoothing

    def configure(self, config) -> None:
        if self.label_smoothing is None:
            self.label_smoothing = float(config.label_smoothing)

    def loss(self, model, batch):
        ids, labels = batch["input_ids"], np.asarray(batch["labels"])
        weight = int(np.count_nonzero(labels != IGNORE_INDEX))
        counts = {"tokens": int(np.asarray(ids).size)}
        if weight == 0:
            return None, 0, counts  # nothing to learn from: no forward
        if self.label_smoothing:
            logits, _ = model(ids)  # (B,T,V)
            V = logits.shape[-1]
            loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE_INDEX,
                                   label_smoothing=self.label_smoothing)
        else:
            _, loss = model(ids, labels)
        return loss, weight, counts

    def evaluate(self, model, batch) -> dict:
        labels = np.asarray(batch["labels"])
        mask = labels != IGNORE_INDEX
        n = int(np.count_nonzero(mask))
        if n == 0:
            return {}
        logits, loss = model(batch["input_ids"], labels)
        pred = np.argmax(logits.data, axis=-1)  # (B,T)
        return self.loss_counts(float(loss.data), n, correct=int(np.count_nonzero((pred == labels) & mask)))

    def summarize(self, totals: dict) -> dict:
        n = totals.get("weight", 0)
        if not n:
            return {"loss": float("nan"), "accuracy": float("nan"), "perplexity": float("nan"), "tokens": 0}
        loss = totals["loss_sum"] / n
        return {"loss": loss, "accuracy": totals.get("correct", 0) / n, "perplexity": safe_exp(loss),
                "tokens": int(n)}

    def load_dataset(self, path, model, tokenizer=None):
        """``(TextDataset.from_file(path) at the model's block_size, tokenizer)``; byte-level without one."""
        from ..data import ByteTokenizer, PreprocessConfig, TextDataset
        tokenizer = tokenizer if tokenizer is not None else ByteTokenizer()
        block = int(model.config.block_size)
        return TextDataset.from_file(path, PreprocessConfig(max_sequence_length=block), tokenizer), tokenizer


__all__ = ["LanguageModelingTask", "IGNORE_INDEX"]
