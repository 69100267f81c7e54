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
from .tensor import Tensor

_grad_enabled = grad_mode._enabled


class Function:
    """Base class of every differentiable op.

    Class attributes a subclass may set:
        saved_inputs: indices of positional inputs whose data ``backward`` reads. Modifying one of
            them in place before backward raises. ``None`` (default) means all inputs.
        is_view: the output shares memory with input 0 (reshape, transpose, ...): it then shares the
            input's version counter, as a PyTorch view does.
    """

    saved_inputs = None
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
        fn = cls.__new__(cls)
        record = False
        arrays = []
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a.data)
                if a.requires_grad:
                    record = True
            else:
                arrays.append(a)
        if not (record and _grad_enabled[0]):
            fn.needs_input_grad = (False,) * len(args)
            result = Tensor._make(fn.forward(*arrays, **kwargs), False, None)
            if cls.is_view:
                result._version = args[0]._version
            return result

        needs, nodes, meta = [], [], []
        for a in args:
            if isinstance(a, Tensor):
                meta.append((a.data.shape, a.data.dtype))
                if a.requires_grad:
                    needs.append(True)
                    nodes.append(a if a.grad_fn is None else a.grad_fn)
                    continue
            else:
                meta.append(None)
            needs.append(False)
            nodes.append(None)
        fn.needs_input_grad = tuple(needs)
        out = fn.forward(*arrays, **kwargs)
        fn.next_functions = tuple(nodes)
        fn.input_meta = meta
        saved = cls.saved_inputs
        if saved is None:
            fn.saved_versions = [(a._version, a._version[0]) for a in args if isinstance(a, Tensor)]
        elif saved:
            fn.saved_versions = [(args[i]._version, args[i]._version[0]) for i in saved
                                 if isinstance(args[i], Tensor)]
        result = Tensor._make(out, True, fn)
        if cls.is_view:
            result._version = args[0]._version
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
