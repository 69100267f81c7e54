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
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Context manager / decorator that disables graph recording (like ``torch.no_grad``)."""

    mode = False


class enable_grad(_GradMode):
    """Context manager / decorator that enables graph recording inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` as a context manager, or called plainly to set the mode."""

    def __init__(self, mode: bool):
        self._prev = _enabled[0]
        self.mode = bool(mode)
        _enabled[0] = self.mode

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _enabled[0] = self._prev
        return False
