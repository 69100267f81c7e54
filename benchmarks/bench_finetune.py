"""What do parameter-efficient fine-tuning methods cost, next to full fine-tuning, on one model and batch?

Model: ``ModelConfig.default()`` (6 layers, 6 heads, n_embd 384, vocab 65, ~10.7M parameters), one
micro-batch of B sequences of T tokens, AdamW (fused flat buffers) over the trainable parameters only.
Modes: full fine-tuning; LoRA r=8 (alpha 16) on q/k/v/o_proj; the same with gradient checkpointing;
bottleneck adapters (b = 64) after attention and MLP of every block with the base frozen.

Each mode runs in a fresh interpreter: build the model and apply the mode, reset the peak RSS, then build
the optimizer and run ``--steps`` training steps (forward, backward, AdamW step). Peak RSS is the growth
over the model alone, so it holds gradients, optimizer moments and activations: what training adds.
Frozen weights must get no gradient buffers and no optimizer state, so LoRA's growth should be far
below full fine-tuning's. Step time is the median of the steps after the first.

    python3 benchmarks/bench_finetune.py [--batch 4] [--seq 128] [--steps 5] [--threads 1]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import _RSS_PRELUDE, ROOT, print_table, write_json  # noqa: E402

MODES = ("full", "lora_r8", "lora_r8_ckpt", "adapters")

CHILD = r'''
import time, numpy as np
import goldbull_np as gb
from goldbull_np import optim
from goldbull_np.text import GoldbullText, ModelConfig
from goldbull_np.nn.lora import LoRAConfig
from goldbull_np.nn.adapters import AdapterConfig
MODE, B, T, STEPS, THREADS = {mode!r}, {batch}, {seq}, {steps}, {threads}
gb.kernels.set_num_threads(THREADS)
gb.manual_seed(0)
model = GoldbullText(ModelConfig.default(vocab_size=65, block_size=T))
if MODE.startswith("lora"):
    model.add_lora_adapters(LoRAConfig(rank=8, alpha=16, dropout=0.05))
    if MODE.endswith("ckpt"):
        model.enable_gradient_checkpointing()
elif MODE == "adapters":
    model.add_adapters_to_layers(range(model.config.n_layer), AdapterConfig(bottleneck_size=64, dropout=0.05))
    model.freeze_base_parameters()
trainable = [p for p in model.parameters() if p.requires_grad]
rng = np.random.default_rng(0)
x = rng.integers(0, 65, (B, T)); y = np.roll(x, -1, axis=1)
b = reset_peak()
opt = optim.AdamW(trainable, lr=1e-4)
times, losses = [], []
for i in range(STEPS):
    t0 = time.perf_counter()
    _, loss = model(x, y)
    loss.backward()
    if i == 0:  # validate: exactly the trainable parameters got gradients
        bad = [n for n, p in model.named_parameters() if (p.grad is not None) != p.requires_grad]
        assert not bad, bad
    opt.step(); opt.zero_grad()
    times.append(time.perf_counter() - t0); losses.append(loss.item())
report_peak(b)
print("__RESULT__" + json.dumps({{"trainable": int(sum(p.data.size for p in trainable)),
    "total": int(model.num_parameters()), "step_s": float(np.median(times[1:] or times)),
    "optimizer_floats": int(opt._flat.size) if opt._flat is not None else 0, "losses": losses}}))
'''


def run_mode(mode, args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = _RSS_PRELUDE + CHILD.format(mode=mode, batch=args.batch, seq=args.seq, steps=args.steps,
                                       threads=args.threads)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    out = {}
    for ln in r.stdout.splitlines():
        if ln.startswith("__PEAK__"):
            out["peak_bytes"] = json.loads(ln[len("__PEAK__"):])["peak_bytes"]
        elif ln.startswith("__RESULT__"):
            out.update(json.loads(ln[len("__RESULT__"):]))
    if "step_s" not in out:
        raise SystemExit(f"mode {mode} failed:\n{r.stderr[-3000:]}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="kernel/BLAS threads (default 1: a shared machine)")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = ap.parse_args()
    rows = []
    for mode in args.modes:
        r = run_mode(mode, args)
        rows.append(dict(mode=mode, trainable=r["trainable"], total=r["total"],
                         trainable_pct=100.0 * r["trainable"] / r["total"], step_ms=r["step_s"] * 1e3,
                         peak_mb=r["peak_bytes"] / 2 ** 20, optimizer_floats=r["optimizer_floats"],
                         first_loss=r["losses"][0], last_loss=r["losses"][-1]))
    full = next((r for r in rows if r["mode"] == "full"), None)
    for r in rows:
        if full is not None:
            r["peak_vs_full"] = r["peak_mb"] / full["peak_mb"]
            r["time_vs_full"] = r["step_ms"] / full["step_ms"]
    print_table(rows, [("mode", "mode", "{}"), ("trainable", "trainable params", "{:,}"),
                       ("trainable_pct", "% of model", "{:.2f}"), ("step_ms", "step ms", "{:.0f}"),
                       ("time_vs_full", "time vs full", "{:.2f}x"), ("peak_mb", "peak RSS growth MB", "{:.1f}"),
                       ("peak_vs_full", "memory vs full", "{:.2f}x"),
                       ("optimizer_floats", "AdamW buffer floats", "{:,}")],
                title=f"Fine-tuning cost: default preset ({rows[0]['total'] / 1e6:.1f}M params), batch {args.batch} x "
                      f"{args.seq} tokens, {args.steps} steps, {args.threads} thread(s)")
    lora = next((r for r in rows if r["mode"] == "lora_r8"), None)
    if full is not None and lora is not None and not lora["peak_mb"] < 0.75 * full["peak_mb"]:
        print("\nWARNING: LoRA r=8 did not use clearly less memory than full fine-tuning")
    path = write_json("bench_finetune", {"batch": args.batch, "seq": args.seq, "steps": args.steps,
                                         "threads": args.threads, "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
