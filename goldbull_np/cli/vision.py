"""``goldbull train-vision`` and ``goldbull predict``: arguments to a VisionTrainingConfig, then the vision
recipes (``goldbull_np.vision.recipes``). The vision layers load inside the command functions, so
``goldbull --help`` stays fast."""
from pathlib import Path

from ._args import add_debug_flag, add_threads_flag, apply_threads, finite_float, nonneg_int, positive_int, usage_error

PRESETS = ("resnet_tiny", "resnet_small", "resnet18", "vit_tiny")  # goldbull_np.vision.recipes.PRESETS
DEFAULT_OUT = "goldbull_runs/vision"


def register(sub) -> None:
    """Add the train-vision and predict subcommands to the ``goldbull`` parser."""
    p = sub.add_parser(
        "train-vision", help="train a GoldbullVision image classifier on an image folder + labels.csv",
        description="Train a ResNet or ViT classifier on images listed in a labels.csv (header filename,label; "
                    "paths relative to --images). Flags override --config ([training] and [model] tables).")
    p.add_argument("--images", required=True, metavar="DIR", help="the image directory")
    p.add_argument("--labels", metavar="FILE", help="labels.csv (default: DIR/labels.csv)")
    p.add_argument("--config", metavar="FILE", help=".toml or .json with a [training] table (VisionTrainingConfig) "
                                                     "and an optional [model] table (preset + VisionConfig fields)")
    p.add_argument("--preset", choices=PRESETS, help="model preset (default: resnet_small)")
    p.add_argument("--image-size", type=positive_int, nargs="+", metavar="N", help="H [W] images are resized to")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="training epochs")
    p.add_argument("--batch-size", type=positive_int, metavar="N")
    p.add_argument("--lr", type=finite_float(0.0), metavar="LR", help="peak learning rate")
    p.add_argument("--seed", type=nonneg_int, metavar="N")
    p.add_argument("--out", metavar="DIR", help=f"output directory (default: {DEFAULT_OUT})")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_flag(p)
    add_debug_flag(p)
    p.set_defaults(func=cmd_train_vision)

    p = sub.add_parser("predict", help="classify image files with a trained GoldbullVision checkpoint",
                       description="Print one line per image and class: FILE<TAB>CLASS<TAB>PROBABILITY, best first.")
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="a checkpoint or model directory, or a run directory (its best, else latest, checkpoint)")
    p.add_argument("images", nargs="+", metavar="IMG", help="image files")
    p.add_argument("--top-k", type=positive_int, default=1, metavar="K", help="classes per image (default 1)")
    add_threads_flag(p)
    add_debug_flag(p)
    p.set_defaults(func=cmd_predict)


def build_config(args):
    """(VisionTrainingConfig, model table): defaults <- --config <- flags."""
    from ..vision.recipes import load_run_config
    from ..vision.trainer import VisionTrainingConfig
    cfg, model = load_run_config(args.config) if args.config else (VisionTrainingConfig(), {})
    over = {}
    for flag, name in (("epochs", "num_epochs"), ("batch_size", "batch_size"), ("lr", "learning_rate"), ("seed", "seed")):
        v = getattr(args, flag)
        if v is not None:
            over[name] = v
    if args.image_size:
        if len(args.image_size) > 2:
            raise ValueError("--image-size takes H or H W")
        over["image_size"] = list(args.image_size) * (2 if len(args.image_size) == 1 else 1)
    if args.out:
        over["output_dir"] = args.out
    elif cfg.output_dir is None:
        over["output_dir"] = DEFAULT_OUT
    if args.no_progress:
        over["progress_bar"] = False
    if over:
        cfg = cfg.replace(**over)
    if args.preset:
        model["preset"] = args.preset
    return cfg, model


def cmd_train_vision(args) -> int:
    from ..train.config import ConfigError
    from ..vision.recipes import train_classification
    try:
        cfg, model = build_config(args)
    except (ConfigError, ValueError) as exc:
        return usage_error("train-vision", str(exc))
    if not Path(args.images).is_dir():
        return usage_error("train-vision", f"image directory not found: {args.images}")
    apply_threads(args)
    preset = model.pop("preset", "resnet_small")
    summary = train_classification(args.images, args.labels, cfg, preset=preset, model_overrides=model,
                                   resume=args.resume, log=print)
    if summary.get("checkpoint"):
        print(f"checkpoint: {summary['checkpoint']}")
    return 0


def cmd_predict(args) -> int:
    from ..vision.recipes import predict
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        return usage_error("predict", f"image file(s) not found: {', '.join(missing)}")
    apply_threads(args)
    for path, ranked in predict(args.checkpoint, args.images, top_k=args.top_k):
        for name, prob in ranked:
            print(f"{path}\t{name}\t{prob:.6f}")
    return 0
