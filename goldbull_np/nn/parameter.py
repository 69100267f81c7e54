"""``Parameter``: a Tensor that a Module registers as one of its trainable weights."""
import numpy as np

from ..autograd.tensor import Tensor, to_array


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that Modules register automatically.

    Args:
        data: an array, a Tensor (its array is shared, not copied) or Python data.
        requires_grad: whether the parameter is trainable (default True).
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        super().__init__(to_array(data, copy=False), requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
