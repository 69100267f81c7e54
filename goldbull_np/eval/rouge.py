"""ROUGE-N, ROUGE-L and ROUGE-Lsum, equal to Google's ``rouge-score`` package (``RougeScorer``).

Tokens are rouge-score's: lowercase, every run of characters outside [a-z0-9] is a separator, and
with ``use_stemmer`` tokens longer than 3 characters go through NLTK's Porter stemmer (the one
rouge-score uses; nltk is the optional dependency of the ``eval`` extra). ROUGE-L is the LCS of the
two token sequences; ROUGE-Lsum is the summary-level union LCS over sentences split on newlines
("\\n"; with no newline it equals ROUGE-L). Several references: per metric the reference with the
highest F1 (rouge-score's ``score_multi``). The corpus figure is the mean of the per-pair scores.
"""
import re
from collections import Counter, namedtuple

from ._inputs import check_pairs, require

Score = namedtuple("Score", ["precision", "recall", "fmeasure"])
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_VALID = re.compile(r"^[a-z0-9]+$")
_STEMMER = None


def _stemmer():
    global _STEMMER
    if _STEMMER is None:
        porter = require("nltk.stem.porter", "eval", "ROUGE with use_stemmer=True")
        _STEMMER = porter.PorterStemmer()
    return _STEMMER


def tokenize(text, use_stemmer=False):
    """rouge-score's default tokenizer."""
    tokens = _NON_ALNUM.sub(" ", text.lower()).split()
    if use_stemmer:
        st = _stemmer()
        tokens = [st.stem(t) if len(t) > 3 else t for t in tokens]
    return [t for t in tokens if _VALID.match(t)]


def _fmeasure(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _score_ngrams(t, p):
    hits = sum(min(c, p[g]) for g, c in t.items())
    prec = hits / max(sum(p.values()), 1)
    rec = hits / max(sum(t.values()), 1)
    return Score(prec, rec, _fmeasure(prec, rec))


def _lcs_table(ref, can):
    prev_rows = [[0] * (len(can) + 1)]
    for i in range(1, len(ref) + 1):
        prev, row, r = prev_rows[-1], [0] * (len(can) + 1), ref[i - 1]
        for j in range(1, len(can) + 1):
            row[j] = prev[j - 1] + 1 if r == can[j - 1] else (prev[j] if prev[j] > row[j - 1] else row[j - 1])
        prev_rows.append(row)
    return prev_rows


def _lcs_indices(ref, can):
    """Indices into ``ref`` of one LCS (rouge-score's backtrack, so ties resolve as it does)."""
    t = _lcs_table(ref, can)
    i, j, out = len(ref), len(can), []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
        elif t[i][j - 1] > t[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return out[::-1]


def _score_lcs(t, p):
    if not t or not p:
        return Score(0.0, 0.0, 0.0)
    n = _lcs_table(t, p)[-1][-1]
    prec, rec = n / len(p), n / len(t)
    return Score(prec, rec, _fmeasure(prec, rec))


def _score_lsum(t_sents, p_sents):
    if not t_sents or not p_sents:
        return Score(0.0, 0.0, 0.0)
    m, n = sum(map(len, t_sents)), sum(map(len, p_sents))
    if not n or not m:
        return Score(0.0, 0.0, 0.0)
    cnt_t, cnt_p = Counter(), Counter()
    for s in t_sents:
        cnt_t.update(s)
    for s in p_sents:
        cnt_p.update(s)
    hits = 0
    for r in t_sents:
        union = sorted(set().union(*[_lcs_indices(r, c) for c in p_sents]))
        for tok in (r[i] for i in union):
            if cnt_p[tok] > 0 and cnt_t[tok] > 0:
                hits += 1
                cnt_p[tok] -= 1
                cnt_t[tok] -= 1
    prec, rec = hits / n, hits / m
    return Score(prec, rec, _fmeasure(prec, rec))


def rouge_pair(target, prediction, rouge_types=ROUGE_TYPES, use_stemmer=False):
    """``{type: Score}`` for one pair (rouge-score's ``RougeScorer(types, use_stemmer).score(target,
    prediction)``: note the target comes first)."""
    t_tok = tokenize(target, use_stemmer)
    p_tok = tokenize(prediction, use_stemmer)
    out = {}
    for kind in rouge_types:
        if kind == "rougeL":
            out[kind] = _score_lcs(t_tok, p_tok)
        elif kind == "rougeLsum":
            sents = lambda s: [tokenize(x, use_stemmer) for x in s.split("\n") if len(x)]  # noqa: E731
            out[kind] = _score_lsum(sents(target), sents(prediction))
        else:
            n = int(kind[5:])
            out[kind] = _score_ngrams(_ngrams(t_tok, n), _ngrams(p_tok, n))
    return out


def _check_types(rouge_types):
    rouge_types = tuple(rouge_types)
    bad = [k for k in rouge_types if k not in ("rougeL", "rougeLsum") and not re.fullmatch(r"rouge[1-9]", k)]
    if bad or not rouge_types:
        raise ValueError(f"rouge: unknown rouge type(s) {bad or rouge_types}; known: rouge1..rouge9, rougeL, "
                         "rougeLsum")
    return rouge_types


def rouge(predictions, references, *, rouge_types=ROUGE_TYPES, use_stemmer=True, per_pair=False):
    """Corpus ROUGE: the mean over pairs of rouge-score's per-pair precision, recall and F1.

    Args:
        predictions: list of N strings.
        references: list of N strings or lists of strings (the best reference by F1 per type).
        rouge_types: any of rouge1..rouge9, rougeL, rougeLsum.
        use_stemmer: Porter stemming as rouge-score's ``use_stemmer`` (default True, the usual
            setting for summarisation; needs nltk).
        per_pair: also return the list of per-pair ``{type: Score}``.
    Returns:
        ``{type: Score(precision, recall, fmeasure)}`` (and the per-pair list when asked).
    """
    preds, refs = check_pairs(predictions, references)
    rouge_types = _check_types(rouge_types)
    pairs = []
    for p, rs in zip(preds, refs):
        scores = [rouge_pair(r, p, rouge_types, use_stemmer) for r in rs]
        best = {}
        for k in rouge_types:
            fs = [s[k].fmeasure for s in scores]
            best[k] = scores[fs.index(max(fs))][k]  # first maximum, as numpy.argmax in score_multi
        pairs.append(best)
    n = len(pairs)
    mean = {k: Score(*(sum(pp[k][i] for pp in pairs) / n for i in range(3))) for k in rouge_types}
    return (mean, pairs) if per_pair else mean


__all__ = ["rouge", "rouge_pair", "tokenize", "Score", "ROUGE_TYPES"]
