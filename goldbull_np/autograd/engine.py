"""The backward engine: iterative, topologically ordered, freeing saved arrays as it goes.

A backward pass may run another one inside a node's backward (activation checkpointing recomputes
its call and backpropagates through the recomputed graph). Leaves that only the inner graph reaches
(parameters used inside the call) must get their gradients as the outer pass would give them: into
``.grad`` under ``Tensor.backward()``, into the result under ``autograd.grad(outputs, inputs)`` when
they are among ``inputs``, and nowhere else. So each pass publishes its leaf-gradient table as the
current *sink* (a per-thread stack); an inner pass run with ``nested=True`` hands every leaf gradient
it does not return to the sink of the pass that encloses it, which then treats it like a gradient it
found itself (summed, hooks run once, then accumulated or captured or dropped by its own mode).
"""
import contextlib
import gc
import sys
import threading

import numpy as np

from .tensor import Tensor

_local = threading.local()  # .sinks: the leaf-gradient tables of the passes running on this thread


def _sinks():
    sinks = getattr(_local, "sinks", None)
    if sinks is None:
        sinks = _local.sinks = []
    return sinks


def _lends():
    """The hand-out tables of the passes running on this thread (``grad_buffer``): one per pass, None for a
    pass that hands out nothing."""
    lends = getattr(_local, "lends", None)
    if lends is None:
        lends = _local.lends = []
    return lends


class _Lending:
    """A pass's hand-outs: ``given`` id(node) -> (id(array), accumulate), from the hand-out to the check right
    after that backward returns (ids: holding the array would keep a pending gradient from being the table's
    alone; popped at the check, so a freed array's id is never matched); ``leaves``, the ids of the leaves
    handed out (once a pass); ``grads``, the pass's pending gradients of Functions; ``borrowed``, its root
    gradients (never written into)."""
    __slots__ = ("given", "leaves", "grads", "borrowed")

    def __init__(self, borrowed):
        self.given, self.leaves, self.grads, self.borrowed = {}, set(), {}, borrowed


def grad_buffer(node, dtype):
    """Where a backward may put the gradient for a parent ``node``: ``(array, accumulate)``, or None.

    Only a plain ``Tensor.backward()`` pass hands these out (not ``autograd.grad``, not a checkpoint's
    nested pass), for gradients of ``dtype``:
      - a leaf without hooks, once per pass: ``.grad`` None and an optimizer lent ``_grad_into``
        (``zero_grad(set_to_none=True)``): write the gradient there (accumulate False), it becomes ``.grad``
        without a copy; or ``.grad`` the leaf's own array (``zero_grad(set_to_none=False)``, an earlier
        backward): add the gradient into it (accumulate True), as the pass would at its end;
      - a Function whose output gradient is pending (summed from the consumers that ran so far) in an array
        nothing else references: add into it (accumulate True) instead of the pass's ``pending + gradient``
        (a residual stream's gradient meeting a LayerNorm's input gradient).
    Either way the backward returns that array as the input's gradient, and the pass adds it nowhere
    else. A kernel that writes its output in place (a GEMM's epilogue, a norm's dx pass) so saves a pass.
    """
    lends = getattr(_local, "lends", None)
    if not lends:
        return None
    lend = lends[-1]
    if lend is None or node is None:
        return None
    if not isinstance(node, Tensor):
        return _pending_buffer(lend, node, dtype)
    if node._hooks or id(node) in lend.leaves:
        return None
    data, grad = node.data, node.grad
    if grad is None:
        buf, accumulate = getattr(node, "_grad_into", None), False
        if buf is None:
            return None
    else:
        buf, accumulate = grad, True
    if (buf.__class__ is not np.ndarray or buf.shape != data.shape or buf.dtype != data.dtype or buf.dtype != dtype
            or not (buf.flags.c_contiguous and buf.flags.writeable)):
        return None
    lend.leaves.add(id(node))
    lend.given[id(node)] = (id(buf), accumulate)
    return buf, accumulate


def _pending_buffer(lend, fn, dtype):
    """A Function's pending gradient as an accumulation buffer, if only the pass's table holds it."""
    prev = lend.grads.get(fn)
    # references when nobody else holds it: the table's, the local and getrefcount's argument
    if (prev is None or prev.__class__ is not np.ndarray or prev.dtype != dtype or id(prev) in lend.borrowed
            or not (prev.flags.c_contiguous and prev.flags.writeable) or sys.getrefcount(prev) != 3
            or (prev.base is not None and not _sole_view(prev))):
        return None
    lend.given[id(fn)] = (id(prev), True)
    return prev, True


def run_backward(roots, root_grads, retain_graph=False, capture=None, nested=False):
    """Propagate gradients from ``roots`` to every leaf (or to ``capture`` for autograd.grad).

    Args:
        roots: output tensors.
        root_grads: one gradient (array, Tensor or None for a one-element root) per root.
        retain_graph: keep saved arrays so the graph can be walked again.
        capture: optional list of tensors whose gradients are returned instead of accumulated.
        nested: this pass runs inside a node's backward of an enclosing pass (a checkpoint's
            recompute): the gradients of leaves not in ``capture`` go to the enclosing pass, and no
            leaf hooks run here (the enclosing pass runs them once, on the total). With no enclosing
            pass they are accumulated into ``.grad`` as by ``Tensor.backward()``.

    Returns:
        With ``capture``, a list holding the gradient of each captured tensor (or None).
    """
    leaf_grads = {}  # id(leaf) -> [leaf, gradient]
    sinks = _sinks()
    outer = sinks[-1] if nested and sinks else None
    sinks.append(leaf_grads)  # nested passes started by a node's backward deliver here
    # root gradients (id -> array, held so that no other array can take their ids while this pass runs):
    # a leaf never keeps one of them as its .grad without a copy
    borrowed = {}
    lend = _Lending(borrowed) if capture is None and not nested else None  # grad_buffer's hand-outs
    lends = _lends()
    lends.append(lend)
    try:
        captured = _propagate(roots, root_grads, retain_graph, capture, leaf_grads, borrowed, lend)
    finally:
        sinks.pop()
        lends.pop()

    capture_leaf = {id(t): i for i, t in enumerate(capture)} if capture else {}
    handed = set(borrowed)
    for leaf, g in leaf_grads.values():
        if nested:
            if id(leaf) in capture_leaf:
                captured[capture_leaf[id(leaf)]] = g
            elif outer is not None:
                _add_leaf_grad(outer, leaf, g)
            else:
                _accumulate_leaf(leaf, _run_hooks(leaf._hooks, g) if leaf._hooks else g, handed)
            continue
        if leaf._hooks:
            g = _run_hooks(leaf._hooks, g)
        if capture is not None:
            if id(leaf) in capture_leaf:
                captured[capture_leaf[id(leaf)]] = g
            continue
        _accumulate_leaf(leaf, g, handed)
    return captured


def _propagate(roots, root_grads, retain_graph, capture, leaf_grads, borrowed, lend):
    """The walk: gradients of the Functions reachable from ``roots``; leaf gradients go to ``leaf_grads``
    (except those a backward already added where they belong: see ``grad_buffer``, whose hand-outs ``lend``
    records, or None); the ids of the root gradients (maybe the caller's own arrays) go to ``borrowed``.
    Returns the list for captured tensors (filled here for captured non-leaves)."""
    grads = {} if lend is None else lend.grads  # Function -> gradient of its output (summed over consumers)
    given = None if lend is None else lend.given
    capture_fn = {t.grad_fn: i for i, t in enumerate(capture) if t.grad_fn is not None} if capture else {}
    captured = [None] * len(capture) if capture else None

    root_fns = []
    for k, (t, g) in enumerate(zip(roots, root_grads)):
        g = _root_gradient(t, g, k)
        borrowed[id(g)] = g
        if t.grad_fn is None:
            _add_leaf_grad(leaf_grads, t, g)
        else:
            fn = t.grad_fn
            grads[fn] = g if fn not in grads else grads[fn] + g
            root_fns.append(fn)

    deps = _count_dependencies(root_fns)
    ready = [fn for fn in dict.fromkeys(root_fns) if deps.get(fn, 0) == 0]
    pop_grad = grads.pop
    while ready:
        fn = ready.pop()
        parents = fn.next_functions
        g = pop_grad(fn, None)
        if g is not None:
            if fn.released:
                raise RuntimeError(
                    f"trying to backward through the graph a second time ({fn.name} has already "
                    "freed its saved arrays); pass retain_graph=True to the first backward()"
                )
            if fn.hooks:
                g = _run_hooks(fn.hooks, g)
            if fn.retained is not None:
                _retain(fn.retained(), g)
            if capture_fn and fn in capture_fn:
                captured[capture_fn[fn]] = g
            # ---- call backward and hand each input gradient to its parent (inlined: hot loop)
            for counter, version in fn.saved_versions:
                if counter[0] != version:
                    raise RuntimeError(
                        f"a tensor saved by {fn.name} for backward was modified by an in-place operation "
                        f"(its version is {counter[0]}, expected {version}); use an out-of-place op or "
                        "clone() it first")
            in_grads = fn.backward(g)
            if in_grads.__class__ is not tuple:
                in_grads = (in_grads,)
            if len(in_grads) != len(parents):
                raise RuntimeError(f"{fn.name}.backward returned {len(in_grads)} gradients for "
                                   f"{len(parents)} inputs")
            meta = fn.input_meta
            for i, node in enumerate(parents):
                if node is None:
                    continue
                ig = in_grads[i]
                if ig is None:
                    continue
                shape, dtype = meta[i]
                if ig.shape != shape:
                    raise RuntimeError(f"{fn.name} returned a gradient of shape {ig.shape} for input {i}, "
                                       f"whose shape is {shape}")
                if ig.dtype != dtype:
                    ig = ig.astype(dtype)
                if given:
                    lent = given.pop(id(node), None)
                    if lent is not None and lent[1] and id(ig) == lent[0]:
                        continue  # added where it belongs (.grad, the pending sum) by the backward itself
                if node.__class__ is Tensor or isinstance(node, Tensor):
                    _add_leaf_grad(leaf_grads, node, ig)
                else:
                    prev = grads.get(node)
                    grads[node] = ig if prev is None else prev + ig
            in_grads = ig = prev = None  # no stray references: a pending gradient must be the table's alone
        g = None
        if not retain_graph:
            fn.__dict__.clear()  # Function.release(), inlined
            fn.released = True
        for node in parents:
            if node is not None and node.__class__ is not Tensor and not isinstance(node, Tensor):
                left = deps[node] - 1
                deps[node] = left
                if left == 0:
                    ready.append(node)
    return captured


def _root_gradient(t, g, k):
    if not isinstance(t, Tensor) or not t.requires_grad:
        raise RuntimeError(f"element {k} of the outputs does not require grad and has no grad_fn")
    if g is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for one-element outputs; this one has shape "
                f"{t.data.shape}: pass backward(gradient=...)"
            )
        return np.ones(t.data.shape, dtype=t.data.dtype)
    # the caller's array as it is (torch does not copy it either): nothing in a backward pass writes
    # into an incoming gradient, and run_backward copies it before it could become a leaf's .grad
    g = np.asarray(g.data if isinstance(g, Tensor) else g, dtype=t.data.dtype)
    if not (g.flags.c_contiguous and g.flags.writeable):
        g = np.array(g, order="C")  # the kernels read one contiguous buffer
    if g.shape != t.data.shape:
        raise RuntimeError(f"gradient has shape {g.shape} but output {k} has shape {t.data.shape}")
    return g


def _count_dependencies(root_fns):
    """For each Function reachable from the roots, how many edges point at it."""
    deps = {}
    seen = set(root_fns)
    stack = list(seen)
    while stack:
        fn = stack.pop()
        if fn.released and not fn.next_functions:
            continue
        for node in fn.next_functions:
            if node is None or isinstance(node, Tensor):
                continue
            deps[node] = deps.get(node, 0) + 1
            if node not in seen:
                seen.add(node)
                stack.append(node)
    return deps


def _add_leaf_grad(leaf_grads, leaf, g):
    entry = leaf_grads.get(id(leaf))
    if entry is None:
        leaf_grads[id(leaf)] = [leaf, g]
    else:
        entry[1] = entry[1] + g


def _accumulate_leaf(leaf, g, handed):
    """``leaf.grad += g``; the stored array is always exclusively the leaf's own.

    A leaf whose ``.grad`` is None may carry ``_grad_into``: an array nobody else holds that an
    optimizer lent for its next gradient (fused AdamW's view of its flat gradient buffer, after
    ``zero_grad(set_to_none=True)``). The first gradient is written there and it becomes ``.grad``,
    so the step finds the gradient in place instead of copying it in.
    """
    if leaf.grad is None:
        into = getattr(leaf, "_grad_into", None)
        if into is not None:
            leaf._grad_into = None
            if into.shape == g.shape and into.dtype == leaf.data.dtype:
                if into is not g:  # else a backward wrote it there (grad_buffer)
                    np.copyto(into, g)
                handed.add(id(into))
                leaf.grad = into
                return
        if (not g.flags.writeable or id(g) in handed or not g.flags.c_contiguous
                or (g.base is not None and not _sole_view(g))):
            g = np.array(g, dtype=leaf.data.dtype, order="C")
        handed.add(id(g))
        leaf.grad = g
    else:
        if leaf.grad.shape != g.shape:
            raise RuntimeError(f"existing .grad has shape {leaf.grad.shape}, new gradient {g.shape}")
        leaf.grad += g


def _sole_view(g):
    """True if ``g`` is a whole-array view (a reshape) of an array that nothing else references: then
    it can become ``.grad`` as it is (a fused op's gradient reshaped back to its input's shape).
    References to the base when nothing else holds it: g's own, the local ``base`` and getrefcount's argument."""
    base = g.base
    return isinstance(base, np.ndarray) and base.base is None and base.size == g.size and sys.getrefcount(base) == 3


def _run_hooks(hooks, g):
    for hook in list(hooks):
        out = hook(Tensor._make(g, False, None))
        if out is not None:
            # a copy: the caller may keep the array it returned, and .grad must be the leaf's own
            new = np.array(out.data if isinstance(out, Tensor) else out, dtype=g.dtype)
            if new.shape != g.shape:
                raise RuntimeError(f"hook {hook!r} returned a gradient of shape {new.shape}, expected {g.shape}")
            g = new
    return g


def _retain(t, g):
    if t is None:
        return
    t.grad = np.array(g) if t.grad is None else t.grad + g


def grad(outputs, inputs, grad_outputs=None, retain_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, without touching any ``.grad``.

    Args:
        outputs: a tensor or a sequence of tensors.
        inputs: a tensor or a sequence of tensors (leaves or intermediate results).
        grad_outputs: gradients for the outputs (None for one-element outputs).
        retain_graph: keep the graph for another backward.
        allow_unused: return None for inputs the outputs do not depend on, instead of raising.

    Returns:
        A tuple of Tensors (or None), one per input.
    """
    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = (grad_outputs,)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"input {i} of autograd.grad does not require grad")
    captured = run_backward(outputs, tuple(grad_outputs), retain_graph=retain_graph, capture=list(inputs))
    result = []
    for i, g in enumerate(captured):
        if g is None and not allow_unused:
            raise RuntimeError(f"input {i} was not used to compute the outputs; pass allow_unused=True")
        result.append(None if g is None else Tensor._make(np.array(g), False, None))
    return tuple(result)


@contextlib.contextmanager
def gc_paused():
    """Context manager: pause Python's cyclic garbage collector for one training step.

    An autograd graph is acyclic and freed by reference counting as backward walks it, but each op
    allocates several GC-tracked objects, so on long graphs the cyclic collector runs often and
    rescans the growing graph (it roughly doubles the forward time of a 20,000-op chain). Wrapping
    ``loss = model(batch); loss.backward()`` in ``gc_paused()`` skips those scans; collection resumes
    (and catches up on any real cycles) on exit. It never changes GC settings at import time. The
    trainer also freezes the long-lived parameters and modules out of full collections
    (``goldbull_np.runtime.frozen_gc``).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
