"""Activation (gradient) checkpointing: ``checkpoint(fn, *inputs)``.

The forward runs ``fn`` without recording a graph, so none of its intermediate activations are kept;
only the inputs are. Backward re-runs ``fn`` with grad enabled on detached copies of the inputs
(restoring the random generator first, so dropout draws the same masks) and backpropagates the
incoming gradient through that recomputed graph.

The trainable parameters used inside ``fn`` are passed to the checkpoint node as extra inputs, and
their gradients are returned through it. That way the node is recorded, and the parameters get their
gradients, even when none of ``inputs`` requires grad: the frozen-base case (embeddings and base
weights frozen, LoRA or adapter parameters inside ``fn``), where torch's reentrant checkpoint silently
gives no gradients. The parameters are found from ``fn`` when it is a Module, a bound method of one,
or a ``functools.partial`` of either; otherwise pass them with ``params=``.

Leaves the recompute reaches that are not the node's inputs (parameters in a lambda's closure) are
delivered by the engine to the backward pass the node runs in (``run_backward(..., nested=True)``):
``Tensor.backward()`` accumulates them into ``.grad``; ``autograd.grad(outputs, inputs)`` returns
them when they are among ``inputs`` and otherwise drops them, never writing ``.grad``. Either way the
gradients, and the leaf hooks (run once), are those of the un-checkpointed call.
"""
import functools

from .. import random as _random
from ..autograd.engine import run_backward
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from ..autograd.tensor import Tensor
from .module import Module


def _modules_of(fn):
    if isinstance(fn, Module):
        return [fn]
    if isinstance(fn, functools.partial):
        found = _modules_of(fn.func)
        for a in list(fn.args) + list(fn.keywords.values()):
            found += _modules_of(a)
            if isinstance(a, (list, tuple)):
                for b in a:
                    found += _modules_of(b)
        return found
    owner = getattr(fn, "__self__", None)
    return [owner] if isinstance(owner, Module) else []


def _trainable_params(fn, params):
    seen, out = set(), []
    mods = _modules_of(fn)
    for p in [q for m in mods for q in m.parameters()] + list(params or ()):
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


class Checkpoint(Function):
    """Node of one checkpointed call. Positional inputs: the Tensor inputs of ``fn``, then the
    trainable parameters used inside it."""

    saved_inputs = None  # every input: an in-place change before backward would make the recompute wrong

    def forward(self, *arrays, run=None, tensors=None, n_inputs=0, rng_state=None):
        self.run, self.tensors, self.n_inputs, self.rng_state = run, tensors, n_inputs, rng_state
        with no_grad():
            out = run(*tensors[:n_inputs])
        if not isinstance(out, Tensor):
            raise TypeError(f"checkpoint: fn must return one Tensor, got {type(out).__name__}")
        return out.data

    def backward(self, g):
        n = self.n_inputs
        needs = self.needs_input_grad
        inputs = [Tensor._make(t.data, bool(needs[i]), None) for i, t in enumerate(self.tensors[:n])]
        params = list(self.tensors[n:])
        current = None
        if self.rng_state is not None:
            current = _random.get_rng_state()
            _random.set_rng_state(self.rng_state)
        try:
            with enable_grad():
                out = self.run(*inputs)
        finally:
            if current is not None:
                _random.set_rng_state(current)
        if not out.requires_grad:
            return (None,) * len(self.tensors)
        capture = [t for t, need in zip(inputs + params, needs) if need]
        # nested: parameters used inside fn but not passed in (a lambda's closure) are not this node's
        # inputs; the engine hands their gradients to the backward pass this node runs in, which
        # accumulates them (Tensor.backward) or returns them if asked for (autograd.grad), as it
        # would without the checkpoint
        grads = iter(run_backward((out,), (g,), capture=capture, nested=True))
        return tuple(next(grads) if need else None for need in needs)


def checkpoint(fn, *inputs, params=None, preserve_rng_state=True):
    """``fn(*inputs)`` without storing its activations; they are recomputed in backward.

    Args:
        fn: a callable of Tensors returning one Tensor (a Module, e.g. a TransformerBlock).
        *inputs: its positional arguments (Tensors; other values are passed through as constants).
        params: extra trainable Tensors used inside ``fn`` that cannot be found from it (see the
            module docstring); they receive gradients even if no input requires grad.
        preserve_rng_state: restore the global generator for the recompute (same dropout masks).
    Returns:
        The output Tensor (equal to ``fn(*inputs)``; gradients equal to the unchecked call's).
    """
    if not is_grad_enabled():
        return fn(*inputs)
    tensor_pos = [i for i, a in enumerate(inputs) if isinstance(a, Tensor)]
    tensors = [inputs[i] for i in tensor_pos]
    if len(tensor_pos) != len(inputs):
        consts = list(inputs)

        def run(*ts):
            args = list(consts)
            for i, t in zip(tensor_pos, ts):
                args[i] = t
            return fn(*args)
    else:
        run = fn
    ps = _trainable_params(fn, params)
    if not any(t.requires_grad for t in tensors) and not ps:
        return fn(*inputs)  # nothing to differentiate: an ordinary call
    state = _random.get_rng_state() if preserve_rng_state else None
    all_tensors = tensors + ps
    return Checkpoint.apply(*all_tensors, run=run, tensors=all_tensors, n_inputs=len(tensors), rng_state=state)


def checkpoint_sequential(modules, x, segment_size=1, **kwargs):
    """Run ``modules`` one after another on ``x``, checkpointing each run of ``segment_size`` of them."""
    modules = list(modules)
    for s in range(0, len(modules), segment_size):
        seg = modules[s:s + segment_size]
        x = checkpoint(functools.partial(_run_segment, seg), x, **kwargs)
    return x


def _run_segment(mods, x):
    for m in mods:
        x = m(x)
    return x


__all__ = ["checkpoint", "checkpoint_sequential", "Checkpoint"]
