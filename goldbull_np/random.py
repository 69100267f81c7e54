"""The global random generator (NumPy PCG64), seedable and saveable for exact resume."""
import numpy as np

_generator = np.random.Generator(np.random.PCG64())


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator used by randn/rand/randint/normal, dropout and init.

    Returns:
        The generator (a ``numpy.random.Generator``).
    """
    global _generator
    _generator = np.random.Generator(np.random.PCG64(int(seed)))
    return _generator


def default_generator() -> np.random.Generator:
    """The current global generator."""
    return _generator


def get_rng_state() -> dict:
    """The generator state as a JSON-serialisable dict (PCG64's own state)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError("set_rng_state expects a PCG64 state dict as returned by get_rng_state()")
    _generator.bit_generator.state = state
