"""GoldbullText.generate: the KV cache gives the same greedy tokens as full recomputation; sampling
options, seeds, eos and the block_size limit; the sampler on its own."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.text import GoldbullText, ModelConfig
from goldbull_np.text.generation import sample_next_token

VARIANTS = {
    "gpt2": dict(),
    "llama_gqa": dict(position="rope", norm="rmsnorm", mlp="swiglu", bias=False, n_head=4, n_kv_head=2),
}


def trained_model(variant, steps=30):
    """A tiny model trained briefly on a repeating pattern, so its logits are far from uniform."""
    gb.manual_seed(0)
    m = GoldbullText(ModelConfig.tiny(vocab_size=30, **VARIANTS[variant]))
    ids = np.tile(np.arange(30) % 7, (2, 1))[:, :32]
    labels = np.roll(ids, -1, 1)
    labels[:, -1] = -100
    opt = gb.optim.AdamW(m.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        m(ids, labels)[1].backward()
        opt.step()
    return m


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_greedy_with_cache_equals_without(variant):
    m = trained_model(variant)
    prompt = np.random.default_rng(1).integers(0, 30, (3, 5))
    with_cache = m.generate(prompt, 27, temperature=0)  # 5 + 27 = block_size
    without = m.generate(prompt, 27, temperature=0, use_cache=False)
    assert with_cache.shape == (3, 32) and with_cache.dtype == np.int64
    np.testing.assert_array_equal(with_cache.data, without.data)
    np.testing.assert_array_equal(with_cache.data[:, :5], prompt)
    # the cached path's logits equal a full forward over the generated sequence
    seq = with_cache.data
    full = m(seq[:, :-1])[0].data  # (3, 31, V)
    np.testing.assert_array_equal(full[:, 4:].argmax(-1), seq[:, 5:])


def test_sampling_seed_top_k_and_mode():
    m = trained_model("gpt2", steps=0)
    prompt = np.array([[1, 2, 3]])
    a = m.generate(prompt, 10, temperature=1.0, seed=7)
    b = m.generate(prompt, 10, temperature=1.0, seed=7)
    c = m.generate(prompt, 10, temperature=1.0, seed=8)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    np.testing.assert_array_equal(m.generate(prompt, 6, top_k=1, seed=3).data,
                                  m.generate(prompt, 6, temperature=0).data)
    assert m.training
    assert m.generate(np.array([4, 5]), 3, temperature=0).shape == (5,)  # 1-D in, 1-D out
    m.eval()
    m.generate(prompt, 2)
    assert not m.training  # the caller's mode is restored


def test_eos_stops_rows_and_pads():
    m = trained_model("gpt2")
    prompt = np.array([[0, 1, 2], [3, 4, 5]])
    greedy = m.generate(prompt, 8, temperature=0).data
    eos = int(greedy[0, 3])  # row 0 emits it first
    out = m.generate(prompt, 8, temperature=0, eos_token_id=eos).data
    assert out[0, 3] == eos and (out[0, 3:] == eos).all()
    row1 = list(greedy[1, 3:])
    L = out.shape[1]
    assert L == (3 + row1.index(eos) + 1 if eos in row1 else 11)  # stops once every row has finished
    np.testing.assert_array_equal(out[1], greedy[1, :L])


def test_cached_generation_feeds_one_token_per_step(monkeypatch):
    m = trained_model("gpt2", steps=0)
    seen = []
    orig = m.hidden_states

    def spy(ids, kv_cache=None):
        seen.append((np.shape(ids)[1], kv_cache is not None))
        return orig(ids, kv_cache)

    monkeypatch.setattr(m, "hidden_states", spy)
    m.generate(np.zeros((2, 20), np.int64), 5, temperature=0)
    assert seen == [(20, True)] + [(1, True)] * 4  # prefill, then one token against the cache
    seen.clear()
    m.generate(np.zeros((2, 20), np.int64), 3, temperature=0, use_cache=False)
    assert seen == [(20, False), (21, False), (22, False)]


def test_generation_past_block_size_and_long_prompt():
    m = trained_model("llama_gqa", steps=5)
    out = m.generate(np.array([[1, 2, 3]]), 70, temperature=0)  # 73 tokens > block_size 32
    assert out.shape == (1, 73)
    long_prompt = np.random.default_rng(0).integers(0, 30, (1, 50))
    a = m.generate(long_prompt, 1, temperature=0).data
    b = m.generate(long_prompt, 1, temperature=0, use_cache=False).data
    np.testing.assert_array_equal(a, b)  # both see the last block_size tokens
    with pytest.raises(ValueError, match="top_p"):
        m.generate(long_prompt, 1, top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        m.generate(long_prompt, 1, temperature=-1)


def test_sampler_filters():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]] * 4000))
    rng = np.random.default_rng(0)
    s = sample_next_token(logits, 1.0, rng=rng)
    freq = np.bincount(s, minlength=4) / len(s)
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.03)
    assert set(sample_next_token(logits, 1.0, top_k=2, rng=rng)) == {0, 1}
    assert set(sample_next_token(logits, 1.0, top_p=0.7, rng=rng)) == {0, 1}  # 0.5 < 0.7 <= 0.8
    assert set(sample_next_token(logits, 1.0, top_p=0.5, rng=rng)) == {0}
    hot = sample_next_token(logits, 100.0, rng=rng)
    assert np.bincount(hot, minlength=4).min() > 800  # high temperature: near uniform
    np.testing.assert_array_equal(sample_next_token(logits[:2], 0), [0, 0])
