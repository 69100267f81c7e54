"""Export and deployment: our own safetensors directory, ONNX, PyTorch ``.pt``, Hugging Face directories, GGUF.

    from goldbull_np.export import ModelExporter
    ModelExporter().export_onnx(model, "model.onnx")

Each writer lives in its own module (onnx.py, pytorch.py, huggingface.py, gguf.py); ``ModelExporter`` is the one
entry point (and ``goldbull export --checkpoint DIR --format F --out PATH`` on the command line);
``ModelOptimizer`` runs deployment passes (optimize.py) over a copy of a model.
"""
from .exporter import FORMATS, ModelExporter, merged_lora
from .optimize import (FuseLinearLayers, ModelOptimizer, OptimizeAttention, Pass, PassReport, PruneUnusedLayers,
                       QuantizeWeights)

__all__ = ["ModelExporter", "FORMATS", "merged_lora", "ModelOptimizer", "Pass", "PassReport", "FuseLinearLayers",
           "OptimizeAttention", "QuantizeWeights", "PruneUnusedLayers"]
