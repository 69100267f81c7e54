"""``goldbull train | generate | eval``: registered into goldbull_np/cli.py through ``register(sub)``.

This module sits at the CLI level (above text/): it imports the model and the data layer lazily,
inside the command functions, so ``goldbull info`` and ``--help`` stay fast.

A run config file (TOML or JSON) has up to four tables, each optional::

    [model]       preset = "small" (tiny | small | default) and any ModelConfig field to override
    [data]        path, tokenizer = "char" | "byte", block_size, val_fraction
    [training]    TextTrainingConfig fields
    [checkpoint]  CheckpointConfig fields

Command-line flags override the file; the file overrides the built-in defaults.
"""
import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .config import (CheckpointConfig, ConfigError, ConfigMixin, check_choice, check_int, check_number, check_str,
                     read_config_file)

DEFAULT_OUT = os.path.join("goldbull_runs", "default")
PRESETS = ("tiny", "small", "default")
TOKENIZERS = ("char", "byte")

# `goldbull train` with no arguments: a small GoldbullText on the embedded corpus, about 70 s on 2 idle cores.
DEFAULT_MODEL = {"preset": "small", "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0}
# 1500 steps of 16 x 64 tokens: ~0.1 CPU-second per step for this model measured on this project's 2-core
# machine, plus 7 evaluations of 20 batches.
DEFAULT_TRAINING = dict(learning_rate=2e-3, batch_size=16, gradient_accumulation_steps=1, warmup_steps=100,
                        max_grad_norm=1.0, weight_decay=0.1, lr_scheduler="cosine", min_learning_rate=2e-4,
                        beta1=0.9, beta2=0.99, max_steps=1500, save_steps=250, eval_steps=250, eval_iters=20,
                        logging_steps=10, seed=1337, max_checkpoints=3)


@dataclass
class DataConfig(ConfigMixin):
    """The ``[data]`` table.

    Args:
        path: a UTF-8 text file (None: the embedded default corpus).
        tokenizer: "char" (vocabulary = the characters of the text) or "byte" (256 byte values).
        block_size: tokens per training sequence (None: the model's block_size).
        val_fraction: the last this fraction of the tokens is the validation set (nanoGPT's 90/10 split).
        window_stride: tokens between the starts of training sequences (None: block_size, i.e.
            non-overlapping; 1: a window at every offset, nanoGPT's random-offset sampling once shuffled).
    """

    path: Optional[str] = None
    tokenizer: str = "char"
    block_size: Optional[int] = None
    val_fraction: float = 0.1
    window_stride: Optional[int] = None

    _section = "data"

    def __post_init__(self):
        self.path = check_str(self, "path", self.path, allow_none=True)
        self.tokenizer = check_choice(self, "tokenizer", self.tokenizer, TOKENIZERS)
        self.block_size = check_int(self, "block_size", self.block_size, low=2, allow_none=True)
        self.val_fraction = check_number(self, "val_fraction", self.val_fraction, low=0, high=0.5)
        self.window_stride = check_int(self, "window_stride", self.window_stride, low=1, allow_none=True)


@dataclass
class RunConfig:
    """A whole ``goldbull train`` run: model preset/overrides, data, training, checkpointing."""

    model: dict = field(default_factory=lambda: dict(DEFAULT_MODEL))
    data: DataConfig = field(default_factory=DataConfig)
    training: "object" = None
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    @classmethod
    def from_file(cls, path) -> "RunConfig":
        raw = read_config_file(path)
        unknown = sorted(set(raw) - {"model", "data", "training", "checkpoint"})
        if unknown:
            raise ConfigError(f"{path}: unknown table(s) {', '.join(unknown)} (known: model, data, training, "
                              "checkpoint)")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "RunConfig":
        from ..text.trainer import TextTrainingConfig
        try:
            model = dict(raw.get("model") or {})
            preset = model.get("preset", "small")
            if preset not in PRESETS:
                raise ConfigError(f"model.preset must be one of {', '.join(PRESETS)}, got {preset!r}")
            model.setdefault("preset", preset)
            training = TextTrainingConfig.from_dict({**_training_defaults(), **(raw.get("training") or {})})
            return cls(model=model, data=DataConfig.from_dict(raw.get("data") or {}), training=training,
                       checkpoint=CheckpointConfig.from_dict(raw.get("checkpoint") or {}))
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{source}: {exc}") from None


def _training_defaults() -> dict:
    return dict(DEFAULT_TRAINING)


# ---------------------------------------------------------------------------------------------------------
# argparse wiring

def register(sub) -> None:
    """Add the train, generate and eval subcommands to the ``goldbull`` parser."""
    p = sub.add_parser(
        "train", help="train a GoldbullText language model",
        description="Train a GoldbullText language model. With no arguments: a small model on an embedded "
                    "corpus (Python's own docstrings), about 70 s on 2 idle cores, then a sample. Flags "
                    "override --config, which overrides the built-in defaults.")
    p.add_argument("--config", metavar="FILE", help="run config (.toml or .json) with [model] [data] [training] "
                                                     "[checkpoint] tables")
    p.add_argument("--data", metavar="FILE", help="UTF-8 text file to train on (default: the embedded corpus)")
    p.add_argument("--preset", choices=PRESETS, help="model size preset (default: small)")
    p.add_argument("--tokenizer", choices=TOKENIZERS, help="char (vocabulary from the text) or byte")
    p.add_argument("--out", metavar="DIR", help=f"output directory (default: {DEFAULT_OUT})")
    p.add_argument("--max-steps", type=_positive_int, metavar="N", help="optimizer steps to train")
    p.add_argument("--save-steps", type=_nonneg_int, metavar="N", help="checkpoint every N steps")
    p.add_argument("--eval-steps", type=_nonneg_int, metavar="N", help="evaluate every N steps")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="sequences per micro-batch")
    p.add_argument("--grad-accum", type=_positive_int, metavar="N", help="micro-batches per optimizer step")
    p.add_argument("--lr", type=float, metavar="LR", help="peak learning rate")
    p.add_argument("--seed", type=_nonneg_int, metavar="N", help="random seed (init, dropout, data order)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume even if batch size, accumulation, seed, data or model changed")
    p.add_argument("--sample-tokens", type=_nonneg_int, default=300, metavar="N",
                   help="length of the sample printed at the end (0: none; default 300)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _threads_flag(p)
    _debug_flag(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="generate text from a checkpoint",
                       description="Continue a prompt with a trained model.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="a checkpoint directory, or a run directory (its best, else latest, checkpoint)")
    p.add_argument("--prompt", default="", metavar="TEXT", help="text to continue")
    p.add_argument("--max-new-tokens", type=_nonneg_int, default=200, metavar="N")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=_positive_int, default=40, metavar="K")
    p.add_argument("--seed", type=_nonneg_int, default=None, metavar="N", help="sampling seed")
    _threads_flag(p)
    _debug_flag(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("eval", help="evaluate a checkpoint on a text file",
                       description="Loss, accuracy and perplexity of a checkpoint on a text file.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run directory")
    p.add_argument("--data", required=True, metavar="FILE", help="UTF-8 text file")
    p.add_argument("--batch-size", type=_positive_int, default=16, metavar="N")
    p.add_argument("--max-batches", type=_positive_int, default=None, metavar="N",
                   help="evaluate only the first N batches")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _threads_flag(p)
    _debug_flag(p)
    p.set_defaults(func=cmd_eval)


def _threads_flag(p):
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="threads for the C kernels, numba and OpenBLAS (default: all cores)")


def _apply_threads(args):
    if getattr(args, "threads", None):
        from .. import kernels
        kernels.set_num_threads(args.threads)


def _debug_flag(p):
    # Also accepted after the subcommand; SUPPRESS keeps the top-level --debug when not given here.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on failure")


def _int_at_least(low: int, what: str):
    """An argparse type: an integer >= ``low``."""
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            v = low - 1
        if v < low:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {s!r}")
        return v

    return parse


_positive_int = _int_at_least(1, "positive")
_nonneg_int = _int_at_least(0, "non-negative")


def _usage_error(command: str, msg: str) -> int:
    print(f"goldbull {command}: error: {msg}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------------------------------------
# goldbull train

def build_run_config(args) -> RunConfig:
    """Defaults <- --config file <- flags."""
    run = RunConfig.from_file(args.config) if args.config else RunConfig.from_dict({})
    if args.preset:
        run.model = {"preset": args.preset}  # a preset flag replaces the default/file model shape
    data_over = {}
    if args.data:
        data_over["path"] = args.data
    if args.tokenizer:
        data_over["tokenizer"] = args.tokenizer
    if data_over:
        run.data = run.data.replace(**data_over)
    over = {}
    for flag, name in (("max_steps", "max_steps"), ("save_steps", "save_steps"), ("eval_steps", "eval_steps"),
                       ("batch_size", "batch_size"), ("grad_accum", "gradient_accumulation_steps"),
                       ("lr", "learning_rate"), ("seed", "seed")):
        v = getattr(args, flag)
        if v is not None:
            over[name] = v
    if args.out:
        over["output_dir"] = args.out
    elif run.training.output_dir is None:
        over["output_dir"] = DEFAULT_OUT
    if args.no_progress:
        over["progress_bar"] = False
    if over:
        run.training = run.training.replace(**over)
    return run


def cmd_train(args) -> int:
    try:
        run = build_run_config(args)
    except ConfigError as exc:
        return _usage_error("train", str(exc))
    if run.data.path is not None and not Path(run.data.path).is_file():
        return _usage_error("train", f"data file not found: {run.data.path}")
    _apply_threads(args)
    summary = run_training(run, resume=args.resume, allow_mismatch=args.allow_config_change,
                           sample_tokens=args.sample_tokens)
    return 0 if summary else 1


def run_training(run: RunConfig, *, resume: bool = False, allow_mismatch: bool = False, sample_tokens: int = 300,
                 log=print) -> dict:
    """Build tokenizer, datasets, model and trainer from ``run``; train; save; print a sample.

    Returns:
        A summary dict (steps, losses, checkpoint path, sample, seconds).
    """
    import numpy as np

    from .. import random as gb_random
    from ..text import GoldbullText, ModelConfig, TextTrainer
    from .checkpoint import CheckpointManager
    from .metrics import MetricsLogger

    t0 = time.perf_counter()
    cfg, out = run.training, Path(run.training.output_dir)
    text, source = _read_text(run.data.path)
    mgr = CheckpointManager(out, CheckpointConfig(**{**run.checkpoint.to_dict(),
                                                     "max_checkpoints": cfg.max_checkpoints}))
    latest = mgr.latest()
    if resume and latest is None:
        log(f"note: no checkpoint in {out} yet; starting a new run")
    if not resume and latest is not None:
        log(f"note: {out} holds checkpoints of an earlier run; they are left alone "
            f"(pass --resume to continue {latest.name})")
    resume_from = latest if resume else None

    tokenizer = (_load_tokenizer(resume_from) if resume_from is not None
                 else _make_tokenizer(run.data.tokenizer, text))
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    gb_random.manual_seed(cfg.seed)
    model_cfg = _model_config(ModelConfig, run.model, tokenizer.vocab_size)
    model = GoldbullText(model_cfg)
    block = run.data.block_size or model_cfg.block_size
    if run.data.window_stride is not None and run.data.window_stride > block:
        raise ConfigError(f"[data] window_stride: {run.data.window_stride} is larger than block_size {block}")
    train_ds, val_ds = _split_datasets(ids, block, run.data.val_fraction, run.data.window_stride)
    log(f"goldbull train: {source}: {len(text):,} characters -> {len(ids):,} tokens "
        f"({run.data.tokenizer} vocabulary {tokenizer.vocab_size}); {len(train_ds):,} training sequences of "
        f"{block + 1} tokens")
    log(f"model: {run.model.get('preset', 'custom')} GoldbullText, {model_cfg.n_layer} layers, "
        f"{model_cfg.n_head} heads, width {model_cfg.n_embd}, {_num_params(model):,} parameters; "
        f"output: {out}")

    trainer = TextTrainer(model, cfg, tokenizer=tokenizer)
    trainer.set_checkpoint_manager(mgr)
    trainer.add_logger(MetricsLogger(out / "logs"))
    trainer.data_fingerprint = {"source": source, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
                                "tokenizer": run.data.tokenizer, "block_size": block,
                                "val_fraction": run.data.val_fraction, "window_stride": run.data.window_stride}
    if resume_from is not None:
        log(f"resuming from {resume_from}")
    state = trainer.train(train_ds, val_ds, resume_from=resume_from, allow_mismatch=allow_mismatch)
    for lg in trainer.loggers:
        if hasattr(lg, "close"):
            lg.close()
    ck = trainer.last_checkpoint
    ev = state.last_eval or {}
    log(f"done: {state.step} steps in {time.perf_counter() - t0:.0f}s; "
        + (f"validation loss {ev['loss']:.4f} (perplexity {ev['perplexity']:.2f}); " if ev else "")
        + (f"{state.nonfinite_steps} non-finite steps skipped; " if state.nonfinite_steps else "")
        + ("stopped early; " if state.stopped_early else "")
        + f"checkpoint: {ck}")
    best = mgr.best()
    if best is not None and best != ck:
        log(f"best checkpoint: {best}")
    sample = ""
    if sample_tokens:
        sample = trainer.generate_sample("", max_new_tokens=sample_tokens)
        log("sample:\n" + sample)
    return {"steps": state.step, "checkpoint": str(ck), "last_eval": ev, "sample": sample,
            "seconds": time.perf_counter() - t0, "nonfinite_steps": state.nonfinite_steps}


def _read_text(path):
    if path is None:
        from .corpus import default_corpus
        return default_corpus(), "embedded corpus (Python standard library docstrings)"
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(), str(path)


def _model_config(ModelConfig, model: dict, vocab_size: int):
    model = dict(model)
    preset = model.pop("preset", "small")
    try:
        return getattr(ModelConfig, preset)(vocab_size=vocab_size, **model)
    except TypeError as exc:
        raise ConfigError(f"[model]: {exc}") from None


def _num_params(model) -> int:
    return sum(int(p.data.size) for p in {id(p): p for p in model.parameters()}.values())


# ---------------------------------------------------------------------------------------------------------
# data-layer adapters (goldbull_np.data)

def _make_tokenizer(kind: str, text: str):
    from .. import data
    if kind == "byte":
        return data.ByteTokenizer()
    return data.CharTokenizer.from_text(text, special_tokens={"unk": "<|unk|>"})  # nanoGPT's vocabulary + unk


def _load_tokenizer(directory):
    from .. import data
    return data.load_tokenizer(os.fspath(directory))


def _split_datasets(ids, block: int, val_fraction: float, train_stride=None):
    from .data import split_tokens
    return split_tokens(ids, block, val_fraction, train_stride)


# ---------------------------------------------------------------------------------------------------------
# goldbull generate / eval

def load_for_inference(path):
    """(model, tokenizer, checkpoint dir) from a checkpoint or run directory."""
    from ..text import GoldbullText
    from .checkpoint import resolve_checkpoint
    ck = resolve_checkpoint(path)
    model = GoldbullText.from_pretrained(os.fspath(ck))
    model.eval()
    return model, _load_tokenizer(ck), ck


def cmd_generate(args) -> int:
    from .. import random as gb_random
    from ..text.trainer import generate_text
    _apply_threads(args)
    model, tokenizer, _ = load_for_inference(args.checkpoint)
    if args.seed is not None:
        gb_random.manual_seed(args.seed)
    print(generate_text(model, tokenizer, args.prompt, max_new_tokens=args.max_new_tokens,
                        temperature=args.temperature, top_k=args.top_k))
    return 0


def cmd_eval(args) -> int:
    import numpy as np

    from ..text import TextTrainer
    from ..data import TokenDataset
    from ..text.trainer import TextTrainingConfig
    if not Path(args.data).is_file():
        return _usage_error("eval", f"data file not found: {args.data}")
    _apply_threads(args)
    model, tokenizer, ck = load_for_inference(args.checkpoint)
    text, _ = _read_text(args.data)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    block = int(model.config.block_size)
    if len(ids) < block + 1:
        raise ValueError(f"{args.data} has {len(ids)} tokens, fewer than one sequence of {block + 1}")
    ds = TokenDataset.from_array(ids, block)
    trainer = TextTrainer(model, TextTrainingConfig(batch_size=args.batch_size, progress_bar=False))
    m = trainer.evaluate(ds, max_batches=args.max_batches)
    if args.json:
        print(json.dumps({"checkpoint": str(ck), "data": args.data, **m.to_dict()}))
    else:
        print(f"checkpoint {ck}\ndata       {args.data} ({m.tokens:,} tokens)\n"
              f"loss       {m.loss:.4f}\naccuracy   {m.accuracy:.4f}\nperplexity {m.perplexity:.3f}")
    return 0
