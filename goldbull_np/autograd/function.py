"""``Function``: one differentiable op, forward and backward side by side.

An op subclasses Function and writes ``forward(self, *arrays, **params) -> array`` and
``backward(self, grad) -> grad or tuple of grads (one per positional input, None where not needed)``.
Both work on raw NumPy arrays. ``forward`` saves on ``self`` only what ``backward`` reads; after
backward the node drops everything it saved (unless ``retain_graph``).

The graph references parent *nodes*, never the input tensors themselves: a node's parents are other
Functions, or leaf tensors (where gradients accumulate), or None. So an activation is kept alive only
by the nodes that saved it, the way PyTorch's autograd graph works.
"""
import numpy as np

from . import grad_mode
from .engine import grad_buffer as _grad_buffer
from .tensor import Tensor

_grad_enabled = grad_mode._enabled


class Function:
    """Base class of every differentiable op.

    Class attributes a subclass may set:
        saved_inputs: indices of positional inputs whose data ``backward`` reads. Modifying one of
            them in place before backward raises. ``None`` (default) means all inputs.
        saves_output: ``backward`` reads the output array (exp, tanh, softmax, ...): modifying the
            output in place before backward raises too.
        is_view: the output shares memory with input 0 (reshape, transpose, ...): it then shares the
            input's version counter, as a PyTorch view does.
    """

    saved_inputs = None
    saves_output = False
    is_view = False
    # node state; class defaults so a released node (whose __dict__ was cleared) still answers
    next_functions = ()
    needs_input_grad = ()
    input_meta = ()
    saved_versions = ()
    hooks = None
    retained = None
    released = False

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name}>"

    def grad_buffer(self, i, dtype):
        """Where ``backward`` may put the gradient of input ``i``: ``(array, accumulate)``: write the gradient
        into ``array`` (``accumulate``: add it to the values there) and return ``array`` itself as input i's
        gradient. None: return a gradient as usual. ``dtype`` is the gradient's dtype the kernel would
        produce (nothing is handed out for another). For kernels that can write in place (a GEMM's
        epilogue, a norm's dx pass): it saves the copy or add of the gradient into a parameter's ``.grad``,
        or into the input's gradient summed so far (see ``engine.grad_buffer``). Ask only when the gradient
        will be computed, and only once per input."""
        nodes = self.next_functions
        return _grad_buffer(nodes[i], dtype) if i < len(nodes) else None

    def release(self):
        """Drop saved arrays and the links to parents once backward has used them."""
        self.__dict__.clear()
        self.released = True

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op on tensors (or plain scalars/arrays, treated as constants) and record it.

        Returns:
            A Tensor whose ``grad_fn`` is the new node when any input requires grad and grad mode
            is on, else a plain Tensor.
        """
        fn = _new(cls)
        if _grad_enabled[0]:
            # one pass over the inputs: arrays for forward, and the node's edges and metadata
            arrays, nodes, meta = [], [], []
            record = False
            for a in args:
                if isinstance(a, Tensor):
                    d = a.data
                    arrays.append(d)
                    meta.append((d.shape, d.dtype))
                    if a.requires_grad:
                        record = True
                        g = a.grad_fn
                        nodes.append(a if g is None else g)
                    else:
                        nodes.append(None)
                else:
                    arrays.append(a)
                    meta.append(None)
                    nodes.append(None)
        else:
            arrays = [a.data if isinstance(a, Tensor) else a for a in args]
            record = False

        if not record:
            fn.needs_input_grad = (False,) * len(args)
            return _output(fn, fn.forward(*arrays, **kwargs), args, None)

        fn.needs_input_grad = tuple([n is not None for n in nodes])
        out = fn.forward(*arrays, **kwargs)
        fn.next_functions = tuple(nodes)
        fn.input_meta = meta
        saved = cls.saved_inputs
        if saved is None:
            versions = [(a._version, a._version[0]) for a in args if isinstance(a, Tensor)]
        elif saved:
            n = len(args)  # optional trailing inputs (a bias) may be absent
            versions = [(args[i]._version, args[i]._version[0]) for i in saved
                        if i < n and isinstance(args[i], Tensor)]
        else:
            versions = None
        result = _output(fn, out, args, fn)
        if cls.saves_output:
            versions = (versions or []) + [(result._version, result._version[0])]
        if versions:
            fn.saved_versions = versions
        return result


_new = object.__new__


def _output(fn, out, args, grad_fn):
    """The Tensor an op returns: its array, its node (None when nothing was recorded), and its
    version counter. A view (``is_view``) shares input 0's memory and version counter; Slice views
    remember their index so an in-place op on the view can be written through the base (see
    Tensor._apply_inplace)."""
    result = _new(Tensor)
    result.data = out if out.__class__ is np.ndarray else np.asarray(out)
    result.grad = result._hooks = None
    result.grad_fn = grad_fn
    result.requires_grad = grad_fn is not None
    if fn.is_view:
        result._version = args[0]._version
        result._view_of = (args[0], fn.__dict__.get("index"))
    else:
        result._version = [0]
        result._view_of = None
    return result


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the dimensions that broadcasting expanded, giving it ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1
    )
    if axes:
        grad = grad.sum(axis=axes)
    return grad.reshape(shape)
