"""``Optimizer``: the base class (torch.optim semantics: ``param_groups``, per-parameter ``state``).

State dict format (JSON + safetensors friendly, and the same shape as torch's)::

    {"state": {0: {"step": 3, "exp_avg": ndarray, "exp_avg_sq": ndarray}, 1: {...}, ...},
     "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), ..., "params": [0, 1, ...]}, ...]}

Parameters are numbered in group order, then in order within the group. Arrays in ``state_dict()``
are copies (a snapshot); scalars are Python ints/floats. ``load_state_dict(state_dict())`` restores
the optimizer bit for bit; a parameter without an entry in ``"state"`` has not been stepped yet.
"""
import copy

import numpy as np

from ..autograd.tensor import Tensor


class Optimizer:
    """Base class: holds ``param_groups`` (a list of dicts, each with "params" and hyperparameters)
    and ``state`` (a dict keyed by parameter).

    Args:
        params: an iterable of Tensors, or of dicts ``{"params": [...], <hyperparameter overrides>}``.
        defaults: the hyperparameters every group gets unless it overrides them.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or dicts, got a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        """Append a group; hyperparameters it does not set come from ``defaults``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        unique = []
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError("can't optimize a non-leaf Tensor")
            if id(p) in seen:
                if any(p is q for q in unique):
                    continue  # repeated within one group: keep one (torch warns)
                raise ValueError("some parameters appear in more than one parameter group")
            seen.add(id(p))
            unique.append(p)
        group = {k: v for k, v in param_group.items() if k != "params"}
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.check_hyperparameters(group, f"parameter group {len(self.param_groups)}")
        group["params"] = unique
        self.param_groups.append(group)

    def check_hyperparameters(self, group, where="") -> None:
        """Raise ValueError naming ``where`` and the field for a hyperparameter this optimizer cannot use.

        Every group is checked when it is added and when a state dict is loaded. The checks are
        written as torch writes them (``not 0.0 <= lr``), so NaN fails every one of them; a subclass
        lists its own fields. The base class checks nothing.
        """

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's gradient: to None (default), or to zeros in place."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure=None):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def flat_gradient(self):
        """The one flat array that holds every float32 gradient between steps (a fused AdamW's), or
        None. When there is one, ``zero_grad(set_to_none=False)`` points each ``p.grad`` at its view,
        so backward accumulates straight into it."""
        return None

    def gradient_arrays(self) -> list:
        """The gradients of this optimizer's parameters as few arrays as possible, each element once
        (what clipping and gradient all-reduce work on). The arrays are the live gradients: scaling
        them in place scales ``p.grad``. A fused AdamW returns its flat buffer (one array) when every
        float32 gradient lives in it (after ``zero_grad(set_to_none=False)``)."""
        return [p.grad for p in self._params() if p.grad is not None]

    def _closure_loss(self, closure):
        if closure is None:
            return None
        from ..autograd.grad_mode import enable_grad

        with enable_grad():
            return closure()

    # ---- state dict -------------------------------------------------------------------------
    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self):
        """A snapshot: ``{"state": {index: {name: int | float | ndarray}}, "param_groups": [...]}``
        with each group's "params" as indices (see the module docstring)."""
        index = {}
        groups = []
        for g in self.param_groups:
            out = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            out["params"] = [index.setdefault(id(p), len(index)) for p in g["params"]]
            groups.append(out)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                st = self.state.get(p)
                if st:
                    state[index[id(p)]] = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                                           for k, v in st.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and per-parameter state saved by ``state_dict()``.

        Group count and sizes must match; arrays must have their parameter's shape and be finite
        (NaN moments turn every parameter NaN on the next step); every group's hyperparameters pass
        :meth:`check_hyperparameters`. Keys of "state" may be ints or their string form (as after a
        JSON round trip). Nothing is changed unless everything loads.
        Raises:
            ValueError describing the first mismatch.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        id_map = {}
        for i, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError(f"parameter group {i}: loaded state dict has {len(saved['params'])} parameters, "
                                 f"the optimizer has {len(mine['params'])}")
            for idx, p in zip(saved["params"], mine["params"]):
                id_map[int(idx)] = p
        new_state = {}
        for key, st in state_dict["state"].items():
            idx = int(key)
            if idx not in id_map:
                raise ValueError(f"loaded optimizer state refers to parameter index {idx}, which no group holds")
            p = id_map[idx]
            entry = {}
            for k, v in st.items():
                if k == "step":
                    entry[k] = int(np.asarray(v.data if isinstance(v, Tensor) else v))  # int or a 0-d array
                elif isinstance(v, (np.ndarray, Tensor)):
                    arr = np.asarray(v.data if isinstance(v, Tensor) else v)
                    if arr.shape != p.shape:
                        raise ValueError(f"optimizer state {k!r} of parameter {idx} has shape {arr.shape}, "
                                         f"the parameter has shape {p.shape}")
                    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():  # once per load: cheap
                        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                        raise ValueError(f"optimizer state {k!r} of parameter {idx} holds {bad} non-finite "
                                         f"value(s) (NaN/inf) of {arr.size}: one step would make the "
                                         "parameter NaN; refusing to load it")
                    entry[k] = arr.astype(p.dtype, copy=True)
                else:
                    entry[k] = _scalar(v)
            new_state[p] = entry
        for i, saved in enumerate(saved_groups):  # checked before anything is changed
            self.check_hyperparameters({**self.param_groups[i], **{k: v for k, v in saved.items() if k != "params"}},
                                       f"loaded parameter group {i}")
        for mine, saved in zip(self.param_groups, saved_groups):
            for k, v in saved.items():
                if k != "params":
                    mine[k] = tuple(v) if k == "betas" else copy.deepcopy(v)
        self.state = {}
        self._load_state(new_state)

    def _load_state(self, new_state):
        """Install loaded per-parameter state (subclasses with their own storage override this)."""
        self.state.update(new_state)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def check_range(where, name, value, low, high=None, *, high_open=False) -> None:
    """ValueError naming ``where`` and ``name`` unless ``low <= value`` (and ``value < high`` or ``<= high``).

    Written as ``not (low <= value ...)`` so NaN (and a value that is not a number) fails; inf fails
    whenever a ``high`` is given, and ``lr``/``eps``/``weight_decay`` are given ``high=inf`` (open) so
    an infinite value is refused too.
    """
    try:
        ok = low <= value and (high is None or (value < high if high_open else value <= high))
    except TypeError:
        ok = False
    if not ok or isinstance(value, bool):
        bound = f"[{low}, {high})" if high_open else (f"[{low}, {high}]" if high is not None else f">= {low}")
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}invalid {name}: {value!r} (must be a finite number in {bound})")


def _scalar(v):
    """A saved scalar as a Python number (arrays of one element from safetensors included)."""
    if isinstance(v, np.generic):
        return v.item()
    return v
