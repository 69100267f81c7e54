"""Sequence classification on the BERT encoder, trainable through the shared Trainer (with LoRA).

    model = BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=2, pooling="mean")
    model.add_lora_adapters(LoRAConfig(rank=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    Trainer(model, TrainingConfig(max_steps=100), task=SequenceClassificationTask()).train(train_items)

A dataset item is ``{"text": str, "label": int}`` (or a ``(text, label)`` pair, or already-tokenised
``{"input_ids", "attention_mask", "label"}``); the task's ``collate`` tokenises and pads a batch.
"""
import dataclasses
import os

import numpy as np

from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..nn import init
from ..nn.layers import Dropout, Linear
from ..nn.model_base import PreTrainedModel
from ..train.task import WeightedLossTask
from .bert import BertConfig, BertModel, _save_hf, convert_hf_bert, load_bert, to_hf_state_dict

POOLINGS = ("mean", "cls")


class BertForSequenceClassification(PreTrainedModel):
    """``logits = classifier(dropout(pool(bert(...))))``; ``forward(..., labels=None) -> (logits, loss)``.

    Args:
        config: a BertConfig (``num_labels`` classes, ``classifier_dropout``).
        pooling: "mean" (masked mean of the last hidden state, sentence-transformers') or "cls"
            (BERT's tanh pooler over [CLS], transformers' BertForSequenceClassification).
    """

    config_class = BertConfig

    def __init__(self, config=None, pooling="mean"):
        super().__init__()
        config = BertConfig() if config is None else config
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if pooling == "cls" and not config.add_pooling_layer:
            raise ValueError("pooling='cls' needs the pooler (add_pooling_layer=True)")
        self.config = config
        self.pooling = pooling
        self.bert = BertModel(config)
        p = config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout
        self.drop = Dropout(p) if p > 0 else None
        self.classifier = Linear(config.hidden_size, config.num_labels)
        init.normal_(self.classifier.weight, 0.0, config.initializer_range)
        init.zeros_(self.classifier.bias)
        object.__setattr__(self, "tokenizer", None)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        """Returns ``(logits (B, num_labels), loss or None)``; labels (B,) class ids (-100 ignored)."""
        h = self.bert(input_ids, attention_mask, token_type_ids)  # (B,T,C)
        pooled = self.bert.mean_pool(h, attention_mask) if self.pooling == "mean" else self.bert.pooled_output(h)
        if self.drop is not None:
            pooled = self.drop(pooled)
        logits = self.classifier(pooled)  # (B,num_labels)
        loss = None
        if labels is not None:
            y = np.asarray(labels.data if isinstance(labels, Tensor) else labels).astype(np.int64).reshape(-1)
            loss = F.cross_entropy(logits, y)
        return logits, loss

    def default_task(self):
        return SequenceClassificationTask()

    def add_lora_adapters(self, config=None):
        """LoRA on the encoder's named Linears (q_proj, k_proj, v_proj, o_proj, up_proj, down_proj);
        the classifier head stays trainable (it is new)."""
        from ..nn import lora
        names = lora.add_lora_adapters(self, config)
        self.classifier.requires_grad_(True)
        return names

    def get_lora_parameters(self):
        from ..nn import lora
        return lora.get_lora_parameters(self)

    def merge_lora(self):
        from ..nn import lora
        return lora.merge_lora(self)

    # ---- HF format: "bert." + the encoder, "classifier." the head -------------------------------
    def save_pretrained(self, save_directory):
        """HF BertForSequenceClassification directory (with pooling="mean" transformers would pool with
        [CLS] instead: the pooling is recorded as ``goldbull_pooling`` in config.json)."""
        t = to_hf_state_dict(self.bert, prefix="bert.")
        t["classifier.weight"] = np.ascontiguousarray(self.classifier.weight.data)
        t["classifier.bias"] = np.ascontiguousarray(self.classifier.bias.data)
        _save_hf(self, save_directory, t)
        path = os.path.join(save_directory, "config.json")
        import json
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        d["architectures"] = ["BertForSequenceClassification"]
        d["goldbull_pooling"] = self.pooling
        from ..io import atomic_write_json
        atomic_write_json(path, d)

    @classmethod
    def from_pretrained(cls, pretrained_dir, num_labels=None, pooling=None, device="cpu"):
        """Load a BERT directory; a bare encoder (BertModel, MiniLM) gets a new head of ``num_labels``
        classes, a classification checkpoint its own (``num_labels`` must then agree)."""
        if device not in (None, "cpu"):
            raise ValueError(f"only device='cpu' is supported, got {device!r}")
        from ..text.hf import read_hf_weights
        arrays = read_hf_weights(os.fspath(pretrained_dir))
        has_head = "classifier.weight" in arrays
        if has_head:
            model = load_bert(pretrained_dir, cls)
            if num_labels is not None and num_labels != model.config.num_labels:
                raise ValueError(f"{pretrained_dir}: a {model.config.num_labels}-class checkpoint, num_labels="
                                 f"{num_labels} asked")
            model.pooling = pooling or model.hf_config.get("goldbull_pooling", "cls")  # HF's heads pool [CLS]
            return model
        enc = BertModel.from_pretrained(pretrained_dir)
        config = dataclasses.replace(enc.config, num_labels=num_labels or enc.config.num_labels)
        pooling = pooling or enc.hf_config.get("goldbull_pooling", "mean")
        model = cls(config, pooling)  # the new head draws from the global generator (seed it)
        model.bert = enc
        object.__setattr__(model, "tokenizer", enc.tokenizer)
        return model

    def _convert_hf(self, arrays, config, source):
        C, N = config.hidden_size, config.num_labels
        same = lambda a: a[0]  # noqa: E731
        head = [("classifier.weight", [("classifier.weight", (N, C))], same),
                ("classifier.bias", [("classifier.bias", (N,))], same)]
        out = convert_hf_bert(arrays, config, source, prefix="bert.", extra_rules=head,
                              ignore=lambda k: k.startswith("cls."))
        return {("bert." + k if not k.startswith("classifier.") else k): v for k, v in out.items()}


class SequenceClassificationTask(WeightedLossTask):
    """Cross-entropy over classes; weight = examples; evaluation reports loss, accuracy, examples.

    Args:
        tokenizer: used by ``collate`` to turn texts into ids (default: the model's, set on first use
            through :meth:`configure_model`); max_length: truncation length.
    """

    metric = "accuracy"
    greater_is_better = True

    def __init__(self, tokenizer=None, max_length=128):
        self.tokenizer = tokenizer
        self.max_length = max_length

    def collate(self, items):
        if self.tokenizer is None:
            raise ValueError("SequenceClassificationTask needs a tokenizer to collate texts: "
                             "SequenceClassificationTask(tokenizer=model.tokenizer)")
        texts, labels = [], []
        for it in items:
            if isinstance(it, dict):
                texts.append(it["text"])
                labels.append(it["label"])
            else:
                texts.append(it[0])
                labels.append(it[1])
        batch = self.tokenizer(texts, max_length=self.max_length)
        batch["labels"] = np.asarray(labels, dtype=np.int64)
        return batch

    def loss(self, model, batch):
        labels = np.asarray(batch["labels"])
        n = int(np.count_nonzero(labels != F.IGNORE_INDEX))
        if n == 0:
            return None, 0, {"examples": 0}
        _, loss = model(batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"), labels)
        return loss, n, {"examples": n}

    def evaluate(self, model, batch):
        labels = np.asarray(batch["labels"])
        keep = labels != F.IGNORE_INDEX
        n = int(np.count_nonzero(keep))
        if n == 0:
            return {}
        logits, loss = model(batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"), labels)
        correct = int(np.count_nonzero((np.argmax(logits.data, -1) == labels) & keep))
        return self.loss_counts(float(loss.data), n, correct=correct, examples=n)

    def summarize(self, totals):
        out = super().summarize(totals)
        n = totals.get("weight", 0)
        out["accuracy"] = totals.get("correct", 0) / n if n else float("nan")
        out.pop("correct", None)
        return out


__all__ = ["BertForSequenceClassification", "SequenceClassificationTask", "POOLINGS"]
