"""What do int8 / int4 weights buy on the mid model, and when is onnxruntime the better engine?

A GoldbullText (``--config mid``: 6 layers, 6 heads, n_embd 384, block 256; or ``small``) is trained for
``--train-steps`` steps on ``--data`` (char-level, nanoGPT's recipe) unless ``--checkpoint`` names a trained
model directory; then, side by side in one run:

- file size of model.safetensors: float32 vs int8 vs int4 (``ModelExporter.export_quantized``);
- batch-1 greedy decode tokens/s with the KV cache (median of ``--repeat`` runs of ``--new-tokens``);
- prefill tokens/s (one full block, batch 1);
- validation perplexity on the last 10% of the data (the first ``--eval-batches`` batches of 8);
- onnxruntime on our exported ONNX (KV cache) vs our engine: decode and prefill.

    python3 benchmarks/bench_export.py --data tinyshakespeare.txt [--config mid] [--train-steps 300]

Prints a table and writes benchmarks/results/bench_export.json (with the CPU's ISA and thread count).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import print_table, write_json  # noqa: E402

import numpy as np  # noqa: E402

import goldbull_np as gb  # noqa: E402
from goldbull_np.data import CharTokenizer, TokenDataset  # noqa: E402
from goldbull_np.export import ModelExporter  # noqa: E402
from goldbull_np.text import GoldbullText, ModelConfig, TextTrainer, TextTrainingConfig  # noqa: E402
from goldbull_np.train.data import split_tokens  # noqa: E402


def train_model(cfg_name, text, steps, seed=1337):
    tok = CharTokenizer.from_text(text)
    ids = np.asarray(tok.encode(text), np.int64)
    preset = ModelConfig.default if cfg_name == "mid" else ModelConfig.small
    gb.manual_seed(seed)
    model = GoldbullText(preset(vocab_size=tok.vocab_size, position="rope", mlp="swiglu", norm="rmsnorm",
                                bias=False, mlp_hidden=None))
    block = model.config.block_size
    train, val = split_tokens(ids, block, 0.1, train_stride=1)
    cfg = TextTrainingConfig(learning_rate=1e-3, batch_size=8 if cfg_name == "mid" else 12, max_steps=steps,
                             gradient_accumulation_steps=1, warmup_steps=min(100, steps // 5), lr_scheduler="cosine",
                             min_learning_rate=1e-4, weight_decay=0.1, beta2=0.99, logging_steps=0, eval_steps=0,
                             save_steps=0, progress_bar=False, seed=seed)
    TextTrainer(model, cfg, tokenizer=tok).train(train)
    return model, tok, ids


def perplexity(model, ids, batches):
    block = model.config.block_size
    val = TokenDataset.from_array(ids[int(len(ids) * 0.9):], block)
    trainer = TextTrainer(model, TextTrainingConfig(batch_size=8, progress_bar=False, eval_iters=batches))
    return float(trainer.evaluate(val)["perplexity"])


def decode_tps(model, prompt, n, repeat):
    model.generate(prompt, max_new_tokens=4, temperature=0)  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        model.generate(prompt, max_new_tokens=n, temperature=0)
        times.append(time.perf_counter() - t)
    return n / float(np.median(times))


def prefill_tps(model, x, repeat):
    from goldbull_np.autograd import no_grad
    times = []
    with no_grad():
        model(x)
        for _ in range(repeat):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return x.size / float(np.median(times))


def ort_tps(path, model, prompt, n, x, repeat):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = gb.kernels.info()["threads"]["openmp"] or 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    c = model.config
    names = [o.name for o in s.get_outputs()]

    def feeds(tokens, past):
        B, T = tokens.shape
        S = T + (0 if past is None else past[0].shape[2])
        f = {"input_ids": tokens, "attention_mask": np.ones((B, S), np.int64)}
        for i in range(c.n_layer):
            for j, kv in enumerate(("key", "value")):
                f[f"past_key_values.{i}.{kv}"] = (np.zeros((B, c.n_kv_head, 0, c.head_dim), np.float32)
                                                  if past is None else past[2 * i + j])
        return f

    def decode():
        out = s.run(None, feeds(prompt, None))
        for _ in range(n - 1):
            nxt = np.argmax(out[0][:, -1], -1)[:, None].astype(np.int64)
            out = s.run(None, feeds(nxt, out[1:]))
        return out

    decode()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        decode()
        times.append(time.perf_counter() - t)
    dec = n / float(np.median(times))
    s.run(None, feeds(x, None))
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        s.run(None, feeds(x, None))
        times.append(time.perf_counter() - t)
    assert names[0] == "logits"
    return dec, x.size / float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a text file (char-level; tinyshakespeare)")
    ap.add_argument("--config", choices=("mid", "small"), default="mid")
    ap.add_argument("--checkpoint", help="a trained GoldbullText directory (skips training; its tokenizer is used)")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--eval-batches", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    gb.kernels.set_num_threads(args.threads)
    text = open(args.data, encoding="utf-8").read()
    t0 = time.perf_counter()
    if args.checkpoint:
        from goldbull_np.data import load_tokenizer
        model, tok = GoldbullText.from_pretrained(args.checkpoint), load_tokenizer(args.checkpoint)
        ids = np.asarray(tok.encode(text), np.int64)
    else:
        model, tok, ids = train_model(args.config, text, args.train_steps)
    train_s = time.perf_counter() - t0
    model.eval()
    prompt = ids[None, :16].astype(np.int64)
    x = ids[None, : model.config.block_size].astype(np.int64)
    n_new = min(args.new_tokens, model.config.block_size - prompt.shape[1])  # within the context (ONNX's too)
    ex = ModelExporter()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        variants = {"float32": ex.export_safetensors(model, os.path.join(d, "fp32"))}
        for bits in (8, 4):
            variants[f"int{bits}"] = ex.export_quantized(model, os.path.join(d, f"int{bits}"), bits)
        onnx_path = os.fspath(ex.export_onnx(model, os.path.join(d, "m.onnx")))
        loaded = {k: GoldbullText.from_pretrained(v) for k, v in variants.items()}
        fp32_size = os.path.getsize(os.path.join(variants["float32"], "model.safetensors"))
        for name, m in loaded.items():
            m.eval()
            size = os.path.getsize(os.path.join(variants[name], "model.safetensors"))
            rows.append(dict(engine=f"goldbull_np {name}", file_mb=size / 2 ** 20, file_x=size / fp32_size,
                             decode_tps=decode_tps(m, prompt, n_new, args.repeat),
                             prefill_tps=prefill_tps(m, x, args.repeat),
                             ppl=perplexity(m, ids, args.eval_batches)))
        try:
            dec, pre = ort_tps(onnx_path, model, prompt, n_new, x, args.repeat)
            rows.append(dict(engine="onnxruntime float32", file_mb=os.path.getsize(onnx_path) / 2 ** 20,
                             file_x=os.path.getsize(onnx_path) / fp32_size, decode_tps=dec, prefill_tps=pre,
                             ppl=float("nan")))
        except ImportError:
            print("onnxruntime not installed: its row is left out")
    base = rows[0]
    for r in rows:
        r["decode_x"] = r["decode_tps"] / base["decode_tps"]
        r["ppl_rel"] = r["ppl"] / base["ppl"] - 1 if np.isfinite(r["ppl"]) else float("nan")
    print_table(rows, [("engine", "engine", "{}"), ("file_mb", "file MiB", "{:.2f}"), ("file_x", "x fp32", "{:.3f}"),
                       ("decode_tps", "decode tok/s", "{:.1f}"), ("decode_x", "x fp32", "{:.2f}"),
                       ("prefill_tps", "prefill tok/s", "{:.0f}"), ("ppl", "val ppl", "{:.4f}"),
                       ("ppl_rel", "ppl vs fp32", "{:+.2%}")],
                title=f"{args.config} GoldbullText ({model.num_parameters():,} parameters), batch-1 greedy decode of "
                      f"{n_new} tokens after a 16-token prompt, prefill of {x.shape[1]} tokens")
    print(write_json("bench_export", dict(config=args.config, parameters=model.num_parameters(),
                                          train_steps=0 if args.checkpoint else args.train_steps,
                                          train_seconds=train_s, new_tokens=n_new, threads=args.threads,
                                          rows=rows)))


if __name__ == "__main__":
    main()
