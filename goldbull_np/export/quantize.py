"""``export_quantized(model, dir, bits)``: an int8 (or int4) model directory that ``from_pretrained`` loads
for inference (goldbull_np.nn.quantized: QuantizedLinear through the int8 kernel).

The Linears of the transformer blocks (and an untied head) are quantised; embeddings, norms, biases and a
tied head (it is the embedding table) stay float32. The model passed in is not changed: a copy is
quantised and written with ``save_pretrained`` (config.json, quantization_config.json, model.safetensors).
"""
import copy
import os

from ..io import atomic_directory
from ..nn.quantized import BITS, quantize_model


def quantized_copy(model, bits=8, group_size=32):
    """A quantised copy of ``model`` (the original untouched)."""
    if bits not in BITS:
        raise ValueError(f"export_quantized: bits must be 4 or 8, got {bits!r}")
    clone = copy.deepcopy(model)
    quantize_model(clone, bits=bits, group_size=group_size)
    return clone


def export_quantized(model, directory, bits=8, *, group_size=32, tokenizer=None, overwrite=False):
    """Write the quantised model directory, atomically; ``from_pretrained`` reads it back."""
    clone = quantized_copy(model, bits, group_size)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    with atomic_directory(directory, replace=overwrite) as tmp:
        clone.save_pretrained(os.fspath(tmp))
        if tokenizer is not None:
            tokenizer.save(os.fspath(tmp))
    return directory


__all__ = ["export_quantized", "quantized_copy"]
