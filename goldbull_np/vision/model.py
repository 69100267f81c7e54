"""GoldbullVision: an image classifier on the model base, a ResNet (basic blocks) or a ViT.

    model = GoldbullVision(VisionConfig.resnet_small(num_classes=10))
    logits, loss = model(pixel_values, labels)      # pixel_values (B, C, H, W) normalised float32
    model.predict(images)                          # uint8 (B, H, W, C) or (B, C, H, W) -> class indices
"""
import math

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..autograd.functions import nn as _fused
from ..autograd.functions.movement import cat
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..nn import init
from ..nn.model_base import PreTrainedModel, register_model
from ..nn.transformer import CausalSelfAttention, TransformerBlock
from .config import VisionConfig


def _norm(kind, channels):
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.GroupNorm(math.gcd(8, channels), channels)


class BasicBlock(nn.Module):
    """conv3x3(stride) - norm - relu - conv3x3 - norm, plus the shortcut (a 1x1 conv + norm when the
    shape changes), then relu: torchvision's ResNet basic block."""

    def __init__(self, cin, cout, stride, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = _norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _norm(norm, cout)
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(norm, cout))
        else:
            self.down = None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        layers = [nn.Conv2d(c.in_channels, c.stem_channels, 3, c.stem_stride, 1, bias=False),
                  _norm(c.norm, c.stem_channels), nn.ReLU()]
        if c.stem_pool:
            layers.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*layers)
        blocks, cin = [], c.stem_channels
        for i, (w, d) in enumerate(zip(c.widths, c.depths)):
            for j in range(d):
                blocks.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1, c.norm))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, c.num_classes)
        self.dropout = nn.Dropout(c.dropout) if c.dropout > 0 else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # torchvision: kaiming normal, fan_out, relu
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.blocks(self.stem(x))                 # (B, C', h, w)
        x = x.mean(dim=(2, 3))                        # global average pool (B, C')
        if self.dropout is not None:
            x = self.dropout(x)
        return self.head(x)                           # (B, num_classes)


class SelfAttention(CausalSelfAttention):
    """Bidirectional multi-head self-attention (no mask): the causal module's fused qkv_proj and o_proj."""

    def from_qkv(self, qkv, kv_cache=None, residual=None):
        B, T, _ = qkv.shape
        H, D = self.n_head, self.head_dim
        qkv = qkv.reshape(B, T, 3 * H, D).permute(0, 2, 1, 3)   # (B, 3H, T, D)
        q, k, v = qkv.split([H, H, H], dim=1)                    # (B, H, T, D) each
        y = _fused.Attention.apply(q, k, v, scale=self.scale, causal_offset=None)
        return self.project_out(y.transpose(1, 2).reshape(B, T, H * D), residual)  # [residual +] o_proj(y)


def encoder_block(n_embd, n_head, mlp_ratio):
    """The shared pre-norm TransformerBlock (x + attn(ln(x)), x + mlp(ln(x)); LayerNorm fused into the
    projections, GELU into down_proj) with its causal attention swapped for the bidirectional one (same
    parameter names: attn.qkv_proj, attn.o_proj)."""
    blk = TransformerBlock(n_embd, n_head, mlp="gelu", mlp_hidden=mlp_ratio * n_embd, norm="layernorm", bias=True,
                           norm_eps=1e-6)
    blk.attn = SelfAttention(n_embd, n_head)
    return blk


class ViT(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        E = c.n_embd
        self.pooling = c.pooling
        self.patch_embed = nn.Conv2d(c.in_channels, E, c.patch_size, c.patch_size)
        n = c.num_patches + (1 if c.pooling == "cls" else 0)
        self.pos_embed = nn.Parameter(np.zeros((1, n, E), np.float32))
        init.trunc_normal_(self.pos_embed, std=0.02)
        if c.pooling == "cls":
            self.cls_token = nn.Parameter(np.zeros((1, 1, E), np.float32))
        else:
            self.register_parameter("cls_token", None)
        self.blocks = nn.ModuleList([encoder_block(E, c.n_head, c.mlp_ratio) for _ in range(c.n_layer)])
        self.norm = nn.LayerNorm(E, eps=1e-6)
        self.dropout = nn.Dropout(c.dropout) if c.dropout > 0 else None
        self.head = nn.Linear(E, c.num_classes)

    def forward(self, x):
        B = x.shape[0]
        x = self.patch_embed(x)                                  # (B, E, h, w)
        x = x.flatten(2).transpose(1, 2)                         # (B, N, E)
        if self.cls_token is not None:
            x = cat([self.cls_token.expand(B, 1, x.shape[2]), x], dim=1)  # (B, 1+N, E)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        x = x[:, 0] if self.cls_token is not None else x.mean(dim=1)    # (B, E)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.head(x)                                      # (B, num_classes)


@register_model
class GoldbullVision(PreTrainedModel):
    """An image classifier: ``forward(pixel_values, labels=None) -> (logits, loss)``.

    Args:
        config: a :class:`VisionConfig` (``arch`` "resnet" or "vit").
    """

    config_class = VisionConfig

    def __init__(self, config=None, device="cpu"):
        super().__init__()
        if device not in (None, "cpu"):
            raise ValueError(f"only device='cpu' is supported, got {device!r}")
        self.config = config if config is not None else VisionConfig()
        self.net = ResNet(self.config) if self.config.arch == "resnet" else ViT(self.config)

    def forward(self, pixel_values, labels=None):
        """pixel_values (B, C, H, W) normalised float -> logits (B, num_classes), mean cross-entropy or None."""
        x = pixel_values if isinstance(pixel_values, Tensor) else Tensor(np.asarray(pixel_values, np.float32))
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise ValueError(f"GoldbullVision: expected pixel_values (B, {c.in_channels}, H, W), got shape "
                             f"{tuple(x.shape)}")
        if c.arch == "vit" and list(x.shape[2:]) != list(c.image_size):
            raise ValueError(f"GoldbullVision (ViT): expected {tuple(c.image_size)} images, got {tuple(x.shape[2:])}")
        logits = self.net(x)
        loss = None if labels is None else F.cross_entropy(logits, np.asarray(getattr(labels, "data", labels)))
        return logits, loss

    # ---- inference ------------------------------------------------------------------------
    def preprocess(self, images):
        """uint8 (or [0, 255] float) images (B, H, W, C), (B, C, H, W), (H, W, C) or (B, H, W) for one
        channel -> normalised float32 (B, C, H, W) with the config's mean/std."""
        from .transforms import to_model_input
        return to_model_input(images, self.config)

    def predict_proba(self, images, batch_size=64):
        """Class probabilities (B, num_classes) for raw images (see :meth:`preprocess`), in eval mode."""
        x = self.preprocess(images)
        was = self.training
        self.eval()
        out = []
        try:
            with no_grad():
                for i in range(0, x.shape[0], batch_size):
                    logits, _ = self(Tensor(x[i:i + batch_size]))
                    z = logits.data - logits.data.max(axis=1, keepdims=True)
                    e = np.exp(z)
                    out.append(e / e.sum(axis=1, keepdims=True))
        finally:
            self.train(was)
        return np.concatenate(out) if out else np.zeros((0, self.config.num_classes), np.float32)

    def predict(self, images, batch_size=64):
        """Class indices (B,) int64 for raw images."""
        return np.argmax(self.predict_proba(images, batch_size), axis=1).astype(np.int64)

    def default_task(self):
        from .task import ImageClassificationTask
        return ImageClassificationTask()

    def extra_repr(self):
        return f"arch={self.config.arch}, num_classes={self.config.num_classes}"


__all__ = ["GoldbullVision", "VisionConfig", "ResNet", "ViT", "BasicBlock", "SelfAttention", "encoder_block"]
