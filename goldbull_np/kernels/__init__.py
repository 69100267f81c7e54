"""THE dispatch point: which implementation of each kernel runs, and how it is called.

Three backends, each a table of the kernels it registers (KERNELS) and their dtypes (DTYPES):
  numpy  `reference.py`      every kernel (its KERNEL_NAMES is the one list of kernel names), float32
                             and float64 (sum_squares any float); always loads.
  numba  `numba_backend.py`  float32 + float64, all but matmul/linear/cross-entropy (NumPy is faster);
                             numba is imported only when this backend is first needed.
  c      `c_backend.py`      float32 only (sum_squares also float64); wraps the cffi extension
                             `goldbull_np._C` built by setup.py.
A fast backend registers exactly the kernels whose AUTO_TABLE order lists it (where `auto` picks it,
or would when the backends before it cannot load): no implementation sits unreachable behind numpy.
For a dtype a backend does not register, resolution falls through to the next one. A backend that is
legitimately unavailable (an ImportError of a module that is not ours, e.g. numba not installed, or
of the extension goldbull_np._C, not built; an OSError loading a shared library) gives one warning
line and falls through, never an error; any other exception while importing or loading a backend
(a NameError, a SyntaxError, a failed import of one of our modules: a bug) propagates.

Selection: env GOLDBULL_BACKEND=auto|c|numba|numpy (read at first use), `set_backend(name)`, or
`with kernels.use("numba"): ...`. Selection is process-global (not thread-local).

Calling: `get(name, dtype)(*args, **kwargs)`. `get` costs one dict lookup after the first call for that
(name, dtype); the callable it returns makes the two decisions no caller makes:
  * a call with a zero-size ndarray argument runs the NumPy reference (it handles any size; the C
    wrappers reject zero-size arrays before they reach C);
  * float16 (which only the reference's sum_squares registers) runs the float32 kernel on upcast
    copies of the float16 arguments; the primary output (a tuple's first item) comes back as float16,
    saved statistics and further outputs stay float32 (the engine casts input gradients).

Threads: `set_num_threads(n)` sets the C extension's thread team, numba (its threading layer is
OpenMP here) and OpenBLAS (threadpoolctl if installed, else the OpenBLAS symbol through ctypes).
Kernel calls are synchronous, so the pools never compute at the same time; what matters is how an
idle pool waits. The C kernels run on their own team (csrc/pool.c, internal/gb_pool.h: spin, then
yield, then sleep), because libgomp offers only "spin without yielding" or "sleep at once"; the
OpenMP pool numba uses is set to sleep at once (goldbull_np.runtime: OMP_WAIT_POLICY=PASSIVE, set at
this module's import, before libgomp loads); `auto` runs matmul/linear in C, so a training step uses
the C team only. The measurements behind these choices and AUTO_TABLE, with machine and dates:
benchmarks/results/kernel_choices.md.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import threading
import warnings

import numpy as np

from .. import runtime as _runtime

_runtime.set_omp_wait_policy()  # before numba or goldbull_np._C can load libgomp

from ._checks import IGNORE_INDEX, EmptyInputError  # noqa: E402
from .reference import KERNEL_NAMES  # noqa: E402

BACKENDS = ("c", "numba", "numpy")
SELECTIONS = ("auto",) + BACKENDS

# `auto`: per kernel, the backend measured fastest inside a training step on this kind of machine,
# then the fallbacks; a list ends at numpy (it registers every kernel). Why each order, with the
# figures: benchmarks/results/kernel_choices.md. In short: C first everywhere (one thread team per
# step); matmul, linear and cross-entropy then go to NumPy (OpenBLAS; NumPy's cross-entropy beat
# numba's), the rest to numba (fused loops, no (B,H,T,S) attention scores).
AUTO_TABLE = {
    "matmul": ("c", "numpy"),
    "linear_forward": ("c", "numpy"),
    "linear_backward": ("c", "numpy"),
    "layer_norm_forward": ("c", "numba", "numpy"),
    "layer_norm_backward": ("c", "numba", "numpy"),
    "rms_norm_forward": ("c", "numba", "numpy"),
    "rms_norm_backward": ("c", "numba", "numpy"),
    "attention_forward": ("c", "numba", "numpy"),
    "attention_backward": ("c", "numba", "numpy"),
    "attention_qkv_forward": ("c", "numba", "numpy"),
    "attention_qkv_backward": ("c", "numba", "numpy"),
    "cross_entropy_forward": ("c", "numpy"),
    "cross_entropy_backward": ("c", "numpy"),
    "gelu_forward": ("c", "numba", "numpy"),
    "gelu_backward": ("c", "numba", "numpy"),
    "gelu_forward_backward": ("c", "numba", "numpy"),
    "adamw_step": ("c", "numba", "numpy"),
    "embedding_backward": ("c", "numba", "numpy"),
    "sum_squares": ("c", "numba", "numpy"),
    "rotary_qkv_forward": ("c", "numba", "numpy"),
    "rotary_qkv_backward": ("c", "numba", "numpy"),
    # convolution / pooling / batch norm (NCHW): C where it exists (conv2d: per-image im2col blocks on
    # the SGEMM's tile GEMM)
    "conv2d_forward": ("c", "numpy"),
    "conv2d_backward": ("c", "numpy"),
    "max_pool2d_forward": ("c", "numpy"),
    "max_pool2d_backward": ("c", "numpy"),
    "avg_pool2d_forward": ("c", "numpy"),
    "avg_pool2d_backward": ("c", "numpy"),
    "batch_norm_forward": ("c", "numpy"),
    "batch_norm_backward": ("c", "numpy"),
    # int8 weights x dynamically quantised activations (inference): C's int16-widened dots
    "int8_linear_forward": ("c", "numpy"),
}
_ORDER = {"c": ("c", "numba", "numpy"), "numba": ("numba", "numpy"), "numpy": ("numpy",)}

_MODULES = {"numpy": "reference", "numba": "numba_backend", "c": "c_backend"}
_F16, _F32 = np.dtype(np.float16), np.dtype(np.float32)

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


def _unavailable(exc):
    """True if `exc`, raised while importing/loading a backend, means "this backend cannot run here":
    an import of a module that is not ours (numba missing or broken) or of the C extension
    goldbull_np._C (not built, built for another Python), or an OSError loading a shared library.
    Anything else, including a failed import of one of our own modules, is a bug and propagates."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, ImportError):
        name = exc.name or ""
        return name == "goldbull_np._C" or not (name == "goldbull_np" or name.startswith("goldbull_np."))
    return False


def _load(backend):
    """The backend module, or None (with one warning) if it is unavailable on this machine."""
    if backend in _loaded:
        return _loaded[backend]
    mod = None
    try:
        mod = importlib.import_module(f"{__name__}.{_MODULES[backend]}")
        load = getattr(mod, "load", None)
        if load is not None:
            load()  # raises ImportError if the backend is unusable (e.g. the C extension was not built)
    except Exception as exc:
        if not _unavailable(exc):
            raise
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


def _find(name, dt):
    """(module, backend) of the first backend in the selection's order registering `name` for dt."""
    for backend in _order(name) + ("numpy",):
        mod = _load(backend)
        if mod is not None and name in mod.KERNELS and dt in mod.DTYPES.get(name, ()):
            return mod, backend
    return None, None


def _empty_to_reference(fn, ref, raises_on_empty=False):
    """fn, except that a call with a zero-size ndarray argument runs the reference `ref`.

    A backend whose wrappers raise EmptyInputError for such an argument (RAISES_ON_EMPTY: the C
    wrappers check every array anyway) costs one try block; for the others the arguments are scanned."""
    if fn is ref:
        return fn
    if raises_on_empty:
        @functools.wraps(fn)
        def kernel(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except EmptyInputError:
                pass
            return ref(*args, **kwargs)
        return kernel
    ndarray = np.ndarray

    @functools.wraps(fn)
    def kernel(*args, **kwargs):
        for a in args:
            if isinstance(a, ndarray) and not a.size:
                return ref(*args, **kwargs)
        if kwargs:
            for a in kwargs.values():
                if isinstance(a, ndarray) and not a.size:
                    return ref(*args, **kwargs)
        return fn(*args, **kwargs)
    return kernel


def _up(a):
    return a.astype(_F32) if isinstance(a, np.ndarray) and a.dtype == _F16 else a


def _through_float32(fn32):
    """fn32 (a float32 kernel) for float16 arguments: upcast in, the primary output cast back."""
    @functools.wraps(fn32)
    def kernel(*args, **kwargs):
        out = fn32(*[_up(a) for a in args], **{k: _up(v) for k, v in kwargs.items()})
        if isinstance(out, tuple):
            return (out[0].astype(_F16) if isinstance(out[0], np.ndarray) else out[0],) + out[1:]
        return out.astype(_F16) if isinstance(out, np.ndarray) else out
    return kernel


def _resolve(name, dtype):
    if name not in AUTO_TABLE:
        raise KeyError(f"unknown kernel {name!r}; known: {', '.join(KERNEL_NAMES)}")
    dt = np.dtype(dtype)
    with _lock:
        mod, backend = _find(name, dt)
        if mod is not None:
            fn = _empty_to_reference(mod.KERNELS[name], _load("numpy").KERNELS[name],
                                     getattr(mod, "RAISES_ON_EMPTY", False))
        elif dt == _F16:
            fn = _through_float32(get(name, _F32))  # TypeError if no float32 kernel either
            backend = _resolved_by[(name, _F32)]
        else:
            raise TypeError(f"no backend implements kernel {name!r} for dtype {dt}")
        _cache[(name, dtype)] = fn
        _resolved_by[(name, dt)] = backend
        return fn


def get(name, dtype=np.float32):
    """The implementation of kernel `name` for inputs of `dtype` under the current selection.

    Zero-size array arguments and float16 are handled by the returned callable (module docstring),
    so callers just call it. KeyError for an unknown name, TypeError when no backend has the dtype.
    """
    try:
        return _cache[(name, dtype)]
    except KeyError:
        get_backend()
        return _resolve(name, dtype)


def resolve_backend(name, dtype=np.float32):
    """Name of the backend `get(name, dtype)` resolves to (for float16: the float32 kernel's)."""
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
        except Exception as exc:
            if not _unavailable(exc):
                raise
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


__all__ = ["KERNEL_NAMES", "IGNORE_INDEX", "BACKENDS", "SELECTIONS", "AUTO_TABLE", "get", "get_backend",
           "set_backend", "use", "resolve_backend", "set_num_threads", "info"]
