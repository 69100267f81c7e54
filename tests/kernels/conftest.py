"""Kernel tests: make the repo importable when goldbull_np is not installed, and keep numba's
thread pool to the machine's cores."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import goldbull_np  # noqa: F401
except ImportError:
    sys.path.insert(0, ROOT)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_c_isa():
    """Tests may cap the C kernels' ISA tier (kernels_helpers.backend_module("c:avx2")): undo it."""
    yield
    c = sys.modules.get("goldbull_np.kernels.c_backend")
    if c is not None and c.lib is not None:
        c.set_isa(None)
