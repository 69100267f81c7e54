"""Fine-tuning a pretrained GoldbullText: ``FineTuningConfig``, ``FineTuner`` and ``goldbull finetune``.

    base = GoldbullText.from_pretrained("path/to/model")          # goldbull or Hugging Face directory
    tuner = FineTuner(base, FineTuningConfig(learning_rate=1e-4, batch_size=4, num_epochs=2,
                                             freeze_layers=6, target_layers=["attention", "feedforward"],
                                             gradient_checkpointing=True, lora_rank=8, lora_alpha=16))
    tuner.fine_tune(dataset)             # a dataset of {input_ids, labels}, a DataLoader, or a text file
    tuner.save_model("path/to/finetuned")   # merged model (config.json + model.safetensors) + adapters

With ``lora_rank > 0`` the base is frozen and LoRA adapters go on the attention projections
(q/k/v/o_proj) and/or the MLP projections (up/down/gate_proj) of blocks freeze_layers..n_layer-1.
With ``lora_rank == 0`` it is full fine-tuning of those blocks' chosen sublayers (plus the final
norm and, when untied, the head); ``freeze_layers > 0`` also freezes the embeddings. The training
loop is TextTrainer's (AdamW over the trainable parameters only, so frozen weights get neither
gradients nor optimizer state).
"""
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..train.config import ConfigError, ConfigMixin, check_bool, check_choice, check_int, check_number, check_str
from .trainer import TextTrainer, TextTrainingConfig

TARGET_LAYERS = ("attention", "feedforward")
_SCHEDULES = ("cosine", "linear", "constant")


@dataclass
class FineTuningConfig(ConfigMixin):
    """How :class:`FineTuner` adapts a model (the seed's fields first).

    Args:
        learning_rate: peak learning rate.
        batch_size: sequences per micro-batch.
        num_epochs: passes over the data (unless ``max_steps``).
        freeze_layers: freeze the embeddings and the first N blocks (no adapters there either).
        target_layers: "attention" and/or "feedforward": where LoRA goes (or, without LoRA, which
            sublayers train).
        gradient_checkpointing: recompute block activations in backward instead of storing them.
        lora_rank: LoRA rank r; 0 = no LoRA (full fine-tuning of the unfrozen part).
        lora_alpha: LoRA scaling numerator.
        lora_dropout, use_rslora, use_dora: LoRAConfig options.
        gradient_accumulation_steps, warmup_steps, max_steps, weight_decay, max_grad_norm,
        lr_scheduler, seed, output_dir, save_steps, eval_steps, logging_steps, progress_bar:
            passed to TextTrainingConfig.
    """

    learning_rate: float = 1e-4
    batch_size: int = 4
    num_epochs: int = 2
    freeze_layers: int = 0
    target_layers: List[str] = field(default_factory=lambda: ["attention", "feedforward"])
    gradient_checkpointing: bool = False
    lora_rank: int = 8
    lora_alpha: float = 16.0
    # beyond the seed's fields
    lora_dropout: float = 0.05
    use_rslora: bool = False
    use_dora: bool = False
    gradient_accumulation_steps: int = 1
    warmup_steps: int = 0
    max_steps: Optional[int] = None
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lr_scheduler: str = "cosine"
    seed: int = 1337
    output_dir: Optional[str] = None
    save_steps: int = 0
    eval_steps: int = 0
    logging_steps: int = 10
    progress_bar: bool = False

    def __post_init__(self):
        self.learning_rate = check_number(self, "learning_rate", self.learning_rate, low=0, low_open=True)
        self.batch_size = check_int(self, "batch_size", self.batch_size, low=1)
        self.num_epochs = check_int(self, "num_epochs", self.num_epochs, low=1)
        self.freeze_layers = check_int(self, "freeze_layers", self.freeze_layers, low=0)
        if isinstance(self.target_layers, str):
            self.target_layers = [self.target_layers]
        self.target_layers = [check_choice(self, "target_layers", t, TARGET_LAYERS) for t in self.target_layers]
        if not self.target_layers:
            raise ConfigError("FineTuningConfig.target_layers must name 'attention' and/or 'feedforward'")
        self.gradient_checkpointing = check_bool(self, "gradient_checkpointing", self.gradient_checkpointing)
        self.lora_rank = check_int(self, "lora_rank", self.lora_rank, low=0)
        self.lora_alpha = check_number(self, "lora_alpha", self.lora_alpha, low=0, low_open=True)
        self.lora_dropout = check_number(self, "lora_dropout", self.lora_dropout, low=0, high=0.999)
        self.use_rslora = check_bool(self, "use_rslora", self.use_rslora)
        self.use_dora = check_bool(self, "use_dora", self.use_dora)
        self.gradient_accumulation_steps = check_int(self, "gradient_accumulation_steps",
                                                     self.gradient_accumulation_steps, low=1)
        self.warmup_steps = check_int(self, "warmup_steps", self.warmup_steps, low=0)
        self.max_steps = check_int(self, "max_steps", self.max_steps, low=1, allow_none=True)
        self.weight_decay = check_number(self, "weight_decay", self.weight_decay, low=0)
        self.max_grad_norm = check_number(self, "max_grad_norm", self.max_grad_norm, low=0)
        self.lr_scheduler = check_choice(self, "lr_scheduler", self.lr_scheduler, _SCHEDULES)
        self.seed = check_int(self, "seed", self.seed, low=0)
        self.output_dir = check_str(self, "output_dir", self.output_dir, allow_none=True)
        self.save_steps = check_int(self, "save_steps", self.save_steps, low=0)
        self.eval_steps = check_int(self, "eval_steps", self.eval_steps, low=0)
        self.logging_steps = check_int(self, "logging_steps", self.logging_steps, low=0)
        self.progress_bar = check_bool(self, "progress_bar", self.progress_bar)

    def training_config(self) -> TextTrainingConfig:
        """The TextTrainingConfig the loop runs with."""
        return TextTrainingConfig(
            learning_rate=self.learning_rate, batch_size=self.batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps, num_epochs=self.num_epochs,
            warmup_steps=self.warmup_steps, max_grad_norm=self.max_grad_norm, weight_decay=self.weight_decay,
            lr_scheduler=self.lr_scheduler, save_steps=self.save_steps, eval_steps=self.eval_steps,
            logging_steps=self.logging_steps, seed=self.seed, output_dir=self.output_dir, max_steps=self.max_steps,
            progress_bar=self.progress_bar)


def lora_target_modules(model, target_layers):
    """The LoRA target names for "attention" / "feedforward" on this model."""
    names = []
    if "attention" in target_layers:
        names += ["q_proj", "k_proj", "v_proj", "o_proj"]
    if "feedforward" in target_layers:
        names += (["gate_proj"] if model.config.mlp == "swiglu" else []) + ["up_proj", "down_proj"]
    return names


class FineTuner:
    """Adapts ``base_model`` (in place) as :class:`FineTuningConfig` says, then trains it with TextTrainer.

    Args:
        base_model: a GoldbullText (e.g. from ``GoldbullText.from_pretrained``).
        config: a FineTuningConfig.
        tokenizer: used for text-file data and saved with the model (default: ``base_model.tokenizer``
            when the model was loaded from a directory holding one).
    """

    def __init__(self, base_model, config: Optional[FineTuningConfig] = None, tokenizer=None):
        self.model = base_model
        self.config = config if config is not None else FineTuningConfig()
        self.tokenizer = tokenizer if tokenizer is not None else getattr(base_model, "tokenizer", None)
        self.trainer = None
        c, mc = self.config, base_model.config
        if c.freeze_layers > mc.n_layer:
            raise ConfigError(f"FineTuningConfig.freeze_layers ({c.freeze_layers}) is more than the model's "
                              f"{mc.n_layer} layers")
        if c.freeze_layers == mc.n_layer and c.lora_rank > 0:
            raise ConfigError(f"FineTuningConfig.freeze_layers ({c.freeze_layers}) leaves no layer for LoRA")
        self.lora_config = None
        if c.lora_rank > 0:
            from ..nn.lora import LoRAConfig

            self.lora_config = LoRAConfig(rank=c.lora_rank, alpha=c.lora_alpha, dropout=c.lora_dropout,
                                          target_modules=lora_target_modules(base_model, c.target_layers),
                                          use_rslora=c.use_rslora, use_dora=c.use_dora,
                                          layers_to_transform=list(range(c.freeze_layers, mc.n_layer)))
            base_model.add_lora_adapters(self.lora_config)
        else:
            self._freeze_for_full_finetuning()
        if c.gradient_checkpointing:
            base_model.enable_gradient_checkpointing()

    def _freeze_for_full_finetuning(self):
        c, m = self.config, self.model
        m.requires_grad_(True)
        frozen = []
        if c.freeze_layers > 0:
            frozen.append(m.embed_tokens)
            if getattr(m, "embed_positions", None) is not None:
                frozen.append(m.embed_positions)
            frozen += [m.layers[i] for i in range(c.freeze_layers)]
        for i in range(c.freeze_layers, len(m.layers)):
            blk = m.layers[i]
            if "attention" not in c.target_layers:
                frozen += [blk.attn_norm, blk.attn]
            if "feedforward" not in c.target_layers:
                frozen += [blk.mlp_norm, blk.mlp]
        for mod in frozen:
            mod.requires_grad_(False)

    # ---- introspection --------------------------------------------------------------------------
    def trainable_parameters(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def num_trainable_parameters(self) -> int:
        return int(sum(p.data.size for p in self.trainable_parameters()))

    # ---- training -------------------------------------------------------------------------------
    def _dataset(self, data, block_size=None, val_fraction=0.0):
        if isinstance(data, (str, os.PathLike)):
            from ..train.data import split_tokens

            if self.tokenizer is None:
                raise ValueError("fine_tune on a text file needs a tokenizer (pass tokenizer= to FineTuner)")
            with open(data, encoding="utf-8", errors="replace") as f:
                ids = np.asarray(self.tokenizer.encode(f.read()), dtype=np.int64)
            block = int(block_size or self.model.config.block_size)
            if len(ids) < block + 1:
                raise ValueError(f"{data} has {len(ids)} tokens, fewer than one sequence of {block + 1}")
            if int(len(ids) * val_fraction) < block + 1:
                val_fraction = 0.0  # too little text to hold out a whole validation sequence
            return split_tokens(ids, block, val_fraction)
        return data, None

    def fine_tune(self, dataset, val_dataset=None, *, block_size=None, val_fraction=0.0, resume_from=None):
        """Train on ``dataset`` (a dataset, a DataLoader, or a text-file path tokenized with the tokenizer).

        Args:
            dataset: training data.
            val_dataset: optional validation data.
            block_size: sequence length for a text file (default: the model's block_size).
            val_fraction: for a text file, the tail fraction that validates.
            resume_from: a checkpoint to resume (as TextTrainer.train).
        Returns:
            The trainer's final TrainerState.
        """
        train, val = self._dataset(dataset, block_size, val_fraction)
        if val_dataset is not None:
            val = val_dataset
        if not self.trainable_parameters():
            raise ValueError("FineTuner: no trainable parameters (everything is frozen)")
        if self.trainer is None:
            self.trainer = TextTrainer(self.model, self.config.training_config(), tokenizer=self.tokenizer)
        return self.trainer.train(train, val, resume_from=resume_from)

    # ---- saving ---------------------------------------------------------------------------------
    def save_model(self, path):
        """Write the fine-tuned model to ``path``: the merged weights as a plain GoldbullText
        (config.json + model.safetensors, loadable with ``from_pretrained``), the LoRA adapters
        (adapter_config.json + adapter_model.safetensors) when LoRA is used, and the tokenizer.
        The in-memory model keeps its (unmerged) adapters."""
        from ..nn import lora

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        removed = lora.remove_lora(self.model, merge=True)
        try:
            self.model.save_pretrained(os.fspath(path))
        finally:
            lora.restore_lora(self.model, removed, unmerge=True)
        if removed:
            self.model.save_lora(os.fspath(path))
        if self.tokenizer is not None and hasattr(self.tokenizer, "save"):
            self.tokenizer.save(os.fspath(path))
        return path


# ---- goldbull finetune ---------------------------------------------------------------------------------
def register_cli(subparsers):
    """Add the ``goldbull finetune`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "finetune", help="fine-tune a checkpoint (goldbull or Hugging Face GPT-2/Llama directory) on a text file",
        description="Fine-tune a pretrained model with LoRA (or fully, with --lora-rank 0) on a UTF-8 text file; "
                    "writes the merged model, the adapters and the tokenizer to --out.")
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="goldbull checkpoint/run directory or Hugging Face model directory")
    p.add_argument("--data", required=True, metavar="FILE", help="UTF-8 text file to fine-tune on")
    p.add_argument("--out", required=True, metavar="DIR", help="where the fine-tuned model is written")
    p.add_argument("--lora-rank", type=int, default=8, metavar="R", help="LoRA rank (0: full fine-tuning)")
    p.add_argument("--lora-alpha", type=float, default=16.0, metavar="A", help="LoRA alpha")
    p.add_argument("--lr", type=float, default=1e-4, metavar="LR", help="peak learning rate")
    p.add_argument("--epochs", type=int, default=1, metavar="N", help="passes over the data")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop after N optimizer steps")
    p.add_argument("--batch-size", type=int, default=4, metavar="N")
    p.add_argument("--block-size", type=int, default=None, metavar="T",
                   help="sequence length (default: the model's block_size)")
    p.add_argument("--freeze-layers", type=int, default=0, metavar="N",
                   help="freeze the embeddings and the first N blocks")
    p.add_argument("--target-layers", nargs="+", default=["attention", "feedforward"], choices=TARGET_LAYERS)
    p.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in backward")
    p.add_argument("--dora", action="store_true", help="weight-decomposed LoRA")
    p.add_argument("--seed", type=int, default=1337, metavar="N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)
    return p


def _load_for_finetune(path):
    from .hf import is_hf_directory
    from .model import GoldbullText

    if is_hf_directory(path):
        model = GoldbullText.from_pretrained(path)
        return model, getattr(model, "tokenizer", None)
    from ..data import load_tokenizer
    from ..train.checkpoint import resolve_checkpoint

    ck = resolve_checkpoint(path)
    model = GoldbullText.from_pretrained(os.fspath(ck))
    try:
        tok = load_tokenizer(os.fspath(ck))
    except FileNotFoundError:
        tok = None
    return model, tok


def cmd_finetune(args) -> int:
    import sys

    from .. import random as gb_random

    if not Path(args.data).is_file():
        print(f"goldbull finetune: error: data file not found: {args.data}", file=sys.stderr)
        return 2
    try:
        config = FineTuningConfig(learning_rate=args.lr, batch_size=args.batch_size, num_epochs=args.epochs,
                                  max_steps=args.max_steps, freeze_layers=args.freeze_layers,
                                  target_layers=args.target_layers, gradient_checkpointing=args.gradient_checkpointing,
                                  lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, use_dora=args.dora,
                                  seed=args.seed, progress_bar=not args.no_progress)
    except ConfigError as exc:
        print(f"goldbull finetune: error: {exc}", file=sys.stderr)
        return 2
    model, tok = _load_for_finetune(args.checkpoint)
    if tok is None:
        raise ValueError(f"{args.checkpoint}: no tokenizer found (goldbull_tokenizer.json or tokenizer.json)")
    gb_random.manual_seed(config.seed)
    tuner = FineTuner(model, config, tokenizer=tok)
    n_all = sum(int(p.data.size) for p in {id(p): p for p in model.parameters()}.values())
    print(f"goldbull finetune: {args.checkpoint}: {n_all:,} parameters, {tuner.num_trainable_parameters():,} trainable"
          + (f" (LoRA rank {config.lora_rank} on {', '.join(tuner.lora_config.target_modules)})"
             if tuner.lora_config else " (full fine-tuning)"))
    state = tuner.fine_tune(args.data, block_size=args.block_size, val_fraction=0.1)
    out = tuner.save_model(args.out)
    ev = state.last_eval or {}
    print(f"done: {state.step} steps"
          + (f"; validation loss {ev['loss']:.4f}" if ev.get("loss") is not None else "") + f"; model: {out}")
    return 0


__all__ = ["FineTuningConfig", "FineTuner", "register_cli", "cmd_finetune", "lora_target_modules"]
