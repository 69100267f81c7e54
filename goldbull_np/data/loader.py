"""DataLoader: seeded, epoch-aware batching with an exactly resumable position.

The order of epoch e is a function of (seed, e) only: a permutation drawn from
numpy.random.default_rng([seed, e]) when shuffling, else 0..N-1. The position is the number of
samples of that order already yielded, so {"seed", "epoch", "position"} (state_dict) resumes
mid-epoch with exactly the remaining batches.

Epochs: iterating yields the rest of the current epoch; when the iteration runs to its end the
loader moves to the next epoch (position 0). set_epoch(e) moves to epoch e at position 0, and is a
no-op when e is already the current epoch (so a resumed position survives the trainer's
set_epoch call). One iteration at a time per loader.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import numpy as np

from .collate import PadCollator
from .errors import EmptyDatasetError


class _OptionValue(int):
    """An option's value that, called with a new value, sets it and returns the loader.

    This gives both `loader.batch_size == 8` and the builder form `loader.batch_size(8).shuffle(True)`.
    """

    def __new__(cls, value: int, loader: "DataLoader", name: str, kind: type):
        obj = super().__new__(cls, value)
        obj._loader, obj._name, obj._kind = loader, name, kind
        return obj

    def __call__(self, value) -> "DataLoader":
        setattr(self._loader, self._name, value)
        return self._loader

    def __repr__(self) -> str:
        return repr(bool(self)) if self._kind is bool else int.__repr__(self)

    __str__ = __repr__


class _Option:
    """Descriptor of a loader option (validated on set, read as an _OptionValue)."""

    def __init__(self, kind: type, minimum: int = 0):
        self.kind, self.minimum = kind, minimum

    def __set_name__(self, owner, name):
        self.name, self.attr = name, "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return _OptionValue(getattr(obj, self.attr), obj, self.name, self.kind)

    def __set__(self, obj, value):
        if self.kind is bool:
            if value not in (True, False):
                raise TypeError(f"{self.name} must be a bool, got {value!r}")
            value = bool(value)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < self.minimum:
                raise ValueError(f"{self.name} must be an integer >= {self.minimum}, got {value!r}")
            value = int(value)
        setattr(obj, self.attr, value)


_DONE = object()


class DataLoader:
    """Batches of a dataset as dicts of int64 NumPy arrays.

    Builder form: DataLoader(ds).batch_size(8).shuffle(True).drop_last(True); keyword form:
    DataLoader(ds, batch_size=8, shuffle=True, drop_last=True). Options read as values too
    (`loader.batch_size == 8`).

    Args:
        dataset: anything with __len__ and __getitem__ returning dicts of 1-D int arrays.
        batch_size: items per batch.
        shuffle: shuffle each epoch (by seed and epoch).
        drop_last: drop the last incomplete batch of an epoch.
        seed: the shuffling seed.
        collate_fn: items -> batch; default PadCollator(dataset.pad_token_id or 0).
        prefetch: batches prepared ahead in a background thread (0 = none).
    """

    batch_size = _Option(int, 1)
    shuffle = _Option(bool)
    drop_last = _Option(bool)
    seed = _Option(int, 0)
    prefetch = _Option(int, 0)

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int = 0, collate_fn: Callable | None = None, prefetch: int = 0):
        if len(dataset) == 0:
            raise EmptyDatasetError(f"no training examples found: the dataset {type(dataset).__name__} is empty")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.prefetch = prefetch
        if collate_fn is None:
            pad = getattr(dataset, "pad_token_id", None)
            collate_fn = PadCollator(0 if pad is None else pad)
        self.collate_fn = collate_fn
        self.epoch = 0
        self.position = 0  # samples of this epoch's order already yielded

    # ------------------------------------------------------------------ order and length
    def order(self, epoch: int | None = None) -> np.ndarray:
        """The sample order of an epoch (default: the current one): (N,) int64."""
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        if not self._shuffle:
            return np.arange(n, dtype=np.int64)
        return np.random.default_rng([self._seed, epoch]).permutation(n).astype(np.int64)

    def _epoch_end(self, n: int) -> int:
        return n - n % self._batch_size if self._drop_last else n

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.dataset)
        return n // self._batch_size if self._drop_last else -(-n // self._batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Go to the start of `epoch`; no-op when it is already the current epoch."""
        if epoch != self.epoch:
            self.epoch, self.position = int(epoch), 0

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        if len(self) == 0:
            raise EmptyDatasetError(f"no training examples found: {len(self.dataset)} samples make no batch of "
                                    f"{self._batch_size} with drop_last=True")
        order = self.order()
        end = self._epoch_end(len(order))
        B = self._batch_size

        def batches():
            for a in range(self.position, end, B):
                b = min(a + B, end)
                yield b, self.collate_fn([self.dataset[int(i)] for i in order[a:b]])

        source = batches() if self._prefetch == 0 else _prefetched(batches(), self._prefetch)
        try:
            for pos, batch in source:
                self.position = pos  # counted when handed out, so state_dict() inside the loop resumes after it
                yield batch
        finally:
            source.close()
        self.epoch, self.position = self.epoch + 1, 0

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        """JSON-serialisable position: seed, epoch, position (+ what it was taken with)."""
        return {
            "seed": int(self._seed),
            "epoch": int(self.epoch),
            "position": int(self.position),
            "batch_size": int(self._batch_size),
            "shuffle": bool(self._shuffle),
            "drop_last": bool(self._drop_last),
            "num_samples": len(self.dataset),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore seed, epoch and position from state_dict(); the next iteration resumes there.

        Raises:
            ValueError: when the dataset size or the shuffle setting differ from the saved ones
                (the remaining order would not be the same).
        """
        n = len(self.dataset)
        if "num_samples" in state and state["num_samples"] != n:
            raise ValueError(f"the loader state was saved for {state['num_samples']} samples, this dataset has {n}")
        if "shuffle" in state and bool(state["shuffle"]) != self._shuffle:
            raise ValueError(f"the loader state was saved with shuffle={bool(state['shuffle'])}, "
                             f"this loader has shuffle={self._shuffle}")
        position = int(state["position"])
        if not 0 <= position <= n:
            raise ValueError(f"position {position} is out of range for {n} samples")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = position

    def __repr__(self) -> str:
        return (f"DataLoader(batch_size={self._batch_size}, shuffle={self._shuffle}, drop_last={self._drop_last}, "
                f"seed={self._seed}, epoch={self.epoch}, position={self.position}, batches={len(self)})")


def _prefetched(source: Iterator, depth: int) -> Iterator:
    """Run `source` in a background thread, `depth` items ahead; errors re-raise in the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in source:
                if not put((None, item)):
                    return
            put((None, _DONE))
        except BaseException as e:  # handed to the consumer, raised there
            put((e, None))

    thread = threading.Thread(target=work, name="goldbull-data-prefetch", daemon=True)
    thread.start()

    def consume():
        try:
            while True:
                err, item = q.get()
                if err is not None:
                    raise err
                if item is _DONE:
                    return
                yield item
        finally:
            stop.set()
            thread.join()

    return consume()
