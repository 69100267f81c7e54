"""Sliding-window perplexity: every token scored once with its window's context, equal to exp(mean loss)
of an explicit per-token loop; conditional perplexity scores only the outputs."""
import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from eval_bert_fixtures import tiny_lm_checkpoint  # noqa: E402

from goldbull_np.eval import perplexity, perplexity_of_ids  # noqa: E402
from goldbull_np.eval.perplexity import windows  # noqa: E402


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return tiny_lm_checkpoint(tmp_path_factory.mktemp("lm"), block_size=16)


def _explicit(model, doc, W, S, score_from=1):
    """One forward per scored token: the context is the window that first reaches it."""
    import goldbull_np as gb
    nll, n = 0.0, 0
    b = 0
    prev = score_from
    with gb.no_grad():
        while True:
            e = min(b + W, len(doc) - 1)
            for j in range(max(prev, b + 1), e + 1):  # target index j, context doc[b:j]
                logits, _ = model(np.asarray([doc[b:j]]))
                z = logits.data[0, -1].astype(np.float64)
                nll += float(np.log(np.exp(z - z.max()).sum()) + z.max() - z[doc[j]])
                n += 1
            prev = max(prev, e + 1)
            if e == len(doc) - 1:
                return nll, n
            b += S


@pytest.mark.parametrize("W, S", [(16, 8), (16, 16), (16, 1), (8, 3)])
def test_sliding_window_equals_an_explicit_loop(lm, W, S):
    model, tok = lm
    rng = np.random.default_rng(W * 100 + S)
    docs = [rng.integers(0, 256, n).tolist() for n in (1, 2, 5, 16, 17, 40)]
    r = perplexity_of_ids(model, docs, max_length=W, stride=S, batch_size=3)
    nll, n = map(sum, zip(*[_explicit(model, d, W, S) for d in docs if len(d) > 1]))
    assert r.tokens == n == sum(len(d) - 1 for d in docs)
    assert r.loss == pytest.approx(nll / n, rel=1e-6)
    assert r.perplexity == pytest.approx(math.exp(nll / n), rel=1e-6)


def test_windows_score_each_token_once_with_enough_context():
    for L in range(0, 60):
        for W, S in ((16, 8), (10, 3), (5, 5), (7, 1)):
            seen = []
            for b, e, first in windows(L, W, S):
                assert e - b <= W
                for j in range(first, e + 1):
                    seen.append(j)
                    if b > 0:
                        assert j - b >= W - S  # context of at least max_length - stride tokens
            assert seen == list(range(1, L))


def test_string_api_and_conditional_perplexity(lm):
    model, tok = lm
    text = "hello world, this text is longer than the sixteen-token window of the model"
    r = perplexity(model, [text], tok)
    assert r.tokens == len(tok.encode(text)) - 1
    c = perplexity(model, ["world"], tok, prompts=["hello "])
    assert c.tokens == len(tok.encode("world"))
    nll, n = _explicit(model, tok.encode("hello ") + tok.encode("world"), 16, 8, score_from=len("hello "))
    assert c.loss == pytest.approx(nll / n, rel=1e-6)


def test_bad_perplexity_input(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="no token to score"):
        perplexity(model, ["a"], tok)
    with pytest.raises(ValueError, match="stride"):
        perplexity(model, ["abc"], tok, stride=17)
    with pytest.raises(TypeError, match=r"texts\[0\] is None"):
        perplexity(model, [None], tok)
    with pytest.raises(ValueError, match="2 prompts but 1 texts"):
        perplexity(model, ["abc"], tok, prompts=["a", "b"])
