"""Python-level cost per autograd op: forward + backward of a 100-op chain on tiny tensors.

The question: how much does the engine itself (Function.apply, Tensor construction, the backward
loop) cost per op, when the arithmetic is negligible? Measured side by side with PyTorch eager
(one thread) when torch is importable; the target is goldbull_np <= 1.5x PyTorch per op.

The chain repeats ``y = y * 1.01; y = y + x; y = y.tanh(); y = y - 0.5`` (a scalar op, a tensor op
with a leaf input, a unary op, a reflected-style scalar op) on (4, 4) float32 tensors, then
``y.sum().backward()``. Each run times ``--chain`` ops; the median over ``--runs`` runs is reported,
the two libraries interleaved run by run so that machine noise hits both alike.

    python3 benchmarks/bench_overhead.py [--chain 100] [--runs 300] [--json benchmarks/results/bench_overhead.json]
"""
import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
import goldbull_np as gb  # noqa: E402

try:
    import torch
except ImportError:  # optional
    torch = None


def chain(x, n):
    """n ops (n a multiple of 4) starting from leaf x; returns the scalar loss."""
    y = x
    for _ in range(n // 4):
        y = y * 1.01
        y = y + x
        y = y.tanh()
        y = y - 0.5
    return y.sum()


def time_once(x, n):
    """(forward seconds, backward seconds) for one chain."""
    t0 = time.perf_counter()
    loss = chain(x, n)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    x.grad = None
    return t1 - t0, t2 - t1


def validate(n):
    """goldbull_np and torch compute the same loss and gradient before anything is timed."""
    x0 = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    xg = gb.tensor(x0, requires_grad=True)
    lg = chain(xg, n)
    lg.backward()
    if torch is not None:
        xt = torch.tensor(x0, requires_grad=True)
        lt = chain(xt, n)
        lt.backward()
        assert np.allclose(lg.item(), lt.item(), rtol=1e-4, atol=1e-4), (lg.item(), lt.item())
        assert np.allclose(xg.grad, xt.grad.numpy(), rtol=1e-3, atol=1e-4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chain", type=int, default=100, help="ops per chain (multiple of 4)")
    ap.add_argument("--runs", type=int, default=300, help="timed runs per library (median reported)")
    ap.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                   "bench_overhead.json"))
    args = ap.parse_args()
    n = args.chain - args.chain % 4
    if torch is not None:
        torch.set_num_threads(1)
    validate(n)

    libs = {"goldbull_np": lambda: gb.randn(4, 4, requires_grad=True),
            "goldbull_np (gc paused)": lambda: gb.randn(4, 4, requires_grad=True)}
    if torch is not None:
        libs["torch"] = lambda: torch.randn(4, 4, requires_grad=True)
    times = {name: [] for name in libs}
    xs = {name: make() for name, make in libs.items()}
    for name, x in xs.items():  # warm up
        for _ in range(20):
            time_once(x, n)
    for _ in range(args.runs):
        for name, x in xs.items():
            if "gc paused" in name:
                with gb.autograd.gc_paused():
                    times[name].append(time_once(x, n))
            else:
                times[name].append(time_once(x, n))
    gc.collect()

    rows = {}
    for name, ts in times.items():
        fwd = statistics.median(t[0] for t in ts) / n * 1e6
        bwd = statistics.median(t[1] for t in ts) / n * 1e6
        tot = statistics.median(t[0] + t[1] for t in ts) / n * 1e6
        rows[name] = {"forward_us_per_op": fwd, "backward_us_per_op": bwd, "total_us_per_op": tot}
    ref = rows.get("torch")
    print(f"per-op overhead, {n}-op chain on (4, 4) float32, median of {args.runs} runs")
    print(f"{'library':<26}{'fwd us/op':>11}{'bwd us/op':>11}{'total us/op':>13}{'x torch':>9}")
    for name, r in rows.items():
        ratio = r["total_us_per_op"] / ref["total_us_per_op"] if ref else float("nan")
        r["ratio_vs_torch"] = ratio if ref else None
        print(f"{name:<26}{r['forward_us_per_op']:>11.2f}{r['backward_us_per_op']:>11.2f}"
              f"{r['total_us_per_op']:>13.2f}{ratio:>9.2f}")
    if ref is None:
        print("(torch not importable: no ratio)")

    out = {"benchmark": "bench_overhead", "chain_ops": n, "runs": args.runs, "shape": [4, 4],
           "dtype": "float32", "results": rows,
           "machine": {"python": platform.python_version(), "numpy": np.__version__,
                       "torch": None if torch is None else torch.__version__,
                       "torch_threads": None if torch is None else torch.get_num_threads(),
                       "cpus": os.cpu_count(), "platform": platform.platform()},
           "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
