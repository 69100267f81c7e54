"""Collate dataset items into a batch: right-padding to the longest item (or a fixed length)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .templates import IGNORE_INDEX


def pad_collate(items: Sequence[dict[str, np.ndarray]], pad_token_id: int = 0,
                pad_to: int | None = None) -> dict[str, np.ndarray]:
    """Stack items into (B, L) int64 arrays, padding on the right.

    Fill values: input_ids -> pad_token_id, labels -> -100 (no loss), attention_mask -> 0,
    any other key -> 0. Items of equal length are simply stacked.

    Args:
        items: dicts of 1-D integer arrays with the same keys (and equal lengths within an item).
        pad_token_id: id put in padded input_ids positions.
        pad_to: pad every batch to this length (static shapes); None pads to the longest item.
    Returns:
        A dict of (B, L) int64 arrays.
    """
    if not items:
        raise ValueError("cannot collate an empty list of items")
    keys = list(items[0])
    lengths = []
    for k, it in enumerate(items):
        if list(it) != keys:
            raise ValueError(f"item {k} has keys {list(it)}, item 0 has {keys}")
        n = {len(it[key]) for key in keys}
        if len(n) != 1:
            raise ValueError(f"item {k} has arrays of different lengths: { {key: len(it[key]) for key in keys} }")
        lengths.append(n.pop())
    L = max(lengths)
    if pad_to is not None:
        if L > pad_to:
            raise ValueError(f"an item of length {L} does not fit pad_to={pad_to}")
        L = pad_to
    fills = {"input_ids": pad_token_id, "labels": IGNORE_INDEX, "attention_mask": 0}
    batch = {}
    for key in keys:
        out = np.full((len(items), L), fills.get(key, 0), dtype=np.int64)  # (B, L)
        for b, it in enumerate(items):
            out[b, : lengths[b]] = it[key]
        batch[key] = out
    return batch


class PadCollator:
    """pad_collate with its options bound: collate_fn=PadCollator(pad_token_id, pad_to)."""

    def __init__(self, pad_token_id: int = 0, pad_to: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to = pad_to

    def __call__(self, items: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return pad_collate(items, self.pad_token_id, self.pad_to)
