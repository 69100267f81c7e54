"""Image batches as arrays: model input (normalised NCHW float32), augmentation and mixup/cutmix.

Everything works on NumPy arrays and draws from a ``numpy.random.Generator`` it is given (the task
passes the global goldbull_np generator, which the trainer checkpoints: augmentation resumes exactly).

Augmentation (per image, with probability ``p``): random resized crop (scale, ratio), small rotation
and, when enabled, a horizontal flip, done as one affine map with bilinear sampling (edge pixels
extend); then colour jitter (brightness, contrast, saturation).
Mixup/CutMix follow timm's ``Mixup`` in batch mode: the batch is mixed with itself reversed
(``x.flip(0)``), lam ~ Beta(alpha, alpha), CutMix lam corrected by the clipped box area, and soft
targets ``lam * smooth(onehot(y)) + (1 - lam) * smooth(onehot(y.flip(0)))`` with
``off = smoothing / C, on = 1 - smoothing + off`` (timm's ``mixup_target``). Any batch size works (the
middle image of an odd batch is mixed with itself; timm asserts an even batch).
"""
import math
from dataclasses import dataclass

import numpy as np


def as_nhwc(images):
    """uint8/float images (B,H,W,C), (B,C,H,W) with C in (1, 3), (B,H,W), (H,W,C) or (H,W), or a list
    of (H,W[,C]) arrays of one size -> (B, H, W, C) array."""
    if isinstance(images, (list, tuple)):
        images = np.stack([np.asarray(a) for a in images])
        if images.ndim == 3:
            images = images[..., None]
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None, :, :, None]
    elif a.ndim == 3:
        a = a[None] if a.shape[-1] in (1, 3, 4) else a[..., None]
    if a.ndim != 4:
        raise ValueError(f"images must be (B, H, W, C), (B, C, H, W) or (H, W[, C]), got shape {a.shape}")
    if a.shape[-1] not in (1, 3) and a.shape[1] in (1, 3):
        a = a.transpose(0, 2, 3, 1)
    return a


def to_model_input(images, config):
    """Raw images ([0, 255]) -> normalised float32 (B, C, H, W) with the config's channels, mean and std.
    Grayscale is repeated to 3 channels for an RGB model; RGB is averaged (ITU-R 601-2) for a 1-channel one."""
    a = as_nhwc(images).astype(np.float32) / 255.0
    a = match_channels(a, config.in_channels)
    if list(a.shape[1:3]) != list(config.image_size):
        from .data import resize_batch
        a = resize_batch(a, tuple(config.image_size))
    return normalize(a, config)


def match_channels(a, channels):
    """(B,H,W,c) float -> (B,H,W,channels): grayscale repeated, RGB to luma (PIL's 'L' weights)."""
    c = a.shape[-1]
    if c == channels:
        return a
    if channels == 3 and c == 1:
        return np.repeat(a, 3, axis=-1)
    if channels == 1 and c == 3:
        return (a @ np.asarray([0.299, 0.587, 0.114], a.dtype))[..., None]
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels")


def normalize(a, config):
    """(B,H,W,C) float in [0, 1] -> (B,C,H,W) float32 (x - mean) / std."""
    C = config.in_channels
    mean = np.asarray(config.mean if config.mean is not None else [0.5] * C, np.float32)
    std = np.asarray(config.std if config.std is not None else [0.5] * C, np.float32)
    return np.ascontiguousarray(((a - mean) / std).transpose(0, 3, 1, 2), dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# augmentation

@dataclass
class Augmentation:
    """Per-image random augmentation, applied with probability ``p``."""

    p: float = 0.8
    scale: tuple = (0.6, 1.0)          # random resized crop: area fraction
    ratio: tuple = (3 / 4, 4 / 3)      # and aspect ratio
    rotation: float = 10.0             # degrees, uniform in [-rotation, rotation]
    hflip: bool = True                 # horizontal flip with probability 0.5
    brightness: float = 0.2            # colour jitter factors, uniform in [1 - v, 1 + v]
    contrast: float = 0.2
    saturation: float = 0.2

    def __call__(self, batch, rng):
        """batch (B, H, W, C) float in [0, 1] -> augmented copy."""
        out = batch.copy()
        for i in range(batch.shape[0]):
            if rng.random() < self.p:
                out[i] = self.one(batch[i], rng)
        return out

    def one(self, img, rng):
        H, W, C = img.shape
        area = H * W * rng.uniform(*self.scale)
        logr = rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]))
        ar = math.exp(logr)
        ch, cw = min(H, math.sqrt(area / ar)), min(W, math.sqrt(area * ar))
        cy = rng.uniform(ch / 2, H - ch / 2) if H > ch else H / 2
        cx = rng.uniform(cw / 2, W - cw / 2) if W > cw else W / 2
        theta = math.radians(rng.uniform(-self.rotation, self.rotation)) if self.rotation else 0.0
        flip = self.hflip and rng.random() < 0.5
        # destination pixel centre (i, j) -> source point: centre + R(theta) . S . (dst - dst centre)
        ii, jj = np.meshgrid(np.arange(H) + 0.5 - H / 2, np.arange(W) + 0.5 - W / 2, indexing="ij")
        if flip:
            jj = -jj
        sy, sx = ch / H, cw / W
        ct, st = math.cos(theta), math.sin(theta)
        ys = cy + ct * sy * ii - st * sx * jj - 0.5
        xs = cx + st * sy * ii + ct * sx * jj - 0.5
        out = bilinear(img, ys, xs)
        if self.brightness:
            out = out * rng.uniform(1 - self.brightness, 1 + self.brightness)
        if self.contrast:
            m = out.mean()
            out = (out - m) * rng.uniform(1 - self.contrast, 1 + self.contrast) + m
        if self.saturation and C == 3:
            gray = out @ np.asarray([0.299, 0.587, 0.114], out.dtype)
            out = (out - gray[..., None]) * rng.uniform(1 - self.saturation, 1 + self.saturation) + gray[..., None]
        return np.clip(out, 0.0, 1.0)


def bilinear(img, ys, xs):
    """img (H, W, C) sampled at float coordinates ys, xs (h, w) (pixel centres at integers; edges extend)."""
    H, W = img.shape[:2]
    ys, xs = np.clip(ys, 0, H - 1), np.clip(xs, 0, W - 1)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, H - 1), np.minimum(x0 + 1, W - 1)
    wy, wx = (ys - y0)[..., None].astype(img.dtype), (xs - x0)[..., None].astype(img.dtype)
    top = img[y0, x0] * (1 - wx) + img[y0, x1] * wx
    bot = img[y1, x0] * (1 - wx) + img[y1, x1] * wx
    return top * (1 - wy) + bot * wy


# ----------------------------------------------------------------------------------------------
# mixup / cutmix (timm)

def one_hot_smooth(y, num_classes, smoothing=0.0):
    """timm's smoothed one-hot: off = smoothing / C, on = 1 - smoothing + off."""
    off = smoothing / num_classes
    t = np.full((len(y), num_classes), off, np.float32)
    t[np.arange(len(y)), y] = 1.0 - smoothing + off
    return t


def mixup_target(y, num_classes, lam=1.0, smoothing=0.0):
    """timm's mixup_target: lam * smooth(onehot(y)) + (1 - lam) * smooth(onehot(y.flip(0)))."""
    y1 = one_hot_smooth(y, num_classes, smoothing)
    y2 = one_hot_smooth(y[::-1], num_classes, smoothing)
    return (y1 * lam + y2 * (1.0 - lam)).astype(np.float32)


def rand_bbox(shape, lam, rng):
    """timm's rand_bbox: a box of area fraction (1 - lam) at a uniform centre, clipped -> (y0, y1, x0, x1)."""
    H, W = shape
    ratio = math.sqrt(1 - lam)
    ch, cw = int(H * ratio), int(W * ratio)
    cy, cx = int(rng.integers(0, H)), int(rng.integers(0, W))
    return (int(np.clip(cy - ch // 2, 0, H)), int(np.clip(cy + ch // 2, 0, H)),
            int(np.clip(cx - cw // 2, 0, W)), int(np.clip(cx + cw // 2, 0, W)))


@dataclass
class Mixup:
    """Batch-mode Mixup/CutMix with soft targets (timm's semantics).

    Args:
        mixup_alpha: Beta(alpha, alpha) for mixup (0 = off).
        cutmix_alpha: Beta(alpha, alpha) for cutmix (0 = off).
        prob: probability of mixing a batch at all.
        switch_prob: with both on, the probability of cutmix instead of mixup.
        label_smoothing: folded into the soft targets.
        num_classes: C.
    """

    mixup_alpha: float = 0.2
    cutmix_alpha: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.0
    num_classes: int = 10

    def __call__(self, x, y, rng):
        """x (B, C, H, W) float, y (B,) int -> mixed x (new array), soft targets (B, num_classes), lam."""
        lam, use_cutmix = 1.0, False
        if (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and rng.random() < self.prob:
            if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
                use_cutmix = rng.random() < self.switch_prob
                alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
            else:
                use_cutmix = self.cutmix_alpha > 0
                alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
            lam = float(rng.beta(alpha, alpha))
        x = x.copy()
        if lam != 1.0:
            if use_cutmix:
                y0, y1, x0, x1 = rand_bbox(x.shape[2:], lam, rng)
                x[:, :, y0:y1, x0:x1] = x[::-1, :, y0:y1, x0:x1].copy()
                lam = 1.0 - (y1 - y0) * (x1 - x0) / float(x.shape[2] * x.shape[3])
            else:
                x = x * lam + x[::-1] * (1.0 - lam)
        return x.astype(np.float32, copy=False), mixup_target(np.asarray(y), self.num_classes, lam,
                                                              self.label_smoothing), lam
