"""``OptimizerStep``: one optimizer step over micro-batches, the same for every model family.

    accumulate (forward + backward per micro-batch) -> after-backward hooks -> clip -> step -> schedule -> zero

Accumulation weights micro-batch ``i``'s mean loss by its share ``w_i / W`` of the step's total weight
(tokens that carry a label for a language model, examples for a classifier), so the accumulated
gradient is the gradient of the mean loss over the whole large batch, exactly as if it had been one
batch. Since the weights are only known after each forward, micro-batch ``i`` backpropagates ``w_i``
times its mean and the sum is divided by ``W`` once, folded into the clipping pass.

A step whose loss or gradient norm is not finite is skipped: gradients are dropped, the parameters and
the optimizer's moments stay as they were, the schedule still advances (it follows the step count) and
the counters say so; too many in a row raise :class:`NonFiniteLossError`. A skipped step also checks the
parameters once: if they are NaN/inf already, :class:`NonFiniteParametersError` stops at once.
"""
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .clip import clip_gradients_


class NonFiniteLossError(RuntimeError):
    """Training stopped because too many consecutive steps had a non-finite loss or gradient norm."""


class NonFiniteParametersError(NonFiniteLossError):
    """The parameters themselves are NaN/inf (an earlier update, or loaded that way): skipping more steps
    cannot help, so training stops at the first non-finite loss that finds them so."""


@dataclass
class StepCounters:
    """What the step bookkeeping counts (a TrainerState is one of these)."""

    step: int = 0  # optimizer steps taken, skipped ones included
    nonfinite_steps: int = 0
    consecutive_nonfinite: int = 0


@dataclass
class StepResult:
    """What one optimizer step did.

    Attributes:
        loss: the weight-averaged loss of the step's micro-batches (NaN when the step was skipped).
        weight: the step's total weight W.
        grad_norm: the global gradient norm before clipping (NaN when not measured).
        skipped: the step changed nothing (non-finite loss or norm, or zero weight).
        lr: the learning rate of the first param group during the step.
        metrics: the task's additive counts summed over the micro-batches.
    """

    loss: float
    weight: float
    grad_norm: float
    skipped: bool
    lr: float
    metrics: dict = field(default_factory=dict)


class OptimizerStep:
    """Runs optimizer steps: ``result = step(micro_batches, loss_fn)``.

    Args:
        optimizer: an :class:`~goldbull_np.optim.Optimizer`.
        scheduler: an LR scheduler stepped once per optimizer step (skipped steps included), or None.
        max_grad_norm: clip the global gradient norm to this; 0 measures the norm without clipping.
        max_consecutive_nonfinite: raise NonFiniteLossError after this many skipped steps in a row.
        parameters: a callable returning the parameters whose gradients count (called every step, so
            parameters unfrozen later are included); None: the optimizer's own. A parameter that has a
            gradient but no place in the optimizer is clipped with the rest and reported once.
        counters: where the step counts live (a :class:`StepCounters`; the Trainer passes its state).

    ``after_backward`` is a list of callables ``hook(step)`` run after every micro-batch's backward and
    before clipping: where a gradient all-reduce or a loss scaler's unscale goes. ``step.grad_scale`` is
    the factor the accumulated gradients still need (1 / W); a hook that rescales them sets it to 1.
    """

    def __init__(self, optimizer, scheduler=None, *, max_grad_norm: float = 0.0,
                 max_consecutive_nonfinite: int = 10, parameters: Optional[Callable] = None,
                 counters: Optional[StepCounters] = None):
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_grad_norm = float(max_grad_norm)
        self.max_consecutive_nonfinite = int(max_consecutive_nonfinite)
        self.parameters = parameters
        self.counters = counters if counters is not None else StepCounters()
        self.after_backward = []
        self.grad_scale = 1.0
        self._held = {id(p) for g in optimizer.param_groups for p in g["params"]}
        self._reported = set()
        # torch's set_to_none: a fused AdamW lends each parameter its view of the flat gradient buffer, and
        # the first gradient of a step is written there (no 43 MB memset a mid GPT's step, no GEMM reading
        # zeros back to add to them); a parameter that gets no gradient is skipped, as torch skips it
        optimizer.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ the step
    def __call__(self, micro_batches, loss_fn) -> StepResult:
        """One optimizer step.

        Args:
            micro_batches: the step's batches (one or more), passed to ``loss_fn`` one at a time.
            loss_fn: ``loss_fn(batch) -> (loss Tensor, weight, metrics)``: the batch's mean loss, its
                weight (> 0; 0 means nothing to learn from, and it is skipped) and additive counts.
        """
        lr = float(self.optimizer.param_groups[0]["lr"])
        loss_sum, total, metrics = self._accumulate(micro_batches, loss_fn)
        if total is None or total == 0:
            return self._skip(float("nan"), total or 0.0, lr, metrics)
        for hook in self.after_backward:
            hook(self)
        grads = self.gradient_arrays()
        limit = self.max_grad_norm if self.max_grad_norm > 0 else math.inf
        grad_norm = clip_gradients_(grads, limit, scale=self.grad_scale) if grads else 0.0
        del grads  # slices of the flat buffer: held, zero_grad would hand the optimizer a new one
        if not math.isfinite(grad_norm):
            return self._skip(grad_norm, total, lr, metrics)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        c = self.counters
        c.step += 1
        c.consecutive_nonfinite = 0
        return StepResult(loss_sum / total, total, grad_norm, False, lr, metrics)

    def _accumulate(self, micro_batches, loss_fn):
        """Forward + backward of each micro-batch. Returns (weighted loss sum, total weight or None if a
        loss was not finite, summed metrics)."""
        weighted = len(micro_batches) > 1
        loss_sum, total, metrics = 0.0, 0.0, {}
        for batch in micro_batches:
            loss, weight, counts = loss_fn(batch)
            for k, v in counts.items():
                metrics[k] = metrics.get(k, 0) + v
            weight = float(weight)
            if weight <= 0:
                continue  # e.g. every label ignored: no loss, no gradient
            value = float(loss.data)
            if not math.isfinite(value):
                return loss_sum, None, metrics
            loss_sum += value * weight
            total += weight
            loss.backward(gradient=np.asarray(weight if weighted else 1.0, dtype=loss.data.dtype))
            del loss
        self.grad_scale = 1.0 / total if weighted and total > 0 else 1.0
        return loss_sum, total, metrics

    def _skip(self, grad_norm, total, lr, metrics) -> StepResult:
        # Only here, on a skipped step (rare), one pass over the parameters: a bad batch is skipped, but
        # parameters that are already NaN would make every later step fail too.
        bad = self._nonfinite_parameters()
        if bad:
            raise NonFiniteParametersError(
                f"the parameters are not finite at step {self.counters.step + 1} ({bad} of them hold NaN/inf): "
                "the previous update produced them (learning rate too high?) or they were loaded that way; "
                "stopping instead of skipping steps. Resume from the last finite checkpoint")
        self.optimizer.zero_grad(set_to_none=True)
        c = self.counters
        c.nonfinite_steps += 1
        c.consecutive_nonfinite += 1
        c.step += 1
        if self.scheduler is not None:
            self.scheduler.step()  # the schedule follows the step count, skipped steps included
        if c.consecutive_nonfinite >= self.max_consecutive_nonfinite:
            first = c.step - c.consecutive_nonfinite + 1
            raise NonFiniteLossError(
                f"non-finite loss or gradient at step {c.step} ({c.consecutive_nonfinite} consecutive "
                f"steps since step {first}; {c.nonfinite_steps} skipped in total); lower the learning "
                f"rate or check the data")
        return StepResult(float("nan"), total, grad_norm, True, lr, metrics)

    def _nonfinite_parameters(self) -> int:
        """How many of the optimizer's parameters hold a NaN or inf."""
        return sum(1 for g in self.optimizer.param_groups for p in g["params"]
                   if p.data.dtype.kind in "fc" and not np.isfinite(p.data).all())

    # ------------------------------------------------------------------ gradients
    def gradient_arrays(self) -> list:
        """The live gradient arrays this step clips: the optimizer's (its flat buffer when fused) plus
        those of parameters from ``parameters`` that the optimizer does not hold."""
        grads = self.optimizer.gradient_arrays()
        if self.parameters is None:
            return grads
        for p in self.parameters():
            if p.grad is not None and id(p) not in self._held:
                grads.append(p.grad)
                self._report_unheld(p)
        return grads

    def _report_unheld(self, p):
        if id(p) in self._reported:
            return
        self._reported.add(id(p))
        import warnings
        warnings.warn(f"a parameter of shape {tuple(p.shape)} has a gradient but the optimizer does not hold "
                      "it (made trainable after the optimizer was built?): it is clipped but never updated; "
                      "rebuild the optimizer to train it", RuntimeWarning, stacklevel=3)


__all__ = ["OptimizerStep", "StepResult", "StepCounters", "NonFiniteLossError", "NonFiniteParametersError"]
