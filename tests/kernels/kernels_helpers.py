"""Shared helpers for tests/kernels: backends under test, tolerances, random inputs."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def c_available():
    try:
        importlib.import_module("goldbull_np.kernels.c_backend").load()
        return True
    except ImportError:
        return False


def backend_module(name):
    """The backend module; "c:avx2" / "c:base" is the C backend capped at that ISA tier (the
    autouse fixture in conftest.py restores the CPU's best tier after each test)."""
    name, _, isa = name.partition(":")
    mod = importlib.import_module({"numpy": "goldbull_np.kernels.reference",
                                   "numba": "goldbull_np.kernels.numba_backend",
                                   "c": "goldbull_np.kernels.c_backend"}[name])
    if name == "c" and not c_available():
        pytest.skip("C extension goldbull_np._C not built")
    if isa:
        assert mod.set_isa(isa) == isa
    return mod


def c_runs_isa(isa):
    """True if the C extension is built and this CPU can run its ISA tier `isa`."""
    if not c_available():
        return False
    c = importlib.import_module("goldbull_np.kernels.c_backend")
    return c.ISAS.index(c.cpu_isa()) >= c.ISAS.index(isa)


def c_lower_isas():
    """The C ISA tiers below this CPU's best (each has its own compiled code path to test)."""
    if not c_available():
        return []
    c = importlib.import_module("goldbull_np.kernels.c_backend")
    return list(c.ISAS[:c.ISAS.index(c.cpu_isa())])


# (backend, dtype) pairs every fast backend is checked on: C is float32-only; "c" runs the CPU's
# best ISA tier, "c:<tier>" each lower one.
FAST = ([("numba", np.float32), ("numba", np.float64), ("c", np.float32)]
        + [(f"c:{isa}", np.float32) for isa in c_lower_isas()])


def tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if np.dtype(dtype) == np.float32 else dict(rtol=1e-9, atol=1e-11)


def assert_close(got, want, dtype, what="", scale=1.0):
    """Compare arrays (or None) with dtype tolerances; `scale` widens atol for large magnitudes."""
    if want is None:
        assert got is None, f"{what}: expected None"
        return
    assert got is not None, f"{what}: got None"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    t = tol(dtype)
    np.testing.assert_allclose(got, want, rtol=t["rtol"], atol=t["atol"] * scale, err_msg=what)


def assert_all_close(got, want, dtype, what="", scale=1.0):
    """A kernel's outputs equal the reference's: the same structure (a tuple of as many items, None
    exactly where the reference has None), then each array by assert_close."""
    if not isinstance(want, tuple):
        assert not isinstance(got, tuple), f"{what}: got a tuple of {len(got)}, expected one array"
        assert_close(got, want, dtype, what, scale)
        return
    assert isinstance(got, tuple), f"{what}: got {type(got).__name__}, expected a tuple of {len(want)}"
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, dtype, f"{what}[{i}]", scale)


def rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def run_script(code, env=None, timeout=300):
    """Run python code in a fresh interpreter (a segfault fails the test instead of killing pytest)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=ROOT)
