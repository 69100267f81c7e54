"""``goldbull export``: a checkpoint (or model directory) written in a deployment format (goldbull_np.export)."""
from ._args import add_debug_flag

FORMATS = ("safetensors", "onnx", "pytorch", "hf", "gguf", "int8", "int4")  # goldbull_np.export.FORMATS (kept here so --help imports nothing)


def register(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint as safetensors, ONNX, PyTorch .pt, a Hugging Face directory, "
                                      "GGUF or int8/int4 weights",
                       description="Export a trained model. safetensors: our own directory (from_pretrained); onnx: "
                                   "one .onnx file with KV-cache inputs/outputs (onnxruntime); pytorch: model.pt for "
                                   "torch.load(weights_only=True); hf: a transformers GPT-2/Llama directory; gguf: llama.cpp's "
                                   "format (Llama architecture); int8/int4: a quantised directory that "
                                   "from_pretrained loads for inference. LoRA "
                                   "adapters are merged into the exported weights.")
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="a checkpoint or run directory (its best, else latest, checkpoint), or a model directory")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, metavar="PATH", help="the file (onnx, pytorch) or directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-cache", action="store_true", help="onnx: no past_key_values inputs / present outputs")
    add_debug_flag(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    import os

    from .. import text, vision  # noqa: F401 - each family registers its model types
    from ..export import ModelExporter
    from ..nn.model_base import load_pretrained
    from ..text.recipes import load_tokenizer
    from ..train.checkpoint import resolve_checkpoint

    ck = resolve_checkpoint(args.checkpoint)
    model = load_pretrained(os.fspath(ck))  # whichever family the directory's config.json names
    model.eval()
    kwargs = {"overwrite": args.overwrite}
    if args.format == "onnx":
        kwargs["use_cache"] = not args.no_cache
    if args.format in ("hf", "gguf", "int8", "int4"):
        try:
            kwargs["tokenizer"] = load_tokenizer(ck)
        except FileNotFoundError:
            pass
    out = ModelExporter().export(model, args.out, args.format, **kwargs)
    print(f"goldbull export: {ck} -> {out} ({args.format})")
    return 0
