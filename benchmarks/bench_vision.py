"""Vision speed and memory: goldbull_np's conv2d and training steps against PyTorch eager, 2 threads.

The questions (issue 14): is conv2d forward+backward at ResNet-like shapes at most 1.0x torch's time,
and is one ResNet-small / ViT-tiny training step at most 1.0x torch's ms/step with at most 0.6x its
peak RSS?

1. conv2d: for each shape, forward + backward (dx and dweight, no bias) of the same float32 inputs in
   one process, the two sides alternating, the median of --repeat rounds; outputs and gradients are
   checked against each other first (relative max error reported). Each timed call is followed by
   --settle ms of sleep: both sides' idle worker threads spin for a while after a parallel region
   (torch's OpenMP team, goldbull_np's pool), and without the pause one side's spinning workers
   share the 2 cores with the other side's timed call (on this 2-vCPU machine that halved the
   second thread of whichever side ran next).
2. Training steps: each side in its own fresh process (peak RSS = VmHWM of the whole process, imports
   included) builds the same model (benchmarks/bench_vision.py's torch mirror has goldbull's parameter
   names), loads the same weights (written once by the parent), trains on the same batch: forward,
   cross-entropy, zero_grad, backward, AdamW (lr 1e-3, weight decay 0.05). Reported: the median
   ms/step after --warmup steps and the first step's loss (equal within tolerance: same weights, same batch).

    python3 benchmarks/bench_vision.py [--threads 2] [--repeat 7] [--steps 10]

Writes benchmarks/results/bench_vision.json. The machine may be shared: the medians are what is
reported; rerun to see the spread.
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

# (name, B, C, H, W, OC, k, stride, groups)
CONV_SHAPES = [
    ("stem 3->16 3x3 32x32", 32, 3, 32, 32, 16, 3, 1, 1),
    ("64->64 3x3 16x16", 32, 64, 16, 16, 64, 3, 1, 1),
    ("128->128 3x3 8x8", 32, 128, 8, 8, 128, 3, 1, 1),
    ("128->128 3x3/2 8x8", 32, 128, 8, 8, 128, 3, 2, 1),
    ("64->128 1x1 16x16", 32, 64, 16, 16, 128, 1, 1, 1),
    ("depthwise 64 3x3 16x16", 32, 64, 16, 16, 64, 3, 1, 64),
]
MODELS = {
    "resnet_small": dict(preset="resnet_small", batch=32, shape=(3, 32, 32), classes=10),
    "vit_tiny": dict(preset="vit_tiny", batch=32, shape=(3, 32, 32), classes=10),
}
LR, WD = 1e-3, 0.05


# ---- 1. conv2d ----------------------------------------------------------------------------------------
def bench_conv(threads, repeat, settle_ms=10.0):
    import torch
    import goldbull_np.kernels as K
    K.set_num_threads(threads)
    torch.set_num_threads(threads)
    fwd, bwd = K.get("conv2d_forward"), K.get("conv2d_backward")
    rows = []
    rng = np.random.default_rng(0)
    for name, B, C, H, W, OC, k, s, g in CONV_SHAPES:
        x = rng.standard_normal((B, C, H, W)).astype(np.float32)
        w = (rng.standard_normal((OC, C // g, k, k)) / np.sqrt(C // g * k * k)).astype(np.float32)
        dy = None
        kw = dict(stride=s, padding=k // 2, dilation=1, groups=g)

        def ours():
            y = fwd(x, w, None, **kw)
            return y, bwd(y, x, w, **kw, need_dbias=False)

        X, Wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)

        def theirs():
            X.grad = Wt.grad = None
            y = torch.nn.functional.conv2d(X, Wt, None, s, k // 2, 1, g)
            y.backward(y.detach())
            return y, (X.grad, Wt.grad)

        y1, (dx1, dw1, _) = ours()
        y2, (dx2, dw2) = theirs()
        err = max(float(np.abs(a - b.detach().numpy()).max() / (np.abs(b.detach().numpy()).max() + 1e-12))
                  for a, b in ((y1, y2), (dx1, dx2), (dw1, dw2)))
        t_ours, t_torch = [], []
        for _ in range(repeat):  # alternate, so both sides see the same machine load
            t0 = time.perf_counter()
            ours()
            t_ours.append(time.perf_counter() - t0)
            time.sleep(settle_ms / 1e3)
            t0 = time.perf_counter()
            theirs()
            t_torch.append(time.perf_counter() - t0)
            time.sleep(settle_ms / 1e3)
        o, t = float(np.median(t_ours)) * 1e3, float(np.median(t_torch)) * 1e3
        rows.append(dict(shape=name, ours_ms=o, torch_ms=t, ratio=o / t, max_rel_err=err))
        del dy
    return rows


# ---- 2. training steps: the parent ---------------------------------------------------------------------
def make_spec(model_name, tmp):
    import goldbull_np as gb
    from goldbull_np.io import save_safetensors
    from goldbull_np.vision import GoldbullVision
    from goldbull_np.vision.recipes import model_config
    m = MODELS[model_name]
    gb.manual_seed(0)
    C, H, W = m["shape"]
    cfg = model_config(m["preset"], num_classes=m["classes"], in_channels=C, image_size=(H, W))
    model = GoldbullVision(cfg)
    weights = os.path.join(tmp, f"{model_name}.safetensors")
    save_safetensors({k: np.ascontiguousarray(v.data) for k, v in model.state_dict(keep_vars=True).items()}, weights)
    rng = np.random.default_rng(1)
    batch = os.path.join(tmp, f"{model_name}.npz")
    np.savez(batch, x=rng.standard_normal((m["batch"], C, H, W)).astype(np.float32),
             y=rng.integers(0, m["classes"], m["batch"]).astype(np.int64))
    spec = os.path.join(tmp, f"{model_name}.json")
    with open(spec, "w") as f:
        json.dump(dict(model=model_name, config=cfg.to_dict(), weights=weights, batch=batch), f)
    return spec, model.num_parameters()


def run_side(side, spec, threads, steps, warmup, timeout=1200):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--_worker", side, "--_spec", spec,
                        "--threads", str(threads), "--steps", str(steps), "--warmup", str(warmup)],
                       capture_output=True, text=True, env=env, timeout=timeout)
    for ln in r.stdout.splitlines():
        if ln.startswith("__RESULT__"):
            return json.loads(ln[len("__RESULT__"):])
    sys.stderr.write(f"{side} worker failed (rc {r.returncode}):\n{r.stderr[-3000:]}\n")
    return None


# ---- 2. training steps: the workers --------------------------------------------------------------------
def _time_steps(step, steps, warmup):
    first = step()
    for _ in range(warmup - 1):
        step()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return first, float(np.median(ts)) * 1e3


def worker_ours(spec, threads, steps, warmup):
    import goldbull_np as gb
    from goldbull_np import kernels
    from goldbull_np.nn import functional as F
    from goldbull_np.vision import GoldbullVision, VisionConfig
    kernels.set_num_threads(threads)
    model = GoldbullVision(VisionConfig.from_dict(spec["config"]))
    model.load_weights(spec["weights"])
    model.train()
    b = np.load(spec["batch"])
    x, y = gb.Tensor(b["x"]), b["y"]
    opt = gb.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)

    def step():
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return float(loss.data)

    return _time_steps(step, steps, warmup)


def torch_model(cfg):
    """The torch mirror of GoldbullVision(cfg), with the same parameter names."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else None)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    class ResNet(nn.Module):
        def __init__(self, c):
            super().__init__()
            layers = [nn.Conv2d(c["in_channels"], c["stem_channels"], 3, c["stem_stride"], 1, bias=False),
                      nn.BatchNorm2d(c["stem_channels"]), nn.ReLU()]
            if c["stem_pool"]:
                layers.append(nn.MaxPool2d(3, 2, 1))
            self.stem = nn.Sequential(*layers)
            blocks, cin = [], c["stem_channels"]
            for i, (w, d) in enumerate(zip(c["widths"], c["depths"])):
                for j in range(d):
                    blocks.append(Block(cin, w, 2 if (i > 0 and j == 0) else 1))
                    cin = w
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Linear(cin, c["num_classes"])

        def forward(self, x):
            return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))

    class Attn(nn.Module):
        def __init__(self, E, H):
            super().__init__()
            self.H = H
            self.qkv_proj = nn.Linear(E, 3 * E)
            self.o_proj = nn.Linear(E, E)

        def forward(self, x):
            B, T, E = x.shape
            qkv = self.qkv_proj(x).reshape(B, T, 3 * self.H, E // self.H).permute(0, 2, 1, 3)
            q, k, v = qkv.split(self.H, dim=1)
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            return self.o_proj(y.transpose(1, 2).reshape(B, T, E))

    class MLP(nn.Module):
        def __init__(self, E, hidden):
            super().__init__()
            self.up_proj, self.down_proj = nn.Linear(E, hidden), nn.Linear(hidden, E)

        def forward(self, x):
            return self.down_proj(torch.nn.functional.gelu(self.up_proj(x)))

    class EncBlock(nn.Module):
        def __init__(self, E, H, r):
            super().__init__()
            self.attn_norm, self.attn = nn.LayerNorm(E, eps=1e-6), Attn(E, H)
            self.mlp_norm, self.mlp = nn.LayerNorm(E, eps=1e-6), MLP(E, r * E)

        def forward(self, x):
            x = x + self.attn(self.attn_norm(x))
            return x + self.mlp(self.mlp_norm(x))

    class ViT(nn.Module):
        def __init__(self, c):
            super().__init__()
            E, P = c["n_embd"], c["patch_size"]
            n = (c["image_size"][0] // P) * (c["image_size"][1] // P) + (1 if c["pooling"] == "cls" else 0)
            self.patch_embed = nn.Conv2d(c["in_channels"], E, P, P)
            self.pos_embed = nn.Parameter(torch.zeros(1, n, E))
            self.cls_token = nn.Parameter(torch.zeros(1, 1, E)) if c["pooling"] == "cls" else None
            self.blocks = nn.ModuleList([EncBlock(E, c["n_head"], c["mlp_ratio"]) for _ in range(c["n_layer"])])
            self.norm = nn.LayerNorm(E, eps=1e-6)
            self.head = nn.Linear(E, c["num_classes"])

        def forward(self, x):
            x = self.patch_embed(x).flatten(2).transpose(1, 2)
            if self.cls_token is not None:
                x = torch.cat([self.cls_token.expand(x.shape[0], 1, x.shape[2]), x], dim=1)
            x = x + self.pos_embed
            for blk in self.blocks:
                x = blk(x)
            x = self.norm(x)
            return self.head(x[:, 0] if self.cls_token is not None else x.mean(dim=1))

    class Wrap(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.net = ResNet(c) if c["arch"] == "resnet" else ViT(c)

        def forward(self, x):
            return self.net(x)

    return Wrap(cfg)


def worker_torch(spec, threads, steps, warmup):
    import torch
    from safetensors.numpy import load_file
    torch.set_num_threads(threads)
    model = torch_model(spec["config"])
    sd = {k: torch.from_numpy(v) for k, v in load_file(spec["weights"]).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    model.train()
    b = np.load(spec["batch"])
    x, y = torch.from_numpy(b["x"]), torch.from_numpy(b["y"])
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return _time_steps(step, steps, warmup)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=7, help="conv2d rounds (median)")
    p.add_argument("--settle", type=float, default=10.0, help="ms of sleep after each timed conv2d call")
    p.add_argument("--steps", type=int, default=10, help="timed training steps (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--models", default="resnet_small,vit_tiny")
    p.add_argument("--skip-conv", action="store_true")
    p.add_argument("--_worker")
    p.add_argument("--_spec")
    args = p.parse_args(argv)
    if args._worker:
        with open(args._spec) as f:
            spec = json.load(f)
        fn = worker_ours if args._worker == "goldbull_np" else worker_torch
        first, ms = fn(spec, args.threads, args.steps, args.warmup)
        print("__RESULT__" + json.dumps(dict(first_loss=first, ms_per_step=ms, peak_rss=peak_rss())))
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not importable: nothing to compare against")
        return 0
    out = {"threads": args.threads, "settle_ms": args.settle,
           "note": "medians; the machine may be shared with other work"}
    if not args.skip_conv:
        rows = bench_conv(args.threads, args.repeat, args.settle)
        print_table(rows, [("shape", "conv2d fwd+bwd", "{}"), ("ours_ms", "goldbull_np ms", "{:.2f}"),
                           ("torch_ms", "torch ms", "{:.2f}"), ("ratio", "ratio", "{:.2f}"),
                           ("max_rel_err", "max rel err", "{:.1e}")],
                    title=f"conv2d forward + backward, float32, {args.threads} threads (median of {args.repeat})")
        out["conv2d"] = rows
    steps = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in [m for m in args.models.split(",") if m]:  # --models "" times the convolutions only
            spec, nparams = make_spec(name, tmp)
            ours = run_side("goldbull_np", spec, args.threads, args.steps, args.warmup)
            theirs = run_side("torch", spec, args.threads, args.steps, args.warmup)
            if ours is None or theirs is None:
                continue
            steps.append(dict(model=name, params=nparams, ours_ms=ours["ms_per_step"], torch_ms=theirs["ms_per_step"],
                              ratio=ours["ms_per_step"] / theirs["ms_per_step"],
                              ours_rss_mb=ours["peak_rss"] / 2 ** 20, torch_rss_mb=theirs["peak_rss"] / 2 ** 20,
                              rss_ratio=ours["peak_rss"] / theirs["peak_rss"], ours_loss=ours["first_loss"],
                              torch_loss=theirs["first_loss"]))
    print_table(steps, [("model", "training step", "{}"), ("params", "params", "{:,}"),
                        ("ours_ms", "goldbull_np ms", "{:.1f}"), ("torch_ms", "torch ms", "{:.1f}"),
                        ("ratio", "ratio", "{:.2f}"), ("ours_rss_mb", "ours RSS MiB", "{:.0f}"),
                        ("torch_rss_mb", "torch RSS MiB", "{:.0f}"), ("rss_ratio", "RSS ratio", "{:.2f}"),
                        ("ours_loss", "loss (ours)", "{:.5f}"), ("torch_loss", "loss (torch)", "{:.5f}")],
                title=f"one training step (batch 32), {args.threads} threads (median of {args.steps})")
    out["steps"] = steps
    print(write_json("bench_vision", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
