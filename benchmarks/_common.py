"""Small shared helpers for the benchmark scripts: median timing, a table, JSON results, peak RSS.

Benchmarks claim ratios measured side by side in one run; nothing here asserts a wall-clock limit.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def median_time(fn, repeat=20, warmup=2, budget=None):
    """Median wall time (s) of fn() over `repeat` calls after `warmup` calls.

    budget: if given (seconds), lower `repeat` (not below 5) so that the timed calls take about
    that long; the number actually used is returned as the second value.
    """
    for _ in range(warmup):
        fn()
    if budget is not None:
        t0 = time.perf_counter()
        fn()
        one = time.perf_counter() - t0
        repeat = int(max(5, min(repeat, budget / max(one, 1e-9))))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), repeat


def print_table(rows, columns, title=None):
    """rows: list of dicts; columns: list of (key, header, format) with format like '{:.3f}'."""
    cells = [[(fmt.format(r[k]) if r.get(k) is not None else "-") for k, _, fmt in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (_, h, _) in enumerate(columns)]
    if title:
        print(f"\n{title}")
    print("  ".join(h.ljust(w) for (_, h, _), w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(x.ljust(w) for x, w in zip(c, widths)))


def machine_info():
    info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        pass
    try:  # the C kernels' instruction-set tier: the CPU's best, and the one run (GOLDBULL_C_ISA caps it)
        from goldbull_np.kernels import c_backend  # noqa: PLC0415
        info["c_isa_cpu"], info["c_isa"] = c_backend.cpu_isa(), c_backend.isa()
    except ImportError:
        info["c_isa"] = None
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = f.read().split()[:3]  # other work on the machine skews timings
    except OSError:
        pass
    return info


def write_json(name, data):
    """Write data (plus machine info) to benchmarks/results/<name>.json atomically; returns the path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"machine": machine_info(), **data}, f, indent=1, default=str)
    os.replace(tmp, path)
    return path


_RSS_PRELUDE = r'''
import os, resource, json
def _status(key):
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith(key + ":"):
                return int(ln.split()[1]) * 1024
def reset_peak():
    """Reset VmHWM (Linux >= 4.0) and return the current RSS: the baseline of the measurement."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status("VmRSS")
def report_peak(baseline):
    print("__PEAK__" + json.dumps({"peak_bytes": _status("VmHWM") - baseline}))
'''


def peak_rss():
    """This process's peak resident set size in bytes (VmHWM), or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_subprocess(code, env=None, timeout=600):
    """Peak RSS growth (bytes) of a measured region, in a fresh interpreter.

    `code` sets up its inputs (and warms up), then calls `b = reset_peak()`, runs the region, and
    calls `report_peak(b)`. Returns None if the child failed.
    """
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    r = subprocess.run([sys.executable, "-c", _RSS_PRELUDE + code], capture_output=True, text=True,
                       env=full_env, timeout=timeout)
    for ln in r.stdout.splitlines():
        if ln.startswith("__PEAK__"):
            return json.loads(ln[len("__PEAK__"):])["peak_bytes"]
    sys.stderr.write(r.stderr[-2000:])
    return None
