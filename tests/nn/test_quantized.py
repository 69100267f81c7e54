"""QuantizedLinear and quantize_model: int8 per-channel weights through the int8 kernel, int4 group-wise
packing that round-trips, a quantised GoldbullText whose logits stay close to float32's."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn
from goldbull_np.nn.quantized import (QuantizedLinear, dequantize_int4, quantize_int4, quantize_int8,
                                      quantize_model)
from goldbull_np.text import GoldbullText, ModelConfig


def test_int8_weights_are_symmetric_per_output_channel():
    w = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [100.0, 1.0, -50.0]], np.float32)
    q, s = quantize_int8(w)
    np.testing.assert_allclose(s, [2 / 127, 1.0, 100 / 127], rtol=1e-6)
    assert q.dtype == np.int8 and q[0, 1] == -127 and q[2, 0] == 127 and not q[1].any()
    np.testing.assert_allclose(q * s[:, None], w, atol=np.max(s) / 2 + 1e-6)


@pytest.mark.parametrize("K, group", [(64, 32), (37, 8), (5, 32)])
def test_int4_packs_two_values_per_byte_and_unpacks_within_half_a_step(K, group):
    rng = np.random.default_rng(K)
    w = rng.standard_normal((6, K)).astype(np.float32)
    packed, scale = quantize_int4(w, group)
    assert packed.dtype == np.uint8 and packed.shape == (6, -(-K // 2)) and scale.shape == (6, -(-K // group))
    back = dequantize_int4(packed, scale, K, group)
    step = np.repeat(scale, group, axis=1)[:, :K]
    assert np.all(np.abs(back - w) <= step / 2 + 1e-6)
    assert np.all(np.abs(np.rint(back / step)) <= 7)


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_linear_is_close_to_the_float_linear(bits):
    gb.manual_seed(0)
    lin = nn.Linear(64, 48)
    q = QuantizedLinear.from_linear(lin, bits=bits, group_size=16)
    x = gb.randn(3, 5, 64)
    want, got = lin(x).data, q(x).data
    assert got.shape == (3, 5, 48) and got.dtype == np.float32
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert rel < (0.02 if bits == 8 else 0.15), rel
    assert q.qweight.data.nbytes == (64 * 48 if bits == 8 else 32 * 48)


def test_a_quantized_model_stays_close_and_keeps_the_tied_head_float():
    gb.manual_seed(0)
    m = GoldbullText(ModelConfig.tiny(vocab_size=50, n_embd=64))
    m.eval()
    ids = np.random.default_rng(0).integers(0, 50, (2, 16))
    want = m(ids)[0].data
    cfg = quantize_model(m, bits=8)
    assert cfg["bits"] == 8 and "lm_head" not in cfg["modules"] and "layers.0.attn.qkv_proj" in cfg["modules"]
    assert type(m.lm_head) is nn.Linear and m.lm_head.weight is m.embed_tokens.weight
    got = m(ids)[0].data
    assert np.abs(got - want).max() / np.abs(want).max() < 0.03
    assert np.mean(np.argmax(got, -1) == np.argmax(want, -1)) > 0.9
    with pytest.raises(ValueError, match="not quantizable Linears"):
        quantize_model(m, modules=["layers.0.nope"])
