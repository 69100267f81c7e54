"""How fast does GoldbullText generate, with and without the KV cache, at short and long prompts?

Model: ``ModelConfig.small()`` (4 layers, 4 heads, n_embd 128, vocab 65) with block_size raised to
1024 so a 512-token prompt plus the new tokens fits (learned positions; the table grows, nothing
else changes). Batch 1, greedy, float32.

For each prompt length and mode: the median time of ``generate(prompt, N)`` and of
``generate(prompt, 1)`` (prefill + one token); decode ms/token = (t_N - t_1) / (N - 1), i.e. the cost
of one new token once the prompt has been processed, and tokens/s = N / t_N end to end. With the
cache the decode cost should barely depend on the prompt length; without it, each token re-runs the
whole context. Greedy outputs of the two modes are checked to be equal first.

    python3 benchmarks/bench_generate.py [--new-tokens 64] [--repeat 3] [--threads 1]
"""
import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import median_time, print_table, write_json  # noqa: E402

import numpy as np  # noqa: E402

import goldbull_np as gb  # noqa: E402
from goldbull_np.text import GoldbullText, ModelConfig  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prompts", type=int, nargs="+", default=[16, 512])
    ap.add_argument("--threads", type=int, default=1,
                    help="kernel/BLAS threads (default 1: batch-1 decoding has nothing worth splitting, and "
                         "OpenMP + OpenBLAS pools contend badly on a busy machine)")
    args = ap.parse_args()
    N = args.new_tokens
    gb.kernels.set_num_threads(args.threads)

    cfg = dataclasses.replace(ModelConfig.small(vocab_size=65), block_size=1024)
    gb.manual_seed(0)
    model = GoldbullText(cfg).eval()
    rng = np.random.default_rng(0)

    rows = []
    for T in args.prompts:
        prompt = rng.integers(0, cfg.vocab_size, (1, T))
        a = model.generate(prompt, 8, temperature=0, use_cache=True).data
        b = model.generate(prompt, 8, temperature=0, use_cache=False).data
        if not np.array_equal(a, b):
            raise SystemExit(f"prompt {T}: cached and uncached greedy generations differ")
        for use_cache in (True, False):
            t_n, _ = median_time(lambda: model.generate(prompt, N, temperature=0, use_cache=use_cache),
                                 repeat=args.repeat, warmup=1)
            t_1, _ = median_time(lambda: model.generate(prompt, 1, temperature=0, use_cache=use_cache),
                                 repeat=max(args.repeat, 5), warmup=1)
            decode = (t_n - t_1) / (N - 1)
            rows.append(dict(prompt=T, kv_cache="yes" if use_cache else "no", new_tokens=N, total_s=t_n,
                             prefill_s=t_1, decode_ms=decode * 1e3, tokens_per_s=N / t_n,
                             decode_tokens_per_s=1.0 / decode if decode > 0 else None))
    for T in args.prompts:
        on = next(r for r in rows if r["prompt"] == T and r["kv_cache"] == "yes")
        off = next(r for r in rows if r["prompt"] == T and r["kv_cache"] == "no")
        on["speedup"] = off["decode_ms"] / on["decode_ms"]

    print_table(rows, [("prompt", "prompt", "{}"), ("kv_cache", "kv cache", "{}"),
                       ("new_tokens", "new", "{}"), ("total_s", "total s", "{:.3f}"),
                       ("tokens_per_s", "tok/s (end to end)", "{:.1f}"),
                       ("decode_ms", "decode ms/token", "{:.2f}"),
                       ("decode_tokens_per_s", "decode tok/s", "{:.1f}"),
                       ("speedup", "cache speedup (decode)", "{:.1f}x")],
                title=f"GoldbullText generate: small preset, block_size 1024, "
                      f"{model.num_parameters() / 1e6:.2f}M params, batch 1, greedy, {args.threads} thread(s)")
    path = write_json("bench_generate", {"config": dataclasses.asdict(cfg), "new_tokens": N,
                                         "threads": args.threads, "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
