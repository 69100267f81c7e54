"""Which kernel implementation is fastest here, and how do they compare with PyTorch?

For every kernel x backend x shape: validate against the NumPy reference, then time (median of
>= 20 calls after warm-up; slow reference/numba cells with no target attached get at least 5 within
a time budget, and the table says how many). NumPy is the obvious NumPy-composed implementation (the
reference; for matmul it is OpenBLAS); PyTorch is timed when importable, with its thread count
matched to --threads. Norms, attention, cross-entropy and GELU are timed forward+backward.
Also: peak RSS of attention forward+backward at T=1024 per implementation (fresh subprocess each).
Then the public-API table: each fused op as a user calls it (F.layer_norm, F.gelu_linear, ...: fresh
requires-grad Tensors every call, as a training step builds them, forward then backward with the
same upstream gradient) against the torch.nn.functional code doing exactly the same, the two sides
alternating call by call; ratio = our median / torch's median (skipped without torch).
Prints the tables, the suggested `auto` table, and writes benchmarks/results/bench_kernels.json
(with the C kernels' ISA tier, torch's CPU capability and the thread count).

    python3 benchmarks/bench_kernels.py [--threads 2] [--quick] [--only layer_norm ...] [--api-only]
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from _common import median_time, peak_rss_subprocess, print_table, write_json

import goldbull_np as gb
import goldbull_np.kernels as K
import goldbull_np.nn.functional as GF
from goldbull_np.kernels import reference as ref

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # optional
    torch = None

# kernel group -> kernels whose `auto` entry it decides
GROUP_KERNELS = {
    "matmul": ["matmul"], "linear": ["linear_forward", "linear_backward"],
    "layer_norm": ["layer_norm_forward", "layer_norm_backward"], "rms_norm": ["rms_norm_forward", "rms_norm_backward"],
    "attention": ["attention_forward", "attention_backward"],
    "cross_entropy": ["cross_entropy_forward", "cross_entropy_backward"],
    "gelu": ["gelu_forward", "gelu_backward", "gelu_forward_backward"], "adamw": ["adamw_step"],
}


def _backends():
    mods = {"numpy": ref}
    for name, modname in (("numba", "numba_backend"), ("c", "c_backend")):
        try:
            mod = __import__(f"goldbull_np.kernels.{modname}", fromlist=["load"])
            mod.load()
            mods[name] = mod
        except Exception as exc:  # noqa: BLE001
            print(f"({name} backend unavailable: {exc})", file=sys.stderr)
    return mods


def _t(a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(True) if grad else t


def _np(t):
    return None if t is None else t.detach().numpy()


# ----------------------------------------------------------------------------------------------
# cases: each returns (ours(mod) -> outputs, torch() -> outputs or None, flops or None)

def case_matmul(rng, M, K_, N):
    a, b = rng.standard_normal((M, K_), np.float32), rng.standard_normal((K_, N), np.float32)
    out = np.empty((M, N), np.float32)
    ta, tb, tout = (_t(a), _t(b), torch.empty(M, N)) if torch else (None,) * 3
    return (lambda m: (m.matmul(a, b, out=out),),
            (lambda: (torch.matmul(ta, tb, out=tout).numpy(),)) if torch else None, 2.0 * M * N * K_)


def case_linear(rng, N, C, OC):
    x, w, b = (rng.standard_normal(s, np.float32) for s in ((N, C), (OC, C), (OC,)))
    dout = rng.standard_normal((N, OC), np.float32)

    def ours(m):
        out = m.linear_forward(x, w, b)
        return (out,) + tuple(m.linear_backward(dout, x, w))

    def theirs():
        tx, tw, tb = _t(x, True), _t(w, True), _t(b, True)
        out = F.linear(tx, tw, tb)
        out.backward(_t(dout))
        return _np(out), _np(tx.grad), _np(tw.grad), _np(tb.grad)
    return ours, (theirs if torch else None), 6.0 * N * C * OC


def case_layer_norm(rng, N, C):
    x, w, b, dout = (rng.standard_normal(s, np.float32) for s in ((N, C), (C,), (C,), (N, C)))

    def ours(m):
        out, mean, rstd = m.layer_norm_forward(x, w, b, 1e-5)
        return (out,) + tuple(m.layer_norm_backward(dout, x, w, mean, rstd, True))

    def theirs():
        tx, tw, tb = _t(x, True), _t(w, True), _t(b, True)
        out = F.layer_norm(tx, (C,), tw, tb, 1e-5)
        out.backward(_t(dout))
        return _np(out), _np(tx.grad), _np(tw.grad), _np(tb.grad)
    return ours, (theirs if torch else None), None


def case_rms_norm(rng, N, C):
    x, w, dout = (rng.standard_normal(s, np.float32) for s in ((N, C), (C,), (N, C)))

    def ours(m):
        out, rstd = m.rms_norm_forward(x, w, 1e-6)
        return (out,) + tuple(m.rms_norm_backward(dout, x, w, rstd))

    def theirs():
        tx, tw = _t(x, True), _t(w, True)
        out = F.rms_norm(tx, (C,), tw, 1e-6)
        out.backward(_t(dout))
        return _np(out), _np(tx.grad), _np(tw.grad)
    return ours, (theirs if torch and hasattr(F, "rms_norm") else None), None


def _attn_inputs(rng, B, H, T, D):
    q, k, v, dout = (rng.standard_normal((B, H, T, D), np.float32) for _ in range(4))
    return q, k, v, dout, 1.0 / math.sqrt(D)


def case_attention(rng, B, H, T, D):
    q, k, v, dout, scale = _attn_inputs(rng, B, H, T, D)

    def ours(m):
        out, lse = m.attention_forward(q, k, v, scale, causal_offset=0)
        return (out,) + tuple(m.attention_backward(dout, q, k, v, out, lse, scale, causal_offset=0))

    def theirs():
        tq, tk, tv = _t(q, True), _t(k, True), _t(v, True)
        out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
        out.backward(_t(dout))
        return _np(out), _np(tq.grad), _np(tk.grad), _np(tv.grad)
    return ours, (theirs if torch else None), None


def case_cross_entropy(rng, N, V):
    logits = rng.standard_normal((N, V), np.float32)
    targets = rng.integers(0, V, N).astype(np.int64)
    dl = np.full(N, 1.0 / N, np.float32)   # reduction="mean" as per-row weights

    def ours(m):
        losses, lse = m.cross_entropy_forward(logits, targets)
        return losses, m.cross_entropy_backward(dl, logits, targets, lse)

    def theirs():
        tl = _t(logits, True)
        loss = F.cross_entropy(tl, _t(targets), reduction="mean")
        loss.backward()
        return None, _np(tl.grad)
    return ours, (theirs if torch else None), None


def case_gelu(rng, shape, approximate):
    x, dout = rng.standard_normal(shape, np.float32), rng.standard_normal(shape, np.float32)

    def ours(m):
        return m.gelu_forward(x, approximate), m.gelu_backward(dout, x, approximate)

    def theirs():
        tx = _t(x, True)
        out = F.gelu(tx, approximate=approximate)
        out.backward(_t(dout))
        return _np(out), _np(tx.grad)
    return ours, (theirs if torch else None), None


def case_adamw(rng, P):
    split = int(P * 0.9)   # decay / no-decay groups
    segments = np.array([0, split, P], np.int64)
    lrs, wds = np.array([1e-3, 1e-3]), np.array([0.1, 0.0])
    p0, g = rng.standard_normal(P, np.float32), rng.standard_normal(P, np.float32)
    state = {}

    def ours(m):
        if m not in state:  # fresh buffers per implementation; repeated calls keep stepping
            state[m] = (p0.copy(), np.zeros(P, np.float32), np.zeros(P, np.float32))
        p, ea, eas = state[m]
        m.adamw_step(p, g, ea, eas, 1, lrs, wds, segments)
        return (p,)

    def make_torch(mode):
        sizes = [split // 40] * 39 + [split - 39 * (split // 40)]
        chunks = np.split(p0[:split], np.cumsum(sizes)[:-1])
        params = [torch.nn.Parameter(torch.from_numpy(c.copy())) for c in chunks]
        nd = torch.nn.Parameter(torch.from_numpy(p0[split:].copy()))
        gs = np.split(g[:split], np.cumsum(sizes)[:-1])
        for prm, gg in zip(params, gs):
            prm.grad = torch.from_numpy(gg.copy())
        nd.grad = torch.from_numpy(g[split:].copy())
        opt = torch.optim.AdamW([{"params": params, "weight_decay": 0.1}, {"params": [nd], "weight_decay": 0.0}],
                                lr=1e-3, **{mode: True})

        def step():
            opt.step()
            return (torch.cat([prm.detach() for prm in params] + [nd.detach()]).numpy(),)
        return step
    torch_impls = {f"torch-{mode}": make_torch(mode) for mode in ("fused", "foreach")} if torch else {}
    return ours, torch_impls, None


def _shapes(quick):
    """The shapes of each kernel group (the public-API table uses the same ones)."""
    sh = dict(mm=[(768, 128, 384), (2048, 384, 1536), (1024, 1024, 1024), (2048, 2048, 2048)],
              ln=[(768, 128), (2048, 384), (8192, 768)],
              at=[(12, 4, 64, 32), (8, 6, 256, 64), (4, 12, 1024, 64)],
              ce=[(768, 65), (2048, 50304)],
              lin=[(768, 128, 384), (2048, 384, 1536)],
              gelu=[(2048, 1536)])
    if quick:
        sh = {k: v[:1] for k, v in sh.items()}
        sh["gelu"] = [(256, 512)]
    return sh


def cases(quick):
    sh = _shapes(quick)
    mm, ln, at, ce, lin = sh["mm"], sh["ln"], sh["at"], sh["ce"], sh["lin"]
    out = [("matmul", f"{M}x{K_}@{K_}x{N}", case_matmul, (M, K_, N)) for M, K_, N in mm]
    out += [("linear", f"N={N} C={C} OC={OC}", case_linear, (N, C, OC)) for N, C, OC in lin]
    out += [("layer_norm", f"({N},{C})", case_layer_norm, (N, C)) for N, C in ln]
    out += [("rms_norm", f"({N},{C})", case_rms_norm, (N, C)) for N, C in ln]
    out += [("attention", f"causal B={B} H={H} T={T} D={D}", case_attention, (B, H, T, D)) for B, H, T, D in at]
    out += [("cross_entropy", f"({N},{V})", case_cross_entropy, (N, V)) for N, V in ce]
    out += [("gelu", f"({N},{C}) {a}", case_gelu, ((N, C), a)) for N, C in sh["gelu"] for a in ("tanh", "none")]
    out += [("adamw", "10M params" if not quick else "1M params", case_adamw, (10_000_000 if not quick else 1_000_000,))]
    return out


def _maxerr(got, want):
    errs = [float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))) / max(1.0, float(np.max(np.abs(w)))))
            for g, w in zip(got, want) if g is not None and w is not None]
    return max(errs) if errs else None


def _warm_up_machine(seconds, mods):
    """Keep both cores busy for a while before timing: on these VMs the first second or so after a
    start (or an idle spell) ran the same C matmul up to 1.9x slower, so whichever case came first
    was measured on a cold machine."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((768, 256), dtype=np.float32), rng.standard_normal((256, 768), dtype=np.float32)
    fns = [lambda: np.matmul(a, b)] + ([lambda: mods["c"].matmul(a, b)] if "c" in mods else [])
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for fn in fns:
            fn()


def run_cases(args, mods):
    rows = []
    for i, (group, label, make, params) in enumerate(cases(args.quick)):
        if args.only and group not in args.only:
            continue
        # the expected outputs come from a separate, identically seeded instance of the case, so
        # in-place kernels (AdamW) start every implementation from the same state
        want = tuple(None if w is None else np.array(w) for w in make(np.random.default_rng(i), *params)[0](ref))
        ours, theirs, flops = make(np.random.default_rng(i), *params)
        impls = {name: (lambda m=m: ours(m)) for name, m in mods.items()}
        if isinstance(theirs, dict):
            impls.update(theirs)
        elif theirs is not None:
            impls["torch"] = theirs
        for name, fn in impls.items():
            if group == "matmul" and name == "numba" and flops > 3e9:
                rows.append(dict(kernel=group, shape=label, impl=name, note="skipped (naive loops)"))
                continue
            err = _maxerr(fn(), want)
            targeted = name in ("c", "torch") or name.startswith("torch-") or (group == "matmul" and name == "numpy")
            budget = None if targeted else args.budget
            t, reps = min((median_time(fn, repeat=args.repeat, warmup=2, budget=budget) for _ in range(args.rounds)),
                          key=lambda r: r[0])
            row = dict(kernel=group, shape=label, impl=name, ms=t * 1e3, reps=reps, err=err)
            if flops:
                row["gflops"] = flops / t / 1e9
            rows.append(row)
            print(f"  {group:<13} {label:<28} {name:<13} {t * 1e3:10.3f} ms  (n={reps}, err={err if err is None else f'{err:.1e}'})",
                  flush=True)
    # ratios: vs torch's best for the same case; matmul GFLOP/s also vs NumPy/OpenBLAS
    for r in rows:
        same = [x for x in rows if x["kernel"] == r["kernel"] and x["shape"] == r["shape"] and "ms" in x]
        tor = [x["ms"] for x in same if x["impl"].startswith("torch")]
        if "ms" in r and tor:
            r["vs_torch"] = r["ms"] / min(tor)
        npy = [x for x in same if x["impl"] == "numpy"]
        if r["kernel"] == "matmul" and npy and "ms" in r:
            r["vs_numpy_gflops"] = npy[0]["ms"] / r["ms"]
    return rows


# ----------------------------------------------------------------------------------------------
# public API: each fused op as a user calls it, vs torch.nn.functional doing the same
# api cases: (ours() -> arrays, torch() -> arrays); both build fresh requires-grad tensors on the
# same input arrays, run forward, then backward with the same upstream gradient (or loss.backward())

def _leaf(a):
    return gb.Tensor(a, requires_grad=True)


def _grads(*ts):
    return tuple(None if t.grad is None else np.asarray(t.grad) for t in ts)


def api_linear(rng, N, C, OC):
    x, w, b, dout = (rng.standard_normal(s, np.float32) for s in ((N, C), (OC, C), (OC,), (N, OC)))

    def ours():
        tx, tw, tb = _leaf(x), _leaf(w), _leaf(b)
        out = GF.linear(tx, tw, tb)
        out.backward(dout)
        return (out.data,) + _grads(tx, tw, tb)

    def theirs():
        tx, tw, tb = _t(x, True), _t(w, True), _t(b, True)
        out = F.linear(tx, tw, tb)
        out.backward(_t(dout))
        return _np(out), _np(tx.grad), _np(tw.grad), _np(tb.grad)
    return ours, theirs


def api_layer_norm(rng, N, C):
    x, w, b, dout = (rng.standard_normal(s, np.float32) for s in ((N, C), (C,), (C,), (N, C)))

    def ours():
        tx, tw, tb = _leaf(x), _leaf(w), _leaf(b)
        out = GF.layer_norm(tx, (C,), tw, tb, 1e-5)
        out.backward(dout)
        return (out.data,) + _grads(tx, tw, tb)

    def theirs():
        tx, tw, tb = _t(x, True), _t(w, True), _t(b, True)
        out = F.layer_norm(tx, (C,), tw, tb, 1e-5)
        out.backward(_t(dout))
        return _np(out), _np(tx.grad), _np(tw.grad), _np(tb.grad)
    return ours, theirs


def api_rms_norm(rng, N, C):
    x, w, dout = (rng.standard_normal(s, np.float32) for s in ((N, C), (C,), (N, C)))

    def ours():
        tx, tw = _leaf(x), _leaf(w)
        out = GF.rms_norm(tx, (C,), tw, 1e-6)
        out.backward(dout)
        return (out.data,) + _grads(tx, tw)

    def theirs():
        tx, tw = _t(x, True), _t(w, True)
        out = F.rms_norm(tx, (C,), tw, 1e-6)
        out.backward(_t(dout))
        return _np(out), _np(tx.grad), _np(tw.grad)
    return ours, (theirs if hasattr(F, "rms_norm") else None)


def api_sdpa(rng, B, H, T, D):
    q, k, v, dout, _ = _attn_inputs(rng, B, H, T, D)

    def ours():
        tq, tk, tv = _leaf(q), _leaf(k), _leaf(v)
        out = GF.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
        out.backward(dout)
        return (out.data,) + _grads(tq, tk, tv)

    def theirs():
        tq, tk, tv = _t(q, True), _t(k, True), _t(v, True)
        out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
        out.backward(_t(dout))
        return _np(out), _np(tq.grad), _np(tk.grad), _np(tv.grad)
    return ours, theirs


def api_qkv_attention(rng, B, H, T, D):
    """The model's attention (nn/transformer.py): y (B,T,H*D) from the fused projection qkv (B,T,3*H*D)."""
    C = H * D
    qkv, dout = rng.standard_normal((B, T, 3 * C), np.float32), rng.standard_normal((B, T, C), np.float32)

    def ours():
        t = _leaf(qkv)
        out = GF.causal_self_attention_qkv(t, H)
        out.backward(dout)
        return out.data, np.asarray(t.grad)

    def theirs():
        t = _t(qkv, True)
        q, k, v = (a.view(B, T, H, D).transpose(1, 2) for a in t.split(C, dim=2))  # (B,H,T,D)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        out.backward(_t(dout))
        return _np(out), _np(t.grad)
    return ours, theirs


def api_cross_entropy(rng, N, V):
    logits = rng.standard_normal((N, V), np.float32)
    targets = rng.integers(0, V, N).astype(np.int64)

    def ours():
        tl = _leaf(logits)
        loss = GF.cross_entropy(tl, gb.Tensor(targets))
        loss.backward()
        return np.asarray(loss.data), np.asarray(tl.grad)

    def theirs():
        tl = _t(logits, True)
        loss = F.cross_entropy(tl, _t(targets))
        loss.backward()
        return _np(loss), _np(tl.grad)
    return ours, theirs


def api_gelu(rng, shape, approximate):
    x, dout = rng.standard_normal(shape, np.float32), rng.standard_normal(shape, np.float32)

    def ours():
        tx = _leaf(x)
        out = GF.gelu(tx, approximate=approximate)
        out.backward(dout)
        return out.data, np.asarray(tx.grad)

    def theirs():
        tx = _t(x, True)
        out = F.gelu(tx, approximate=approximate)
        out.backward(_t(dout))
        return _np(out), _np(tx.grad)
    return ours, theirs


def api_gelu_linear(rng, N, C, OC, approximate="none"):
    h, w, b, dout = (rng.standard_normal(s, np.float32) for s in ((N, C), (OC, C), (OC,), (N, OC)))

    def ours():
        th, tw, tb = _leaf(h), _leaf(w), _leaf(b)
        out = GF.gelu_linear(th, tw, tb, approximate)
        out.backward(dout)
        return (out.data,) + _grads(th, tw, tb)

    def theirs():
        th, tw, tb = _t(h, True), _t(w, True), _t(b, True)
        out = F.linear(F.gelu(th, approximate=approximate), tw, tb)
        out.backward(_t(dout))
        return _np(out), _np(th.grad), _np(tw.grad), _np(tb.grad)
    return ours, theirs


def api_layer_norm_linear(rng, N, C, OC):
    x, lw, lb, w, b, dout = (rng.standard_normal(s, np.float32) for s in ((N, C), (C,), (C,), (OC, C), (OC,), (N, OC)))

    def ours():
        ts = [_leaf(a) for a in (x, lw, lb, w, b)]
        out = GF.layer_norm_linear(*ts, eps=1e-5)
        out.backward(dout)
        return (out.data,) + _grads(*ts)

    def theirs():
        tx, tlw, tlb, tw, tb = (_t(a, True) for a in (x, lw, lb, w, b))
        out = F.linear(F.layer_norm(tx, (C,), tlw, tlb, 1e-5), tw, tb)
        out.backward(_t(dout))
        return (_np(out),) + tuple(_np(t.grad) for t in (tx, tlw, tlb, tw, tb))
    return ours, theirs


def api_cases(quick):
    """(op, kernel groups it belongs to (for --only), shape label, make, params)."""
    sh = _shapes(quick)
    out = [("F.linear", ("linear",), f"N={N} C={C} OC={OC}", api_linear, (N, C, OC)) for N, C, OC in sh["lin"]]
    out += [("F.layer_norm", ("layer_norm",), f"({N},{C})", api_layer_norm, (N, C)) for N, C in sh["ln"]]
    out += [("F.rms_norm", ("rms_norm",), f"({N},{C})", api_rms_norm, (N, C)) for N, C in sh["ln"]]
    out += [("F.scaled_dot_product_attention", ("attention",), f"causal B={B} H={H} T={T} D={D}", api_sdpa,
             (B, H, T, D)) for B, H, T, D in sh["at"]]
    out += [("F.causal_self_attention_qkv", ("attention",), f"B={B} H={H} T={T} D={D}", api_qkv_attention,
             (B, H, T, D)) for B, H, T, D in sh["at"]]
    out += [("F.cross_entropy", ("cross_entropy",), f"({N},{V})", api_cross_entropy, (N, V)) for N, V in sh["ce"]]
    out += [("F.gelu", ("gelu",), f"({N},{C}) {a}", api_gelu, ((N, C), a)) for N, C in sh["gelu"] for a in ("tanh", "none")]
    # gelu_linear at the linear shapes and at the MLP's down projection over the GELU shape (hidden -> C)
    gl = list(sh["lin"]) + [(N, C, C // 4) for N, C in sh["gelu"]]
    out += [("F.gelu_linear", ("gelu", "linear"), f"N={N} C={C} OC={OC}", api_gelu_linear, (N, C, OC))
            for N, C, OC in gl]
    out += [("F.layer_norm_linear", ("layer_norm", "linear"), f"N={N} C={C} OC={OC}", api_layer_norm_linear,
             (N, C, OC)) for N, C, OC in sh["lin"]]
    return out


def _alternating_medians(fns, repeat, warmup):
    """Median wall time (s) of each fn, timed call by call in turn (the order flipped every round,
    so neither side always runs on the caches and the thread wake-ups the other left behind)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for r in range(repeat):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def run_api(args):
    if torch is None:
        print("(public-API table skipped: torch is not importable)", file=sys.stderr)
        return []
    rows = []
    for i, (op, groups, label, make, params) in enumerate(api_cases(args.quick)):
        if args.only and not set(groups) & set(args.only):
            continue
        ours, theirs = make(np.random.default_rng(1000 + i), *params)
        if theirs is None:
            rows.append(dict(op=op, shape=label, note="torch has no equivalent"))
            continue
        err = _maxerr(ours(), theirs())
        # a few rounds; each round's medians come from alternating calls, keep each side's best round
        res = [_alternating_medians([ours, theirs], args.repeat, 2) for _ in range(args.rounds)]
        t_ours, t_torch = min(r[0] for r in res), min(r[1] for r in res)
        rows.append(dict(op=op, shape=label, ours_ms=t_ours * 1e3, torch_ms=t_torch * 1e3,
                         vs_torch=t_ours / t_torch, reps=args.repeat * args.rounds, err=err))
        print(f"  {op:<31} {label:<28} ours {t_ours * 1e3:9.3f} ms  torch {t_torch * 1e3:9.3f} ms  "
              f"x{t_ours / t_torch:5.2f}  (err={err if err is None else f'{err:.1e}'})", flush=True)
    return rows


ATTN_MEM_CODE = r'''
import math, sys, numpy as np
impl, B, H, T, D = sys.argv[1:] if len(sys.argv) > 1 else ({impl!r}, {B}, {H}, {T}, {D})
B, H, T, D = int(B), int(H), int(T), int(D)
rng = np.random.default_rng(0)
q, k, v, dout = (rng.standard_normal((B, H, T, D), np.float32) for _ in range(4))
scale = 1.0 / math.sqrt(D)
if impl == "torch":
    import torch, torch.nn.functional as F
    torch.set_num_threads({threads})
    def run():
        tq, tk, tv = (torch.from_numpy(a).requires_grad_(True) for a in (q, k, v))
        out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
        out.backward(torch.from_numpy(dout))
        return tq.grad
else:
    import importlib
    m = importlib.import_module({{"numpy": "goldbull_np.kernels.reference", "numba": "goldbull_np.kernels.numba_backend",
                                 "c": "goldbull_np.kernels.c_backend"}}[impl])
    def run():
        out, lse = m.attention_forward(q, k, v, scale, causal_offset=0)
        return m.attention_backward(dout, q, k, v, out, lse, scale, causal_offset=0)
run()                      # warm-up (JIT, thread pools, allocator)
import gc; gc.collect()
b = reset_peak()
res = run()
report_peak(b)
'''


def attention_memory(args, mods):
    B, H, T, D = (4, 12, 1024, 64) if not args.quick else (2, 4, 256, 64)
    inputs = 4 * B * H * T * D * 4
    rows = []
    for impl in list(mods) + (["torch"] if torch else []):
        peak = peak_rss_subprocess(ATTN_MEM_CODE.format(impl=impl, B=B, H=H, T=T, D=D, threads=args.threads))
        rows.append(dict(impl=impl, shape=f"B={B} H={H} T={T} D={D}", peak_mb=None if peak is None else peak / 2**20,
                         inputs_mb=inputs / 2**20))
    base = next((r["peak_mb"] for r in rows if r["impl"] == "numpy"), None)
    for r in rows:
        if base and r["peak_mb"] is not None:
            r["vs_numpy"] = r["peak_mb"] / base
    return rows


def pool_interplay(args, mods):
    """A training step alternates matmuls and the other kernels: time that pattern with the matmul
    in OpenBLAS (NumPy) vs in the C backend, whose OpenMP pool the other kernels share."""
    if "c" not in mods:
        return []
    c = mods["c"]
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((768, 128), np.float32), rng.standard_normal((128, 384), np.float32)
    out = np.empty((768, 384), np.float32)
    x = rng.standard_normal((768, 384), np.float32)
    steps = {
        "numpy matmul -> c layer_norm": lambda: (np.matmul(a, b, out=out), c.layer_norm_forward(x, None, None, 1e-5)),
        "c matmul -> c layer_norm": lambda: (c.matmul(a, b, out=out), c.layer_norm_forward(x, None, None, 1e-5)),
        "numpy matmul alone": lambda: np.matmul(a, b, out=out),
        "c matmul alone": lambda: c.matmul(a, b, out=out),
        "c layer_norm alone": lambda: c.layer_norm_forward(x, None, None, 1e-5),
    }
    rows = []
    for name, fn in steps.items():
        t, reps = min((median_time(fn, repeat=200, warmup=20) for _ in range(args.rounds)), key=lambda r: r[0])
        rows.append(dict(pattern=name, us=t * 1e6, reps=reps))
    return rows


def suggest_auto(rows):
    """Per kernel group: the backend (numpy/numba/c) with the smallest total time over its shapes."""
    table = {}
    for group, kernels in GROUP_KERNELS.items():
        tot = {}
        for r in rows:
            if r["kernel"] == group and r["impl"] in ("numpy", "numba", "c"):
                tot.setdefault(r["impl"], 0.0)
                tot[r["impl"]] += r.get("ms", float("inf"))
        if tot:
            order = tuple(sorted(tot, key=tot.get))
            order = order[: order.index("numpy") + 1] if "numpy" in order else order + ("numpy",)  # ends at the reference
            for name in kernels:
                table[name] = order
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one small shape per kernel, few repeats")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2, help="time each cell this many times, keep the best median")
    ap.add_argument("--budget", type=float, default=4.0, help="seconds per untargeted slow cell")
    ap.add_argument("--warm-up", type=float, default=3.0, help="seconds of matmuls before the first timing")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--only", nargs="*", choices=sorted(GROUP_KERNELS), help="run these kernel groups only")
    ap.add_argument("--api-only", action="store_true", help="the public-API table only (no kernel-level tables)")
    ap.add_argument("--no-api", action="store_true", help="skip the public-API table")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.rounds, args.budget = 5, 1, 1.0
    mods = _backends()
    K.set_num_threads(args.threads)           # OpenMP (C), numba, OpenBLAS
    if torch is not None:
        torch.set_num_threads(args.threads)
    _warm_up_machine(args.warm_up, mods)
    rows = [] if args.api_only else run_cases(args, mods)
    if rows:
        print_table(rows, [("kernel", "kernel", "{}"), ("shape", "shape", "{}"), ("impl", "impl", "{}"),
                           ("ms", "ms", "{:.3f}"), ("gflops", "GFLOP/s", "{:.1f}"), ("vs_torch", "x torch", "{:.2f}"),
                           ("vs_numpy_gflops", "x numpy GFLOP/s", "{:.2f}"), ("reps", "n", "{}"),
                           ("err", "max rel err", "{:.1e}"), ("note", "note", "{}")],
                    title=f"kernels, fwd+bwd where applicable, {args.threads} threads")
    skip_mem = args.api_only or args.no_memory or (args.only and "attention" not in args.only)
    mem = [] if skip_mem else attention_memory(args, mods)
    if mem:
        print_table(mem, [("impl", "impl", "{}"), ("shape", "shape", "{}"), ("peak_mb", "peak RSS growth MiB", "{:.1f}"),
                          ("vs_numpy", "x numpy", "{:.3f}"), ("inputs_mb", "inputs MiB", "{:.1f}")],
                    title="attention fwd+bwd peak memory (fresh process each)")
    pools = [] if args.only or args.api_only else pool_interplay(args, mods)
    if pools:
        print_table(pools, [("pattern", "pattern (768x128@128x384, LN (768,384))", "{}"), ("us", "us", "{:.0f}"),
                            ("reps", "n", "{}")], title="thread pools: matmul and another kernel back to back")
    api = [] if args.no_api else run_api(args)
    isa = K.info()["c_extension"].get("isa")
    torch_isa = torch.backends.cpu.get_cpu_capability() if torch is not None else None
    if api:
        print_table(api, [("op", "op", "{}"), ("shape", "shape", "{}"), ("ours_ms", "ours ms", "{:.3f}"),
                          ("torch_ms", "torch ms", "{:.3f}"), ("vs_torch", "x torch", "{:.2f}"), ("reps", "n", "{}"),
                          ("err", "max rel err", "{:.1e}"), ("note", "note", "{}")],
                    title=f"public API (fresh tensors, fwd+bwd), {args.threads} threads, C ISA {isa}, torch {torch_isa}")
    auto = suggest_auto(rows)
    if auto:
        print("\nsuggested AUTO_TABLE (fastest first):")
        for name, order in auto.items():
            print(f"    {name!r}: {order!r},")
    name = ("bench_kernels" + ("_quick" if args.quick else "") + ("_" + "_".join(args.only) if args.only else "")
            + ("_api" if args.api_only else "") + (f"_{isa}" if isa != K.info()["c_extension"].get("cpu_isa") else ""))
    path = write_json(name, dict(args=vars(args), torch=getattr(torch, "__version__", None), info=K.info(),
                                 isa=isa, torch_cpu_capability=torch_isa, threads=args.threads, rows=rows,
                                 attention_memory=mem, pool_interplay=pools, suggested_auto=auto, public_api=api))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
