"""THE dispatch point: which implementation of each kernel runs.

Three backends, each a table of kernels keyed by name:
  numpy  `reference.py`      every kernel, any float dtype; always loads.
  numba  `numba_backend.py`  float32 + float64; numba is imported only when this backend is first needed.
  c      `c_backend.py`      float32 only (sum_squares also float64); wraps the cffi extension
                             `goldbull_np._C` built by setup.py.
A backend overrides only the kernels it implements; for a dtype it does not support, or when it cannot
load (no compiler at install time, numba missing), resolution falls through to the next backend, with
one warning line per backend that failed to load, never an error.

Selection: env GOLDBULL_BACKEND=auto|c|numba|numpy (read at first use), `set_backend(name)`, or
`with kernels.use("numba"): ...`. Selection is process-global (not thread-local).
`get(name, dtype)` costs one dict lookup after the first call for that (name, dtype).

Threads: `set_num_threads(n)` sets the C extension's thread team, numba (its threading layer is
OpenMP here) and OpenBLAS (threadpoolctl if installed, else the OpenBLAS symbol through ctypes).
Kernel calls are synchronous, so the pools never compute at the same time; what matters is how an
idle pool waits.
  * The C kernels run on their own team (csrc/pool.c, csrc/internal/gb_pool.h): an idle worker
    spins 20 us, then spins calling sched_yield until 300 us, then sleeps on a futex. libgomp offers
    only "spin without yielding" (a small-GPT step went from 72 to 130 ms/iter with one core busy
    elsewhere) or "sleep at once" (OMP_WAIT_POLICY=PASSIVE: ~80 us to wake and join a worker per
    parallel region on these VMs, which held a 768x128x384 SGEMM to 0.7x of OpenBLAS). With the team:
    C SGEMM equals OpenBLAS on the transformer's linear shapes, a small-GPT step took 36-37 ms instead
    of ~50 ms on idle cores and 68 ms (vs 72 passive) with a busy neighbour; a numpy matmul + C
    layer_norm pair took 0.83 ms (0.64 ms with the C matmul). Measured 2026-11-25 on the 2-vCPU VM.
  * OMP_WAIT_POLICY defaults to PASSIVE for the OpenMP pool numba uses (goldbull_np.runtime, called at
    import, before libgomp loads; an explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT wins), so it never
    spins against the others.
  * `auto` runs matmul/linear in C, so a training step uses the C team only.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import warnings

import numpy as np

from .. import runtime as _runtime

_runtime.set_omp_wait_policy()  # before numba or goldbull_np._C can load libgomp (see the docstring: threads)

KERNEL_NAMES = (
    "matmul", "linear_forward", "linear_backward",
    "layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward",
    "attention_forward", "attention_backward", "attention_qkv_forward", "attention_qkv_backward",
    "cross_entropy_forward", "cross_entropy_backward",
    "gelu_forward", "gelu_backward", "adamw_step", "embedding_backward", "sum_squares",
    "rotary_qkv_forward", "rotary_qkv_backward",
)
BACKENDS = ("c", "numba", "numpy")
SELECTIONS = ("auto",) + BACKENDS

# `auto`: per kernel, the backend the benchmark measured fastest on this machine kind, then the
# fallbacks. Source: `python3 benchmarks/bench_kernels.py --threads 2` (benchmarks/results/
# bench_kernels.json), 2-core AMD EPYC Zen 4 VM (AVX-512; NumPy's OpenBLAS uses its SkylakeX kernel),
# 2026-11-25. fwd+bwd, C vs torch: layer_norm 0.65-0.83x, rms_norm 0.16-0.24x, attention 0.70-0.81x,
# cross-entropy 0.20-0.87x, AdamW 0.24x of torch's fastest, GELU 0.87x (tanh) / 2.1x (erf).
# matmul/linear: C SGEMM is 0.81-1.05x OpenBLAS alone, but OpenBLAS and the OpenMP pool hand the two
# cores back and forth badly: a numpy matmul followed by a C layer_norm took 918-1431 us vs 445-599 us
# with the C matmul (same shapes), so a training step is faster with one pool. Attention falls back to
# numba before numpy because the NumPy reference materialises (B,H,T,S) scores (612 MiB at T=1024).
# embedding_backward (micro timing, median of 30-50, 2 threads, same machine): np.zeros + np.add.at
# 1262-1564 us, numba 113 us, C 22-24 us at (V,N,C) = (65,768,128); add.at 7469-12150 us, numba 443 us,
# C 182 us at (65,2048,384); at V = 50304, C = 768 (np.zeros in both, lazily zeroed pages): add.at 25.5 ms
# vs C 10.9 ms for N = 2048, 0.71 vs 0.75 ms for N = 8.
# sum_squares (clip_grad_norm_'s 2-norm: one call per gradient over the 76 float32 gradients of the
# default text model, 10.8M elements, median of 50, 2 threads, with another process busy on the 2 vCPUs,
# 2026-11-26): NumPy's blocked float64 einsum 10.2 ms, numba 1.7 ms, C 2.6-2.8 ms (1.3-1.4 ms on one
# thread: under that load each C parallel region cost ~47 us more, GELU's too). C stays first so a
# training step keeps to the C team (see matmul above); clip_grad_norm_ now sums the fused AdamW buffer
# in one call (1.3-1.6 ms).
# rotary_qkv_forward/backward (qkv (12, 64, 384) float32, 8 of 12 heads of D = 32 rotated, median of 300,
# 2 threads, 2026-11-26): NumPy's strided half-head slices 490-500 us per direction, numba 60-115 us, C 33-40 us.
AUTO_TABLE = {
    "matmul": ("c", "numpy", "numba"),
    "linear_forward": ("c", "numpy", "numba"),
    "linear_backward": ("c", "numpy", "numba"),
    "layer_norm_forward": ("c", "numba", "numpy"),
    "layer_norm_backward": ("c", "numba", "numpy"),
    "rms_norm_forward": ("c", "numba", "numpy"),
    "rms_norm_backward": ("c", "numba", "numpy"),
    "attention_forward": ("c", "numba", "numpy"),
    "attention_backward": ("c", "numba", "numpy"),
    "attention_qkv_forward": ("c", "numba", "numpy"),
    "attention_qkv_backward": ("c", "numba", "numpy"),
    "cross_entropy_forward": ("c", "numpy", "numba"),
    "cross_entropy_backward": ("c", "numpy", "numba"),
    "gelu_forward": ("c", "numba", "numpy"),
    "gelu_backward": ("c", "numba", "numpy"),
    "adamw_step": ("c", "numba", "numpy"),
    "embedding_backward": ("c", "numba", "numpy"),
    "sum_squares": ("c", "numba", "numpy"),
    "rotary_qkv_forward": ("c", "numba", "numpy"),
    "rotary_qkv_backward": ("c", "numba", "numpy"),
}
_ORDER = {"c": ("c", "numba", "numpy"), "numba": ("numba", "numpy"), "numpy": ("numpy",)}

_MODULES = {"numpy": "reference", "numba": "numba_backend", "c": "c_backend"}

_lock = threading.RLock()
_selection = None          # None until first use, then one of SELECTIONS
_cache = {}                # (name, dtype) -> callable; cleared whenever the selection changes
_resolved_by = {}          # (name, np.dtype) -> backend name, for info()
_loaded = {}               # backend name -> module, or None when it failed to load
_load_errors = {}          # backend name -> reason string
_warned = set()


def _env_selection():
    sel = os.environ.get("GOLDBULL_BACKEND", "auto").strip().lower() or "auto"
    if sel not in SELECTIONS:
        warnings.warn(f"goldbull_np.kernels: GOLDBULL_BACKEND={sel!r} is not one of {SELECTIONS}; "
                      "using 'auto'", RuntimeWarning, stacklevel=3)
        sel = "auto"
    return sel


def get_backend():
    """The current selection: 'auto', 'c', 'numba' or 'numpy'."""
    global _selection
    if _selection is None:
        with _lock:
            if _selection is None:
                _selection = _env_selection()
    return _selection


def set_backend(name):
    """Select a backend for every kernel ('auto', 'c', 'numba' or 'numpy')."""
    global _selection
    if name not in SELECTIONS:
        raise ValueError(f"backend must be one of {SELECTIONS}, got {name!r}")
    with _lock:
        _selection = name
        _cache.clear()
        _resolved_by.clear()


@contextlib.contextmanager
def use(name):
    """Context manager: run the block with backend `name`, then restore the previous selection."""
    prev = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(prev)


def _load(backend):
    """The backend module, or None (with one warning) if it cannot load."""
    if backend in _loaded:
        return _loaded[backend]
    mod = None
    try:
        mod = importlib.import_module(f"{__name__}.{_MODULES[backend]}")
        load = getattr(mod, "load", None)
        if load is not None:
            load()  # raises if the backend is unusable (e.g. the C extension was not built)
    except Exception as exc:  # noqa: BLE001 - any failure means "not available", never an error
        mod = None
        _load_errors[backend] = f"{type(exc).__name__}: {exc}"
        if backend not in _warned:
            _warned.add(backend)
            warnings.warn(f"goldbull_np.kernels: {backend} backend unavailable ({_load_errors[backend]}); "
                          "falling back to the next backend", RuntimeWarning, stacklevel=4)
    _loaded[backend] = mod
    return mod


def _order(name):
    sel = get_backend()
    return AUTO_TABLE[name] if sel == "auto" else _ORDER[sel]


def _resolve(name, dtype):
    if name not in AUTO_TABLE:
        raise KeyError(f"unknown kernel {name!r}; known: {', '.join(KERNEL_NAMES)}")
    dt = np.dtype(dtype)
    with _lock:
        for backend in _order(name) + ("numpy",):
            mod = _load(backend)
            if mod is None or name not in mod.KERNELS:
                continue
            if dt not in mod.DTYPES.get(name, ()):
                continue
            fn = mod.KERNELS[name]
            _cache[(name, dtype)] = fn
            _resolved_by[(name, dt)] = backend
            return fn
    raise TypeError(f"no backend implements kernel {name!r} for dtype {dt}")


def get(name, dtype=np.float32, empty=False):
    """The implementation of kernel `name` for inputs of `dtype` under the current selection.

    `empty=True` (some input has a zero-size dimension) always gives the NumPy reference: it handles
    any size, while the C wrappers reject zero-size arrays before they reach C.
    """
    if empty:
        return getattr(_load("numpy"), name)
    try:
        return _cache[(name, dtype)]
    except KeyError:
        get_backend()
        return _resolve(name, dtype)


def resolve_backend(name, dtype=np.float32):
    """Name of the backend `get(name, dtype)` resolves to."""
    get(name, dtype)
    return _resolved_by[(name, np.dtype(dtype))]


def _reset_for_tests():
    """Forget loaded backends, warnings and the selection (tests simulate load failures with it)."""
    global _selection
    with _lock:
        _selection = None
        _cache.clear()
        _resolved_by.clear()
        _loaded.clear()
        _load_errors.clear()
        _warned.clear()


# ----------------------------------------------------------------------------------------------
# threads

def _openblas():
    """(get, set) callables for NumPy's OpenBLAS thread count via ctypes, or None."""
    import ctypes
    import glob
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    cands = glob.glob(os.path.join(libdir, "libscipy_openblas*")) + glob.glob(os.path.join(libdir, "libopenblas*"))
    for path in cands:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", "", "_64_"):
            for prefix in ("scipy_openblas", "openblas"):
                g = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                s = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if g is not None and s is not None:
                    s.argtypes = [ctypes.c_int]
                    return g, s
    return None


def _openblas_threads(n=None):
    try:
        import threadpoolctl  # optional
        if n is not None:
            threadpoolctl.threadpool_limits(n, user_api="blas")
        info = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
        return info[0]["num_threads"] if info else None
    except ImportError:
        pass
    try:
        gs = _openblas()
    except Exception:  # noqa: BLE001
        gs = None
    if gs is None:
        return None
    if n is not None:
        gs[1](int(n))
    return int(gs[0]())


def set_num_threads(n):
    """Use `n` threads in OpenMP (C backend), numba (if imported) and OpenBLAS."""
    n = int(n)
    if n < 1:
        raise ValueError("n must be >= 1")
    c = _loaded.get("c")
    if c is None and "c" not in _loaded:  # not resolved yet: set it anyway if the extension exists
        try:
            from . import c_backend as c
            c.load()
        except ImportError:
            c = None
    if c is not None:
        c.set_num_threads(n)
    if "numba" in sys.modules:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    _openblas_threads(n)


def info():
    """What is available and what each kernel resolves to under the current selection."""
    import cffi
    out = {"selection": get_backend()}
    c = _load("c") if "c" not in _loaded else _loaded["c"]
    out["c_extension"] = {"loaded": c is not None, "reason": None if c is not None else _load_errors.get("c")}
    if c is not None:
        out["c_extension"].update(c.runtime_info())
    try:
        from importlib.metadata import version
        nb_version = version("numba")
    except Exception:  # noqa: BLE001
        nb_version = None
    out["cffi_version"] = cffi.__version__
    out["kernels"] = {}
    for name in KERNEL_NAMES:  # may import numba (float64 routes there): info() is not a hot path
        row = {}
        for dt in (np.float32, np.float64):
            try:
                row[np.dtype(dt).name] = resolve_backend(name, dt)
            except TypeError:
                row[np.dtype(dt).name] = None
        out["kernels"][name] = row
    nb = sys.modules.get("numba")  # None if never imported (or blocked)
    out["numba"] = {"available": nb_version is not None and _loaded.get("numba", True) is not None,
                    "version": nb_version, "reason": _load_errors.get("numba"),
                    "threads": nb.get_num_threads() if nb is not None else None}
    out["threads"] = {"openblas": _openblas_threads(), "openmp": out["c_extension"].get("omp_max_threads"),
                      "numba": out["numba"]["threads"], "cpus": os.cpu_count(),
                      "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    return out


__all__ = ["KERNEL_NAMES", "BACKENDS", "SELECTIONS", "AUTO_TABLE", "get", "get_backend", "set_backend",
           "use", "resolve_backend", "set_num_threads", "info"]
