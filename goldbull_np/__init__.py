"""goldbull_np: train and fine-tune neural networks on the CPU (placeholder; the core lands next)."""
from ._version import __version__
