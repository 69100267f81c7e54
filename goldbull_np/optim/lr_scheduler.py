"""Learning-rate schedules (``gb.optim.lr_scheduler``).

Each schedule is a pure function of the step, ``lr_at(step)``, plus a counter. Like torch's
schedulers: on attach (constructor ``optimizer=`` or ``attach(optimizer)``) the optimizer's lr is set
to ``lr_at(0)``, and each ``step()`` (called after ``optimizer.step()``) advances the counter and
sets ``lr_at(last_step)``; the seed's schedules set the same absolute lr on every param group.

The seed's composition::

    sched = WarmupScheduler(warmup_steps, base_lr).chain(CosineScheduler(total_steps, base_lr, min_lr))

warms up linearly over steps [0, warmup_steps) (``base_lr * (step + 1) / warmup_steps``, so no step
runs at lr 0), then decays over [warmup_steps, total_steps] (nanoGPT's ``get_lr``). ``total_steps``
counts the whole run, warmup included.
"""
import math

from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses define ``lr_at(step)`` (and ``_hparams`` for ``state_dict``)."""

    _hparams = ()

    def __init__(self, optimizer=None):
        self.last_step = 0
        self.optimizer = None
        self._last_lr = None
        if optimizer is not None:
            self.attach(optimizer)

    def lr_at(self, step):  # pragma: no cover - abstract
        raise NotImplementedError

    def attach(self, optimizer):
        """Drive ``optimizer``'s learning rate from now on (sets it for the current step). Returns self."""
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"attach expects an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self._apply()
        return self

    def get_lr(self):
        """The learning rate for the current step."""
        return self.lr_at(self.last_step)

    def get_last_lr(self):
        """The learning rate of each param group as last set (torch's name); without an optimizer,
        a one-element list."""
        if self.optimizer is None:
            return [self.get_lr()]
        return [g["lr"] for g in self.optimizer.param_groups]

    def _group_lrs(self):
        lr = self.get_lr()
        return [lr] * len(self.optimizer.param_groups)

    def _apply(self):
        if self.optimizer is not None:
            for g, lr in zip(self.optimizer.param_groups, self._group_lrs()):
                if not 0.0 <= lr < math.inf:  # NaN fails too: one such step makes every parameter NaN
                    raise ValueError(f"{type(self).__name__}: learning rate {lr!r} at step {self.last_step} is not "
                                     f"a finite number >= 0 (its state: {self.state_dict()})")
                g["lr"] = lr

    def step(self):
        """Advance one step and update the optimizer's lr. Returns the new lr."""
        self.last_step += 1
        self._apply()
        return self.get_lr()

    def chain(self, then):
        """This schedule for its own span, then ``then`` (see WarmupScheduler.chain)."""
        raise TypeError(f"{type(self).__name__} has no end, so nothing can follow it; chain after a "
                        "WarmupScheduler")

    def state_dict(self):
        """``{"type": class name, "last_step": int, <hyperparameters>}`` (JSON-serialisable)."""
        sd = {"type": type(self).__name__, "last_step": self.last_step}
        sd.update({k: getattr(self, k) for k in self._hparams})
        return sd

    def load_state_dict(self, state_dict):
        """Restore the step counter and hyperparameters; re-applies the lr to the optimizer."""
        if state_dict.get("type", type(self).__name__) != type(self).__name__:
            raise ValueError(f"state dict is for a {state_dict['type']}, not a {type(self).__name__}")
        for k in self._hparams:
            if k in state_dict:
                setattr(self, k, state_dict[k])
        self.last_step = int(state_dict["last_step"])
        self._apply()

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._hparams)
        return f"{type(self).__name__}({args})"


class ConstantScheduler(LRScheduler):
    """lr = base_lr at every step."""

    _hparams = ("base_lr",)

    def __init__(self, base_lr, optimizer=None):
        self.base_lr = float(base_lr)
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.base_lr


class _DecayScheduler(LRScheduler):
    """A decay from base_lr at ``start_step`` to min_lr at ``total_steps``, min_lr afterwards.
    ``start_step`` is 0 alone and the warmup length when chained after a WarmupScheduler."""

    _hparams = ("total_steps", "base_lr", "min_lr", "start_step")

    def __init__(self, total_steps, base_lr, min_lr=0.0, optimizer=None, start_step=0):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.total_steps, self.base_lr, self.min_lr = int(total_steps), float(base_lr), float(min_lr)
        self.start_step = int(start_step)
        super().__init__(optimizer)

    def progress(self, step):
        """Fraction of the decay done at ``step``, in [0, 1]."""
        span = self.total_steps - self.start_step
        if span <= 0:
            return 1.0
        return min(max((step - self.start_step) / span, 0.0), 1.0)


class CosineScheduler(_DecayScheduler):
    """lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2, progress = step / total_steps
    (or over [warmup, total_steps] when chained after a warmup)."""

    def lr_at(self, step):
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * self.progress(step)))


class LinearScheduler(_DecayScheduler):
    """lr = base_lr + (min_lr - base_lr) * progress (linear decay to min_lr at total_steps)."""

    def lr_at(self, step):
        return self.base_lr + (self.min_lr - self.base_lr) * self.progress(step)


class WarmupScheduler(LRScheduler):
    """Linear warmup: lr = base_lr * (step + 1) / warmup_steps for step < warmup_steps, then base_lr.

    Args:
        warmup_steps: length of the warmup (0: none).
        base_lr: the lr reached at the end of the warmup.
    """

    _hparams = ("warmup_steps", "base_lr")

    def __init__(self, warmup_steps, base_lr, optimizer=None):
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps, self.base_lr = int(warmup_steps), float(base_lr)
        super().__init__(optimizer)

    def lr_at(self, step):
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        return self.base_lr

    def chain(self, then):
        """Warm up, then follow ``then`` (steps counted from the start of the run; a Cosine/Linear
        schedule's decay is made to start where the warmup ends). Returns a ChainedScheduler."""
        return ChainedScheduler(self, then, optimizer=self.optimizer)


class ChainedScheduler(LRScheduler):
    """``first`` for steps < first.warmup_steps, then ``then`` (global step numbers)."""

    def __init__(self, first, then, optimizer=None):
        if not isinstance(first, WarmupScheduler):
            raise TypeError("chain: the first schedule must be a WarmupScheduler")
        if isinstance(then, _DecayScheduler) and then.start_step == 0:
            then.start_step = first.warmup_steps
        self.first, self.then = first, then
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.first.lr_at(step) if step < self.first.warmup_steps else self.then.lr_at(step)

    def state_dict(self):
        return {"type": "ChainedScheduler", "last_step": self.last_step,
                "first": self.first.state_dict(), "then": self.then.state_dict()}

    def load_state_dict(self, state_dict):
        self.first.load_state_dict(state_dict["first"])
        self.then.load_state_dict(state_dict["then"])
        super().load_state_dict(state_dict)

    def __repr__(self):
        return f"{self.first!r}.chain({self.then!r})"


class LambdaLR(LRScheduler):
    """torch.optim.lr_scheduler.LambdaLR: each group's lr = its initial lr * lr_lambda(step).

    Args:
        optimizer: the optimizer (required; each group's current lr is stored as "initial_lr").
        lr_lambda: a function of the step, or a list with one per group.
    The lambdas are not saved by ``state_dict`` (only the step and the initial lrs).
    """

    def __init__(self, optimizer, lr_lambda):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"LambdaLR needs an Optimizer, got {type(optimizer).__name__}")
        groups = optimizer.param_groups
        for g in groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in groups]
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(groups):
                raise ValueError(f"expected {len(groups)} lr_lambdas, got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(groups)
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.base_lrs[0] * self.lr_lambdas[0](step)

    def _group_lrs(self):
        return [b * f(self.last_step) for b, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        return {"type": "LambdaLR", "last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state_dict):
        self.base_lrs = list(state_dict["base_lrs"])
        super().load_state_dict(state_dict)


def get_scheduler(name, optimizer=None, *, base_lr, total_steps=None, warmup_steps=0, min_lr=0.0):
    """Build a named schedule, with a linear warmup in front when ``warmup_steps > 0``.

    Args:
        name: "cosine", "linear" or "constant".
        optimizer: attach to it (optional).
        base_lr: the peak lr.
        total_steps: run length, warmup included (needed by cosine and linear).
        warmup_steps: warmup length.
        min_lr: the final lr of cosine/linear.
    Returns:
        An LRScheduler.
    """
    if name in ("cosine", "linear"):
        if total_steps is None:
            raise ValueError(f"get_scheduler({name!r}) needs total_steps")
        cls = CosineScheduler if name == "cosine" else LinearScheduler
        main = cls(total_steps, base_lr, min_lr)
    elif name == "constant":
        main = ConstantScheduler(base_lr)
    else:
        raise ValueError(f"unknown scheduler {name!r}; expected 'cosine', 'linear' or 'constant'")
    sched = WarmupScheduler(warmup_steps, base_lr).chain(main) if warmup_steps > 0 else main
    return sched.attach(optimizer) if optimizer is not None else sched


__all__ = ["LRScheduler", "ConstantScheduler", "CosineScheduler", "LinearScheduler", "WarmupScheduler",
           "ChainedScheduler", "LambdaLR", "get_scheduler"]
