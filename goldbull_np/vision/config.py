"""``VisionConfig``: GoldbullVision's hyperparameters, a ResNet or a ViT classifier (on the model base).

``config.json`` is this dataclass as JSON plus ``"model_type": "goldbull_vision"``; it also keeps the
class names the model was trained on (``class_names``), so ``goldbull predict`` prints names.
"""
from dataclasses import dataclass, field
from typing import ClassVar, List, Optional

from ..nn.model_base import PretrainedConfig

MODEL_TYPE = "goldbull_vision"


def _pos_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"VisionConfig.{name} must be a positive integer, got {v!r}")


@dataclass
class VisionConfig(PretrainedConfig):
    """Hyperparameters of :class:`GoldbullVision`.

    ResNet (``architecture="resnet"``): a 3x3 stem conv (``stem_channels``; ``stem_stride``, and a 3x3/2
    max-pool when ``stem_pool``), then stages of basic blocks (two 3x3 convs + identity or 1x1
    projection shortcut); stage i has ``depths[i]`` blocks of ``widths[i]`` channels and halves the
    resolution (stride 2) from the second stage on; global average pooling and a linear head.
    ViT (``architecture="vit"``): a ``patch_size`` conv patch embedding, learned positions, a class
    token (``pooling="cls"``) or mean pooling (``"mean"``), ``n_layer`` pre-norm encoder blocks
    (bidirectional attention), a final LayerNorm and a linear head.
    """

    model_type: ClassVar[str] = MODEL_TYPE
    architecture: ClassVar[str] = "GoldbullVision"

    arch: str = "resnet"              # "resnet" | "vit"
    num_classes: int = 10
    in_channels: int = 3              # 1 = grayscale, 3 = RGB
    image_size: List[int] = field(default_factory=lambda: [32, 32])  # (H, W) the model is built for
    # ResNet
    stem_channels: int = 16
    stem_stride: int = 1
    stem_pool: bool = False
    widths: List[int] = field(default_factory=lambda: [16, 32, 64])
    depths: List[int] = field(default_factory=lambda: [1, 1, 1])
    norm: str = "batch"               # "batch" (BatchNorm2d) | "group" (GroupNorm, 8 groups or fewer)
    # ViT
    patch_size: int = 4
    n_embd: int = 64
    n_layer: int = 4
    n_head: int = 4
    mlp_ratio: int = 4
    pooling: str = "cls"              # "cls" | "mean"
    dropout: float = 0.0              # before the head
    # labels
    class_names: Optional[List[str]] = None  # index -> name; None = "0", "1", ...
    # input normalisation (per channel, on [0, 1] pixels)
    mean: Optional[List[float]] = None  # None = 0.5 for every channel
    std: Optional[List[float]] = None   # None = 0.5 for every channel

    def __post_init__(self):
        self.image_size = [int(v) for v in self.image_size]
        self.widths, self.depths = [int(v) for v in self.widths], [int(v) for v in self.depths]
        self.validate()

    # ---- presets --------------------------------------------------------------------------
    @classmethod
    def resnet_small(cls, num_classes=10, in_channels=3, image_size=(32, 32), **overrides):
        """ResNet with stages 16/32/64 of 1 basic block each (CIFAR-style stem): ~0.2M parameters."""
        kw = dict(arch="resnet", num_classes=num_classes, in_channels=in_channels, image_size=list(image_size))
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def resnet_tiny(cls, num_classes=10, in_channels=1, image_size=(8, 8), **overrides):
        """Two stages 16/32, one block each: for 8x8 digits and unit tests."""
        kw = dict(arch="resnet", num_classes=num_classes, in_channels=in_channels, image_size=list(image_size),
                  stem_channels=16, widths=[16, 32], depths=[1, 1])
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def resnet18(cls, num_classes=1000, in_channels=3, image_size=(224, 224), **overrides):
        """torchvision's ResNet-18 layout: 7x7/2 stem in spirit (here 3x3/2 + max-pool), 64-512, 2 blocks a stage."""
        kw = dict(arch="resnet", num_classes=num_classes, in_channels=in_channels, image_size=list(image_size),
                  stem_channels=64, stem_stride=2, stem_pool=True, widths=[64, 128, 256, 512], depths=[2, 2, 2, 2])
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def vit_tiny(cls, num_classes=10, in_channels=3, image_size=(32, 32), **overrides):
        """ViT with 4x4 patches, width 64, 4 layers, 4 heads (a CPU-sized ViT)."""
        kw = dict(arch="vit", num_classes=num_classes, in_channels=in_channels, image_size=list(image_size),
                  patch_size=4, n_embd=64, n_layer=4, n_head=4)
        kw.update(overrides)
        return cls(**kw)

    # ---- derived --------------------------------------------------------------------------
    @property
    def num_patches(self):
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)

    def names(self):
        """The class names, index order."""
        return list(self.class_names) if self.class_names else [str(i) for i in range(self.num_classes)]

    def validate(self):
        if self.arch not in ("resnet", "vit"):
            raise ValueError(f"VisionConfig.arch must be 'resnet' or 'vit', got {self.arch!r}")
        for name in ("num_classes", "in_channels", "stem_channels", "stem_stride", "patch_size", "n_embd",
                     "n_layer", "n_head", "mlp_ratio"):
            _pos_int(name, getattr(self, name))
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"VisionConfig.image_size must be (H, W) with H, W >= 1, got {self.image_size}")
        if not self.widths or len(self.widths) != len(self.depths) or min(self.widths + self.depths) < 1:
            raise ValueError(f"VisionConfig.widths and depths must be equally long lists of positive ints, got "
                             f"{self.widths} and {self.depths}")
        if self.norm not in ("batch", "group"):
            raise ValueError(f"VisionConfig.norm must be 'batch' or 'group', got {self.norm!r}")
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"VisionConfig.pooling must be 'cls' or 'mean', got {self.pooling!r}")
        if self.arch == "vit":
            if self.n_embd % self.n_head:
                raise ValueError(f"VisionConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
            if self.image_size[0] % self.patch_size or self.image_size[1] % self.patch_size:
                raise ValueError(f"VisionConfig.image_size {self.image_size} must be a multiple of patch_size "
                                 f"{self.patch_size}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"VisionConfig.class_names has {len(self.class_names)} names for "
                             f"num_classes={self.num_classes}")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is not None and len(v) != self.in_channels:
                raise ValueError(f"VisionConfig.{name} needs {self.in_channels} values (one per channel), got {v}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"VisionConfig.dropout must be in [0, 1), got {self.dropout}")
