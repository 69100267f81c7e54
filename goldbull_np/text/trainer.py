"""TextTrainer: the language-model trainer (the seed's ``TextTrainer`` and ``TextTrainingConfig``).

    config = TextTrainingConfig(learning_rate=1e-3, batch_size=12, gradient_accumulation_steps=1,
                                warmup_steps=100, lr_scheduler="cosine", max_steps=2000, eval_steps=250,
                                output_dir="runs/shakespeare")
    trainer = TextTrainer(GoldbullText(ModelConfig.small()), config, tokenizer=tok)
    trainer.train(train_dataset, val_dataset)
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..train.config import (SCHEDULES, ConfigMixin, check_bool, check_choice, check_int, check_number, check_str)
from ..train.trainer import Plan, Trainer


@dataclass
class TextTrainingConfig(ConfigMixin):
    """How a :class:`TextTrainer` trains (the TOML ``[training]`` table).

    Args:
        learning_rate: peak learning rate (after warmup).
        batch_size: sequences per micro-batch.
        gradient_accumulation_steps: micro-batches per optimizer step (effective batch = product).
        num_epochs: passes over the training data (ignored when ``max_steps`` is set).
        warmup_steps: optimizer steps of linear warmup.
        max_grad_norm: clip the global gradient norm to this (0 disables clipping).
        weight_decay: AdamW decoupled weight decay on matrices (not on biases and norm gains).
        lr_scheduler: "cosine", "linear" or "constant" after warmup.
        save_steps: save a checkpoint every this many optimizer steps (0: only at the end).
        eval_steps: evaluate every this many steps (0: at the end of each epoch).
        logging_steps: log loss, lr, grad norm and tokens/s every this many steps.
        seed: seeds the model init, dropout and the data order.
        output_dir: where checkpoints and logs go (None: no checkpoints unless a manager is set).
        max_steps: stop after this many optimizer steps (overrides num_epochs).
        early_stopping_patience: stop after this many evaluations without a better validation loss.
    """

    learning_rate: float = 5e-5
    batch_size: int = 4
    gradient_accumulation_steps: int = 2
    num_epochs: int = 3
    warmup_steps: int = 100
    max_grad_norm: float = 1.0
    weight_decay: float = 0.01
    lr_scheduler: str = "cosine"
    save_steps: int = 500
    eval_steps: int = 100
    logging_steps: int = 10
    seed: int = 1337
    output_dir: Optional[str] = None
    max_steps: Optional[int] = None
    early_stopping_patience: Optional[int] = None
    # beyond the guide's fields
    min_learning_rate: float = 0.0  # where the decay ends (nanoGPT's min_lr)
    lr_decay_steps: Optional[int] = None  # decay until this step (nanoGPT's lr_decay_iters); None: the last step
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    eval_iters: Optional[int] = None  # evaluate on this many validation batches (None: all of them)
    max_checkpoints: int = 3  # keep this many recent checkpoints (plus the best)
    max_consecutive_nonfinite: int = 10  # stop with an error after this many skipped steps in a row
    progress_bar: bool = True

    _section = "training"

    def __post_init__(self):
        self.learning_rate = check_number(self, "learning_rate", self.learning_rate, low=0, low_open=True)
        self.batch_size = check_int(self, "batch_size", self.batch_size, low=1)
        self.gradient_accumulation_steps = check_int(self, "gradient_accumulation_steps",
                                                     self.gradient_accumulation_steps, low=1)
        self.num_epochs = check_int(self, "num_epochs", self.num_epochs, low=1)
        self.warmup_steps = check_int(self, "warmup_steps", self.warmup_steps, low=0)
        self.max_grad_norm = check_number(self, "max_grad_norm", self.max_grad_norm, low=0)
        self.weight_decay = check_number(self, "weight_decay", self.weight_decay, low=0)
        self.lr_scheduler = check_choice(self, "lr_scheduler", self.lr_scheduler, SCHEDULES)
        self.save_steps = check_int(self, "save_steps", self.save_steps, low=0)
        self.eval_steps = check_int(self, "eval_steps", self.eval_steps, low=0)
        self.logging_steps = check_int(self, "logging_steps", self.logging_steps, low=0)
        self.seed = check_int(self, "seed", self.seed, low=0)
        self.output_dir = check_str(self, "output_dir", self.output_dir, allow_none=True)
        self.max_steps = check_int(self, "max_steps", self.max_steps, low=1, allow_none=True)
        self.early_stopping_patience = check_int(self, "early_stopping_patience", self.early_stopping_patience,
                                                 low=1, allow_none=True)
        self.min_learning_rate = check_number(self, "min_learning_rate", self.min_learning_rate, low=0)
        if self.min_learning_rate > self.learning_rate:
            raise _err(self, "min_learning_rate", f"<= learning_rate ({self.learning_rate})", self.min_learning_rate)
        self.lr_decay_steps = check_int(self, "lr_decay_steps", self.lr_decay_steps, low=1, allow_none=True)
        self.beta1 = check_number(self, "beta1", self.beta1, low=0)
        self.beta2 = check_number(self, "beta2", self.beta2, low=0)
        for name in ("beta1", "beta2"):
            if getattr(self, name) >= 1:
                raise _err(self, name, "a number in [0, 1)", getattr(self, name))
        self.eps = check_number(self, "eps", self.eps, low=0, low_open=True)
        self.eval_iters = check_int(self, "eval_iters", self.eval_iters, low=1, allow_none=True)
        self.max_checkpoints = check_int(self, "max_checkpoints", self.max_checkpoints, low=1)
        self.max_consecutive_nonfinite = check_int(self, "max_consecutive_nonfinite",
                                                   self.max_consecutive_nonfinite, low=1)
        self.progress_bar = check_bool(self, "progress_bar", self.progress_bar)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps


def _err(owner, name, what, value):
    from ..train.config import ConfigError
    return ConfigError(f"{type(owner).__name__}.{name} must be {what}, got {value!r}")


class TextTrainer(Trainer):
    """Trains a :class:`GoldbullText` (or any ``logits, loss = model(input_ids, labels)`` LM).

    Gradient accumulation (token-weighted, equal to the large batch), warmup + the named schedule,
    clipping, evaluation every ``eval_steps``, logging every ``logging_steps``, a checkpoint every
    ``save_steps`` into ``output_dir``, early stopping on validation loss, non-finite steps skipped
    and counted, and exact resume (``train(..., resume_from=dir)``).

    Args:
        model: the language model.
        config: a :class:`TextTrainingConfig`.
        tokenizer: saved with each checkpoint and used by :meth:`generate_sample`.
    """

    def __init__(self, model, config: Optional[TextTrainingConfig] = None, *, tokenizer=None,
                 progress: Optional[bool] = None):
        config = config if config is not None else TextTrainingConfig()
        super().__init__(model, config, tokenizer=tokenizer,
                         progress=config.progress_bar if progress is None else progress)

    def plan(self) -> Plan:
        c = self.config
        return Plan(learning_rate=c.learning_rate, batch_size=c.batch_size, num_epochs=c.num_epochs,
                    gradient_accumulation_steps=c.gradient_accumulation_steps, max_steps=c.max_steps,
                    warmup_steps=c.warmup_steps, lr_scheduler=c.lr_scheduler,
                    min_learning_rate=c.min_learning_rate, lr_decay_steps=c.lr_decay_steps,
                    max_grad_norm=c.max_grad_norm, weight_decay=c.weight_decay, betas=(c.beta1, c.beta2),
                    eps=c.eps, save_steps=c.save_steps, eval_steps=c.eval_steps, eval_iters=c.eval_iters,
                    logging_steps=c.logging_steps, early_stopping_patience=c.early_stopping_patience,
                    max_consecutive_nonfinite=c.max_consecutive_nonfinite, seed=c.seed, output_dir=c.output_dir)

    def train(self, train_dataset, val_dataset=None, **kwargs):
        if self.checkpoint_manager is None and self.config.output_dir:
            from ..train.checkpoint import CheckpointManager
            from ..train.config import CheckpointConfig
            self.checkpoint_manager = CheckpointManager(
                Path(self.config.output_dir), CheckpointConfig(max_checkpoints=self.config.max_checkpoints))
        return super().train(train_dataset, val_dataset, **kwargs)

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
        ids = [_start_token(tokenizer)]
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


def _start_token(tokenizer) -> int:
    for attr in ("bos_token_id", "eos_token_id"):
        v = getattr(tokenizer, attr, None)
        if v is not None:
            return int(v)
    enc = tokenizer.encode("\n")
    return int(enc[0]) if len(enc) else 0
