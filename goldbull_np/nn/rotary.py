"""Rotary position embeddings (RoPE) in Llama's ``rotate_half`` convention, as one fused op.

For head dim D and h = D/2, position t and frequency i < h: ``inv_freq[i] = theta ** (-2i / D)``,
``cos[t] = cos(t * cat(inv_freq, inv_freq))`` and likewise sin, and

    rope(x) = x * cos + rotate_half(x) * sin,    rotate_half(x) = cat(-x[..., h:], x[..., :h])

which is what Hugging Face's Llama computes, so its q/k weights load without permutation.
"""
import numpy as np

from .. import kernels as K
from ..autograd.function import Function
from ..autograd.functions.nn import _c
from .module import Module


class RotaryQKV(Function):
    """The first ``rotated_heads`` heads of x (B, T, heads * D) rotated by cos, sin (T, D), the others
    copied: for a fused projection [q heads | k heads | v heads] that is q and k, so a rotary model keeps
    its one-op attention. The rotation is the `rotary_qkv_forward` kernel, its transpose
    `rotary_qkv_backward` (float16 through the float32 kernels, decided by the dispatch point)."""

    saved_inputs = ()

    def forward(self, qkv, cos=None, sin=None, rotated_heads=0):
        self.cos, self.sin, self.n = _c(cos), _c(sin), rotated_heads  # (T,D) each
        return K.get("rotary_qkv_forward", qkv.dtype)(_c(qkv), self.cos, self.sin, rotated_heads)  # (B,T,W)

    def backward(self, g):
        return K.get("rotary_qkv_backward", g.dtype)(_c(g), self.cos, self.sin, self.n)  # (B,T,W)


def apply_rotary(x, cos, sin):
    """Rotate ``x`` (B, H, T, D) by ``cos``/``sin`` arrays (T, D) (already sliced to x's positions)."""
    if cos.shape != (x.shape[-2], x.shape[-1]) or sin.shape != cos.shape:
        raise ValueError(f"apply_rotary: tables of shape {cos.shape} do not match x of shape {x.shape}")
    B, H, T, D = x.shape
    rows = x.permute(0, 2, 1, 3).reshape(B, T, H * D)  # (B,T,H*D): every head rotated
    out = RotaryQKV.apply(rows, cos=cos, sin=sin, rotated_heads=H)
    return out.reshape(B, T, H, D).permute(0, 2, 1, 3)  # (B,H,T,D)


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

    def _tables(self, start_pos, T, dtype):
        """cos, sin (T, D) for positions start_pos .. start_pos + T - 1, in dtype."""
        if start_pos + T > self.max_position:
            raise ValueError(f"rotary: positions up to {start_pos + T - 1} requested, but only "
                             f"{self.max_position} are tabulated (block_size)")
        src = (self._cos64, self._sin64) if dtype == np.float64 else (self.cos.data, self.sin.data)
        cos = src[0][start_pos:start_pos + T]  # (T, D)
        sin = src[1][start_pos:start_pos + T]
        if cos.dtype != dtype:
            cos, sin = cos.astype(dtype), sin.astype(dtype)
        return cos, sin

    def forward(self, x, start_pos=0):
        """Rotate x (B, H, T, D) as positions start_pos .. start_pos + T - 1."""
        cos, sin = self._tables(start_pos, x.shape[-2], x.dtype)
        return apply_rotary(x, cos, sin)

    def rotate_qkv(self, qkv, n_head, n_kv_head, start_pos=0):
        """Rotate the q and k heads of a fused projection qkv (B, T, (n_head + 2 n_kv_head) D), laid out
        [q heads | k heads | v heads] per position, as positions start_pos ..; the v heads pass unchanged."""
        B, T, W = qkv.shape
        if W != (n_head + 2 * n_kv_head) * self.head_dim:
            raise ValueError(f"rotate_qkv: qkv of shape {tuple(qkv.shape)} is not (B, T, (n_head + 2 n_kv_head) "
                             f"* head_dim) = (B, T, {(n_head + 2 * n_kv_head) * self.head_dim})")
        cos, sin = self._tables(start_pos, T, qkv.dtype)
        return RotaryQKV.apply(qkv, cos=cos, sin=sin, rotated_heads=n_head + n_kv_head)

    def extra_repr(self):
        return f"head_dim={self.head_dim}, max_position={self.max_position}, theta={self.theta}"
