"""The vision recipes: library functions behind ``goldbull train-vision`` and ``goldbull predict``.

Each takes plain arguments, reports through ``log`` (one line per call; ``print`` in the CLI) and
returns a summary dict, so the CLI, a notebook or a benchmark call the same code.
"""
import time
from pathlib import Path

from .. import random as gb_random
from ..train.checkpoint import resolve_checkpoint
from ..train.config import read_config_file
from ..train.metrics import MetricsLogger
from .config import VisionConfig
from .model import GoldbullVision
from .trainer import VisionTrainer, VisionTrainingConfig, load_image_folder, predict_files

PRESETS = ("resnet_tiny", "resnet_small", "resnet18", "vit_tiny")


def model_config(preset="resnet_small", num_classes=10, in_channels=3, image_size=(32, 32), **overrides):
    """A VisionConfig from a preset name and overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown vision preset {preset!r}; known: {', '.join(PRESETS)}")
    return getattr(VisionConfig, preset)(num_classes=num_classes, in_channels=in_channels,
                                         image_size=tuple(image_size), **overrides)


def load_run_config(path):
    """(VisionTrainingConfig, model table dict) from a .toml/.json with [training] and optional [model]."""
    data = read_config_file(path)
    model = dict(data.get("model", {})) if isinstance(data.get("model"), dict) else {}
    return VisionTrainingConfig.from_file(path), model


def train_classification(images, labels_csv=None, config=None, *, preset="resnet_small", model_overrides=None,
                         resume=False, log=print, callbacks=()):
    """Train a GoldbullVision classifier on an image folder + labels.csv.

    Args:
        images: the image directory.
        labels_csv: default ``images/labels.csv``.
        config: a VisionTrainingConfig (default one); ``output_dir`` receives checkpoints and logs.
        preset: the model preset (``PRESETS``); model_overrides: VisionConfig fields.
        resume: continue from the latest checkpoint in output_dir.
    Returns:
        {"accuracy", "top5_accuracy", "loss", "per_class_accuracy", "confusion_matrix", "steps",
         "seconds", "checkpoint", "num_train", "num_val", "class_names", "model"}.
    """
    t0 = time.perf_counter()
    cfg = config if config is not None else VisionTrainingConfig()
    gb_random.manual_seed(cfg.seed)
    ds = load_image_folder(images, labels_csv, cfg)
    mo = dict(model_overrides or {})
    mc = model_config(mo.pop("preset", preset), num_classes=ds.num_classes, in_channels=ds.channels,
                      image_size=tuple(cfg.image_size), class_names=list(ds.class_names), **mo)
    model = GoldbullVision(mc)
    cbs = list(callbacks)
    if cfg.output_dir:
        cbs.insert(0, MetricsLogger(Path(cfg.output_dir) / "logs"))
    trainer = VisionTrainer(model, cfg, callbacks=cbs)
    log(f"goldbull train-vision: {ds.images_dir}: {len(ds)} images, {ds.num_classes} classes, "
        f"{ds.channels} channel(s) at {tuple(cfg.image_size)} ({'decoded ' + str(ds.decoded) if ds.decoded else 'cached'}"
        f"{'; ' + str(len(ds.unlisted)) + ' unlisted images ignored' if ds.unlisted else ''})")
    log(f"model: {mc.arch} ({preset}), {model.num_parameters():,} parameters; output: {cfg.output_dir or '(none)'}")
    resume_from = None
    if resume and cfg.output_dir:
        from ..train.checkpoint import CheckpointManager
        resume_from = CheckpointManager(Path(cfg.output_dir)).latest()
    state = trainer.train_classification(ds, resume_from=resume_from)
    vm = trainer.evaluate(trainer.val_dataset) if trainer.val_dataset is not None else {}
    summary = {k: vm.get(k) for k in ("accuracy", "top5_accuracy", "loss", "per_class_accuracy", "confusion_matrix")}
    summary.update(steps=state.step, seconds=time.perf_counter() - t0,
                   checkpoint=str(trainer.last_checkpoint) if trainer.last_checkpoint else None,
                   num_train=len(trainer.train_dataset), num_val=len(trainer.val_dataset or ()),
                   class_names=list(ds.class_names), model=model, trainer=trainer)
    if vm and cfg.output_dir and vm.get("confusion_matrix"):
        try:
            from .plots import save_confusion_matrix_png
            summary["confusion_png"] = save_confusion_matrix_png(
                vm["confusion_matrix"], ds.class_names, str(Path(cfg.output_dir) / "confusion_matrix.png"))
        except ImportError as exc:
            log(f"note: {exc}")
    if vm:
        log(f"validation: accuracy {vm['accuracy']:.4f}, top-5 {vm['top5_accuracy']:.4f}, loss {vm['loss']:.4f} "
            f"on {len(trainer.val_dataset)} held-out images; {state.step} steps in {summary['seconds']:.1f} s")
    return summary


def load_classifier(checkpoint):
    """A GoldbullVision from a checkpoint or model directory (a run directory: its best, else latest)."""
    return GoldbullVision.from_pretrained(resolve_checkpoint(checkpoint))


def predict(checkpoint, paths, top_k=1):
    """[(path, [(class_name, probability), ...]), ...] for image files, with the checkpoint's model."""
    model = load_classifier(checkpoint)
    return list(zip([str(p) for p in paths], predict_files(model, list(paths), top_k)))


__all__ = ["train_classification", "predict", "load_classifier", "model_config", "load_run_config", "PRESETS"]
