"""Matrix products: ``@`` / matmul with NumPy's batching and 1-D rules."""
import numpy as np

from ..function import Function, unbroadcast
from ..tensor import Tensor


class Matmul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {a.shape} and {b.shape}")
        try:
            return np.matmul(a, b)
        except ValueError:
            k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
            why = (f"inner dims {a.shape[-1]} != {k_b}" if a.shape[-1] != k_b else
                   f"batch dims {a.shape[:-2]} and {b.shape[:-2]} do not broadcast")
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned ({why})") from None

    def backward(self, g):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a  # (..., M, K)
        b2 = b[:, None] if b.ndim == 1 else b  # (..., K, N)
        if a.ndim == 1 and b.ndim == 1:
            g = g.reshape(1, 1)
        elif a.ndim == 1:
            g = np.expand_dims(g, -2)
        elif b.ndim == 1:
            g = np.expand_dims(g, -1)  # g: (..., M, N)
        na, nb = self.needs_input_grad
        ga = unbroadcast(np.matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape) if na else None
        gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape) if nb else None
        return ga, gb


def matmul(a, b):
    """Matrix product with NumPy's rules: batched, broadcast batch dims, 1-D operands promoted."""
    a = a if isinstance(a, Tensor) else Tensor(np.asarray(a))
    b = b if isinstance(b, Tensor) else Tensor(np.asarray(b))
    return Matmul.apply(a, b)


Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = lambda s, o: matmul(o, s)
Tensor.matmul = matmul
