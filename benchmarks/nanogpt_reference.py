"""The reference run behind issue 8's learning target, in PyTorch: nanoGPT's shakespeare-char CPU recipe.

nanoGPT's README quotes "a loss of only 1.88" for

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
        --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
        --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

This script repeats that run with nanoGPT's own loop, so our `goldbull train --config
configs/shakespeare_char_nanogpt.toml` result can be read against it on the same machine and data: char vocabulary
of the text (65), 90/10 split, batches of random windows (torch.randint, as get_batch), GPT-2 init with
c_proj at 0.02/sqrt(2 n_layer), bias=False (train.py's default), tied head, AdamW lr 1e-3 betas (0.9, 0.99)
weight decay 0.1 on every >= 2-D parameter, warmup 100 then cosine to 1e-4 at 2000, clip 1.0.
The model is benchmarks/_torch_gpt.py (same architecture as GoldbullText).

At the end it reports the validation loss two ways: nanoGPT's estimate (mean of --eval-iters random
batches, 20 in the README's command) and the exact mean over every non-overlapping window of the
validation split (what goldbull train reports).

    python3 benchmarks/nanogpt_reference.py --data ../shared/data/tinyshakespeare.txt --seeds 1337,1

`--position rope` runs the same recipe with rotary positions, as configs/shakespeare_char.toml does (an
independent check of what that change buys); `--mlp swiglu --mlp-hidden 344` swaps the GELU MLP for a
SwiGLU one of about the same parameter count.
Writes benchmarks/results/nanogpt_reference[_rope][_swiglu].json. Needs torch (pip install torch==2.13.0).
"""
import argparse
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import print_table, write_json  # noqa: E402

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH = 4, 4, 128, 64, 12
LR, MIN_LR, WARMUP, DECAY_ITERS, BETAS, WD, CLIP = 1e-3, 1e-4, 100, 2000, (0.9, 0.99), 0.1, 1.0


def nanogpt_lr(it):
    """nanoGPT's get_lr: linear warmup, cosine decay to MIN_LR, then MIN_LR."""
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    if it > DECAY_ITERS:
        return MIN_LR
    ratio = (it - WARMUP) / (DECAY_ITERS - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


def load_splits(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    lut = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lut[c] for c in text), dtype=np.int64, count=len(text))
    n = len(ids)
    return ids[: int(n * 0.9)], ids[int(n * 0.9):], len(chars)


def run(seed, train, val, vocab, steps, eval_iters, threads, arch):
    import torch
    from _torch_gpt import TorchGPT
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = TorchGPT(vocab, N_LAYER, N_HEAD, N_EMBD, BLOCK, bias=False, **arch)
    for name, p in model.named_parameters():  # nanoGPT's _init_weights + the c_proj special case
        if p.dim() >= 2:
            std = 0.02 / math.sqrt(2 * N_LAYER) if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
            torch.nn.init.normal_(p, 0.0, std)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": other, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS)
    tr, va = torch.from_numpy(train), torch.from_numpy(val)

    def get_batch(data):
        ix = torch.randint(len(data) - BLOCK, (BATCH,))
        x = torch.stack([data[i:i + BLOCK] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + BLOCK] for i in ix])
        return x, y

    t0 = time.perf_counter()
    model.train()
    for it in range(steps):
        for g in opt.param_groups:
            g["lr"] = nanogpt_lr(it)
        x, y = get_batch(tr)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        estimate = float(np.mean([model(*get_batch(va))[1].item() for _ in range(eval_iters)]))
        n_win = (len(va) - 1) // BLOCK  # every non-overlapping window, as goldbull_np's validation split
        losses = []
        for s in range(0, n_win, 64):
            starts = torch.arange(s, min(s + 64, n_win)) * BLOCK
            x = torch.stack([va[i:i + BLOCK] for i in starts])
            y = torch.stack([va[i + 1:i + 1 + BLOCK] for i in starts])
            losses.append(model(x, y)[1].item() * len(starts))
        full = float(np.sum(losses) / n_win)
    return dict(seed=seed, **arch, params=sum(p.numel() for p in model.parameters()), steps=steps, train_s=train_s, val_loss_estimate=estimate, eval_iters=eval_iters,
                val_loss_full=full, val_windows=n_win)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="tinyshakespeare.txt")
    ap.add_argument("--seeds", default="1337", help="comma-separated torch seeds")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-iters", type=int, default=20, help="batches in nanoGPT's estimate (README: 20)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--position", choices=("learned", "rope"), default="learned", help="nanoGPT: learned")
    ap.add_argument("--mlp", choices=("gelu", "swiglu"), default="gelu", help="nanoGPT: gelu")
    ap.add_argument("--mlp-hidden", type=int, default=None, help="MLP inner size (default 4 * n_embd)")
    args = ap.parse_args()
    train, val, vocab = load_splits(args.data)
    arch = dict(position=args.position, mlp=args.mlp, mlp_hidden=args.mlp_hidden)
    rows = [run(int(s), train, val, vocab, args.steps, args.eval_iters, args.threads, arch)
            for s in args.seeds.split(",")]
    print_table(rows, [("seed", "seed", "{}"), ("position", "position", "{}"), ("mlp", "mlp", "{}"),
                       ("params", "params", "{:,}"), ("steps", "steps", "{}"), ("train_s", "train s", "{:.0f}"),
                       ("val_loss_estimate", f"val loss ({args.eval_iters} random batches)", "{:.4f}"),
                       ("val_loss_full", "val loss (whole split)", "{:.4f}")],
                title=f"nanoGPT shakespeare-char CPU recipe in torch, vocab {vocab}")
    name = "nanogpt_reference" + ("" if args.position == "learned" else f"_{args.position}") + \
        ("" if args.mlp == "gelu" else f"_{args.mlp}")
    print(f"wrote {write_json(name, dict(args=vars(args), vocab=vocab, rows=rows))}")


if __name__ == "__main__":
    main()
