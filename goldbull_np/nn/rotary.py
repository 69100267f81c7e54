"""Rotary position embeddings (RoPE) in Llama's ``rotate_half`` convention, as one fused op.

For head dim D and h = D/2, position t and frequency i < h: ``inv_freq[i] = theta ** (-2i / D)``,
``cos[t] = cos(t * cat(inv_freq, inv_freq))`` and likewise sin, and

    rope(x) = x * cos + rotate_half(x) * sin,    rotate_half(x) = cat(-x[..., h:], x[..., :h])

which is what Hugging Face's Llama computes, so its q/k weights load without permutation.
"""
import numpy as np

from ..autograd.function import Function
from .module import Module


class ApplyRotary(Function):
    """x (B, H, T, D) rotated by the tables cos, sin (T, D); backward applies the transpose."""

    saved_inputs = ()

    def forward(self, x, cos=None, sin=None):
        h = x.shape[-1] // 2
        self.cos, self.sin = cos, sin
        out = x * cos  # (B,H,T,D)
        out[..., :h] -= x[..., h:] * sin[:, :h]
        out[..., h:] += x[..., :h] * sin[:, h:]
        return out

    def backward(self, g):
        h = g.shape[-1] // 2
        gs = g * self.sin  # (B,H,T,D)
        dx = g * self.cos
        dx[..., :h] += gs[..., h:]
        dx[..., h:] -= gs[..., :h]
        return dx


def apply_rotary(x, cos, sin):
    """Rotate ``x`` (B, H, T, D) by ``cos``/``sin`` arrays (T, D) (already sliced to x's positions)."""
    if cos.shape != (x.shape[-2], x.shape[-1]) or sin.shape != cos.shape:
        raise ValueError(f"apply_rotary: tables of shape {cos.shape} do not match x of shape {x.shape}")
    return ApplyRotary.apply(x, cos=cos, sin=sin)


class RotaryEmbedding(Module):
    """Precomputed cos/sin tables for positions [0, max_position), held as non-persistent buffers
    (recomputed from the config, never saved).

    Args:
        head_dim: D (even).
        max_position: number of positions tabulated (block_size).
        theta: the base (Llama: 10000.0; Llama 3: 500000.0).
    """

    def __init__(self, head_dim, max_position, theta=10000.0, dtype=np.float32):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dim, got {head_dim}")
        self.head_dim, self.max_position, self.theta = int(head_dim), int(max_position), float(theta)
        inv_freq = 1.0 / (self.theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))  # (D/2,)
        freqs = np.outer(np.arange(max_position, dtype=np.float64), inv_freq)  # (P, D/2)
        emb = np.concatenate([freqs, freqs], axis=-1)  # (P, D)
        self._cos64, self._sin64 = np.cos(emb), np.sin(emb)  # exact tables for float64 inputs
        self.register_buffer("cos", self._cos64.astype(dtype), persistent=False)
        self.register_buffer("sin", self._sin64.astype(dtype), persistent=False)

    def forward(self, x, start_pos=0):
        """Rotate x (B, H, T, D) as positions start_pos .. start_pos + T - 1."""
        T = x.shape[-2]
        if start_pos + T > self.max_position:
            raise ValueError(f"rotary: positions up to {start_pos + T - 1} requested, but only "
                             f"{self.max_position} are tabulated (block_size)")
        src = (self._cos64, self._sin64) if x.dtype == np.float64 else (self.cos.data, self.sin.data)
        cos = src[0][start_pos:start_pos + T]  # (T, D)
        sin = src[1][start_pos:start_pos + T]
        if cos.dtype != x.dtype:
            cos, sin = cos.astype(x.dtype), sin.astype(x.dtype)
        return apply_rotary(x, cos, sin)

    def extra_repr(self):
        return f"head_dim={self.head_dim}, max_position={self.max_position}, theta={self.theta}"
