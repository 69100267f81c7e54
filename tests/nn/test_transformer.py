"""Causal self-attention (fused QKV, grouped-query, rotary), the KV cache and TransformerBlock
against NumPy references; gradients through float64 gradcheck."""
import math

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn


def rope_ref(x, theta, start=0):
    """Hugging Face Llama's rotary embedding: x * cos + rotate_half(x) * sin."""
    T, D = x.shape[-2:]
    inv_freq = 1.0 / theta ** (np.arange(0, D, 2) / D)
    emb = np.concatenate([np.outer(np.arange(start, start + T), inv_freq)] * 2, axis=-1)
    x1, x2 = x[..., :D // 2], x[..., D // 2:]
    return x * np.cos(emb) + np.concatenate([-x2, x1], axis=-1) * np.sin(emb)


def attention_ref(attn, x, theta=None):
    B, T, C = x.shape
    H, Hkv, D = attn.n_head, attn.n_kv_head, attn.head_dim
    qkv = x @ attn.qkv_proj.weight.data.T.astype(np.float64)
    if attn.qkv_proj.bias is not None:
        qkv = qkv + attn.qkv_proj.bias.data
    qkv = qkv.reshape(B, T, H + 2 * Hkv, D).transpose(0, 2, 1, 3)
    q, k, v = qkv[:, :H], qkv[:, H:H + Hkv], qkv[:, H + Hkv:]
    if theta is not None:
        q, k = rope_ref(q, theta), rope_ref(k, theta)
    k, v = np.repeat(k, H // Hkv, axis=1), np.repeat(v, H // Hkv, axis=1)  # query head h uses kv head h // group
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)
    s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    y = (p @ v).transpose(0, 2, 1, 3).reshape(B, T, H * D)
    out = y @ attn.o_proj.weight.data.T
    return out + attn.o_proj.bias.data if attn.o_proj.bias is not None else out


@pytest.mark.parametrize("n_kv_head,rope,bias", [(4, False, True), (2, True, False), (1, True, True)])
def test_attention_forward_matches_reference(n_kv_head, rope, bias):
    gb.manual_seed(0)
    rot = nn.RotaryEmbedding(4, 16, theta=500.0) if rope else None
    attn = nn.CausalSelfAttention(16, 4, n_kv_head, bias=bias, rotary=rot)
    assert attn.qkv_proj.weight.shape == ((4 + 2 * n_kv_head) * 4, 16)
    x = gb.randn(2, 7, 16)
    np.testing.assert_allclose(attn(x).data, attention_ref(attn, x.data.astype(np.float64), 500.0 if rope else None),
                               rtol=1e-4, atol=1e-5)


def test_rotary_matches_llama_formula_and_grad():
    rot = nn.RotaryEmbedding(6, 10, theta=100.0).double()
    x = gb.tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 6)), requires_grad=True)
    np.testing.assert_allclose(rot(x, 3).data, rope_ref(x.data, 100.0, start=3), rtol=1e-12)
    assert gb.gradcheck(lambda t: rot(t, 2), [x])
    assert rot.state_dict() == {}  # tables are non-persistent
    with pytest.raises(ValueError, match="tabulated"):
        rot(x, 8)
    with pytest.raises(ValueError, match="even"):
        nn.RotaryEmbedding(5, 4)


@pytest.mark.parametrize("n_head,n_kv_head,start", [(2, 2, 0), (3, 1, 4), (4, 2, 1)])
def test_rotate_qkv_matches_per_head_rotary_and_grad(n_head, n_kv_head, start):
    """rotate_qkv on the fused projection == splitting it, rotating q and k, and concatenating back."""
    rot = nn.RotaryEmbedding(6, 10, theta=100.0).double()
    B, T, D = 2, 5, 6
    rng = np.random.default_rng(n_head)
    qkv = gb.tensor(rng.standard_normal((B, T, (n_head + 2 * n_kv_head) * D)), requires_grad=True)
    heads = qkv.data.reshape(B, T, -1, D).transpose(0, 2, 1, 3)  # (B, H+2Hkv, T, D)
    want = np.concatenate([rope_ref(heads[:, :n_head + n_kv_head], 100.0, start), heads[:, n_head + n_kv_head:]], 1)
    got = rot.rotate_qkv(qkv, n_head, n_kv_head, start)
    np.testing.assert_allclose(got.data, want.transpose(0, 2, 1, 3).reshape(B, T, -1), rtol=1e-12, atol=1e-12)
    assert gb.gradcheck(lambda t: rot.rotate_qkv(t, n_head, n_kv_head, start), [qkv])
    with pytest.raises(ValueError, match=r"qkv of shape \(2, 5, 18\)"):
        rot.rotate_qkv(gb.zeros(2, 5, 18), 4, 2)
    with pytest.raises(ValueError, match="tabulated"):
        rot.rotate_qkv(qkv, n_head, n_kv_head, 6)


@pytest.mark.parametrize("n_kv_head,rope", [(2, False), (1, True)])
def test_attention_gradcheck(n_kv_head, rope):
    gb.manual_seed(2)
    attn = nn.CausalSelfAttention(8, 2, n_kv_head, rotary=nn.RotaryEmbedding(4, 8) if rope else None).double()
    x = gb.tensor(np.random.default_rng(1).standard_normal((2, 3, 8)), requires_grad=True)
    assert gb.gradcheck(lambda t, *ps: attn(t), [x] + list(attn.parameters()))


def test_attention_validation():
    with pytest.raises(ValueError, match="divisible"):
        nn.CausalSelfAttention(10, 3)
    with pytest.raises(ValueError, match="multiple"):
        nn.CausalSelfAttention(12, 4, 3)


@pytest.mark.parametrize("mlp,norm,rope", [("gelu", "layernorm", False), ("swiglu", "rmsnorm", True)])
def test_kv_cache_matches_full_forward(mlp, norm, rope):
    gb.manual_seed(3)
    rot = nn.RotaryEmbedding(8, 32) if rope else None
    block = nn.TransformerBlock(32, 4, 2, mlp=mlp, norm=norm, rotary=rot)
    x = gb.randn(2, 9, 32)
    full = block(x).data
    cache = nn.LayerKVCache(2, 2, 32, 8)
    with gb.no_grad():
        parts = [block(x[:, :4], cache)] + [block(x[:, t:t + 1], cache) for t in range(4, 9)]
    assert cache.pos == 9
    np.testing.assert_allclose(np.concatenate([p.data for p in parts], axis=1), full, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="overflow"):
        cache.append(np.zeros((2, 2, 24, 8), np.float32), np.zeros((2, 2, 24, 8), np.float32))


def test_transformer_block_reference_and_gradcheck():
    gb.manual_seed(4)
    block = nn.TransformerBlock(8, 2, mlp="gelu", norm="layernorm", mlp_hidden=12)
    assert [n for n, _ in block.named_children()] == ["attn_norm", "attn", "mlp_norm", "mlp"]
    x = gb.randn(2, 5, 8)
    xd = x.data.astype(np.float64)

    def ln(m, h):
        return (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * m.weight.data + m.bias.data

    h = xd + attention_ref(block.attn, ln(block.attn_norm, xd))
    expect = h + block.mlp(gb.tensor(ln(block.mlp_norm, h).astype(np.float32))).data
    np.testing.assert_allclose(block(x).data, expect, rtol=1e-4, atol=1e-5)
    small = nn.TransformerBlock(4, 2, 1, mlp="swiglu", norm="rmsnorm", mlp_hidden=4, bias=False,
                                rotary=nn.RotaryEmbedding(2, 4)).double()
    xs = gb.tensor(np.random.default_rng(5).standard_normal((1, 3, 4)), requires_grad=True)
    assert gb.gradcheck(lambda t, *ps: small(t), [xs] + list(small.parameters()))


def test_block_dropout_only_in_training():
    gb.manual_seed(5)
    block = nn.TransformerBlock(8, 2, dropout=0.5)
    x = gb.randn(1, 4, 8)
    assert not np.allclose(block(x).data, block(x).data)
    block.eval()
    np.testing.assert_array_equal(block(x).data, block(x).data)
