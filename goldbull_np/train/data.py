"""Small in-memory datasets the trainers and the CLI use on top of goldbull_np.data.

``TokenBlocks`` is nanoGPT's dense stream cut into non-overlapping blocks, held in memory (the data
layer's ``TokenDataset`` reads the same layout from a memory-mapped .bin file).
"""
import hashlib

import numpy as np


class TokenBlocks:
    """Non-overlapping blocks of a 1-D token array: item i is tokens [iT, iT+T] (T inputs, T shifted labels).

    Args:
        ids: (N,) integer token ids.
        block_size: T.
    """

    def __init__(self, ids, block_size: int):
        self.tokens = np.ascontiguousarray(np.asarray(ids, dtype=np.int64))  # (N,)
        self.block_size = T = int(block_size)
        if T < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self._len = max(0, (len(self.tokens) - 1) // T)

    pad_token_id = 0

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> dict:
        n, T = self._len, self.block_size
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} items")
        x = self.tokens[i * T: i * T + T + 1]  # (T+1,)
        return {"input_ids": x[:-1], "labels": x[1:]}

    def fingerprint(self) -> dict:
        return {"type": "TokenBlocks", "tokens": int(len(self.tokens)), "block_size": self.block_size,
                "sha256": hashlib.sha256(self.tokens.tobytes()).hexdigest()[:16]}

    def __repr__(self) -> str:
        return f"TokenBlocks(tokens={len(self.tokens)}, items={len(self)}, block_size={self.block_size})"


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


def split_tokens(ids, block_size: int, val_fraction: float = 0.1):
    """nanoGPT's split: the first ``1 - val_fraction`` of the tokens train, the rest validate.

    Returns:
        ``(train, val)`` TokenBlocks (``val`` is None when ``val_fraction`` is 0).
    Raises:
        ValueError when a split is shorter than one sequence of ``block_size + 1`` tokens.
    """
    ids = np.asarray(ids)
    n_val = int(len(ids) * val_fraction)
    if n_val and n_val < block_size + 1:
        raise ValueError(f"the validation split has {n_val} tokens, fewer than one sequence of {block_size + 1}")
    train = TokenBlocks(ids[: len(ids) - n_val], block_size)
    if len(train) == 0:
        raise ValueError(f"the training split has {len(ids) - n_val} tokens, fewer than one sequence of "
                         f"{block_size + 1}")
    return train, (TokenBlocks(ids[len(ids) - n_val:], block_size) if n_val else None)
