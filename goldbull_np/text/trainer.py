"""TextTrainer: the language-model trainer (the seed's ``TextTrainer`` and ``TextTrainingConfig``), on the
generic Trainer with the language-modelling task.

    config = TextTrainingConfig(learning_rate=1e-3, batch_size=12, gradient_accumulation_steps=1,
                                warmup_steps=100, lr_scheduler="cosine", max_steps=2000, eval_steps=250,
                                output_dir="runs/shakespeare")
    trainer = TextTrainer(GoldbullText(ModelConfig.small()), config, tokenizer=tok)
    trainer.train(train_dataset, val_dataset)
"""
from typing import ClassVar, Optional

import numpy as np

from ..train.config import TrainingConfig, config
from ..train.trainer import Trainer
from .generation import start_token
from .task import LanguageModelingTask


@config
class TextTrainingConfig(TrainingConfig):
    """How a :class:`TextTrainer` trains (the seed's ``TextTrainingConfig``; the TOML ``[training]`` table).

    The fields are :class:`~goldbull_np.train.TrainingConfig`'s; only the defaults differ (the seed's
    text recipe): learning_rate 5e-5, batch_size 4, gradient_accumulation_steps 2, num_epochs 3,
    warmup_steps 100, lr_scheduler "cosine", save_steps 500, eval_steps 100.
    """

    learning_rate: float = 5e-5
    batch_size: int = 4
    gradient_accumulation_steps: int = 2
    num_epochs: int = 3
    warmup_steps: int = 100
    lr_scheduler: str = "cosine"
    save_steps: int = 500
    eval_steps: int = 100

    _section: ClassVar[Optional[str]] = "training"


class TextTrainer(Trainer):
    """Trains a :class:`GoldbullText` (or any ``logits, loss = model(input_ids, labels)`` LM) with the
    :class:`LanguageModelingTask`: the generic :class:`~goldbull_np.train.Trainer` plus
    :meth:`generate_sample`.

    Args:
        model: the language model.
        config: a :class:`TextTrainingConfig` (any TrainingConfig works).
        tokenizer: saved with each checkpoint and used by :meth:`generate_sample`.
        task, optimizer, scheduler, callbacks, progress: as :class:`~goldbull_np.train.Trainer`.
    """

    def __init__(self, model, config: Optional[TrainingConfig] = None, *, tokenizer=None, task=None, **kwargs):
        super().__init__(model, config if config is not None else TextTrainingConfig(),
                         task=task if task is not None else LanguageModelingTask(), tokenizer=tokenizer, **kwargs)

    def generate_sample(self, prompt: str = "", max_new_tokens: int = 200, temperature: float = 0.8,
                        top_k: Optional[int] = 40) -> str:
        """Decode a sample from the model with :attr:`tokenizer` (the model's ``generate``)."""
        if self.tokenizer is None:
            raise ValueError("generate_sample needs a tokenizer")
        return generate_text(self.model, self.tokenizer, prompt, max_new_tokens=max_new_tokens,
                             temperature=temperature, top_k=top_k)


def generate_text(model, tokenizer, prompt: str = "", max_new_tokens: int = 200, temperature: float = 0.8,
                  top_k: Optional[int] = 40) -> str:
    """Continue ``prompt`` with ``model.generate`` and decode the new tokens."""
    ids = list(tokenizer.encode(prompt)) if prompt else []
    if not ids:
        ids = [start_token(tokenizer)]
    idx = np.asarray([ids], dtype=np.int64)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        out = model.generate(idx, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k)
    finally:
        model.train(was_training)
    out = np.asarray(getattr(out, "data", out))
    new = out[0, len(ids):].tolist()
    return (prompt or "") + tokenizer.decode(new)
