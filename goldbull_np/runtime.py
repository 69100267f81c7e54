"""Process-wide runtime settings: made here, once each, documented, opt-out, reported by `report()`.

goldbull_np changes three things about the process it runs in. None overrides a value the user set,
none is undone behind the user's back, and `goldbull info` prints what happened to each:

  omp_wait_policy  OMP_WAIT_POLICY=PASSIVE in os.environ, set by `set_omp_wait_policy()` when
                   goldbull_np.kernels is imported, i.e. before numba or the C extension can load
                   libgomp (which reads it once, at load). Why: numba's threading layer here is OpenMP,
                   and an idle libgomp worker spins without yielding, taking the cores that the C
                   kernels' own team (csrc/pool.c, which never uses libgomp's pool) and the Python
                   thread need. Skipped when OMP_WAIT_POLICY or GOMP_SPINCOUNT is already set. As an
                   environment variable it also reaches child processes and any other libgomp user
                   loaded later in this process (torch, say). Opt out: GOLDBULL_OMP_PASSIVE=0.
  malloc           glibc's M_MMAP_THRESHOLD = 32 MiB (glibc's maximum) and M_TRIM_THRESHOLD = 1 GiB,
                   set by `tune_malloc(lib)` when the C extension loads (csrc/runtime.c,
                   gb_malloc_keep_freed). Why: by default glibc serves each large block with a fresh mmap
                   and trims the freed heap top, so every array of a training step comes back as new
                   zero pages whose first-touch faults cost more than the arithmetic on them. Freed
                   memory stays resident up to the peak already reached (peak RSS unchanged). Skipped
                   when MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES is set.
                   Opt out: GOLDBULL_MALLOC_TUNE=0.
  gc_freeze        `frozen_gc()`, a context manager for a training run: gc.freeze() on entry, so the
                   cyclic collector's full collections skip the long-lived model, optimizer state and
                   data; on exit gc.unfreeze() only if nothing was frozen before it (a user's own
                   gc.freeze() stays in force). Opt out: GOLDBULL_GC_FREEZE=0.

GOLDBULL_RUNTIME_TUNING=0 turns all three off. "0", "false", "no" and "off" (any case) mean off.
Measured effects, machine and dates: benchmarks/results/kernel_choices.md.
"""
from __future__ import annotations

import contextlib
import gc
import os
import threading

__all__ = ["SETTINGS", "MASTER_SWITCH", "OPT_OUT", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "opted_out",
           "set_omp_wait_policy", "tune_malloc", "frozen_gc", "report"]

SETTINGS = ("omp_wait_policy", "malloc", "gc_freeze")
MASTER_SWITCH = "GOLDBULL_RUNTIME_TUNING"
OPT_OUT = {"omp_wait_policy": "GOLDBULL_OMP_PASSIVE", "malloc": "GOLDBULL_MALLOC_TUNE",
           "gc_freeze": "GOLDBULL_GC_FREEZE"}
# The user's own settings of the same knobs: any of them present means "leave it alone".
USER_ENV = {"omp_wait_policy": ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"),
            "malloc": ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")}
MMAP_THRESHOLD = 32 << 20   # glibc's maximum: blocks up to 32 MiB come from the reusable heap
TRIM_THRESHOLD = 1 << 30    # the heap top is given back only above 1 GiB of free space
_OFF = ("0", "false", "no", "off")

_lock = threading.Lock()
_status = {}       # setting -> {"applied": bool, "reason": str}, once decided
_gc_depth = 0      # frozen_gc() blocks currently open


def opted_out(setting):
    """"VAR=value" of the environment variable that turns `setting` off, or None if it is on."""
    for var in (MASTER_SWITCH, OPT_OUT[setting]):
        val = os.environ.get(var)
        if val is not None and val.strip().lower() in _OFF:
            return f"{var}={val}"
    return None


def _user_set(setting):
    return [k for k in USER_ENV[setting] if k in os.environ]


def set_omp_wait_policy():
    """Set OMP_WAIT_POLICY=PASSIVE unless opted out or the user set OMP_WAIT_POLICY/GOMP_SPINCOUNT.

    Decided once per process (later calls return the first status). It only takes effect if it runs
    before libgomp loads: goldbull_np.kernels calls it at import, before numba or goldbull_np._C."""
    with _lock:
        if "omp_wait_policy" not in _status:
            off, user = opted_out("omp_wait_policy"), _user_set("omp_wait_policy")
            if off:
                st = dict(applied=False, reason=f"opted out ({off})")
            elif user:
                st = dict(applied=False, reason="left to the user's " + ", ".join(
                    f"{k}={os.environ[k]}" for k in user))
            else:
                os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
                st = dict(applied=True, reason="OMP_WAIT_POLICY=PASSIVE: idle OpenMP (numba) workers sleep "
                                               "instead of spinning against the C kernels' team")
            _status["omp_wait_policy"] = st
        return dict(_status["omp_wait_policy"])


def tune_malloc(lib):
    """Keep freed blocks mapped (glibc mallopt through lib.gb_malloc_keep_freed) unless opted out or
    the user set MALLOC_*_/GLIBC_TUNABLES. Applied once per process: the C backend calls it when the
    extension loads; later calls return the first status."""
    with _lock:
        if "malloc" not in _status:
            off, user = opted_out("malloc"), _user_set("malloc")
            if off:
                st = dict(applied=False, reason=f"opted out ({off})")
            elif user:
                st = dict(applied=False, reason="left to the user's " + ", ".join(
                    f"{k}={os.environ[k]}" for k in user))
            elif lib.gb_malloc_keep_freed(MMAP_THRESHOLD, TRIM_THRESHOLD):
                st = dict(applied=True, reason=f"mallopt M_MMAP_THRESHOLD={MMAP_THRESHOLD}, "
                                               f"M_TRIM_THRESHOLD={TRIM_THRESHOLD}: freed blocks stay mapped")
            else:
                st = dict(applied=False, reason="mallopt unavailable or refused (not glibc?)")
            _status["malloc"] = st
        return dict(_status["malloc"])


@contextlib.contextmanager
def frozen_gc():
    """Context manager for a training run: gc.freeze() what exists now (model, optimizer, data).

    On exit it calls gc.unfreeze() only if gc.get_freeze_count() was 0 on entry, so objects the user
    (or an enclosing frozen_gc) froze stay frozen. GOLDBULL_GC_FREEZE=0 or GOLDBULL_RUNTIME_TUNING=0:
    nothing is frozen. Yields True if it froze, False if opted out."""
    global _gc_depth
    off = opted_out("gc_freeze")
    if off:
        yield False
        return
    owner = gc.get_freeze_count() == 0
    gc.freeze()
    with _lock:
        _gc_depth += 1
    try:
        yield True
    finally:
        with _lock:
            _gc_depth -= 1
        if owner:
            gc.unfreeze()


def _gc_status():
    off = opted_out("gc_freeze")
    if off:
        return dict(applied=False, reason=f"opted out ({off})")
    if _gc_depth:
        return dict(applied=True, reason=f"frozen_gc() active: {gc.get_freeze_count()} objects frozen")
    return dict(applied=False, reason="on inside frozen_gc() (a training run); none active now",
                frozen_by_others=gc.get_freeze_count())


def report():
    """{setting: {"applied": bool, "reason": str, "opt_out": "VAR=0"}} for each of SETTINGS, in order
    (GOLDBULL_RUNTIME_TUNING=0 turns them all off)."""
    with _lock:
        out = {k: dict(v) for k, v in _status.items()}
    out.setdefault("omp_wait_policy", dict(applied=False, reason="not decided yet (goldbull_np.kernels "
                                                                  "not imported)"))
    out.setdefault("malloc", dict(applied=False, reason="not decided yet (C extension not loaded)"))
    out["gc_freeze"] = _gc_status()
    for k in SETTINGS:
        out[k]["opt_out"] = f"{OPT_OUT[k]}=0"  # or MASTER_SWITCH=0 for all of them
    return {k: out[k] for k in SETTINGS}


def _reset_for_tests():
    """Forget the once-only decisions (tests re-run them with other environments)."""
    with _lock:
        _status.clear()
