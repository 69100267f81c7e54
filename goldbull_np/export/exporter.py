"""``ModelExporter``: one object, one method per format (the seed's names), each checked by its real consumer.

    exporter = ModelExporter()
    exporter.export_safetensors(model, "out/model")        # our own directory: config.json + model.safetensors
    exporter.export_onnx(model, "out/model.onnx")          # onnxruntime; KV cache (text), pixel_values (vision)
    exporter.export_pytorch(model, "out/model.pt")         # torch.load(weights_only=True) -> state_dict
    exporter.export_huggingface(model, "out/hf")           # transformers: GPT2LMHeadModel / LlamaForCausalLM
    exporter.export_gguf(model, "out/model.gguf")          # llama.cpp (Llama architecture)
    exporter.export_quantized(model, "out/int8", 8)        # from_pretrained -> int8 inference kernel

Every writer is atomic (a temporary name beside the target, fsync, rename), refuses to overwrite an
existing target unless ``overwrite=True``, and refuses a model feature its format cannot express, naming it.
LoRA adapters are merged into the base weights for the export (the model itself keeps them unmerged);
a module no exporter knows is refused by name.
"""
import contextlib
import os
from pathlib import Path

import numpy as np

from ..io import atomic_directory
from ..nn.model_base import PreTrainedModel

FORMATS = ("safetensors", "onnx", "pytorch", "hf", "gguf", "int8", "int4")


@contextlib.contextmanager
def merged_lora(model):
    """The model with its LoRA adapters folded into the base weights for the block, then put back exactly
    as it was (the base weights restored from a copy, not by an unmerge that would round them)."""
    from ..nn import lora
    wrapped = [m for _, m in lora.lora_modules(model) if not m.merged]
    saved = [m.weight.data.copy() for m in wrapped]
    removed = lora.remove_lora(model, merge=True)
    try:
        yield model
    finally:
        lora.restore_lora(model, removed, unmerge=False)
        for m, w in zip(wrapped, saved):
            m.weight.data[...] = w
            m.weight._bump_version()
            m.merged = False
            getattr(m, "_merged_norms", {}).clear()


def _check_target(path, overwrite: bool) -> Path:
    path = Path(path)
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{path}: the directory {parent} is not writable")
    return path


def _text_model(model, fmt):
    from ..text import GoldbullText
    if not isinstance(model, GoldbullText):
        raise TypeError(f"export to {fmt}: only GoldbullText models can be written in this format, got "
                        f"{type(model).__name__}")
    known = _known_modules()
    unknown = sorted({type(m).__name__ for m in model.modules() if not isinstance(m, known)})
    if unknown:
        raise ValueError(f"export to {fmt}: the model holds module(s) no exporter knows: {', '.join(unknown)} "
                         "(bottleneck adapters or custom layers: remove them or export with export_safetensors)")
    return model


def _known_modules():
    from ..nn import GELU, Dropout, Embedding, LayerNorm, Linear, ModuleList, RMSNorm, RotaryEmbedding, SiLU
    from ..nn.lora import LoRALinear
    from ..nn.transformer import MLP, CausalSelfAttention, TransformerBlock
    from ..text import GoldbullText
    return (GoldbullText, ModuleList, TransformerBlock, CausalSelfAttention, MLP, Linear, LoRALinear, Embedding,
            LayerNorm, RMSNorm, Dropout, RotaryEmbedding, GELU, SiLU)


class ModelExporter:
    """Writes a model in each deployment format; see the module docstring."""

    def export_safetensors(self, model, path, *, overwrite: bool = False):
        """Our own model directory (``from_pretrained`` loads it): config.json + model.safetensors, LoRA merged."""
        if not isinstance(model, PreTrainedModel):
            raise TypeError(f"export_safetensors needs a model on the model base, got {type(model).__name__}")
        path = _check_target(path, overwrite)
        with merged_lora(model), atomic_directory(path, replace=overwrite) as tmp:
            model.save_pretrained(os.fspath(tmp))
        return path

    def export_onnx(self, model, path, *, use_cache: bool = True, overwrite: bool = False):
        """An ONNX file (opset 17): a GoldbullText with dynamic batch/sequence axes and, with ``use_cache``,
        past/present K/V; a GoldbullVision (ResNet, ViT) from ``pixel_values`` to ``logits``; a BertModel
        from input_ids/attention_mask/token_type_ids to ``last_hidden_state``."""
        from ..text.bert import BertModel
        from ..vision import GoldbullVision
        from .onnx import export_onnx
        path = _check_target(path, overwrite)
        if isinstance(model, (GoldbullVision, BertModel)):
            with merged_lora(model):
                return Path(export_onnx(model, path, overwrite=overwrite))
        with merged_lora(_text_model(model, "onnx")):
            return Path(export_onnx(model, path, use_cache=use_cache, overwrite=overwrite))

    def export_pytorch(self, model, path, *, overwrite: bool = False):
        """``model.pt`` that ``torch.load(path, weights_only=True)`` reads into our state_dict (tied weights once)."""
        from .pytorch import save_torch_state_dict
        path = _check_target(path, overwrite)
        with merged_lora(model):
            tied = model.tied_weights() if isinstance(model, PreTrainedModel) else {}
            arrays = {k: np.asarray(v) for k, v in model.state_dict().items() if k not in tied}
            save_torch_state_dict(arrays, path, overwrite=overwrite)
        return path

    def export_huggingface(self, model, directory, tokenizer=None, *, overwrite: bool = False):
        """A Hugging Face directory (GPT-2 or Llama) that transformers loads with logits equal to ours."""
        from .huggingface import export_huggingface
        directory = _check_target(directory, overwrite)
        with merged_lora(_text_model(model, "hf")):
            return Path(export_huggingface(model, directory, tokenizer, overwrite=overwrite))

    def export_gguf(self, model, path, tokenizer=None, *, overwrite: bool = False):
        """A GGUF file (llama.cpp) of a Llama-architecture model, F32, with its BPE tokenizer."""
        from .gguf import export_gguf
        path = _check_target(path, overwrite)
        with merged_lora(_text_model(model, "gguf")):
            return Path(export_gguf(model, path, tokenizer, overwrite=overwrite))

    def export_quantized(self, model, path, bits: int = 8, *, group_size: int = 32, tokenizer=None,
                         overwrite: bool = False):
        """An int8 (per-output-channel) or int4 (group-wise) model directory that ``from_pretrained`` loads
        for inference through the int8 kernel; LoRA merged, the model itself unchanged."""
        from .quantize import export_quantized
        if bits not in (4, 8):
            raise ValueError(f"export_quantized: bits must be 4 or 8, got {bits!r}")
        if not isinstance(model, PreTrainedModel):
            raise TypeError(f"export_quantized needs a model on the model base, got {type(model).__name__}")
        path = _check_target(path, overwrite)
        with merged_lora(model):
            return Path(export_quantized(model, path, bits, group_size=group_size, tokenizer=tokenizer,
                                         overwrite=overwrite))

    def export(self, model, path, fmt: str, **kwargs):
        """``export_<fmt>(model, path, **kwargs)`` for fmt in :data:`FORMATS`."""
        method = {"safetensors": self.export_safetensors, "onnx": self.export_onnx,
                  "pytorch": self.export_pytorch, "hf": self.export_huggingface, "gguf": self.export_gguf}.get(fmt)
        if fmt in ("int8", "int4"):
            return self.export_quantized(model, path, int(fmt[3:]), **kwargs)
        if method is None:
            raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
        return method(model, path, **kwargs)


__all__ = ["ModelExporter", "FORMATS", "merged_lora"]
