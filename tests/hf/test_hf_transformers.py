"""Optional: logits of checkpoints written by transformers' own GPT2LMHeadModel / LlamaForCausalLM
(save_pretrained, safetensors) against transformers' forward. Skipped without transformers and torch."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from goldbull_np.text import GoldbullText  # noqa: E402


def _compare(hf_model, tmp_path, vocab):
    hf_model.eval()
    hf_model.save_pretrained(tmp_path, safe_serialization=True)
    ids = np.random.default_rng(0).integers(0, vocab, (2, 12))
    with torch.no_grad():
        want = hf_model(torch.from_numpy(ids)).logits.numpy()
    ours = GoldbullText.from_pretrained(tmp_path)(ids)[0].data
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4)
    assert np.abs(want).max() > 0.1


def test_gpt2_matches_transformers(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=97, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                                  initializer_range=0.2)
    _compare(transformers.GPT2LMHeadModel(cfg), tmp_path, 97)


@pytest.mark.parametrize("tied", [False, True])
def test_llama_matches_transformers(tmp_path, tied):
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=101, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   rope_theta=10000.0, tie_word_embeddings=tied, initializer_range=0.2)
    _compare(transformers.LlamaForCausalLM(cfg), tmp_path, 101)
