"""A short PyTorch GPT used only as the comparison side of benchmarks (never imported by the package).

Parameter names mirror goldbull_np.text.GoldbullText (embed_tokens, embed_positions, layers.{i}.attn_norm,
attn.qkv_proj, attn.o_proj, mlp_norm, mlp.up_proj, mlp.down_proj, norm, lm_head) so weights copy across
by key. Architecture: pre-norm LayerNorm, learned positions, fused QKV, GELU MLP (4x), tied head; optionally
rotary positions (Llama's rotate_half, as GoldbullText's position="rope") and a SwiGLU MLP (mlp="swiglu").
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def rotary_tables(T, D, theta=10000.0):
    """cos, sin (T, D) of Llama's rotary embedding."""
    inv_freq = theta ** (-torch.arange(0, D, 2, dtype=torch.float32) / D)  # (D/2,)
    angles = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)    # (T, D/2)
    angles = torch.cat([angles, angles], dim=-1)                            # (T, D)
    return angles.cos(), angles.sin()


def apply_rotary(x, cos, sin):
    """x (B, H, T, D) * cos + rotate_half(x) * sin."""
    h = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., h:], x[..., :h]], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, n_embd, n_head, bias, rope=False):
        super().__init__()
        self.n_head = n_head
        self.rope = rope
        self.qkv_proj = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.o_proj = nn.Linear(n_embd, n_embd, bias=bias)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv_proj(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.rope:
            cos, sin = rotary_tables(T, C // self.n_head)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, n_embd, bias, kind="gelu", hidden=None):
        super().__init__()
        hidden = hidden or 4 * n_embd
        self.kind = kind
        if kind == "swiglu":
            self.gate_proj = nn.Linear(n_embd, hidden, bias=bias)
        self.up_proj = nn.Linear(n_embd, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, n_embd, bias=bias)

    def forward(self, x):
        if self.kind == "swiglu":
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(F.gelu(self.up_proj(x)))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, bias, rope=False, mlp="gelu", mlp_hidden=None):
        super().__init__()
        self.attn_norm = nn.LayerNorm(n_embd, bias=bias)
        self.attn = Attention(n_embd, n_head, bias, rope)
        self.mlp_norm = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, bias, mlp, mlp_hidden)

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class TorchGPT(nn.Module):
    def __init__(self, vocab_size, n_layer, n_head, n_embd, block_size, bias=True, position="learned", mlp="gelu",
                 mlp_hidden=None):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, n_embd)
        self.embed_positions = nn.Embedding(block_size, n_embd) if position == "learned" else None
        self.layers = nn.ModuleList([Block(n_embd, n_head, bias, position == "rope", mlp, mlp_hidden)
                                     for _ in range(n_layer)])
        self.norm = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.embed_tokens.weight  # tied
        for name, p in self.named_parameters():
            if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.embed_tokens(idx)
        if self.embed_positions is not None:
            x = x + self.embed_positions(torch.arange(T))
        for block in self.layers:
            x = block(x)
        logits = self.lm_head(self.norm(x))
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100)
        return logits, loss
