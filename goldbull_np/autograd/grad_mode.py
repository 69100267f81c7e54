"""Global gradient mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``is_grad_enabled``."""
import functools

_enabled = [True]  # a list so the hot path reads one item without a global statement


def is_grad_enabled() -> bool:
    """Whether operations on tensors that require grad are recorded for backward."""
    return _enabled[0]


class _GradMode:
    """Base of the grad-mode context managers; also usable as a decorator."""

    mode = True

    def __enter__(self):
        self._prev = _enabled[0]
        _enabled[0] = self.mode

    def __exit__(self, *exc):
        _enabled[0] = self._prev
        return False

    def __call__(self, func):
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            prev = _enabled[0]
            _enabled[0] = mode
            try:
                return func(*args, **kwargs)
            finally:
                _enabled[0] = prev

        return wrapper


class no_grad(_GradMode):
    """Context manager / decorator that disables graph recording (like ``torch.no_grad``).

    Works as ``with gb.no_grad():``, ``@gb.no_grad()`` and ``@gb.no_grad``.
    """

    mode = False

    def __new__(cls, func=None):
        self = super().__new__(cls)
        return self(func) if callable(func) else self

    def __init__(self, func=None):
        pass


class enable_grad(_GradMode):
    """Context manager / decorator that enables graph recording inside a ``no_grad`` block."""

    mode = True

    def __new__(cls, func=None):
        self = super().__new__(cls)
        return self(func) if callable(func) else self

    def __init__(self, func=None):
        pass


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(mode)``: called plainly it sets the mode; as a context manager it restores the
    previous mode on exit; as a decorator it sets the mode around each call only."""

    def __init__(self, mode: bool):
        self._prev = _enabled[0]
        self.mode = bool(mode)
        _enabled[0] = self.mode

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _enabled[0] = self._prev
        return False

    def __call__(self, func):
        _enabled[0] = self._prev  # used as a decorator: undo the mode set by __init__
        return super().__call__(func)
