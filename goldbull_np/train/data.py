"""Splits the trainers and the CLI use on top of goldbull_np.data (``TokenDataset.from_array`` holds
nanoGPT's dense stream in memory)."""
import hashlib

import numpy as np

from ..data import TokenDataset


class Subset:
    """Items ``indices`` of ``dataset`` (a train/validation split of one dataset)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.pad_token_id = getattr(dataset, "pad_token_id", 0)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[int(self.indices[i])]

    def fingerprint(self) -> dict:
        return {"type": "Subset", "len": len(self), "of": type(self.dataset).__name__,
                "of_len": len(self.dataset),
                "sha256": hashlib.sha256(self.indices.tobytes()).hexdigest()[:16]}


def split_tokens(ids, block_size: int, val_fraction: float = 0.1, train_stride: int | None = None):
    """nanoGPT's split: the first ``1 - val_fraction`` of the tokens train, the rest validate.

    ``train_stride`` spaces the training windows (None: non-overlapping; 1: every offset, nanoGPT's
    random windows once shuffled); validation windows never overlap.

    Returns:
        ``(train, val)`` in-memory TokenDatasets (``val`` is None when ``val_fraction`` is 0).
    Raises:
        ValueError when a split is shorter than one sequence of ``block_size + 1`` tokens.
    """
    ids = np.asarray(ids)
    n_val = int(len(ids) * val_fraction)
    if n_val and n_val < block_size + 1:
        raise ValueError(f"the validation split has {n_val} tokens, fewer than one sequence of {block_size + 1}")
    if len(ids) - n_val < block_size + 1:
        raise ValueError(f"the training split has {len(ids) - n_val} tokens, fewer than one sequence of "
                         f"{block_size + 1}")
    train = TokenDataset.from_array(ids[: len(ids) - n_val], block_size, stride=train_stride)
    return train, (TokenDataset.from_array(ids[len(ids) - n_val:], block_size) if n_val else None)
