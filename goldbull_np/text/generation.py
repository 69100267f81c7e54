"""Token sampling for GoldbullText.generate: greedy, temperature, top-k and nucleus (top-p).

Nothing non-finite is sampled from: a NaN temperature or top_p is refused up front (``not t >= 0``
is how NaN fails), and a logit row holding NaN or inf is an error naming the row and the step (a NaN
cdf would otherwise always pick token 0, and the output would look like text).
"""
import math

import numpy as np


def check_sampling_args(max_new_tokens, temperature, top_k, top_p):
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    if temperature is not None and not (_is_number(temperature) and 0 <= temperature < math.inf):
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not (_is_number(top_p) and 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must be a number in (0, 1] or None, got {top_p!r}")


def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


class NonFiniteLogitsError(FloatingPointError):
    """The model produced NaN or inf logits while generating (e.g. a checkpoint with NaN weights)."""


def check_logits(logits, step=None):
    """Raise :class:`NonFiniteLogitsError` naming the row and step if ``logits`` (B, V) is not all finite."""
    finite = np.isfinite(logits).all(axis=-1)  # (B,)
    if not finite.all():
        row = int(np.argmin(finite))
        what = "NaN" if np.isnan(logits[row]).any() else "inf"
        at = f" at generation step {step}" if step is not None else ""
        raise NonFiniteLogitsError(f"the model's logits hold {what} in row {row}{at} (of {len(finite)} rows): "
                                   "its weights or inputs are not finite; refusing to sample from them")


def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, rng=None, step=None):
    """Pick one token per row.

    Args:
        logits: (B, V) array.
        temperature: divides the logits; 0 (or None) picks the argmax (greedy).
        top_k: keep only the k most likely tokens.
        top_p: keep the smallest set of most likely tokens whose probability reaches top_p.
        rng: a ``numpy.random.Generator`` (one uniform draw per row).
        step: the generation step, named in the error for non-finite logits.
    Returns:
        (B,) int64 token ids.
    Raises:
        NonFiniteLogitsError: a row of ``logits`` holds NaN or inf.
    """
    check_logits(logits, step)
    if not temperature:
        return np.argmax(logits, axis=-1).astype(np.int64)
    B, V = logits.shape
    z = logits.astype(np.float64) / float(temperature)  # (B, V)
    if top_k is not None and top_k < V:
        kth = np.partition(z, V - top_k, axis=-1)[:, V - top_k][:, None]  # (B, 1) k-th largest
        z = np.where(z < kth, -np.inf, z)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-z, axis=-1, kind="stable")  # (B, V) most likely first
        zs = np.take_along_axis(z, order, axis=-1)
        ps = np.exp(zs - zs[:, :1])
        ps /= ps.sum(axis=-1, keepdims=True)
        before = np.cumsum(ps, axis=-1) - ps  # mass of the strictly more likely tokens
        drop = before >= top_p  # the first token always stays (before = 0)
        np.put_along_axis(z, order, np.where(drop, -np.inf, zs), axis=-1)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p, axis=-1)  # (B, V)
    u = rng.random(B)[:, None] * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), V - 1).astype(np.int64)


def start_token(tokenizer) -> int:
    """The token a generation with an empty prompt starts from: BOS, else EOS, else the newline's first id."""
    for attr in ("bos_token_id", "eos_token_id"):
        v = getattr(tokenizer, attr, None)
        if v is not None:
            return int(v)
    enc = tokenizer.encode("\n")
    return int(enc[0]) if len(enc) else 0
