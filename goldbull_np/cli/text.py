"""``goldbull train | generate`` (``goldbull eval`` is cli/eval.py): arguments to a RunConfig / keyword arguments, then the text recipes
(``goldbull_np.text.recipes``), printing what they report. The model and data layers load lazily, inside
the command functions, so ``goldbull info`` and ``--help`` stay fast."""
import argparse
from pathlib import Path

from ._args import add_debug_flag, add_threads_flag, apply_threads, finite_float, nonneg_int, positive_int, usage_error

PRESETS = ("tiny", "small", "default")  # goldbull_np.text.run_config's (kept here so --help imports nothing)
TOKENIZERS = ("char", "byte")
DEFAULT_OUT = "goldbull_runs/default"


def register(sub) -> None:
    """Add the train and generate subcommands to the ``goldbull`` parser."""
    p = sub.add_parser(
        "train", help="train a GoldbullText language model",
        description="Train a GoldbullText language model. With no arguments: a small model on an embedded "
                    "corpus (Python's own docstrings), a little over a minute on 2 idle cores, then a sample. "
                    "Flags override --config, which overrides the built-in defaults.")
    p.add_argument("--config", metavar="FILE", help="run config (.toml or .json) with [model] [data] [training] "
                                                     "[checkpoint] tables")
    p.add_argument("--data", metavar="FILE", help="UTF-8 text file to train on (default: the embedded corpus)")
    p.add_argument("--preset", choices=PRESETS, help="model size preset (default: small)")
    p.add_argument("--tokenizer", choices=TOKENIZERS, help="char (vocabulary from the text) or byte")
    p.add_argument("--out", metavar="DIR", help=f"output directory (default: {DEFAULT_OUT})")
    p.add_argument("--max-steps", type=positive_int, metavar="N", help="optimizer steps to train")
    p.add_argument("--save-steps", type=nonneg_int, metavar="N", help="checkpoint every N steps")
    p.add_argument("--eval-steps", type=nonneg_int, metavar="N", help="evaluate every N steps")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="sequences per micro-batch")
    p.add_argument("--grad-accum", type=positive_int, metavar="N", help="micro-batches per optimizer step")
    p.add_argument("--lr", type=finite_float(0.0), metavar="LR", help="peak learning rate")
    p.add_argument("--seed", type=nonneg_int, metavar="N", help="random seed (init, dropout, data order)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume even if batch size, accumulation, seed, data or model changed")
    p.add_argument("--sample-tokens", type=nonneg_int, default=300, metavar="N",
                   help="length of the sample printed at the end (0: none; default 300)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_flag(p)
    add_debug_flag(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="generate text from a checkpoint",
                       description="Continue a prompt with a trained model.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="a checkpoint directory, or a run directory (its best, else latest, checkpoint)")
    p.add_argument("--prompt", default="", metavar="TEXT", help="text to continue")
    p.add_argument("--max-new-tokens", type=nonneg_int, default=200, metavar="N")
    p.add_argument("--temperature", type=finite_float(0.0), default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=positive_int, default=40, metavar="K")
    p.add_argument("--seed", type=nonneg_int, default=None, metavar="N", help="sampling seed")
    add_threads_flag(p)
    add_debug_flag(p)
    p.set_defaults(func=cmd_generate)



# ---------------------------------------------------------------------------------------------------------
# goldbull train

def build_run_config(args):
    """Defaults <- --config file <- flags."""
    from ..text.run_config import RunConfig
    run = RunConfig.from_file(args.config) if args.config else RunConfig.from_dict({})
    if args.preset:
        # the preset replaces the file's preset; the file's other [model] values still apply on top of it
        run.model = {**run.model, "preset": args.preset}
    data_over = {}
    if args.data:
        data_over["path"] = args.data
    if args.tokenizer:
        data_over["tokenizer"] = args.tokenizer
    if data_over:
        run.data = run.data.replace(**data_over)
    over = {}
    for flag, name in (("max_steps", "max_steps"), ("save_steps", "save_steps"), ("eval_steps", "eval_steps"),
                       ("batch_size", "batch_size"), ("grad_accum", "gradient_accumulation_steps"),
                       ("lr", "learning_rate"), ("seed", "seed")):
        v = getattr(args, flag)
        if v is not None:
            over[name] = v
    if args.out:
        over["output_dir"] = args.out
    elif run.training.output_dir is None:
        over["output_dir"] = DEFAULT_OUT
    if args.no_progress:
        over["progress_bar"] = False
    if over:
        run.training = run.training.replace(**over)
    return run


def cmd_train(args) -> int:
    from ..train.config import ConfigError
    from ..text.recipes import train_text
    try:
        run = build_run_config(args)
    except ConfigError as exc:
        return usage_error("train", str(exc))
    if run.data.path is not None and not Path(run.data.path).is_file():
        return usage_error("train", f"data file not found: {run.data.path}")
    apply_threads(args)
    summary = train_text(run, resume=args.resume, allow_mismatch=args.allow_config_change,
                         sample_tokens=args.sample_tokens, log=print)
    return 0 if summary else 1


# ---------------------------------------------------------------------------------------------------------
# goldbull generate

def cmd_generate(args) -> int:
    from ..text.recipes import generate_from_checkpoint
    apply_threads(args)
    out = generate_from_checkpoint(args.checkpoint, args.prompt, max_new_tokens=args.max_new_tokens,
                                   temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    print(out["text"])
    return 0
