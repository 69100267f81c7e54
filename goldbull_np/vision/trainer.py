"""VisionTrainer and VisionTrainingConfig (the seed's names): the shared Trainer with the classification task.

    cfg = VisionTrainingConfig(learning_rate=1e-3, batch_size=16, num_epochs=10, image_size=(32, 32),
                               augmentation_probability=0.8, mixup_alpha=0.2, label_smoothing=0.1)
    VisionTrainer(GoldbullVision(VisionConfig.resnet_small(num_classes=10)), cfg).train_classification(
        "path/to/images", "path/to/labels.csv")
"""
import logging
from typing import Any, ClassVar, List, Optional

import numpy as np

from ..train.config import Bool, ConfigError, Number, Str, TrainingConfig, config, option
from ..train.trainer import Trainer
from .data import ImageDataError, ImageFolderDataset, check_image_size
from .task import ImageClassificationTask, resolve_class_weights

log = logging.getLogger("goldbull_np.vision")


class ImageSize:
    """Field check: (H, W) positive ints (an int means square)."""

    def __call__(self, owner, name, value):
        try:
            return list(check_image_size(value))
        except ImageDataError:
            raise ConfigError(f"{type(owner).__name__}.{name} must be (H, W) positive integers, got {value!r}") from None


class ClassWeights:
    """Field check: None, "balanced" or a list of non-negative numbers."""

    def __call__(self, owner, name, value):
        if value is None or value == "balanced":
            return value
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{type(owner).__name__}.{name} must be None, 'balanced' or a list of numbers, got {value!r}")
        try:
            w = [float(v) for v in value]
        except (TypeError, ValueError):
            raise ConfigError(f"{type(owner).__name__}.{name} must hold numbers, got {value!r}") from None
        if any(not np.isfinite(v) or v < 0 for v in w):
            raise ConfigError(f"{type(owner).__name__}.{name} must hold finite numbers >= 0, got {value!r}")
        return w


@config
class VisionTrainingConfig(TrainingConfig):
    """How a :class:`VisionTrainer` trains (the TOML ``[training]`` table): TrainingConfig's fields with
    image-classification defaults, plus the vision ones."""

    learning_rate: float = 1e-3
    batch_size: int = 16
    num_epochs: int = 10
    weight_decay: float = 0.05
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    logging_steps: int = 20
    save_steps: int = 0
    label_smoothing: float = 0.1
    image_size: List[int] = option(check=ImageSize(), default_factory=lambda: [32, 32])  # (H, W) images are resized to
    channels: Any = option("auto", None)                          # 1, 3 or "auto"
    augmentation_probability: float = option(0.8, Number(low=0, high=1))
    horizontal_flip: bool = option(True, Bool())                  # off for digits and text
    rotation_degrees: float = option(10.0, Number(low=0, high=180))
    crop_scale_min: float = option(0.6, Number(low=0, high=1, low_open=True))
    mixup_alpha: float = option(0.2, Number(low=0))
    cutmix_alpha: float = option(0.0, Number(low=0))
    mixup_prob: float = option(1.0, Number(low=0, high=1))
    class_weights: Optional[Any] = option(None, ClassWeights())   # None | "balanced" | [w_0, ..., w_C-1]
    val_fraction: float = option(0.2, Number(low=0, high=1, high_open=True))
    cache_dir: Optional[str] = option(None, Str(allow_none=True))

    _section: ClassVar[Optional[str]] = "training"

    def validate(self) -> None:
        super().validate()
        if self.channels not in ("auto", 1, 3):
            raise ConfigError(f"VisionTrainingConfig.channels must be 1, 3 or 'auto', got {self.channels!r}")


class VisionTrainer(Trainer):
    """Trains a :class:`GoldbullVision` with the :class:`ImageClassificationTask`.

    Args:
        model: the classifier.
        config: a :class:`VisionTrainingConfig` (any TrainingConfig works; vision fields then default).
        task, optimizer, scheduler, callbacks, progress: as :class:`~goldbull_np.train.Trainer`.
    """

    def __init__(self, model, config: Optional[TrainingConfig] = None, *, task=None, **kwargs):
        super().__init__(model, config if config is not None else VisionTrainingConfig(),
                         task=task if task is not None else ImageClassificationTask(), **kwargs)
        self.train_dataset = self.val_dataset = None

    def load_image_folder(self, images, labels_csv=None):
        """An :class:`ImageFolderDataset` at the config's image_size/channels, with the model's class names
        when the model has them."""
        mc = self.model.config
        return load_image_folder(images, labels_csv, self.config, mc.class_names, default_size=mc.image_size)

    def train_classification(self, images, labels_csv=None, *, val_fraction=None, resume_from=None,
                             allow_mismatch=False):
        """Train on an image folder + labels.csv: a seeded stratified split holds out ``val_fraction``
        (default the config's) for evaluation each epoch; returns the TrainerState."""
        ds = images if isinstance(images, ImageFolderDataset) else self.load_image_folder(images, labels_csv)
        mc = self.model.config
        if ds.num_classes != mc.num_classes:
            raise ImageDataError(f"{ds.labels_csv}: {ds.num_classes} classes but the model has num_classes="
                                 f"{mc.num_classes}")
        if mc.class_names is None:
            mc.class_names = list(ds.class_names)
        if ds.channels != mc.in_channels:
            log.info("images have %d channel(s), the model %d: converted per batch", ds.channels, mc.in_channels)
        vf = getattr(self.config, "val_fraction", 0.2) if val_fraction is None else val_fraction
        train, val = ds.split(vf, seed=self.config.seed)
        if len(train) < self.config.batch_size:
            raise ImageDataError(f"{ds.labels_csv}: {len(train)} training images (after holding out {len(val or ())} for "
                                 f"validation) is fewer than batch_size={self.config.batch_size}; training drops the "
                                 "last partial batch, so nothing would be learned: lower batch_size")
        if isinstance(self.task, ImageClassificationTask):
            self.task.set_class_counts(train.class_counts())
            resolve_class_weights(self.task.class_weights_spec, train.class_counts(), mc.num_classes)  # fail early
        self.train_dataset, self.val_dataset = train, val
        return self.train(train, val, resume_from=resume_from, allow_mismatch=allow_mismatch)

    def predict(self, paths, top_k=1):
        """``[(class_name, probability), ...]`` (best first, ``top_k`` of them) per image file."""
        return predict_files(self.model, paths, top_k)


def load_image_folder(images, labels_csv, config, class_names=None, default_size=(32, 32)):
    """An :class:`ImageFolderDataset` with a config's image_size, channels and cache_dir (defaults when
    the config is a plain TrainingConfig)."""
    return ImageFolderDataset(images, labels_csv, getattr(config, "image_size", default_size),
                              channels=getattr(config, "channels", "auto"), class_names=class_names,
                              cache_dir=getattr(config, "cache_dir", None))


def predict_files(model, paths, top_k=1, batch_size=64):
    """Decode image files at the model's image_size and classify them: per file a list of
    ``(class_name, probability)``, best first."""
    from .data import decode_image
    from .transforms import match_channels, normalize
    if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):
        paths = [paths]
    size = tuple(model.config.image_size)
    names = model.config.names()
    k = max(1, min(int(top_k), len(names)))
    imgs = np.stack([decode_image(p, size) for p in paths]) if paths else np.zeros((0,) + size + (3,), np.uint8)
    gray = bool(imgs.size) and bool((imgs[..., 0] == imgs[..., 1]).all() and (imgs[..., 1] == imgs[..., 2]).all())
    a = imgs[..., :1] if (gray and model.config.in_channels == 1) else imgs
    x = normalize(match_channels(a.astype(np.float32) / 255.0, model.config.in_channels), model.config)
    probs = _probs(model, x, batch_size)
    out = []
    for p in probs:
        order = np.argsort(-p, kind="stable")[:k]
        out.append([(names[i], float(p[i])) for i in order])
    return out


def _probs(model, x, batch_size):
    from ..autograd import no_grad
    from ..autograd.tensor import Tensor
    was = model.training
    model.eval()
    out = []
    try:
        with no_grad():
            for i in range(0, x.shape[0], batch_size):
                logits, _ = model(Tensor(x[i:i + batch_size]))
                z = logits.data.astype(np.float64)
                z -= z.max(axis=1, keepdims=True)
                e = np.exp(z)
                out.append(e / e.sum(axis=1, keepdims=True))
    finally:
        model.train(was)
    return np.concatenate(out) if out else np.zeros((0, model.config.num_classes))


__all__ = ["VisionTrainer", "VisionTrainingConfig", "predict_files", "load_image_folder"]
