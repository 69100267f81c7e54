"""Optimizers (torch.optim semantics), gradient clipping and LR schedules (``optim.lr_scheduler``)."""
from . import lr_scheduler  # noqa: F401
from ..nn.utils import clip_grad_norm_, clip_grad_value_
from .adam import Adam, AdamW
from .groups import param_groups
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "param_groups", "clip_grad_norm_", "clip_grad_value_",
           "lr_scheduler"]
