"""BLEU/chrF against sacrebleu and ROUGE against rouge-score: the survey's oracle figures, then random
corpora (punctuation, numbers, unicode, emoji, empty lines, several references) compared to the packages."""
import random

import pytest

from goldbull_np.eval import bleu, chrf, rouge, rouge_l

SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS1 = ["The dog bit the man.", "It was not unexpected.", "The man bit him first."]
REFS2 = ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."]
PER_PRED = [list(x) for x in zip(REFS1, REFS2)]


def test_bleu_equals_the_sacrebleu_readme_oracle():
    b = bleu(SYS, PER_PRED)
    assert b.score == pytest.approx(48.530827009929865, abs=1e-9)
    assert b.counts == [14, 7, 5, 3] and b.totals == [17, 14, 11, 8]
    assert b.bp == pytest.approx(0.9428731438548749, abs=1e-12) and (b.sys_len, b.ref_len) == (17, 18)
    assert bleu(SYS, PER_PRED, tokenize="none").score == pytest.approx(49.192, abs=5e-4)
    assert chrf(SYS, PER_PRED).score == pytest.approx(59.72751782684763, abs=1e-9)
    assert float(b) == b.score


def test_rouge_equals_the_rouge_score_oracle():
    pytest.importorskip("nltk")  # the Porter stemmer (the eval extra)
    t = "The quick brown fox jumps over the lazy dog.\nIt was running."
    p = "The quick brown dog jumped on the lazy fox.\nIt runs fast."
    r = rouge([p], [t], use_stemmer=True)
    assert r["rouge1"].fmeasure == pytest.approx(0.8333333333333334, abs=1e-12)
    assert r["rouge2"].fmeasure == pytest.approx(0.2727272727272727, abs=1e-12)
    assert r["rougeL"].fmeasure == pytest.approx(2 / 3, abs=1e-12)
    assert r["rougeLsum"].fmeasure == pytest.approx(2 / 3, abs=1e-12)
    no_stem = rouge(["the cat was found under the bed"], ["the cat was under the bed"], use_stemmer=False)
    assert no_stem["rouge1"].fmeasure == pytest.approx(0.923077, abs=1e-6)
    assert rouge_l(["the cat was found under the bed"], ["the cat was under the bed"], False) == \
        pytest.approx(0.923077, abs=1e-6)


WORDS = ("the a dog cat sat on mat, man bit. 3.5 1-2 &amp; &quot;x&quot; ran running runs über café 😀 naïve "
         "quickly ( ) \" don't -- e.g. U.S. 100,000 <skipped> tab\tx").split(" ")


def _corpus(rng, n):
    def text():
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 14)))
        return s + rng.choice(["", "\n", " .", "\nSecond line here.", "  "])
    return [text() for _ in range(n)], [text() for _ in range(n)], [text() for _ in range(n)]


def test_bleu_and_chrf_equal_sacrebleu_on_random_corpora():
    sacrebleu = pytest.importorskip("sacrebleu")
    rng = random.Random(0)
    worst_bleu = worst_chrf = 0.0
    for _ in range(40):
        hyps, r1, r2 = _corpus(rng, rng.randint(1, 7))
        per = [[a, b] for a, b in zip(r1, r2)]
        for tok in ("13a", "none"):
            for smooth in ("exp", "none", "floor", "add-k"):
                for lc in (False, True):
                    ours = bleu(hyps, per, tokenize=tok, smooth_method=smooth, lowercase=lc)
                    ref = sacrebleu.corpus_bleu(hyps, [r1, r2], tokenize=tok, smooth_method=smooth, lowercase=lc)
                    worst_bleu = max(worst_bleu, abs(ours.score - ref.score))
                    assert ours.counts == ref.counts and ours.totals == ref.totals
        worst_chrf = max(worst_chrf, abs(chrf(hyps, per).score - sacrebleu.corpus_chrf(hyps, [r1, r2]).score),
                         abs(chrf(hyps, per, word_order=2, lowercase=True).score
                             - sacrebleu.CHRF(word_order=2, lowercase=True).corpus_score(hyps, [r1, r2]).score))
        # a single reference per prediction, given as strings
        assert bleu(hyps, r1).score == pytest.approx(sacrebleu.corpus_bleu(hyps, [r1]).score, abs=1e-9)
    assert worst_bleu <= 1e-9 and worst_chrf <= 1e-9


def test_a_variable_number_of_references_equals_sacrebleu_with_none_streams():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = ["the cat sat on the mat", "a dog ran", "hello world"]
    refs = [["the cat sat on a mat", "a cat sat"], ["the dog ran fast"], ["hello there world", "hi", "hello world"]]
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(3)]
    assert bleu(hyps, refs).score == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score, abs=1e-9)


def test_rouge_equals_rouge_score_on_random_corpora():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    rng = random.Random(1)
    types = ["rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum"]
    worst = 0.0
    for stem in (True, False):
        sc = rouge_scorer.RougeScorer(types, use_stemmer=stem)
        for _ in range(25):
            hyps, r1, r2 = _corpus(rng, rng.randint(1, 6))
            ours = rouge(hyps, r1, rouge_types=types, use_stemmer=stem)
            multi = rouge(hyps, [[a, b] for a, b in zip(r1, r2)], rouge_types=types, use_stemmer=stem)
            for k in types:
                single = [sc.score(t, p)[k] for t, p in zip(r1, hyps)]
                best = [sc.score_multi([a, b], p)[k] for a, b, p in zip(r1, r2, hyps)]
                for i in range(3):
                    worst = max(worst, abs(ours[k][i] - sum(s[i] for s in single) / len(hyps)),
                                abs(multi[k][i] - sum(s[i] for s in best) / len(hyps)))
    assert worst <= 1e-12


def test_rouge_lsum_splits_on_newlines_and_equals_rouge_l_without_them():
    r = rouge(["a b c d"], ["a b c d"], use_stemmer=False)
    assert r["rougeL"] == r["rougeLsum"]
    r = rouge(["c d\na b"], ["a b\nc d"], use_stemmer=False)
    assert r["rougeLsum"].fmeasure == 1.0 and r["rougeL"].fmeasure < 1.0


def test_unicode_emoji_and_empty_texts_score_without_error():
    assert bleu(["😀 café ok fine"], ["😀 café ok fine"]).score == pytest.approx(100.0)
    assert bleu(["😀 café"], ["😀 café"]).score == 0.0  # no 3-gram: sacrebleu's corpus BLEU is 0 (eff:no)
    assert bleu([""], ["the cat"]).score == 0.0
    assert chrf(["über 😀"], ["über 😀"]).score == pytest.approx(100.0)
    r = rouge(["😀😀"], ["😀"], use_stemmer=False)  # no [a-z0-9] token on either side
    assert r["rouge1"].fmeasure == 0.0
