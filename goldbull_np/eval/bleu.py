"""Corpus BLEU and chrF, computed here (no sacrebleu at run time) and equal to sacrebleu 2.x's
``corpus_bleu`` / ``corpus_chrf`` defaults to 1e-9 (tests/eval compare them on random and real corpora).

BLEU (Papineni et al. 2002, sacrebleu's conventions): the 13a tokenizer (mteval-v13a's), n-grams 1..4
clipped by the maximum count over a prediction's references, the closest reference length (ties: the
shorter), brevity penalty exp(1 - r/c), exponential smoothing of zero counts (mteval's: the k-th zero
precision becomes 1 / (2^k * total)), on a 0-100 scale. chrF (Popovic 2015): character 1..6-grams with
whitespace removed, beta = 2, statistics summed over the corpus, the best reference per segment.
"""
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import List

from ._inputs import check_pairs

MAX_NGRAM_ORDER = 4
_SMOOTH_DEFAULTS = {"none": None, "floor": 0.1, "add-k": 1, "exp": None}

# mteval-v13a's rules, in sacrebleu's regular expressions
_13A_RULES = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # punctuation and symbols
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period/comma unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash preceded by a digit
]


@lru_cache(maxsize=2 ** 16)
def tokenize_13a(line: str) -> str:
    """mteval-v13a tokenisation (sacrebleu's default ``tokenize='13a'``): tokens joined by one space."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for rx, repl in _13A_RULES:
        line = rx.sub(repl, line)
    return " ".join(line.split())


_TOKENIZERS = {"13a": tokenize_13a, "none": lambda s: s}


@dataclass
class BLEUScore:
    """Corpus BLEU and its sufficient statistics (sacrebleu's BLEUScore fields)."""
    score: float
    counts: List[int]
    totals: List[int]
    precisions: List[float]
    bp: float
    sys_len: int
    ref_len: int

    def __float__(self):
        return float(self.score)


@dataclass
class CHRFScore:
    score: float
    char_order: int = 6
    beta: int = 2
    statistics: List[int] = field(default_factory=list)

    def __float__(self):
        return float(self.score)


def _word_ngrams(tokens, max_order):
    c = Counter()
    for n in range(1, max_order + 1):
        for i in range(len(tokens) - n + 1):
            c[tuple(tokens[i:i + n])] += 1
    return c


def bleu(predictions, references, *, tokenize="13a", lowercase=False, smooth_method="exp", smooth_value=None,
         use_effective_order=False, max_ngram_order=MAX_NGRAM_ORDER) -> BLEUScore:
    """Corpus BLEU on sacrebleu's 0-100 scale, equal to ``sacrebleu.corpus_bleu`` with the same options.

    Args:
        predictions: list of N strings.
        references: list of N entries, each a string or a list of strings (several references for
            that prediction; the count may vary per prediction).
        tokenize: "13a" (default) or "none" (split on whitespace).
        lowercase: lowercase both sides first.
        smooth_method: "exp" (default), "none", "floor" or "add-k"; smooth_value for floor/add-k.
        use_effective_order: stop at the highest n-gram order with matches (sentence-level BLEU).
    Returns:
        BLEUScore (``.score``, counts, totals, precisions, bp, sys_len, ref_len); ``float(result)`` works.
    Raises:
        TypeError/ValueError on bad input (see ``goldbull_np.eval._inputs.check_pairs``).
    """
    preds, refs = check_pairs(predictions, references)
    if tokenize not in _TOKENIZERS:
        raise ValueError(f"bleu: tokenize must be one of {sorted(_TOKENIZERS)}, got {tokenize!r}")
    if smooth_method not in _SMOOTH_DEFAULTS:
        raise ValueError(f"bleu: smooth_method must be one of {sorted(_SMOOTH_DEFAULTS)}, got {smooth_method!r}")
    tok = _TOKENIZERS[tokenize]

    def prep(s):
        return tok((s.lower() if lowercase else s).rstrip()).split()

    N = max_ngram_order
    correct, total = [0] * N, [0] * N
    sys_len = ref_len = 0
    for hyp, rs in zip(preds, refs):
        h = prep(hyp)
        ref_ngrams, ref_lens = Counter(), []
        for r in rs:
            toks = prep(r)
            ref_lens.append(len(toks))
            for g, c in _word_ngrams(toks, N).items():
                if c > ref_ngrams[g]:
                    ref_ngrams[g] = c
        # closest reference length, ties to the shorter one
        closest = min(ref_lens, key=lambda L: (abs(len(h) - L), L))
        sys_len += len(h)
        ref_len += closest
        for g, c in _word_ngrams(h, N).items():
            total[len(g) - 1] += c
            if g in ref_ngrams:
                correct[len(g) - 1] += min(c, ref_ngrams[g])
    return compute_bleu(correct, total, sys_len, ref_len, smooth_method, smooth_value, use_effective_order, N)


def compute_bleu(correct, total, sys_len, ref_len, smooth_method="exp", smooth_value=None,
                 use_effective_order=False, max_ngram_order=MAX_NGRAM_ORDER) -> BLEUScore:
    """BLEU from its statistics (sacrebleu's ``BLEU.compute_bleu``)."""
    correct, total = list(correct), list(total)
    if smooth_value is None:
        smooth_value = _SMOOTH_DEFAULTS[smooth_method]
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0] * max_ngram_order
    if not any(correct):
        return BLEUScore(0.0, correct, total, precisions, bp, sys_len, ref_len)
    smooth_mteval = 1.0
    eff_order = max_ngram_order
    for n in range(1, max_ngram_order + 1):
        if smooth_method == "add-k" and n > 1:
            correct[n - 1] += smooth_value
            total[n - 1] += smooth_value
        if total[n - 1] == 0:
            break
        if use_effective_order:
            eff_order = n
        if correct[n - 1] == 0:
            if smooth_method == "exp":
                smooth_mteval *= 2
                precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1])
            elif smooth_method == "floor":
                precisions[n - 1] = 100.0 * smooth_value / total[n - 1]
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    logs = [math.log(p) if p > 0 else -9999999999 for p in precisions[:eff_order]]  # sacrebleu's my_log
    score = bp * math.exp(sum(logs) / eff_order)
    return BLEUScore(score, correct, total, precisions, bp, sys_len, ref_len)


# ---- chrF ---------------------------------------------------------------------------------------------
def _char_ngrams(line, order):
    line = "".join(line.split())
    return [Counter(line[i:i + n] for i in range(len(line) - n + 1)) for n in range(1, order + 1)]


def _chrf_f(stats, order, beta):
    factor = beta ** 2
    avg_p = avg_r = 0.0
    eff = 0
    for i in range(order):
        n_hyp, n_ref, n_match = stats[3 * i:3 * i + 3]
        if n_hyp > 0 and n_ref > 0:
            avg_p += n_match / n_hyp
            avg_r += n_match / n_ref
            eff += 1
    if eff:
        avg_p /= eff
        avg_r /= eff
    else:
        avg_p = avg_r = 0.0
    if avg_p + avg_r:
        return 100 * (1 + factor) * avg_p * avg_r / (factor * avg_p + avg_r)
    return 0.0


_PUNCTS = set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')


def _chrf_words(sent):
    """chrF++'s words: a leading or trailing punctuation mark split off (sacrebleu's _remove_punctuation)."""
    out = []
    for w in sent.split():
        if len(w) == 1:
            out.append(w)
        elif w[-1] in _PUNCTS:
            out += [w[:-1], w[-1]]
        elif w[0] in _PUNCTS:
            out += [w[0], w[1:]]
        else:
            out.append(w)
    return out


def _chrf_ngrams(s, char_order, word_order):
    grams = _char_ngrams(s, char_order)
    if word_order:
        w = _chrf_words(s)
        grams += [Counter(" ".join(w[i:i + n]) for i in range(len(w) - n + 1)) for n in range(1, word_order + 1)]
    return grams


def chrf(predictions, references, *, char_order=6, word_order=0, beta=2, lowercase=False) -> CHRFScore:
    """Corpus chrF (sacrebleu's ``corpus_chrf`` defaults: char order 6, beta 2, whitespace ignored),
    0-100; ``word_order=2`` is chrF++. References as for :func:`bleu` (per segment, the reference with
    the best chrF counts)."""
    preds, refs = check_pairs(predictions, references)
    order = char_order + word_order
    totals = [0] * (3 * order)
    for hyp, rs in zip(preds, refs):
        hyp_ngrams = _chrf_ngrams(hyp.lower() if lowercase else hyp, char_order, word_order)
        best, best_f = None, -1.0
        for r in rs:
            ref_ngrams = _chrf_ngrams(r.lower() if lowercase else r, char_order, word_order)
            stats = []
            for h, rr in zip(hyp_ngrams, ref_ngrams):
                match = sum(min(c, rr[g]) for g, c in h.items() if g in rr)
                stats += [sum(h.values()) if rr else 0, sum(rr.values()), match]
            f = _chrf_f(stats, order, beta)
            if f > best_f:
                best, best_f = stats, f
        totals = [a + b for a, b in zip(totals, best)]
    return CHRFScore(_chrf_f(totals, order, beta), char_order, beta, totals)


__all__ = ["bleu", "chrf", "compute_bleu", "tokenize_13a", "BLEUScore", "CHRFScore"]
