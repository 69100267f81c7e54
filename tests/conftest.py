"""Shared test setup: import the repo without installing it, and the hypothesis profiles.

Profiles (``HYPOTHESIS_PROFILE=dev|ci``; ``ci`` is chosen automatically when the env var ``CI`` is
set): ``ci`` is bounded and derandomized so the suite is fast and reproducible; ``dev`` draws more
examples but stays quick enough to run on every change.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import goldbull_np  # noqa: F401
except ImportError:
    sys.path.insert(0, ROOT)

from hypothesis import HealthCheck, settings  # noqa: E402

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True, suppress_health_check=_SUPPRESS,
                          print_blob=True)
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=_SUPPRESS)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

# the one op-checking helper (tests/autograd/autograd_helpers.py) is shared with tests/nn/
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "autograd"))
