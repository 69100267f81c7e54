"""Transformer pieces: MLP (GELU or SwiGLU), causal multi-head self-attention with a fused QKV
projection, grouped-query K/V heads, optional rotary embeddings and a KV cache, and the pre-norm
TransformerBlock. Legend: B batch, T new tokens, S cached + new tokens, C = n_embd,
H query heads, Hkv key/value heads, D head dim (C // H).
"""
import math

import numpy as np

from ..autograd.functions.nn import Attention
from ..autograd.tensor import Tensor
from . import functional as F
from .layers import GELU, Dropout, LayerNorm, Linear, RMSNorm, SiLU
from .module import Module


def make_norm(kind, n_embd, bias=True, eps=1e-5):
    """``"layernorm"`` -> LayerNorm(n_embd, eps, bias=bias); ``"rmsnorm"`` -> RMSNorm(n_embd, eps)."""
    if kind == "layernorm":
        return LayerNorm(n_embd, eps=eps, bias=bias)
    if kind == "rmsnorm":
        return RMSNorm(n_embd, eps=eps)
    raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {kind!r}")


class MLP(Module):
    """The feed-forward block.

    ``kind="gelu"``:   down_proj(gelu(up_proj(x)))                      (GPT-2)
    ``kind="swiglu"``: down_proj(silu(gate_proj(x)) * up_proj(x))       (Llama)

    Args:
        n_embd: C.
        hidden: the inner size (default 4 * C).
        kind: "gelu" or "swiglu".
        bias: biases on the projections.
        gelu_approximate: "none" (exact) or "tanh" (GPT-2's "gelu_new").
    """

    def __init__(self, n_embd, hidden=None, kind="gelu", bias=True, gelu_approximate="none"):
        super().__init__()
        if kind not in ("gelu", "swiglu"):
            raise ValueError(f"mlp kind must be 'gelu' or 'swiglu', got {kind!r}")
        hidden = 4 * n_embd if hidden is None else int(hidden)
        self.kind = kind
        if kind == "swiglu":
            self.gate_proj = Linear(n_embd, hidden, bias=bias)
        self.up_proj = Linear(n_embd, hidden, bias=bias)
        self.down_proj = Linear(hidden, n_embd, bias=bias)
        self.act = SiLU() if kind == "swiglu" else GELU(gelu_approximate)

    def forward(self, x):
        if self.kind == "swiglu":
            h = self.act(self.gate_proj(x)) * self.up_proj(x)  # (B,T,hidden)
            return self.down_proj(h)  # (B,T,C)
        return self.from_up(self.up_proj(x))

    def from_up(self, h, residual=None):
        """The GELU MLP from up_proj's output h (B, T, hidden) to (B, T, C); ``residual`` (B, T, C) or None:
        ``residual + mlp`` (a block's stream), added in down_proj's GEMM epilogue where the op is fused."""
        if type(self.act) is GELU and type(self.down_proj) is Linear:
            # one fused op for gelu + down_proj: it keeps up_proj's output but not its GELU for
            # backward (recomputed there), so the MLP holds one (B,T,hidden) activation, not two
            d = self.down_proj
            return F.gelu_linear(h, d.weight, d.bias, self.act.approximate, residual=residual)  # (B,T,C)
        m = self.down_proj(self.act(h))  # a wrapped (LoRA) down_proj or a replaced activation
        return m if residual is None else residual + m


class LayerKVCache:
    """Preallocated keys/values of one attention layer, written in place.

    Attributes:
        k, v: arrays (B, Hkv, max_seq_len, D); positions [0, pos) hold the cached tokens.
        pos: number of positions filled.
    """

    def __init__(self, batch_size, n_kv_head, max_seq_len, head_dim, dtype=np.float32):
        shape = (batch_size, n_kv_head, max_seq_len, head_dim)
        self.k = np.zeros(shape, dtype=dtype)
        self.v = np.zeros(shape, dtype=dtype)
        self.pos = 0

    @property
    def max_seq_len(self):
        return self.k.shape[2]

    def append(self, k, v):
        """Write k, v (B, Hkv, T, D) at positions [pos, pos + T) and advance ``pos``."""
        T = k.shape[2]
        if self.pos + T > self.max_seq_len:
            raise ValueError(f"KV cache overflow: {self.pos} cached + {T} new tokens > {self.max_seq_len}")
        self.k[:, :, self.pos:self.pos + T] = k
        self.v[:, :, self.pos:self.pos + T] = v
        self.pos += T


class KVCache:
    """One LayerKVCache per layer (index it with the layer number).

    Args:
        n_layer, batch_size, n_kv_head, max_seq_len, head_dim: buffer sizes.
        dtype: the model's dtype.
    """

    def __init__(self, n_layer, batch_size, n_kv_head, max_seq_len, head_dim, dtype=np.float32):
        self.layers = [LayerKVCache(batch_size, n_kv_head, max_seq_len, head_dim, dtype) for _ in range(n_layer)]

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    @property
    def pos(self):
        """Number of tokens cached (the position of the next token)."""
        return self.layers[0].pos if self.layers else 0

    def reset(self):
        for layer in self.layers:
            layer.pos = 0


class CausalSelfAttention(Module):
    """Causal multi-head self-attention.

    ``qkv_proj`` is one Linear(C, (H + 2 * Hkv) * D) whose output columns are [q heads | k heads |
    v heads]; ``o_proj`` is Linear(H * D, C). With ``n_kv_head < n_head`` each K/V head serves
    ``n_head // n_kv_head`` query heads (grouped-query attention).

    Args:
        n_embd: C.
        n_head: H.
        n_kv_head: Hkv (default H).
        bias: biases on both projections.
        rotary: a RotaryEmbedding applied to q and k (None: no rotary).
        head_dim: D (default C / H); H * D need not be C (o_proj maps H * D back to C).
    """

    def __init__(self, n_embd, n_head, n_kv_head=None, bias=True, rotary=None, head_dim=None):
        super().__init__()
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        if head_dim is None and n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head}) unless head_dim is given")
        if n_head % n_kv_head:
            raise ValueError(f"n_head ({n_head}) must be a multiple of n_kv_head ({n_kv_head})")
        self.n_embd, self.n_head, self.n_kv_head = n_embd, n_head, n_kv_head
        self.head_dim = n_embd // n_head if head_dim is None else int(head_dim)
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv_proj = Linear(n_embd, (n_head + 2 * n_kv_head) * self.head_dim, bias=bias)
        self.o_proj = Linear(n_head * self.head_dim, n_embd, bias=bias)
        self.rotary = rotary

    def forward(self, x, kv_cache=None):
        """Args:
            x: (B, T, C).
            kv_cache: a LayerKVCache: x holds the tokens at positions [pos, pos + T); their keys and
                values are appended and queries attend to every cached position. Inference only
                (no gradient flows into cached keys/values).
        Returns:
            (B, T, C).
        """
        return self.from_qkv(self.qkv_proj(x), kv_cache)

    def from_qkv(self, qkv, kv_cache=None, residual=None):
        """The attention from qkv_proj's output (B, T, (H + 2 Hkv) D) to (B, T, C); as ``forward``.
        ``residual`` (B, T, C) or None: ``residual + attention`` (a block's stream), added in o_proj's epilogue."""
        B, T, _ = qkv.shape
        H, Hkv, D = self.n_head, self.n_kv_head, self.head_dim
        start = 0 if kv_cache is None else kv_cache.pos
        if self.rotary is not None:
            qkv = self.rotary.rotate_qkv(qkv, H, Hkv, start)  # (B,T,(H+2Hkv)D), q and k rotated
        if kv_cache is None:  # training / full-sequence: one fused op reads q, k, v inside qkv
            y = F.causal_self_attention_qkv(qkv, H, Hkv, self.scale)  # (B,T,C)
            return self.project_out(y, residual)
        qkv = qkv.reshape(B, T, H + 2 * Hkv, D).permute(0, 2, 1, 3)  # (B, H+2Hkv, T, D)
        q, k, v = qkv.split([H, Hkv, Hkv], dim=1)  # (B,H,T,D), (B,Hkv,T,D), (B,Hkv,T,D)
        kv_cache.append(k.data, v.data)
        # The whole preallocated buffer is passed (contiguous: no copy); keys past the filled
        # positions are excluded by the bottom-right causal mask s <= t + start, and the kernel
        # stops at that bound, so the cost follows the filled length only.
        kc = Tensor._make(kv_cache.k, False, None)  # (B,Hkv,L,D)
        vc = Tensor._make(kv_cache.v, False, None)
        y = Attention.apply(q, kc, vc, scale=self.scale, causal_offset=start)  # (B,H,T,D)
        y = y.transpose(1, 2).reshape(B, T, H * D)  # (B,T,C)
        return self.project_out(y, residual)

    def project_out(self, y, residual=None):
        """``o_proj(y)`` (B, T, C), or ``residual + o_proj(y)`` as one op (the add in the GEMM's epilogue) when
        o_proj is the plain Linear."""
        if residual is None:
            return self.o_proj(y)
        if type(self.o_proj) is Linear:
            return F.linear(y, self.o_proj.weight, self.o_proj.bias, residual=residual)
        return residual + self.o_proj(y)  # a wrapped (LoRA) projection

    def extra_repr(self):
        return f"n_head={self.n_head}, n_kv_head={self.n_kv_head}, head_dim={self.head_dim}"


class TransformerBlock(Module):
    """Pre-norm block: ``x + drop(attn(attn_norm(x)))`` then ``x + drop(mlp(mlp_norm(x)))``.

    Args:
        n_embd, n_head, n_kv_head: attention sizes.
        mlp: "gelu" or "swiglu"; mlp_hidden: its inner size (default 4 * C).
        norm: "layernorm" or "rmsnorm"; norm_eps: its eps.
        bias: biases in projections and LayerNorms.
        dropout: residual dropout probability.
        rotary: a RotaryEmbedding (shared between blocks) or None.
        gelu_approximate: "none" or "tanh".
        head_dim: the attention's per-head width (default n_embd // n_head).
    """

    def __init__(self, n_embd, n_head, n_kv_head=None, mlp="gelu", mlp_hidden=None, norm="layernorm",
                 bias=True, dropout=0.0, norm_eps=1e-5, rotary=None, gelu_approximate="none", head_dim=None):
        super().__init__()
        self.attn_norm = make_norm(norm, n_embd, bias, norm_eps)
        self.attn = CausalSelfAttention(n_embd, n_head, n_kv_head, bias=bias, rotary=rotary, head_dim=head_dim)
        self.mlp_norm = make_norm(norm, n_embd, bias, norm_eps)
        self.mlp = MLP(n_embd, mlp_hidden, kind=mlp, bias=bias, gelu_approximate=gelu_approximate)
        self.dropout = Dropout(dropout) if dropout > 0 else None

    def forward(self, x, kv_cache=None):
        """x (B, T, C) -> (B, T, C); ``kv_cache`` is this layer's LayerKVCache or None."""
        if self.dropout is None:  # each residual add in its projection's GEMM epilogue (same values)
            x = self.attention(x, kv_cache, residual=x)  # (B,T,C)
            return self.feed_forward(x, residual=x)
        a = self.attention(x, kv_cache)  # (B,T,C)
        x = x + self.dropout(a)
        m = self.feed_forward(x)  # (B,T,C)
        return x + self.dropout(m)

    def attention(self, x, kv_cache=None, residual=None):
        """``attn(attn_norm(x))`` (B, T, C), with the norm fused into qkv_proj where it can be;
        ``residual`` (B, T, C) or None: ``residual + attn(...)``."""
        return self.attn.from_qkv(_norm_then_linear(self.attn_norm, self.attn.qkv_proj, x), kv_cache, residual)

    def feed_forward(self, x, residual=None):
        """``mlp(mlp_norm(x))`` (B, T, C), with the norm fused into up_proj where it can be;
        ``residual`` (B, T, C) or None: ``residual + mlp(...)``."""
        if self.mlp.kind != "gelu":
            m = self.mlp(self.mlp_norm(x))
            return m if residual is None else residual + m
        return self.mlp.from_up(_norm_then_linear(self.mlp_norm, self.mlp.up_proj, x), residual)


def _norm_then_linear(norm, proj, x):
    """``proj(norm(x))``: one LayerNormLinear op (the normalised x is recomputed in backward, not kept)
    when both are the plain modules; any other pair (RMSNorm, a LoRA-wrapped projection) composes."""
    if (type(norm) is LayerNorm and norm.weight is not None and len(norm.normalized_shape) == 1
            and type(proj) is Linear):
        return F.layer_norm_linear(x, norm.weight, norm.bias, proj.weight, proj.bias, norm.eps)
    return proj(norm(x))
