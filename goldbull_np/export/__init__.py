"""Export and deployment: our own safetensors directory, ONNX, PyTorch ``.pt``, Hugging Face directories, GGUF.

    from goldbull_np.export import ModelExporter
    ModelExporter().export_onnx(model, "model.onnx")

Each writer lives in its own module (onnx.py, pytorch.py, huggingface.py, gguf.py); ``ModelExporter`` is the one
entry point (and ``goldbull export --checkpoint DIR --format F --out PATH`` on the command line).
"""
from .exporter import FORMATS, ModelExporter, merged_lora

__all__ = ["ModelExporter", "FORMATS", "merged_lora"]
