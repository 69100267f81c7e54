"""``goldbull finetune``: arguments to a FineTuningConfig, then ``goldbull_np.text.recipes.finetune_text``."""
from pathlib import Path

from ._args import finite_float, nonneg_int, positive_int, usage_error


def register(subparsers) -> None:
    """Add the ``goldbull finetune`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "finetune", help="fine-tune a checkpoint (goldbull or Hugging Face GPT-2/Llama directory) on a text file",
        description="Fine-tune a pretrained model with LoRA (or fully, with --lora-rank 0) on a UTF-8 text file; "
                    "writes the merged model, the adapters and the tokenizer to --out.")
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="goldbull checkpoint/run directory or Hugging Face model directory")
    p.add_argument("--data", required=True, metavar="FILE", help="UTF-8 text file to fine-tune on")
    p.add_argument("--out", required=True, metavar="DIR", help="where the fine-tuned model is written")
    p.add_argument("--lora-rank", type=nonneg_int, default=8, metavar="R", help="LoRA rank (0: full fine-tuning)")
    p.add_argument("--lora-alpha", type=finite_float(0.0), default=16.0, metavar="A", help="LoRA alpha")
    p.add_argument("--lr", type=finite_float(0.0), default=1e-4, metavar="LR", help="peak learning rate")
    p.add_argument("--epochs", type=positive_int, default=1, metavar="N", help="passes over the data")
    p.add_argument("--max-steps", type=positive_int, default=None, metavar="N", help="stop after N optimizer steps")
    p.add_argument("--batch-size", type=positive_int, default=4, metavar="N")
    p.add_argument("--block-size", type=positive_int, default=None, metavar="T",
                   help="sequence length (default: the model's block_size)")
    p.add_argument("--freeze-layers", type=nonneg_int, default=0, metavar="N",
                   help="freeze the embeddings and the first N blocks")
    p.add_argument("--target-layers", nargs="+", default=["attention", "feedforward"], choices=("attention", "feedforward"))
    p.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in backward")
    p.add_argument("--dora", action="store_true", help="weight-decomposed LoRA")
    p.add_argument("--seed", type=nonneg_int, default=1337, metavar="N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args) -> int:
    from ..text.finetune import FineTuningConfig
    from ..text.recipes import finetune_text
    from ..train.config import ConfigError
    if not Path(args.data).is_file():
        return usage_error("finetune", f"data file not found: {args.data}")
    try:
        config = FineTuningConfig(learning_rate=args.lr, batch_size=args.batch_size, num_epochs=args.epochs,
                                  max_steps=args.max_steps, freeze_layers=args.freeze_layers,
                                  target_layers=args.target_layers, gradient_checkpointing=args.gradient_checkpointing,
                                  lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, use_dora=args.dora,
                                  seed=args.seed, progress_bar=not args.no_progress)
    except ConfigError as exc:
        return usage_error("finetune", str(exc))
    finetune_text(args.checkpoint, args.data, args.out, config, block_size=args.block_size, val_fraction=0.1,
                  log=print)
    return 0
