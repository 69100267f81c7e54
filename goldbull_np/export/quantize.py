"""``export_quantized(model, dir, bits)``: an int8 (or int4) model directory that ``from_pretrained`` loads
for inference (goldbull_np.nn.quantized: QuantizedLinear through the int8 kernel).

The Linears of the transformer blocks (and an untied head) are quantised; embeddings, norms, biases and a
tied head (it is the embedding table) stay float32. The model passed in is not changed.
"""
import os

import numpy as np

from ..io import atomic_directory, atomic_write_json, save_safetensors
from ..nn.model_base import CONFIG_NAME, WEIGHTS_NAME
from ..nn.quantized import BITS, QUANT_CONFIG_NAME, quantizable_linears, quantize_int4, quantize_int8


def quantized_state(model, bits=8, group_size=32):
    """``(tensors, quantization config)`` of the model quantised, without changing it."""
    if bits not in BITS:
        raise ValueError(f"export_quantized: bits must be 4 or 8, got {bits!r}")
    targets = dict(quantizable_linears(model))
    tied = model.tied_weights()
    tensors = {}
    for name, t in model.state_dict(keep_vars=True).items():
        if name in tied:
            continue
        owner, _, leaf = name.rpartition(".")
        if owner in targets and leaf == "weight":
            q, scale = quantize_int8(t.data) if bits == 8 else quantize_int4(t.data, group_size)
            tensors[f"{owner}.qweight"], tensors[f"{owner}.scale"] = q, scale
        else:
            tensors[name] = np.ascontiguousarray(t.data)
    qconfig = {"quant_method": "goldbull", "bits": bits, "group_size": group_size if bits == 4 else None,
               "modules": sorted(targets)}
    return tensors, qconfig


def export_quantized(model, directory, bits=8, *, group_size=32, tokenizer=None, overwrite=False):
    """Write the quantised model directory (config.json, quantization_config.json, model.safetensors)."""
    tensors, qconfig = quantized_state(model, bits, group_size)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    with atomic_directory(directory, replace=overwrite) as tmp:
        model.config.to_json_file(os.path.join(tmp, CONFIG_NAME))
        atomic_write_json(tmp / QUANT_CONFIG_NAME, qconfig)
        save_safetensors(tensors, tmp / WEIGHTS_NAME,
                         metadata={"format": "np", "model_type": model.config.model_type, "quantization": f"int{bits}"})
        if tokenizer is not None:
            tokenizer.save(os.fspath(tmp))
    return directory


__all__ = ["export_quantized", "quantized_state"]
