"""The text recipes: library functions behind ``goldbull train | generate | eval | finetune``.

Each builds what it needs from plain arguments or a :class:`RunConfig`, runs, reports progress through
``log`` (a callable taking one line, ``print`` in the CLI) and trainer ``callbacks``, and returns a
summary dict, so the CLI, a notebook or a hyperparameter search (``goldbull tune``) call the same code.
"""
import dataclasses
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from .. import random as gb_random
from ..train.checkpoint import CheckpointManager, resolve_checkpoint
from ..train.config import ConfigError
from ..train.metrics import MetricsLogger
from .config import ModelConfig
from .model import GoldbullText
from .run_config import RunConfig
from .trainer import TextTrainer, TextTrainingConfig, generate_text


def train_text(run: RunConfig, *, resume: bool = False, allow_mismatch: bool = False, sample_tokens: int = 300,
               log=print, callbacks=()) -> dict:
    """Build tokenizer, datasets, model and trainer from ``run``; train; save; decode a sample.

    Args:
        run: the run config (``RunConfig.from_file(path)`` or ``RunConfig.from_dict({...})``).
        resume: continue from the latest checkpoint in ``run.training.output_dir``.
        allow_mismatch: resume even if batch size, accumulation, seed, data or model changed.
        sample_tokens: length of the sample decoded at the end (0: none).
        log: called with each line of the run's report.
        callbacks: extra trainer callbacks.
    Returns:
        A summary dict: steps, checkpoint, best_checkpoint, last_eval, sample, seconds, nonfinite_steps.
    """
    t0 = time.perf_counter()
    cfg = run.training
    if cfg.output_dir is None:
        raise ConfigError("train_text: run.training.output_dir is not set")
    out = Path(cfg.output_dir)
    text, source = read_text(run.data.path)
    mgr = CheckpointManager(out, run.checkpoint_config())
    with mgr.lock():  # one writer per output directory, from choosing the checkpoint to the last save
        return _train_text(run, mgr, text, source, t0, resume=resume, allow_mismatch=allow_mismatch,
                           sample_tokens=sample_tokens, log=log, callbacks=callbacks)


def _train_text(run, mgr, text, source, t0, *, resume, allow_mismatch, sample_tokens, log, callbacks):
    cfg, out = run.training, mgr.directory
    latest = mgr.latest()
    if resume and latest is None:
        log(f"note: no checkpoint in {out} yet; starting a new run")
    if not resume and latest is not None:
        log(f"note: {out} holds checkpoints of an earlier run; they are left alone "
            f"(pass --resume to continue {latest.name})")
    resume_from = latest if resume else None

    tokenizer = load_tokenizer(resume_from) if resume_from is not None else make_tokenizer(run.data.tokenizer, text)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    gb_random.manual_seed(cfg.seed)
    model_cfg = model_config(run.model, tokenizer.vocab_size)
    model = GoldbullText(model_cfg)
    block = run.data.block_size or model_cfg.block_size
    if run.data.window_stride is not None and run.data.window_stride > block:
        raise ConfigError(f"[data] window_stride: {run.data.window_stride} is larger than block_size {block}")
    from ..train.data import split_tokens
    train_ds, val_ds = split_tokens(ids, block, run.data.val_fraction, run.data.window_stride)
    log(f"goldbull train: {source}: {len(text):,} characters -> {len(ids):,} tokens "
        f"({run.data.tokenizer} vocabulary {tokenizer.vocab_size}); {len(train_ds):,} training sequences of "
        f"{block + 1} tokens")
    log(f"model: {run.model.get('preset', 'custom')} GoldbullText, {model_cfg.n_layer} layers, "
        f"{model_cfg.n_head} heads, width {model_cfg.n_embd}, {model.num_parameters():,} parameters; "
        f"output: {out}")

    trainer = TextTrainer(model, cfg, tokenizer=tokenizer, callbacks=[MetricsLogger(out / "logs"), *callbacks])
    trainer.set_checkpoint_manager(mgr)
    trainer.data_fingerprint = {"source": source, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
                                "tokenizer": run.data.tokenizer, "block_size": block,
                                "val_fraction": run.data.val_fraction, "window_stride": run.data.window_stride}
    if resume_from is not None:
        log(f"resuming from {resume_from}")
    state = trainer.train(train_ds, val_ds, resume_from=resume_from, allow_mismatch=allow_mismatch)
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
    return {"steps": state.step, "checkpoint": str(ck), "best_checkpoint": str(best) if best else None,
            "last_eval": ev, "sample": sample, "seconds": time.perf_counter() - t0,
            "nonfinite_steps": state.nonfinite_steps, "trainer": trainer}


def generate_from_checkpoint(path, prompt: str = "", *, max_new_tokens: int = 200, temperature: float = 0.8,
                             top_k=40, seed=None) -> dict:
    """Continue ``prompt`` with the model of a checkpoint (or a run directory's best/latest one).

    Returns:
        ``{"checkpoint": dir, "text": prompt + continuation}``.
    """
    model, tokenizer, ck = load_for_inference(path)
    if seed is not None:
        gb_random.manual_seed(seed)
    text = generate_text(model, tokenizer, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                         top_k=top_k)
    return {"checkpoint": str(ck), "text": text}


def evaluate_checkpoint(path, data_path, *, batch_size: int = 16, max_batches=None) -> dict:
    """Loss, accuracy and perplexity of a checkpoint's model on a text file (non-overlapping windows).

    Returns:
        ``{"checkpoint", "data", "loss", "accuracy", "perplexity", "tokens"}``.
    """
    from ..data import TokenDataset
    if not Path(data_path).is_file():
        raise FileNotFoundError(f"data file not found: {data_path}")
    model, tokenizer, ck = load_for_inference(path)
    text, _ = read_text(data_path)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    block = int(model.config.block_size)
    if len(ids) < block + 1:
        raise ValueError(f"{data_path} has {len(ids)} tokens, fewer than one sequence of {block + 1}")
    trainer = TextTrainer(model, TextTrainingConfig(batch_size=batch_size, progress_bar=False))
    m = trainer.evaluate(TokenDataset.from_array(ids, block), max_batches=max_batches)
    return {"checkpoint": str(ck), "data": str(data_path), **m}


def finetune_text(checkpoint, data_path, out, config, *, block_size=None, val_fraction: float = 0.1, log=print,
                  callbacks=()) -> dict:
    """Fine-tune a checkpoint (goldbull or Hugging Face directory) on a text file with a FineTuningConfig;
    write the merged model, the adapters and the tokenizer to ``out``.

    Returns:
        ``{"steps", "last_eval", "out", "trainable_parameters", "parameters"}``.
    """
    from .finetune import FineTuner, load_for_finetune
    if not Path(data_path).is_file():
        raise FileNotFoundError(f"data file not found: {data_path}")
    model, tok = load_for_finetune(checkpoint)
    if tok is None:
        raise ValueError(f"{checkpoint}: no tokenizer found (goldbull_tokenizer.json or tokenizer.json)")
    gb_random.manual_seed(config.seed)
    tuner = FineTuner(model, config, tokenizer=tok, callbacks=callbacks)
    n_all = model.num_parameters()
    log(f"goldbull finetune: {checkpoint}: {n_all:,} parameters, {tuner.num_trainable_parameters():,} trainable"
        + (f" (LoRA rank {config.lora_rank} on {', '.join(tuner.lora_config.target_modules)})"
           if tuner.lora_config else " (full fine-tuning)"))
    state = tuner.fine_tune(data_path, block_size=block_size, val_fraction=val_fraction)
    path = tuner.save_model(out)
    ev = state.last_eval or {}
    log(f"done: {state.step} steps" + (f"; validation loss {ev['loss']:.4f}" if ev.get("loss") is not None else "")
        + f"; model: {path}")
    return {"steps": state.step, "last_eval": ev, "out": str(path), "parameters": n_all,
            "trainable_parameters": tuner.num_trainable_parameters()}


# ---------------------------------------------------------------------------------------------------------
# pieces the recipes share

def read_text(path):
    """``(text, source description)`` of a UTF-8 file (plain or gzip; a few invalid bytes are replaced with a
    DataWarning, more are refused), or of the embedded corpus when ``path`` is None."""
    if path is None:
        from ..train.corpus import default_corpus
        return default_corpus(), "embedded corpus (Python standard library docstrings)"
    from ..data.reader import read_text_file
    text, _ = read_text_file(path)  # gzip, UTF-16, invalid UTF-8: the data library's one reader decides
    return text, str(path)


def model_config(model: dict, vocab_size: int) -> ModelConfig:
    """The ModelConfig of a ``[model]`` table: its preset, overridden by its other keys."""
    model = dict(model)
    preset = model.pop("preset", "small")
    known = {f.name for f in dataclasses.fields(ModelConfig)} - {"vocab_size"}  # not the ClassVars
    unknown = sorted(set(model) - known)
    if unknown:
        raise ConfigError(f"[model]: unknown field(s) {', '.join(unknown)} (known: preset, {', '.join(sorted(known))})")
    try:
        cfg = getattr(ModelConfig, preset)(vocab_size=vocab_size, **model)
        cfg.check_fits(source="[model]")  # sizes bounded before anything is allocated
        return cfg
    except ValueError as exc:
        raise ConfigError(f"[model]: {exc}") from None


def make_tokenizer(kind: str, text: str):
    from .. import data
    if kind == "byte":
        return data.ByteTokenizer()
    return data.CharTokenizer.from_text(text, special_tokens={"unk": "<|unk|>"})  # nanoGPT's vocabulary + unk


def load_tokenizer(directory):
    from .. import data
    return data.load_tokenizer(os.fspath(directory))


def load_for_inference(path):
    """(model in eval mode, tokenizer, checkpoint dir) from a checkpoint or run directory."""
    ck = resolve_checkpoint(path)
    model = GoldbullText.from_pretrained(os.fspath(ck))
    model.eval()
    tokenizer = load_tokenizer(ck)
    model.check_tokenizer(tokenizer, str(ck))
    return model, tokenizer, ck


__all__ = ["train_text", "generate_from_checkpoint", "evaluate_checkpoint", "finetune_text", "read_text",
           "model_config", "make_tokenizer", "load_tokenizer", "load_for_inference"]
