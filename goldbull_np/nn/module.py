"""``Module``: the base class of every layer and model (torch.nn.Module's names and semantics).

Assigning a Parameter, a Module or a registered buffer to an attribute registers it, so
``parameters()``, ``state_dict()``, ``train()``/``eval()``, ``to(dtype)`` ... walk the tree without
any bookkeeping in the subclass. State dicts hold NumPy arrays (the parameters' own buffers, not
copies, as torch's hold tensors sharing storage), ready for ``safetensors.numpy.save_file``.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd.tensor import Tensor, as_dtype
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of layers and models: subclass it, assign sub-layers/parameters in ``__init__``
    (after ``super().__init__()``) and write ``forward``; call the module to run it."""

    def __init__(self):
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- registration ---------------------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign {name!r} before {type(self).__name__}.__init__ called "
                                 "Module.__init__() (call super().__init__() first)")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Parameter):
            self._forget(name, keep="_parameters")
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep="_modules")
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                                f"{type(self).__name__} (expected a Parameter or None)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule {name!r} "
                                "(expected a Module or None)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                value = Tensor(np.asarray(value))
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        """Drop ``name`` from every registry except ``keep``: a replaced entry keeps its position
        (as in torch, so ``layers[0] = block`` does not move block 0 to the end)."""
        d = self.__dict__
        d.pop(name, None)
        for key in ("_parameters", "_buffers", "_modules"):
            if key != keep:
                d[key].pop(name, None)
        d["_non_persistent"].discard(name)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            table = d.get(key)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if name in d[key]:
                del d[key][name]
                d["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._forget(name, keep="_parameters")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register a non-trainable tensor (running stats, rotary tables, ...).

        Args:
            name: attribute name.
            tensor: a Tensor, an array, or None.
            persistent: include it in ``state_dict()`` (default True).
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(np.asarray(tensor))
        self._forget(name, keep="_buffers")
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Register ``module`` (a Module or None) under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._forget(name, keep="_modules")
        self._modules[name] = module

    register_module = add_module

    # ---- traversal --------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Yield ``(qualified_name, module)`` for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, mod in self._modules.items():
            if mod is None:
                continue
            yield from mod.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, mod in self._modules.items():
            if mod is not None and id(mod) not in seen:
                seen.add(id(mod))
                yield name, mod

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, table, prefix, recurse, remove_duplicate):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield ``(qualified_name, Parameter)``; a parameter shared by two modules (tied weights)
        is yielded once, under its first name, unless ``remove_duplicate=False``."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        """The submodule at dotted path ``target`` ("" is self)."""
        mod = self
        for part in target.split(".") if target else ():
            sub = mod._modules.get(part)
            if sub is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} (looking up {target!r})")
            mod = sub
        return mod

    def get_parameter(self, target):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r} (looking up {target!r})")
        return mod._parameters[name]

    # ---- state dict -------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by qualified name.

        Tied parameters appear under each of their names (as in torch); the values are the
        parameters' own arrays (not copies) unless ``keep_vars=True``, which gives the Tensors.

        Returns:
            An OrderedDict ``name -> np.ndarray`` (or Tensor).
        """
        out = OrderedDict() if destination is None else destination
        for mod_prefix, mod in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=True):
            p = f"{mod_prefix}." if mod_prefix else ""
            for name, t in mod._parameters.items():
                if t is not None:
                    out[p + name] = t if keep_vars else t.data
            for name, t in mod._buffers.items():
                if t is not None and name not in mod._non_persistent:
                    out[p + name] = t if keep_vars else t.data
        return out

    def _state_targets(self):
        """name -> the Tensor that a state_dict entry of that name is copied into."""
        return self.state_dict(keep_vars=True)

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (or Tensors) from ``state_dict`` into this module's parameters and buffers.

        Values are copied into the existing arrays (cast to their dtype), so tied parameters and
        views held elsewhere (an optimizer's flat buffer) stay intact. Nothing is copied unless every
        check passes. A missing key is not reported when the tensor it names is tied to (is the same
        Parameter as) another key that is present, so tied weights stored once load back.

        Args:
            state_dict: mapping ``name -> array/Tensor``.
            strict: raise on missing or unexpected keys (shape mismatches always raise).
        Returns:
            ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        Raises:
            RuntimeError listing every missing key, unexpected key and shape mismatch.
        """
        targets = self._state_targets()
        provided_ids = {id(targets[k]) for k in state_dict if k in targets}
        missing = [k for k, t in targets.items() if k not in state_dict and id(t) not in provided_ids]
        unexpected = [k for k in state_dict if k not in targets]
        mismatched = []
        for k, v in state_dict.items():
            if k in targets:
                shape = tuple(np.shape(v.data if isinstance(v, Tensor) else v))
                if shape != targets[k].shape:
                    mismatched.append(f"size mismatch for {k}: copying a param with shape {shape} from "
                                      f"checkpoint, the shape in current model is {targets[k].shape}.")
        errors = []
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        errors += mismatched
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for k, v in state_dict.items():
            if k in targets:
                t = targets[k]
                np.copyto(t.data, v.data if isinstance(v, Tensor) else np.asarray(v), casting="same_kind")
                t._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # ---- modes, grads, dtype -----------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (dropout active) on this module and every descendant. Returns self."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        """``train(False)``. Returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (to None, or to zeros in place)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on every parameter (freeze with False). Returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant (children first) and then on self. Returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def num_parameters(self, trainable_only=False):
        """Number of scalar parameters (tied parameters counted once)."""
        return int(sum(p.data.size for p in self.parameters() if p.requires_grad or not trainable_only))

    def to(self, *args, dtype=None, device=None):
        """``to(dtype)`` / ``to("cpu")`` / ``to("cpu", dtype)``: convert floating parameters, their
        grads and floating buffers in place (the Parameter objects stay the same). Returns self."""
        for a in args:
            if isinstance(a, str) and a == "cpu":
                continue
            dtype = a
        if device not in (None, "cpu"):
            raise ValueError(f"only the 'cpu' device exists, got {device!r}")
        if dtype is None:
            return self
        dtype = as_dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Module.to only accepts floating point dtypes, got {dtype}")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.data.dtype.kind == "f" and t.data.dtype != dtype:
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = t.grad.astype(dtype)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    # ---- repr -------------------------------------------------------------------------------
    def extra_repr(self):
        """One line of layer-specific detail shown in the repr (override in layers)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): " + _indent(repr(m), 2) for name, m in self._modules.items() if m is not None]
        body = lines + children
        if not body:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not children:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(body) + "\n)"


def _indent(text, n):
    first, *rest = text.split("\n")
    return "\n".join([first] + [" " * n + line for line in rest])
