"""Training speed, memory and start-up: goldbull_np against PyTorch eager on the same GPT.

The question: does the NumPy engine with fused C kernels train a small / mid GPT on the CPU faster
than PyTorch's eager mode, in less memory, and start sooner?

Both sides build the same architecture (goldbull_np.text.GoldbullText and benchmarks/_torch_gpt.py,
whose parameter names match), start from the same weights (the parent writes them once to a
safetensors file), see the same batches (drawn by the parent from one NumPy generator and written to
an .npz file) and run the same step: forward with loss, zero_grad, backward, clip_grad_norm 1.0,
AdamW (lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on matrices, nanoGPT's ndim >= 2 rule). The sides:

  goldbull_np         the trainer's own loop: ``Trainer.train_step`` with the language-modelling task
                      (OptimizerStep: accumulate, clip 1.0 over the optimizer's gradient arrays, step, zero)
  goldbull_np (user)  nanoGPT's hand-written loop: ``zero_grad(set_to_none=True)``,
                      ``clip_grad_norm_(model.parameters(), 1.0)``, ``opt.step()`` (--user-loop)
  torch               eager, its default AdamW (foreach=None) and set_to_none=True
  torch.compile       the same step with ``torch.compile(model)`` (inductor; --torch-compile); its
                      first step, the compilation, is reported as "compile s" and left out of the median

--isa avx2 caps both libraries to the AVX2 tier on an AVX-512 machine (GOLDBULL_C_ISA=avx2 for the C
kernels; ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2, ONEDNN_MAX_CPU_ISA=AVX2 for torch), so
an AVX2 machine's ratios can be measured here. --rounds N runs every side N times, alternating, and
reports the median of the per-round medians (machine noise then hits every side alike).

Each side runs in its own fresh process, so peak RSS (VmHWM, the whole process) and "process start to
first finished step" (wall time from the parent's launch to the end of step 1, interpreter start-up,
imports and model load included) are its own; "import s" is the median of three fresh interpreters
timing ``import goldbull_np`` / ``import torch`` (numpy's own import included). Reported per side: median ms/iter after --warmup steps,
tokens/s, achieved GFLOP/s (nanoGPT's count: 6 * params * tokens + 12 * L * C * T per token, position
embeddings excluded from params) and its ratio to the best sgemm GFLOP/s measured in the same run on
the model's MLP shape, the import time, peak RSS, start-to-first-step and the loss after N steps.

    python3 benchmarks/bench_train.py --config small --steps 50 --data ../shared/data/tinyshakespeare.txt
    python3 benchmarks/bench_train.py --config small --rounds 3 --user-loop --torch-compile --isa avx2
    python3 benchmarks/bench_train.py --config mid --steps 15 --threads 2 [--torch-threads 2,1]

Without --data (or when the file is missing) the batches are synthetic uniform tokens.
Writes benchmarks/results/bench_train_{config}.json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import ROOT, peak_rss, print_table, write_json  # noqa: E402

CONFIGS = {  # nanoGPT shakespeare-char: "small" is its CPU (MacBook) override, "mid" its default model
    "small": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, vocab_size=65),
    "mid": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=8, vocab_size=65),
}
LR, BETAS, WD, EPS, CLIP = 1e-3, (0.9, 0.99), 0.1, 1e-8, 1.0


# ---- the parent: weights, batches, launching the two sides ------------------------------------------
def make_batches(cfg, n, data_path, seed):
    """(x, y) int64 arrays (n, B, T): random windows of the first 90% of the text (char-level), or
    uniform synthetic tokens without data."""
    B, T, V = cfg["batch_size"], cfg["block_size"], cfg["vocab_size"]
    rng = np.random.default_rng(seed)
    if data_path and os.path.exists(data_path):
        with open(data_path, encoding="utf-8") as f:
            text = f.read()
        chars = sorted(set(text))
        if len(chars) > V:
            raise ValueError(f"{data_path}: {len(chars)} distinct characters > vocab_size {V}")
        lut = {c: i for i, c in enumerate(chars)}
        tokens = np.fromiter((lut[c] for c in text), dtype=np.int64, count=len(text))
        train = tokens[: int(0.9 * len(tokens))]
        ix = rng.integers(0, len(train) - T - 1, size=(n, B))
        offs = ix[..., None] + np.arange(T)  # (n,B,T)
        return train[offs], train[offs + 1], "text"
    seq = rng.integers(0, V, size=(n, B, T + 1), dtype=np.int64)
    return seq[..., :-1].copy(), seq[..., 1:].copy(), "synthetic"


def flops_per_iter(cfg, n_params_no_pos):
    """nanoGPT's estimate_mfu: 6N per token (fwd+bwd) plus attention 12 * L * C * T per token."""
    L, C, T, B = cfg["n_layer"], cfg["n_embd"], cfg["block_size"], cfg["batch_size"]
    return (6 * n_params_no_pos + 12 * L * C * T) * B * T


def import_time(module, repeat=3):
    """Median wall time (s) of ``import module`` in a fresh interpreter (its numpy import included)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    ts = []
    for _ in range(repeat):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        if r.returncode == 0:
            ts.append(float(r.stdout.strip().splitlines()[-1]))
    return float(np.median(ts)) if ts else None


SIDES = {  # worker name -> (label, library)
    "goldbull_np": ("goldbull_np", "goldbull_np"), "goldbull_user": ("goldbull_np (user)", "goldbull_np"),
    "torch": ("torch", "torch"), "torch_compile": ("torch.compile", "torch"),
}
ISA_ENV = {  # --isa avx2: each library capped to its AVX2 code paths
    "goldbull_np": {"GOLDBULL_C_ISA": "avx2"},
    "torch": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def run_side(side, spec_path, threads, timeout, isa=None):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=str(threads))
    if isa == "avx2":
        env.update(ISA_ENV[SIDES[side][1]])
    t_launch = time.time()
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--_worker", side, "--_spec", spec_path,
                        "--threads", str(threads)], capture_output=True, text=True, env=env, timeout=timeout)
    for ln in r.stdout.splitlines():
        if ln.startswith("__RESULT__"):
            res = json.loads(ln[len("__RESULT__"):])
            res["start_to_first_step_s"] = res.pop("first_step_done_at") - t_launch
            return res
    sys.stderr.write(f"{side} worker failed (rc {r.returncode}):\n{r.stderr[-3000:]}\n")
    return None


# ---- the workers --------------------------------------------------------------------------------------
def _sgemm(mm, a, b, repeat=10):
    """Best-of-median GFLOP/s of mm(a, b) (warm)."""
    mm(a, b)
    mm(a, b)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        mm(a, b)
        ts.append(time.perf_counter() - t0)
    return 2.0 * a.shape[0] * a.shape[1] * b.shape[1] / float(np.median(ts)) / 1e9


def _decay_groups(params, ndims):
    """AdamW groups by nanoGPT's rule: weight decay on every >= 2-D parameter, none on the rest."""
    return [{"params": [p for p, d in zip(params, ndims) if d >= 2], "weight_decay": WD},
            {"params": [p for p, d in zip(params, ndims) if d < 2], "weight_decay": 0.0}]


def _mlp_gemm_shape(cfg):
    """(M, K, N) of the model's MLP up-projection: the shape the step is compared against."""
    return cfg["batch_size"] * cfg["block_size"], cfg["n_embd"], 4 * cfg["n_embd"]


def _timed_steps(step, xs, ys):
    """Run step(x, y) -> loss over the batches: (wall time per step, losses, when step 1 finished)."""
    times, losses, first_done = [], [], None
    for x, y in zip(xs, ys):
        t = time.perf_counter()
        losses.append(step(x, y))
        times.append(time.perf_counter() - t)
        if first_done is None:
            first_done = time.time()
    return times, losses, first_done


def worker_goldbull(spec, threads, user_loop=False):
    t0 = time.perf_counter()
    import goldbull_np as gb
    t_import = time.perf_counter() - t0
    from goldbull_np import kernels
    from goldbull_np.kernels import c_backend
    from goldbull_np.nn.utils import clip_grad_norm_
    kernels.set_num_threads(threads)
    cfg = spec["cfg"]
    data = np.load(spec["batches"])
    xs, ys = data["x"], data["y"]
    mc = gb.ModelConfig(vocab_size=cfg["vocab_size"], n_layer=cfg["n_layer"], n_head=cfg["n_head"],
                        n_embd=cfg["n_embd"], block_size=cfg["block_size"], dropout=0.0)
    model = gb.text.GoldbullText(mc)
    model.load_weights(spec["weights"])
    model.train()
    params = list(model.parameters())
    opt = gb.optim.AdamW(_decay_groups(params, [p.ndim for p in params]), lr=LR, betas=BETAS, eps=EPS)
    import gc
    gc.freeze()  # as the Trainer does: the model and optimizer are long-lived

    if user_loop:  # nanoGPT's train.py, written against goldbull_np
        def step(x, y):
            _, loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
            return float(loss.data)
    else:  # the trainer's own step: OptimizerStep through the task seam
        from goldbull_np.text import LanguageModelingTask
        from goldbull_np.train import Trainer, TrainingConfig
        config = TrainingConfig(learning_rate=LR, max_grad_norm=CLIP, progress_bar=False)
        trainer = Trainer(model, config, task=LanguageModelingTask(), optimizer=opt)

        def step(x, y):
            return trainer.train_step({"input_ids": x, "labels": y})
    times, losses, first_done = _timed_steps(step, xs, ys)
    peak = peak_rss()
    m, k, n = _mlp_gemm_shape(cfg)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    cmm = kernels.get("matmul", np.float32)
    sgemm = {"goldbull_c": _sgemm(cmm, a, b), "numpy_openblas": _sgemm(np.matmul, a, b)}
    return dict(import_s=t_import, times=times, losses=losses, peak_rss_bytes=peak, first_step_done_at=first_done,
                sgemm_gflops=sgemm, sgemm_shape=[m, k, n], isa=c_backend.isa())


def worker_torch(spec, threads, compiled=False):
    t0 = time.perf_counter()
    import torch
    t_import = time.perf_counter() - t0
    from _torch_gpt import TorchGPT
    from safetensors.numpy import load_file
    torch.set_num_threads(threads)
    cfg = spec["cfg"]
    data = np.load(spec["batches"])
    xs, ys = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    model = TorchGPT(cfg["vocab_size"], cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["block_size"])
    state = {k: torch.from_numpy(v) for k, v in load_file(spec["weights"]).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise RuntimeError(f"weights do not match the torch model: missing {missing}, unexpected {unexpected}")
    assert model.lm_head.weight is model.embed_tokens.weight
    model.train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(_decay_groups(params, [p.dim() for p in params]), lr=LR, betas=BETAS, eps=EPS)
    forward = torch.compile(model) if compiled else model

    def step(x, y):
        _, loss = forward(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        return float(loss.item())
    times, losses, first_done = _timed_steps(step, xs, ys)
    peak = peak_rss()
    m, k, n = _mlp_gemm_shape(cfg)
    a, b = torch.randn(m, k), torch.randn(k, n)
    with torch.no_grad():
        sgemm = {"torch": _sgemm(torch.mm, a, b)}
    return dict(import_s=t_import, times=times, losses=losses, peak_rss_bytes=peak, first_step_done_at=first_done,
                sgemm_gflops=sgemm, sgemm_shape=[m, k, n], torch_version=torch.__version__,
                isa=torch.backends.cpu.get_cpu_capability(), compile_s=times[0] if compiled else None)


WORKERS = {"goldbull_np": worker_goldbull, "goldbull_user": lambda spec, t: worker_goldbull(spec, t, user_loop=True),
           "torch": worker_torch, "torch_compile": lambda spec, t: worker_torch(spec, t, compiled=True)}


# ---- main ---------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    ap.add_argument("--steps", type=int, default=50, help="training steps per side")
    ap.add_argument("--warmup", type=int, default=3, help="first steps left out of the median")
    ap.add_argument("--data", default=None, help="text file (char-level); synthetic tokens without it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-threads", default=None,
                    help="comma list of thread counts for extra torch runs (default: --threads only)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--user-loop", action="store_true", help="also time the nanoGPT-style hand-written loop")
    ap.add_argument("--torch-compile", action="store_true", help="also time torch.compile(model)")
    ap.add_argument("--isa", choices=("native", "avx2"), default="native",
                    help="avx2: cap both libraries to their AVX2 code paths")
    ap.add_argument("--rounds", type=int, default=1, help="run every side this many times, alternating")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--_worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--_spec", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._worker:
        with open(args._spec) as f:
            spec = json.load(f)
        print("__RESULT__" + json.dumps(WORKERS[args._worker](spec, args.threads)), flush=True)
        return

    if args.steps <= args.warmup:
        ap.error("--steps must exceed --warmup")
    cfg = CONFIGS[args.config]
    import goldbull_np as gb
    try:
        import importlib.util
        have_torch = importlib.util.find_spec("torch") is not None and not args.no_torch
    except ImportError:
        have_torch = False

    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        gb.manual_seed(args.seed)
        mc = gb.ModelConfig(vocab_size=cfg["vocab_size"], n_layer=cfg["n_layer"], n_head=cfg["n_head"],
                            n_embd=cfg["n_embd"], block_size=cfg["block_size"], dropout=0.0)
        model = gb.text.GoldbullText(mc)
        model.save_pretrained(tmp)  # model.safetensors: the tied lm_head stored once, as embed_tokens.weight
        n_params = sum(p.data.size for p in model.parameters())
        n_no_pos = n_params - model.embed_positions.weight.data.size
        del model
        x, y, source = make_batches(cfg, args.steps, args.data, args.seed)
        np.savez(os.path.join(tmp, "batches.npz"), x=x, y=y)
        spec = dict(cfg=cfg, weights=os.path.join(tmp, "model.safetensors"), batches=os.path.join(tmp, "batches.npz"))
        spec_path = os.path.join(tmp, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)

        runs = [("goldbull_np", args.threads)] + ([("goldbull_user", args.threads)] if args.user_loop else [])
        if have_torch:
            tt = [args.threads] if args.torch_threads is None else [int(s) for s in args.torch_threads.split(",")]
            runs += [("torch", t) for t in tt]
            if args.torch_compile:
                runs.append(("torch_compile", args.threads))
        per_round = {run: [] for run in runs}
        for k in range(args.rounds):
            for side, threads in (runs if k % 2 == 0 else runs[::-1]):  # alternate the order round by round
                r = run_side(side, spec_path, threads, args.timeout, args.isa)
                if r is not None:
                    per_round[(side, threads)].append(r)
        imports = {}
        results = []
        for (side, threads), rs in per_round.items():
            if not rs:
                continue
            lib = SIDES[side][1]
            if lib not in imports:
                imports[lib] = import_time(lib)
            meds = [float(np.median(r["times"][args.warmup:])) for r in rs]
            r = rs[int(np.argsort(meds)[len(meds) // 2])]  # the median round stands for the side
            r["round_ms_iter"] = [m * 1e3 for m in meds]
            r["side"], r["threads"] = side, threads
            r["import_in_worker_s"] = r.pop("import_s")  # numpy already imported there
            r["import_s"] = imports[lib]
            results.append(r)

    fpi = flops_per_iter(cfg, n_no_pos)
    tokens = cfg["batch_size"] * cfg["block_size"]
    gb_res = next((r for r in results if r["side"] == "goldbull_np"), None)
    sgemm_best = max(gb_res["sgemm_gflops"].values()) if gb_res else None
    rows = []
    for r in results:
        med = float(np.median(r["times"][args.warmup:]))
        row = dict(side=f"{SIDES[r['side']][0]} ({r['threads']}t)", isa=r.get("isa"), ms_iter=med * 1e3,
                   ms_iter_rounds=r["round_ms_iter"], compile_s=r.get("compile_s"), tokens_s=tokens / med,
                   gflops=fpi / med / 1e9, import_s=r["import_s"], peak_rss_mb=r["peak_rss_bytes"] / 2**20,
                   start_first_step_s=r["start_to_first_step_s"], final_loss=r["losses"][-1],
                   last10_loss=float(np.mean(r["losses"][-10:])))
        row["gflops_vs_sgemm"] = row["gflops"] / sgemm_best if sgemm_best else None
        row["rounds_txt"] = "/".join(f"{m:.1f}" for m in row["ms_iter_rounds"])
        r["summary"] = row
        rows.append(row)
    ratios = {}
    if gb_res is not None:
        g = gb_res["summary"]
        for r in results:
            if r is gb_res:
                continue
            t = r["summary"]
            ratios[f"{r['side']}_{r['threads']}t"] = dict(
                ms_iter=g["ms_iter"] / t["ms_iter"], peak_rss=g["peak_rss_mb"] / t["peak_rss_mb"],
                start_first_step=g["start_first_step_s"] / t["start_first_step_s"],
                max_abs_loss_diff=float(np.max(np.abs(np.subtract(gb_res["losses"], r["losses"])))))
    cols = [("side", "side", "{}"), ("isa", "ISA", "{}"), ("ms_iter", "ms/iter", "{:.1f}"),
            ("rounds_txt", "rounds", "{}"), ("compile_s", "compile s", "{:.1f}"), ("tokens_s", "tok/s", "{:.0f}"),
            ("gflops", "GFLOP/s", "{:.1f}"), ("gflops_vs_sgemm", "/sgemm", "{:.2f}"), ("import_s", "import s", "{:.2f}"),
            ("peak_rss_mb", "peak RSS MiB", "{:.0f}"), ("start_first_step_s", "start->1st step s", "{:.2f}"),
            ("final_loss", f"loss@{args.steps}", "{:.4f}"), ("last10_loss", "mean last10", "{:.4f}")]
    print_table(rows, cols, title=f"bench_train --config {args.config}: {args.steps} steps ({args.warmup} warm-up), "
                                  f"B={cfg['batch_size']} T={cfg['block_size']}, {n_params:,} params, data={source}")
    if gb_res:
        print("sgemm GFLOP/s on (%d,%d)x(%d,%d): " % (gb_res["sgemm_shape"][0], gb_res["sgemm_shape"][1],
                                                     gb_res["sgemm_shape"][1], gb_res["sgemm_shape"][2])
              + ", ".join(f"{k} {v:.1f}" for k, v in gb_res["sgemm_gflops"].items())
              + "".join(f", torch {r['sgemm_gflops']['torch']:.1f} ({r['threads']}t)" for r in results
                        if r["side"] == "torch"))
    for k, v in ratios.items():
        print(f"goldbull_np (trainer) / {k}: ms/iter {v['ms_iter']:.2f}x, peak RSS {v['peak_rss']:.2f}x, "
              f"start->1st step {v['start_first_step']:.2f}x, max |loss diff| over steps {v['max_abs_loss_diff']:.4f}")
    path = write_json(f"bench_train_{args.config}", dict(
        args=vars(args), isa=args.isa, threads=args.threads, config=cfg, n_params=n_params, n_params_no_pos=n_no_pos, flops_per_iter=fpi,
        data_source=source, optimizer=dict(lr=LR, betas=BETAS, weight_decay=WD, eps=EPS, clip=CLIP),
        rows=rows, ratios=ratios, raw=[{k: v for k, v in r.items() if k != "summary"} for r in results]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
