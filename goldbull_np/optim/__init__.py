"""Optimizers (torch.optim semantics), the optimizer step, gradient clipping and LR schedules.

    opt = optim.AdamW(optim.param_groups(model, weight_decay=0.1), lr=3e-4)
    step = optim.OptimizerStep(opt, scheduler, max_grad_norm=1.0)
    result = step(micro_batches, loss_fn)      # accumulate -> hooks -> clip -> step -> schedule -> zero
"""
from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_, clip_gradients_
from .groups import param_groups
from .optimizer import Optimizer
from .sgd import SGD
from .step import NonFiniteLossError, NonFiniteParametersError, OptimizerStep, StepCounters, StepResult

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "param_groups", "clip_grad_norm_", "clip_grad_value_",
           "clip_gradients_", "OptimizerStep", "StepResult", "StepCounters", "NonFiniteLossError",
           "NonFiniteParametersError", "lr_scheduler"]
