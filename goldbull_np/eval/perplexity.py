"""Token-level perplexity with a sliding window, and the greedy/sampled generations the text metrics score.

Perplexity = exp(mean negative log-likelihood) over the predicted tokens of every document (each
document tokenised on its own; its first token has no context and is not scored). A document longer
than the model's context is scored with a window of ``max_length`` input tokens moved by ``stride``
(Hugging Face's perplexity recipe): every token is scored exactly once, in the first window that
reaches it, so after the first window each scored token sees at least ``max_length - stride``
tokens of context; with the default ``stride = max_length // 2`` that is at least ``stride`` tokens.
"""
from dataclasses import dataclass

import numpy as np

from ..text.generation import start_token
from ._inputs import check_predictions


@dataclass
class PerplexityResult:
    perplexity: float
    loss: float          # mean NLL (nats per token)
    tokens: int          # tokens scored
    nll_sum: float

    def __float__(self):
        return float(self.perplexity)


def _logits(model, ids):
    out = model(ids)
    out = out[0] if isinstance(out, tuple) else out
    return np.asarray(getattr(out, "data", out))


def windows(n_tokens, max_length, stride, score_from=1):
    """``[(begin, end, first)]``: inputs ids[begin:end], targets ids[begin+1:end+1], of which the
    targets at indices >= ``first`` are scored; together they score indices [score_from, n_tokens)
    exactly once."""
    out, prev, b = [], max(1, score_from), 0
    if n_tokens < 2 or prev >= n_tokens:
        return out
    while True:
        e = min(b + max_length, n_tokens - 1)
        if e + 1 > prev:
            out.append((b, e, prev))
            prev = e + 1
        if e == n_tokens - 1:
            return out
        b += stride


def perplexity_of_ids(model, documents, *, max_length=None, stride=None, score_from=None, batch_size=8):
    """Perplexity of token-id documents (lists of ints).

    Args:
        model: called as ``model(ids (B, T))`` -> logits (B, T, V) (or ``(logits, loss)``).
        documents: list of int sequences.
        max_length: window length in input tokens (default ``model.config.block_size``).
        stride: how far the window moves (default max_length // 2; 1 <= stride <= max_length).
        score_from: per document, the first token index scored (default 1): a prompt before it is
            context only (conditional perplexity of an output given its input).
        batch_size: windows of equal length per forward pass.
    """
    from ..autograd.grad_mode import no_grad
    W = int(max_length or model.config.block_size)
    S = W // 2 if stride is None else int(stride)
    if W < 1 or not 1 <= S <= W:
        raise ValueError(f"perplexity: need 1 <= stride <= max_length, got stride={stride}, max_length={W}")
    docs = [np.asarray(d, dtype=np.int64).reshape(-1) for d in documents]
    starts = score_from if score_from is not None else [1] * len(docs)
    jobs = []  # (length, doc, begin, end, first)
    for k, (d, s0) in enumerate(zip(docs, starts)):
        for b, e, first in windows(len(d), W, S, s0):
            jobs.append((e - b, k, b, e, first))
    if not jobs:
        raise ValueError("perplexity: no token to score (every document has fewer than 2 tokens)")
    jobs.sort()
    nll, count = 0.0, 0
    was = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            i = 0
            while i < len(jobs):
                j = i
                while j < len(jobs) and j - i < batch_size and jobs[j][0] == jobs[i][0]:
                    j += 1
                group = jobs[i:j]
                x = np.stack([docs[k][b:e] for _, k, b, e, _ in group])  # (G, T)
                logits = _logits(model, x).astype(np.float64)  # (G, T, V)
                for g, (_, k, b, e, first) in enumerate(group):
                    rows = logits[g, first - 1 - b:]  # positions predicting targets first..e
                    tgt = docs[k][first:e + 1]
                    m = rows.max(-1, keepdims=True)
                    lse = (m[:, 0] + np.log(np.exp(rows - m).sum(-1)))
                    nll += float((lse - rows[np.arange(len(tgt)), tgt]).sum())
                    count += len(tgt)
                i = j
    finally:
        model.train(was)
    loss = nll / count
    return PerplexityResult(float(np.exp(loss)) if loss < 700 else float("inf"), loss, count, nll)


def perplexity(model, texts, tokenizer=None, *, prompts=None, max_length=None, stride=None, batch_size=8):
    """Perplexity of a causal LM on strings.

    Args:
        model: a GoldbullText (or any ``model(ids) -> logits``); its ``tokenizer`` attribute is used
            when ``tokenizer`` is None.
        texts: list of documents (strings).
        prompts: optional list of contexts, one per text: only the text's tokens are scored, given
            the prompt's (tokenised separately and concatenated).
        max_length, stride, batch_size: see :func:`perplexity_of_ids`.
    Returns:
        PerplexityResult(perplexity, loss, tokens, nll_sum).
    """
    texts = check_predictions(texts, "texts")
    tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tok is None:
        raise ValueError("perplexity: pass the tokenizer (the model has none)")
    if prompts is None:
        docs = [tok.encode(t) for t in texts]
        return perplexity_of_ids(model, docs, max_length=max_length, stride=stride, batch_size=batch_size)
    prompts = check_predictions(prompts, "prompts")
    if len(prompts) != len(texts):
        raise ValueError(f"{len(prompts)} prompts but {len(texts)} texts")
    docs, starts = [], []
    for p, t in zip(prompts, texts):
        pi = list(tok.encode(p)) if p else []
        if not pi:
            pi = [start_token(tok)]
        docs.append(pi + list(tok.encode(t)))
        starts.append(len(pi))
    return perplexity_of_ids(model, docs, max_length=max_length, stride=stride, score_from=starts,
                             batch_size=batch_size)


def _decode(tokenizer, ids):
    try:
        return tokenizer.decode(ids, skip_special_tokens=True)
    except TypeError:  # a tokenizer without the flag
        return tokenizer.decode(ids)


def generate(model, tokenizer, prompts, *, max_new_tokens=64, temperature=0.0, top_k=None, top_p=None,
             batch_size=8, seed=0, stop_at_eos=True):
    """Continuations (strings, the prompt excluded) of ``prompts``: greedy by default, KV cache on.

    Prompts of the same token length are batched together (the model has no left padding); an empty
    prompt starts from the tokenizer's bos (else eos) token. Generation stops at the tokenizer's eos.
    """
    prompts = check_predictions(prompts, "inputs")
    eos = getattr(tokenizer, "eos_token_id", None) if stop_at_eos else None
    enc = []
    for p in prompts:
        ids = list(tokenizer.encode(p)) if p else []
        enc.append(ids or [start_token(tokenizer)])
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    out = [None] * len(enc)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and j - i < batch_size and len(enc[order[j]]) == len(enc[order[i]]):
            j += 1
        idx = order[i:j]
        x = np.asarray([enc[k] for k in idx], dtype=np.int64)  # (B, T)
        y = np.asarray(model.generate(x, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                                      top_p=top_p, eos_token_id=eos, seed=seed, use_cache=True).data)
        for b, k in enumerate(idx):
            new = y[b, x.shape[1]:].tolist()
            if eos is not None and eos in new:
                new = new[:new.index(eos)]
            out[k] = _decode(tokenizer, new)
        i = j
    return out


__all__ = ["perplexity", "perplexity_of_ids", "PerplexityResult", "windows", "generate"]
