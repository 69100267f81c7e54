"""The Tensor: a NumPy array, its gradient, and the node that made it (PyTorch names and semantics).

Op methods (``exp``, ``sum``, ``reshape``, ``__add__``, ...) are attached by the op families in
``autograd/functions/``; this file holds the state, conversions, autograd entry points and the
in-place machinery.
"""
import numpy as np

from . import grad_mode

DEFAULT_FLOAT = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def as_dtype(dtype):
    """Normalise a dtype spec (numpy dtype, type, string, or None) to ``np.dtype`` or None."""
    if dtype is None:
        return None
    if dtype is bool or dtype == "bool":
        return np.dtype(np.bool_)
    return np.dtype(dtype)


def to_array(data, dtype=None, copy=True) -> np.ndarray:
    """Turn Python data or an array into an ndarray with PyTorch's default dtypes.

    Python floats (and lists of them) become float32; ints int64; bools bool. NumPy arrays keep
    their dtype unless ``dtype`` is given.
    """
    dtype = as_dtype(dtype)
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        arr = data.astype(dtype) if dtype is not None and data.dtype != dtype else data
        return arr.copy() if copy and arr is data else arr
    arr = np.array(data)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype == np.float64 and not isinstance(data, np.generic):
        return arr.astype(DEFAULT_FLOAT)
    if arr.dtype.kind in "iu" and not isinstance(data, np.generic):
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype} ({type(data).__name__})")
    return arr


class Tensor:
    """An n-dimensional array that records the operations on it for reverse-mode autograd.

    Attributes:
        data: the NumPy array holding the values.
        grad: the accumulated gradient (an ndarray) after ``backward``, or None.
        requires_grad: whether operations on this tensor are recorded.
        grad_fn: the node that produced this tensor (None for leaves).
    """

    # _view_of: (base, index) when this tensor is a view made by an op (index: the basic index of a
    # slicing view, None for reshape/permute/expand views), else None
    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_version", "_hooks", "_view_of", "__weakref__")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operators
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, requires_grad=False):
        self.data = to_array(data, dtype, copy=False)
        self.grad = None
        self.grad_fn = None
        self._version = [0]
        self._hooks = None
        self._view_of = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, requires_grad, grad_fn):
        """Fast internal constructor: wraps ``data`` as is."""
        t = cls.__new__(cls)
        t.data = data if data.__class__ is np.ndarray else np.asarray(data)
        t.grad = None
        t.requires_grad = requires_grad
        t.grad_fn = grad_fn
        t._version = [0]
        t._hooks = None
        t._view_of = None
        return t

    # ---- metadata -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def device(self) -> str:
        return "cpu"

    def size(self, dim=None):
        """The shape, or the size of one dimension."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    __hash__ = object.__hash__

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", precision=4, prefix="tensor(")
        extra = ""
        if self.data.dtype != DEFAULT_FLOAT and self.data.dtype != np.int64:
            extra += f", dtype={self.data.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn={self.grad_fn!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- conversions ----------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The underlying array (shares memory, like ``torch.Tensor.numpy``)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.data.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with shape {self.data.shape} is ambiguous")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    # ---- autograd -------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place (leaves only when turning it off). Returns self."""
        if requires_grad and self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"only floating point tensors can require grad, got dtype {self.data.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) is only valid on leaf tensors; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data (and version counter) with no history."""
        t = Tensor._make(self.data, False, None)
        t._version = self._version
        return t

    def detach_(self) -> "Tensor":
        """Make this tensor a leaf that does not require grad. Returns self."""
        self.grad_fn = None
        self._view_of = None
        self.requires_grad = False
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self.grad_fn is not None:
            import weakref

            self.grad_fn.retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self.grad_fn is not None and self.grad_fn.retained is not None

    def register_hook(self, hook):
        """Call ``hook(grad_tensor)`` with this tensor's gradient during backward.

        The hook may return a replacement gradient (a Tensor or array) or None.
        Returns:
            A handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self.grad_fn is not None:
            if self.grad_fn.hooks is None:
                self.grad_fn.hooks = []
            hooks = self.grad_fn.hooks
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        Args:
            gradient: the gradient of some scalar with respect to this tensor; may be omitted only
                when this tensor has one element.
            retain_graph: keep the saved arrays so backward can run through the graph again.
        """
        from .engine import run_backward

        run_backward((self,), (gradient,), retain_graph=retain_graph)

    # ---- in place -------------------------------------------------------------------------
    def _bump_version(self):
        self._version[0] += 1

    def _check_inplace(self):
        if self.requires_grad and self.grad_fn is None and grad_mode._enabled[0]:
            raise RuntimeError(
                "a leaf tensor that requires grad is being used in an in-place operation; "
                "wrap it in gb.no_grad() (as optimizers do) or use an out-of-place op"
            )

    def _snapshot(self) -> "Tensor":
        """A copy of this tensor with the same history: the input an in-place op computes from, so
        that the node it records saves the old values, not the buffer about to be overwritten."""
        t = Tensor._make(self.data.copy(), self.requires_grad, self.grad_fn)
        return t

    def _apply_inplace(self, result: "Tensor", op: str = "in-place") -> "Tensor":
        """Make ``self`` hold ``result``: values copied into self's buffer, history taken over.

        A recorded in-place op on a slicing view is written through the base
        (``base[index] = result``), so the base's history records it too, as PyTorch rebases views.
        """
        self._check_inplace()
        if result.data.shape != self.data.shape:
            raise ValueError(f"{op}: the result has shape {result.data.shape} but the tensor modified in place "
                             f"has shape {self.data.shape}")
        if result.data.dtype != self.data.dtype and not np.can_cast(result.data.dtype, self.data.dtype,
                                                                     "same_kind"):
            raise TypeError(f"{op}: result type {result.data.dtype} can't be cast to the dtype {self.data.dtype} "
                            "of the tensor modified in place")
        if result.grad_fn is not None and self._view_of is not None:
            base, index = self._view_of
            if index is None:
                raise RuntimeError(
                    f"{op}: in-place operation on a view (made by reshape/view/permute/expand) while recording "
                    "gradients is not supported: its base would keep a stale history; clone() the view or "
                    "modify the base")
            base[index] = result  # records IndexPut on the base (recursively through nested views)
            self.grad_fn = result.grad_fn
            self.requires_grad = True
            return self
        np.copyto(self.data, result.data, casting="unsafe")
        if result.grad_fn is not None:
            self.grad_fn = result.grad_fn
            self.requires_grad = True
        self._bump_version()
        return self

    def zero_(self) -> "Tensor":
        self._check_inplace()
        self.data[...] = 0
        self._bump_version()
        return self

    def fill_(self, value) -> "Tensor":
        self._check_inplace()
        self.data[...] = value
        self._bump_version()
        return self

    def copy_(self, src) -> "Tensor":
        """Copy ``src`` (broadcast to this shape) into this tensor's buffer."""
        src_data = src.data if isinstance(src, Tensor) else np.asarray(src)
        if isinstance(src, Tensor) and src.requires_grad and grad_mode._enabled[0]:
            return self._apply_inplace(src.expand(self.shape).to(self.dtype) * 1)
        self._check_inplace()
        np.copyto(self.data, np.broadcast_to(src_data, self.data.shape), casting="unsafe")
        self._bump_version()
        return self

    def __setitem__(self, index, value):
        index = _index_data(index)
        if isinstance(value, Tensor) and value.requires_grad and grad_mode._enabled[0] or (
            self.requires_grad and self.grad_fn is not None and grad_mode._enabled[0]
        ):
            from .functions.movement import index_put

            self._apply_inplace(index_put(self, index, value))
            return
        self._check_inplace()
        self.data[index] = value.data if isinstance(value, Tensor) else value
        self._bump_version()


def _index_data(index):
    """Replace Tensors inside an index expression by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
