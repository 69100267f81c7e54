"""DataCursor: walks a DataLoader across epochs and knows exactly where it is, for exact resume."""
from typing import Optional


class DataCursor:
    """Iterates a loader across epochs and knows its position (epoch, batches consumed this epoch)."""

    def __init__(self, loader, num_epochs: Optional[int]):
        self.loader, self.num_epochs = loader, num_epochs
        self.epoch, self.position, self._it = 0, 0, None
        try:
            self._len = len(loader)
        except TypeError:
            self._len = None

    def next(self):
        """The next batch, moving to the next epoch when one ends; None after the last epoch."""
        while True:
            if self.num_epochs is not None and self.epoch >= self.num_epochs:
                return None
            if self._it is None:
                self._start_epoch()
            try:
                batch = next(self._it)
            except StopIteration:
                if self.position == 0:
                    raise ValueError("the training data yields no batch (fewer sequences than batch_size?)")
                self.epoch, self.position, self._it = self.epoch + 1, 0, None
                continue
            self.position += 1
            if self._len is not None and self.position >= self._len:  # epoch over: say so now, not lazily
                self.epoch, self.position, self._it = self.epoch + 1, 0, None
            return batch

    def _start_epoch(self):
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(self.epoch)
        self._it = iter(self.loader)

    def state_dict(self) -> dict:
        st = {"epoch": self.epoch, "position": self.position}
        if hasattr(self.loader, "state_dict"):
            st["loader"] = self.loader.state_dict()
        return st

    def load_state_dict(self, st: dict) -> None:
        """Restore a position saved by :meth:`state_dict`; a position that this loader cannot be at
        (negative, not an integer, past the epoch's end) is a ValueError naming the field."""
        for key in ("epoch", "position"):
            v = st.get(key) if isinstance(st, dict) else None
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"trainer_state.json: data.{key} must be a non-negative integer, got {v!r}")
        if self._len is not None and st["position"] >= self._len:
            raise ValueError(f"trainer_state.json: data.position {st['position']} is past the end of an epoch "
                             f"({self._len} batches): the data or batch size changed, or the file was edited")
        self.epoch, self.position = st["epoch"], st["position"]
        self._it = None
        if self.num_epochs is not None and self.epoch >= self.num_epochs:
            return
        if "loader" in st and hasattr(self.loader, "load_state_dict"):
            try:
                self.loader.load_state_dict(st["loader"])
            except (KeyError, TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"trainer_state.json: data.loader cannot be restored ({type(exc).__name__}: "
                                 f"{exc})") from None
            if hasattr(self.loader, "set_epoch"):
                self.loader.set_epoch(self.epoch)  # saved right at an epoch's end: go to the next one's start
            self._it = iter(self.loader)
            return
        self._start_epoch()
        for _ in range(self.position):  # a loader without a position: replay its deterministic order
            next(self._it)
