"""Kernel tests: make the repo importable when goldbull_np is not installed, and keep numba's
thread pool to the machine's cores."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import goldbull_np  # noqa: F401
except ImportError:
    sys.path.insert(0, ROOT)
