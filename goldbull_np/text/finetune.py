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
from pathlib import Path
from typing import ClassVar, List, Optional

import numpy as np

from ..train.config import Bool, ChoiceList, ConfigError, Int, Number, TrainingConfig, config, option
from .trainer import TextTrainer

TARGET_LAYERS = ("attention", "feedforward")


@config
class FineTuningConfig(TrainingConfig):
    """How :class:`FineTuner` adapts a model: :class:`~goldbull_np.train.TrainingConfig`'s fields (with
    fine-tuning defaults) plus the adaptation's own.

    Args:
        freeze_layers: freeze the embeddings and the first N blocks (no adapters there either).
        target_layers: "attention" and/or "feedforward": where LoRA goes (or, without LoRA, which
            sublayers train).
        gradient_checkpointing: recompute block activations in backward instead of storing them.
        lora_rank: LoRA rank r; 0 = no LoRA (full fine-tuning of the unfrozen part).
        lora_alpha: LoRA scaling numerator.
        lora_dropout, use_rslora, use_dora: LoRAConfig options.
    """

    learning_rate: float = 1e-4
    batch_size: int = 4
    num_epochs: int = 2
    weight_decay: float = 0.0
    save_steps: int = 0
    lr_scheduler: str = "cosine"
    progress_bar: bool = False
    freeze_layers: int = option(0, Int(low=0))
    target_layers: List[str] = option(check=ChoiceList(*TARGET_LAYERS),
                                      default_factory=lambda: ["attention", "feedforward"])
    gradient_checkpointing: bool = option(False, Bool())
    lora_rank: int = option(8, Int(low=0))
    lora_alpha: float = option(16.0, Number(low=0, low_open=True))
    lora_dropout: float = option(0.05, Number(low=0, high=0.999))
    use_rslora: bool = option(False, Bool())
    use_dora: bool = option(False, Bool())

    _section: ClassVar[Optional[str]] = "finetune"

    def training_config(self) -> TrainingConfig:
        """Its :class:`~goldbull_np.train.TrainingConfig` part (what the loop reads)."""
        return TrainingConfig.from_dict(self.training_fields())


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
        callbacks: trainer callbacks (loggers, ...).
    """

    def __init__(self, base_model, config: Optional[FineTuningConfig] = None, tokenizer=None, callbacks=()):
        self.model = base_model
        self.config = config if config is not None else FineTuningConfig()
        self.callbacks = list(callbacks)
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
            from ..data.reader import read_text_file
            text, _ = read_text_file(data)  # the one reader of --data (gzip, encodings, replaced share)
            ids = np.asarray(self.tokenizer.encode(text), dtype=np.int64)
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
            self.trainer = TextTrainer(self.model, self.config, tokenizer=self.tokenizer, callbacks=self.callbacks)
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
        else:  # a full fine-tune: adapters an earlier run left in a reused directory do not belong to it
            from ..io import remove_tree
            for name in (lora.ADAPTER_CONFIG_NAME, lora.ADAPTER_WEIGHTS_NAME):
                remove_tree(path / name)
        if self.tokenizer is not None and hasattr(self.tokenizer, "save"):
            self.tokenizer.save(os.fspath(path))
        return path


__all__ = ["FineTuningConfig", "FineTuner", "lora_target_modules", "load_for_finetune", "TARGET_LAYERS"]


def load_for_finetune(path):
    """``(model, tokenizer or None)`` from a goldbull checkpoint/run directory or a Hugging Face directory."""
    from ..data import load_tokenizer
    from ..nn.model_base import CONFIG_NAME
    from ..train.checkpoint import resolve_checkpoint
    from .model import GoldbullText

    if os.path.isfile(os.path.join(path, CONFIG_NAME)) and not os.path.isfile(os.path.join(path, "trainer_state.json")):
        model = GoldbullText.from_pretrained(path)
        tok = getattr(model, "tokenizer", None)
        if tok is not None:
            model.check_tokenizer(tok, os.fspath(path))
            return model, tok
        ck = Path(path)
    else:
        ck = resolve_checkpoint(path)
        model = GoldbullText.from_pretrained(os.fspath(ck))
    try:
        tok = load_tokenizer(os.fspath(ck))
    except FileNotFoundError:
        tok = None
    if tok is not None:
        model.check_tokenizer(tok, os.fspath(ck))
    return model, tok
