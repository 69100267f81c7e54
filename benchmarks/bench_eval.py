"""How fast is goldbull_np's BERT encoder against transformers on torch, and BERTScore end to end?

1. Encoder forward (all-MiniLM-L6-v2, 6 layers, hidden 384) on 256 sentence pairs of 32-64 tokens
   ([CLS] A [SEP] B [SEP], token types 0/1), in batches of 32 sorted by length and right-padded,
   eval mode, no graph: ours (goldbull_np.text.BertModel) vs transformers.BertModel on torch, the same
   padded batches, 2 threads each, measured alternately in one run (median of --repeat). The outputs are
   compared first (max |diff| on real tokens).
2. BERTScore on 1,000 pairs end to end (tokenise, encode, match; layer 6, no idf): seconds and
   sentences/s, ours and, when installed, the bert-score package on the same model directory (and the
   largest per-pair F1 difference, with and without reproducing bert-score's padded batches).

    python3 benchmarks/bench_eval.py [--repeat 5] [--threads 2] [--pairs 1000]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import print_table, write_json  # noqa: E402

import numpy as np  # noqa: E402

import goldbull_np as gb  # noqa: E402

WORDS = ("the a cat dog sat on mat quick brown fox jumps over lazy weather is cold today it was running "
         "model train evaluate sentence score language people city river mountain music book "
         "computer science history because however although important different large small").split()


def _sentences(rng, n, lo, hi, tok):
    """n texts whose WordPiece length (specials included) is in [lo, hi]."""
    out = []
    while len(out) < n:
        target = int(rng.integers(lo, hi + 1))
        words = []
        while len(tok.encode(" ".join(words))) < target:
            words.append(str(rng.choice(WORDS)))
        ids = tok.encode(" ".join(words))
        if lo <= len(ids) <= hi:
            out.append(" ".join(words))
    return out


def _pair_batches(tok, rng, n_pairs, batch):
    """[(input_ids, attention_mask, token_type_ids)] of n_pairs pairs of 32-64 tokens in all."""
    pairs = []
    for _ in range(n_pairs):
        total = int(rng.integers(32, 65))
        la = int(rng.integers(8, total - 8))
        a = tok.encode(" ".join(rng.choice(WORDS, size=la)))[:la]  # [CLS] ... [SEP]
        b = tok.encode(" ".join(rng.choice(WORDS, size=total)))[1:total - len(a) + 1]  # ... [SEP]
        b = b[:-1] + [tok.sep_token_id]
        pairs.append((a, b))
    pairs.sort(key=lambda p: len(p[0]) + len(p[1]))
    out = []
    for s in range(0, n_pairs, batch):
        chunk = pairs[s:s + batch]
        T = max(len(a) + len(b) for a, b in chunk)
        ids = np.zeros((len(chunk), T), np.int64)
        mask = np.zeros_like(ids)
        tt = np.zeros_like(ids)
        for i, (a, b) in enumerate(chunk):
            ids[i, :len(a) + len(b)] = a + b
            mask[i, :len(a) + len(b)] = 1
            tt[i, len(a):len(a) + len(b)] = 1
        out.append((ids, mask, tt))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=1000, help="BERTScore pairs")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    gb.kernels.set_num_threads(args.threads)
    from goldbull_np.eval.bertscore import bert_score, default_model_dir, load_encoder
    d = default_model_dir()
    ours = load_encoder(d)
    tok = ours.tokenizer
    rng = np.random.default_rng(0)
    batches = _pair_batches(tok, rng, 256, args.batch)
    n_tok = int(sum(m.sum() for _, m, _ in batches))
    results = {"encoder": {"model": "all-MiniLM-L6-v2", "pairs": 256, "batch": args.batch, "real_tokens": n_tok,
                           "padded_tokens": int(sum(i.size for i, _, _ in batches)), "threads": args.threads}}

    def run_ours():
        with gb.no_grad():
            return [ours(i, m, t).data for i, m, t in batches]

    torch_fn = None
    try:
        import torch
        import transformers
        torch.set_num_threads(args.threads)
        hf = transformers.BertModel.from_pretrained(d).eval()
        tb = [tuple(torch.from_numpy(x) for x in b) for b in batches]

        def torch_fn():
            with torch.inference_mode():
                return [hf(input_ids=i, attention_mask=m, token_type_ids=t).last_hidden_state.numpy() for i, m, t in tb]
        a, b = run_ours(), torch_fn()
        worst = max(float(np.abs(x - y)[m.astype(bool)].max()) for x, y, (_, m, _) in zip(a, b, batches))
        results["encoder"]["max_abs_diff"] = worst
        results["encoder"]["torch"] = torch.__version__
        results["encoder"]["transformers"] = transformers.__version__
    except ImportError as exc:
        print(f"transformers/torch not available ({exc}): timing ours only")
        run_ours()
    t_ours, t_torch = [], []
    for _ in range(args.repeat):  # alternate, so drift on a shared machine hits both
        t0 = time.perf_counter()
        run_ours()
        t_ours.append(time.perf_counter() - t0)
        if torch_fn is not None:
            t0 = time.perf_counter()
            torch_fn()
            t_torch.append(time.perf_counter() - t0)
    rows = [{"impl": "goldbull_np", "s": float(np.median(t_ours)), "tok_s": n_tok / float(np.median(t_ours))}]
    if t_torch:
        rows.append({"impl": f"transformers {results['encoder']['transformers']} / torch "
                             f"{results['encoder']['torch']}", "s": float(np.median(t_torch)),
                     "tok_s": n_tok / float(np.median(t_torch))})
        for r in rows:
            r["ratio"] = r["s"] / rows[1]["s"]
    print_table(rows, [("impl", "encoder forward, 256 pairs of 32-64 tokens", "{}"), ("s", "median s", "{:.3f}"),
                       ("tok_s", "real tokens/s", "{:,.0f}"), ("ratio", "time vs torch", "{:.2f}x")],
                title=f"Encoder forward ({args.threads} threads, batches of {args.batch}"
                      + (f", max |diff| {results['encoder'].get('max_abs_diff', float('nan')):.1e})" if t_torch else ")"))
    results["encoder"]["rows"] = rows

    # ---- BERTScore end to end ---------------------------------------------------------------------
    cands = _sentences(rng, args.pairs, 8, 40, tok)
    refs = _sentences(rng, args.pairs, 8, 40, tok)
    t0 = time.perf_counter()
    s = bert_score(cands, refs, model=ours, num_layers=6)
    t = time.perf_counter() - t0
    brow = [{"impl": "goldbull_np.eval.bert_score", "s": t, "sent_s": 2 * args.pairs / t, "f1": s.mean_f1}]
    try:
        import bert_score as bs
        t0 = time.perf_counter()
        P, R, F = bs.score(cands, refs, model_type=d, num_layers=6, batch_size=64)
        t = time.perf_counter() - t0
        brow.append({"impl": "bert-score (torch)", "s": t, "sent_s": 2 * args.pairs / t, "f1": float(F.mean())})
        brow[0]["max_abs_diff_f1"] = float(np.abs(s.f1 - F.numpy()).max())
        t0 = time.perf_counter()
        e = bert_score(cands, refs, model=ours, num_layers=6, bert_score_batch=64)
        t = time.perf_counter() - t0
        brow.insert(1, {"impl": "goldbull_np, bert_score_batch=64", "s": t, "sent_s": 2 * args.pairs / t,
                        "f1": e.mean_f1, "max_abs_diff_f1": float(np.abs(e.f1 - F.numpy()).max())})
    except ImportError:
        pass
    print_table(brow, [("impl", f"BERTScore, {args.pairs} pairs end to end", "{}"), ("s", "seconds", "{:.2f}"),
                       ("sent_s", "sentences/s", "{:,.0f}"), ("f1", "mean F1", "{:.6f}"),
                       ("max_abs_diff_f1", "max |F1 - bert-score|", "{:.1e}")],
                title="BERTScore (all-MiniLM-L6-v2, layer 6, no idf; model already loaded)")
    results["bertscore"] = {"pairs": args.pairs, "rows": brow}
    print("wrote", write_json("bench_eval", results))


if __name__ == "__main__":
    main()
