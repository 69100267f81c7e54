"""LoRA: low-rank adapters on a model's Linear layers (``LoRAConfig``, ``add_lora_adapters``, ...).

A targeted Linear ``y = x W^T + b`` (W: (out, in)) becomes a :class:`LoRALinear` that keeps the same
``weight``/``bias`` Parameters (so the base state-dict names do not change) and adds, for each
targeted block of output rows [lo, hi), a pair A (r, in), B (hi - lo, r)::

    y = x W^T + b + s * dropout(x) A^T B^T          s = alpha / r   (rsLoRA: alpha / sqrt(r))

A starts kaiming-uniform and B at zero, so a fresh adapter leaves the model unchanged. The fused
attention projection ``qkv_proj`` (output rows [q heads | k heads | v heads]) answers to the names
``q_proj``, ``k_proj`` and ``v_proj``: each targeted slice gets its own pair, and one forward runs
them together as two F.linear calls (A's stacked, B's placed block-wise in an (out, r_total) matrix).

DoRA (weight-decomposed LoRA, Liu et al. 2024) adds a magnitude vector m per output row:
``y = m / ||W + s B A||_row * (x W^T + s * dropout(x) A^T B^T) + b``, with the row norm treated as
a constant in backward (the paper's section 4.3, as PEFT does). m starts at ``||W||_row``.

Saved adapters use PEFT-like names relative to the model: ``layers.0.attn.q_proj.lora_A.weight``,
``...lora_B.weight``, ``...lora_magnitude_vector`` (DoRA), in ``adapter_model.safetensors`` beside
``adapter_config.json``.
"""
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from .. import random as _random
from .._config_io import dataclass_from_dict, read_json
from ..autograd.functions.movement import cat, pad
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..io.atomic import atomic_write_json
from ..io.safetensors import load_safetensors, save_safetensors
from . import functional as F
from . import init
from .containers import ModuleDict
from .layers import Dropout, Linear
from .module import Module
from .parameter import Parameter

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
_BIAS_CHOICES = ("none", "all", "lora_only")
_QKV = ("q_proj", "k_proj", "v_proj")
_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass
class LoRAConfig:
    """Where and how LoRA adapters are added.

    Args:
        rank: r, the inner size of each A/B pair.
        alpha: scaling numerator: s = alpha / r (or alpha / sqrt(r) with ``use_rslora``).
        dropout: dropout on the adapter's input (training mode only).
        target_modules: Linear names to adapt: q_proj, k_proj, v_proj (slices of the fused qkv_proj),
            qkv_proj (the whole fused projection), o_proj, up_proj, down_proj, gate_proj, lm_head.
        bias: "none" (biases frozen), "all" (every bias trains) or "lora_only" (biases of adapted
            Linears train); trained biases are saved with the adapters.
        use_rslora: rank-stabilised scaling alpha / sqrt(r) (Kalajdzievski 2023).
        use_dora: weight-decomposed LoRA (a trained magnitude per output row).
        layers_to_transform: only adapt blocks with these indices (None: every block).
    """

    rank: int = 8
    alpha: float = 16
    dropout: float = 0.1
    target_modules: List[str] = field(default_factory=lambda: ["q_proj", "v_proj", "k_proj", "o_proj"])
    bias: str = "none"
    use_rslora: bool = False
    use_dora: bool = False
    layers_to_transform: Optional[List[int]] = None

    def __post_init__(self):
        if isinstance(self.rank, bool) or not isinstance(self.rank, (int, np.integer)) or self.rank < 1:
            raise ValueError(f"LoRAConfig.rank must be a positive integer, got {self.rank!r}")
        self.rank = int(self.rank)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or \
                not 0 < self.alpha < math.inf:
            raise ValueError(f"LoRAConfig.alpha must be a finite positive number, got {self.alpha!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or \
                not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRAConfig.dropout must be a number in [0, 1), got {self.dropout!r}")
        if isinstance(self.target_modules, str):
            self.target_modules = [self.target_modules]
        self.target_modules = list(self.target_modules)
        if not all(isinstance(t, str) for t in self.target_modules):
            raise ValueError(f"LoRAConfig.target_modules must be Linear names (strings), got {self.target_modules!r}")
        if not self.target_modules:
            raise ValueError("LoRAConfig.target_modules is empty: name at least one Linear (e.g. 'q_proj')")
        if self.bias not in _BIAS_CHOICES:
            raise ValueError(f"LoRAConfig.bias must be one of {_BIAS_CHOICES}, got {self.bias!r}")
        if self.layers_to_transform is not None:
            self.layers_to_transform = [int(i) for i in self.layers_to_transform]

    @property
    def scaling(self) -> float:
        """s: alpha / r, or alpha / sqrt(r) with rsLoRA."""
        return self.alpha / (math.sqrt(self.rank) if self.use_rslora else self.rank)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["peft_type"] = "LORA"
        return d

    @classmethod
    def from_dict(cls, d, source="adapter config"):
        d = dict(d)
        d.pop("peft_type", None)
        return dataclass_from_dict(cls, d, source)


class LoRAPair(Module):
    """One adapter: A (r, in), B (rows, r) and, with DoRA, the magnitude (rows,)."""

    def __init__(self, in_features, rows, rank, dtype, base_rows=None, dora=False):
        super().__init__()
        self.lora_A = Parameter(np.empty((rank, in_features), dtype=dtype))
        self.lora_B = Parameter(np.zeros((rows, rank), dtype=dtype))
        init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # PEFT's default; B = 0 keeps y unchanged
        if dora:
            norm = np.linalg.norm(base_rows.astype(np.float64), axis=1)  # (rows,) = ||W + s*B@A|| at B = 0
            self.lora_magnitude_vector = Parameter(norm.astype(dtype))

    def delta(self, scaling):
        """s * B @ A as a float64 array (rows, in)."""
        return scaling * (self.lora_B.data.astype(np.float64) @ self.lora_A.data.astype(np.float64))

    def extra_repr(self):
        return f"rank={self.lora_A.shape[0]}, in={self.lora_A.shape[1]}, rows={self.lora_B.shape[0]}"


def _share_linear_params(dst, src):
    """Make ``dst`` hold ``src``'s sizes and its very weight/bias Parameters (no copy)."""
    dst.in_features, dst.out_features = src.in_features, src.out_features
    dst.weight = src.weight
    if src.bias is None:
        dst.register_parameter("bias", None)
    else:
        dst.bias = src.bias


class LoRALinear(Linear):
    """A Linear with LoRA pairs on blocks of its output rows (see the module docstring).

    Args:
        base: the Linear to adapt; its ``weight`` and ``bias`` Parameters are taken over as they are.
        slices: ``{name: (lo, hi)}`` output-row blocks to adapt (non-overlapping).
        config: the LoRAConfig.
    """

    def __init__(self, base, slices, config):
        Module.__init__(self)
        _share_linear_params(self, base)
        self.rank, self.scaling, self.use_dora = config.rank, config.scaling, config.use_dora
        self.lora_dropout = Dropout(config.dropout) if config.dropout > 0 else None
        self.slices = dict(sorted(slices.items(), key=lambda kv: kv[1][0]))
        W = self.weight.data
        self.lora = ModuleDict({name: LoRAPair(self.in_features, hi - lo, self.rank, W.dtype, W[lo:hi],
                                               config.use_dora)
                                for name, (lo, hi) in self.slices.items()})
        self.merged = False
        self._merged_norms = {}

    # ---- forward ------------------------------------------------------------------------------
    def _stacked_A(self):
        As = [p.lora_A for p in self.lora.values()]
        return As[0] if len(As) == 1 else cat(As, 0)  # (r_total, in)

    def _block_B(self):
        """B's placed block-wise in an (out, r_total) matrix: rows of untargeted slices are zero."""
        pairs = list(self.lora.items())
        if len(pairs) == 1 and self.slices[pairs[0][0]] == (0, self.out_features):
            return pairs[0][1].lora_B
        r, rt = self.rank, self.rank * len(pairs)
        dtype = self.weight.dtype
        blocks, row = [], 0
        for k, (name, pair) in enumerate(pairs):
            lo, hi = self.slices[name]
            if lo > row:
                blocks.append(Tensor._make(np.zeros((lo - row, rt), dtype), False, None))
            blocks.append(pad(pair.lora_B, (k * r, rt - (k + 1) * r)))  # (hi-lo, r_total)
            row = hi
        if row < self.out_features:
            blocks.append(Tensor._make(np.zeros((self.out_features - row, rt), dtype), False, None))
        return cat(blocks, 0)  # (out, r_total)

    def _dora_scale(self):
        """m / ||W + s B A||_row over the whole output (ones on untargeted rows); the norm is a constant."""
        parts, row = [], 0
        dtype = self.weight.dtype
        W = self.weight.data
        for name, pair in self.lora.items():
            lo, hi = self.slices[name]
            if lo > row:
                parts.append(Tensor._make(np.ones(lo - row, dtype), False, None))
            norm = np.linalg.norm(W[lo:hi].astype(np.float64) + pair.delta(self.scaling), axis=1)  # (rows,)
            parts.append(pair.lora_magnitude_vector * (1.0 / norm).astype(dtype))
            row = hi
        if row < self.out_features:
            parts.append(Tensor._make(np.ones(self.out_features - row, dtype), False, None))
        return parts[0] if len(parts) == 1 else cat(parts, 0)  # (out,)

    def forward(self, x):
        if self.merged or not len(self.lora):
            return F.linear(x, self.weight, self.bias)
        xd = self.lora_dropout(x) if self.lora_dropout is not None else x
        h = F.linear(xd, self._stacked_A())  # (..., r_total)
        if self.scaling != 1.0:
            h = h * self.scaling
        delta = F.linear(h, self._block_B())  # (..., out)
        if not self.use_dora:
            return F.linear(x, self.weight, self.bias) + delta
        y = (F.linear(x, self.weight) + delta) * self._dora_scale()  # (..., out)
        return y if self.bias is None else y + self.bias

    # ---- merge ----------------------------------------------------------------------------------
    def merge(self):
        """Fold the adapters into ``weight`` (forward then runs the base Linear only)."""
        if self.merged:
            return
        W = self.weight.data
        with no_grad():
            for name, pair in self.lora.items():
                lo, hi = self.slices[name]
                delta = pair.delta(self.scaling)
                if self.use_dora:
                    merged = W[lo:hi].astype(np.float64) + delta
                    norm = np.linalg.norm(merged, axis=1)
                    self._merged_norms[name] = norm
                    scale = pair.lora_magnitude_vector.data.astype(np.float64) / norm
                    W[lo:hi] = (merged * scale[:, None]).astype(W.dtype)
                else:
                    W[lo:hi] += delta.astype(W.dtype)
        self.weight._bump_version()
        self.merged = True

    def unmerge(self):
        """Undo :meth:`merge` (the adapters must not have changed in between)."""
        if not self.merged:
            return
        W = self.weight.data
        with no_grad():
            for name, pair in self.lora.items():
                lo, hi = self.slices[name]
                delta = pair.delta(self.scaling)
                if self.use_dora:
                    scale = self._merged_norms.pop(name) / pair.lora_magnitude_vector.data.astype(np.float64)
                    W[lo:hi] = (W[lo:hi].astype(np.float64) * scale[:, None] - delta).astype(W.dtype)
                else:
                    W[lo:hi] -= delta.astype(W.dtype)
        self.weight._bump_version()
        self.merged = False

    def to_linear(self):
        """A plain Linear holding the same weight/bias Parameters (merged or not, as they are)."""
        lin = Linear.__new__(Linear)
        Module.__init__(lin)
        _share_linear_params(lin, self)
        lin.training = self.training
        return lin

    def extra_repr(self):
        return (super().extra_repr() + f", lora={list(self.slices)}, rank={self.rank}, scaling={self.scaling:g}"
                + (", dora=True" if self.use_dora else "") + (", merged=True" if self.merged else ""))


# ---- model-level operations ----------------------------------------------------------------------
def _parent(model, path):
    parent_path, _, leaf = path.rpartition(".")
    return model.get_submodule(parent_path), parent_path, leaf


def _layer_index(path):
    m = _LAYER_RE.search("." + path + ".")
    return int(m.group(1)) if m else None


def _candidates(model):
    """``[(path, linear, {target name: (lo, hi)})]``: every Linear and the names it answers to."""
    out = []
    for path, m in model.named_modules():
        if not isinstance(m, Linear) or not path:
            continue
        parent, _, leaf = _parent(model, path)
        names = {leaf: (0, m.out_features)}
        if leaf == "qkv_proj" and hasattr(parent, "n_kv_head"):
            q = parent.n_head * parent.head_dim
            kv = parent.n_kv_head * parent.head_dim
            names.update(q_proj=(0, q), k_proj=(q, q + kv), v_proj=(q + kv, q + 2 * kv))
        out.append((path, m, names))
    return out


def lora_modules(model):
    """``[(path, LoRALinear)]`` of a model."""
    return [(p, m) for p, m in model.named_modules() if isinstance(m, LoRALinear)]


def add_lora_adapters(model, config=None):
    """Wrap every targeted Linear of ``model`` in a LoRALinear and freeze everything else.

    Args:
        model: a Module (GoldbullText or any model whose Linears have names).
        config: a LoRAConfig (default ``LoRAConfig()``).
    Returns:
        The qualified names of the adapted Linears.
    Raises:
        ValueError: a target name no Linear answers to (the known names are listed), both
            ``qkv_proj`` and one of its slices requested, adapters already present, or lm_head
            targeted while it is tied to the embedding.
    """
    config = LoRAConfig() if config is None else config
    if not isinstance(config, LoRAConfig):
        raise TypeError(f"config must be a LoRAConfig, got {type(config).__name__}")
    if lora_modules(model):
        raise ValueError("the model already has LoRA adapters (remove_lora() first, or load_lora() into them)")
    targets = list(dict.fromkeys(config.target_modules))
    if "qkv_proj" in targets and any(t in targets for t in _QKV):
        raise ValueError("LoRAConfig.target_modules names both qkv_proj and its slices q_proj/k_proj/v_proj")
    cands = _candidates(model)
    known = sorted({n for _, _, names in cands for n in names})
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise ValueError(f"LoRA target module(s) {unknown} match no Linear of {type(model).__name__}; "
                         f"known names: {known}")
    layers = None if config.layers_to_transform is None else set(config.layers_to_transform)
    if layers is not None:
        n = len(getattr(model, "layers", ()))
        bad = sorted(i for i in layers if not 0 <= i < n)
        if bad:
            raise IndexError(f"LoRAConfig.layers_to_transform {bad} out of range: valid layers are 0..{n - 1}")
    param_ids = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        param_ids.setdefault(id(p), []).append(name)
    plan = []
    for path, lin, names in cands:
        chosen = {t: names[t] for t in targets if t in names}
        if not chosen:
            continue
        idx = _layer_index(path)
        if layers is not None and (idx is None or idx not in layers):
            continue
        if len(param_ids.get(id(lin.weight), ())) > 1:
            raise ValueError(f"cannot add LoRA to {path}: its weight is tied to {param_ids[id(lin.weight)]} "
                             "(merging would change the tied tensor too)")
        plan.append((path, lin, chosen))
    if not plan:
        where = "" if layers is None else f" in layers {sorted(layers)}"
        raise ValueError(f"no Linear matched target_modules {targets}{where}")
    model.requires_grad_(False)
    wrapped = []
    for path, lin, chosen in plan:
        parent, _, leaf = _parent(model, path)
        new = LoRALinear(lin, chosen, config)
        new.train(lin.training)
        parent._modules[leaf] = new  # in place: keeps the module order (and state_dict order)
        wrapped.append(path)
    for name, p in model.named_parameters():
        if config.bias == "all" and name.endswith(".bias"):
            p.requires_grad_(True)
    if config.bias == "lora_only":
        for _, m in lora_modules(model):
            if m.bias is not None:
                m.bias.requires_grad_(True)
    object.__setattr__(model, "lora_config", config)
    return wrapped


def _bias_names(model, config):
    if config is None or config.bias == "none":
        return []
    if config.bias == "all":
        return [n for n, _ in model.named_parameters() if n.endswith(".bias")]
    return [f"{p}.bias" for p, m in lora_modules(model) if m.bias is not None]


def lora_state_dict(model, keep_vars=False):
    """The adapter tensors under PEFT-like names (plus trained biases, under their model names).

    Returns:
        An ordered dict ``name -> array`` (``Tensor`` with ``keep_vars``).
    """
    out = {}
    for path, m in lora_modules(model):
        parent_path = path.rpartition(".")[0]
        for name, pair in m.lora.items():
            pre = f"{parent_path}.{name}" if parent_path else name
            out[f"{pre}.lora_A.weight"] = pair.lora_A
            out[f"{pre}.lora_B.weight"] = pair.lora_B
            if "lora_magnitude_vector" in pair._parameters:
                out[f"{pre}.lora_magnitude_vector"] = pair.lora_magnitude_vector
    params = dict(model.named_parameters())
    for n in _bias_names(model, getattr(model, "lora_config", None)):
        out[n] = params[n]
    return out if keep_vars else {k: v.data for k, v in out.items()}


def get_lora_parameters(model):
    """The trainable adapter Parameters (A, B, DoRA magnitudes and biases trained by ``bias``)."""
    return list(lora_state_dict(model, keep_vars=True).values())


def merge_lora(model):
    """Fold every adapter into its base weight (idempotent). Returns the number of merged Linears."""
    mods = lora_modules(model)
    for _, m in mods:
        m.merge()
    return len(mods)


def unmerge_lora(model):
    """Undo :func:`merge_lora`. Returns the number of unmerged Linears."""
    mods = lora_modules(model)
    for _, m in mods:
        m.unmerge()
    return len(mods)


def remove_lora(model, merge=True):
    """Replace every LoRALinear by a plain Linear (merging the adapters first unless ``merge=False``).

    Returns:
        ``{path: LoRALinear}``, the removed wrappers (pass to :func:`restore_lora` to put them back).
    """
    removed = {}
    for path, m in lora_modules(model):
        if merge:
            m.merge()
        parent, _, leaf = _parent(model, path)
        parent._modules[leaf] = m.to_linear()
        removed[path] = m
    return removed


def restore_lora(model, removed, unmerge=True):
    """Put back wrappers returned by :func:`remove_lora` (unmerging them unless ``unmerge=False``)."""
    for path, m in removed.items():
        parent, _, leaf = _parent(model, path)
        parent._modules[leaf] = m
        if unmerge:
            m.unmerge()


def save_lora(model, save_directory):
    """Write only the adapter tensors (``adapter_model.safetensors``) and their config
    (``adapter_config.json``) into ``save_directory``, each file atomically.

    Raises:
        ValueError: the model has no adapter tensors (nothing would be written).
    """
    config = getattr(model, "lora_config", None)
    tensors = lora_state_dict(model)
    if config is None or not tensors or not lora_modules(model):
        raise ValueError("save_lora: the model has no LoRA adapters; refusing to write an empty adapter "
                         "(call add_lora_adapters first)")
    os.makedirs(save_directory, exist_ok=True)
    meta = config.to_dict()
    meta["tensors"] = sorted(tensors)
    save_safetensors(tensors, os.path.join(save_directory, ADAPTER_WEIGHTS_NAME),
                     metadata={"format": "np", "peft_type": "LORA"})
    atomic_write_json(os.path.join(save_directory, ADAPTER_CONFIG_NAME), meta)


def read_lora_config(directory):
    """The LoRAConfig saved in ``directory/adapter_config.json``."""
    path = os.path.join(directory, ADAPTER_CONFIG_NAME)
    d = read_json(path, f"no adapter config (expected {ADAPTER_CONFIG_NAME})")
    d.pop("tensors", None)
    return LoRAConfig.from_dict(d, source=path)


def _undo_point(model):
    """A function that puts ``model`` back as it is now: the same child modules everywhere, the same
    requires_grad flags, the same ``lora_config`` (the weights are not touched by adding adapters)."""
    children = [(m, list(m._modules.items())) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    missing = object()
    config = model.__dict__.get("lora_config", missing)

    def undo():
        for m, items in children:
            m._modules.clear()
            m._modules.update(items)
        for p, flag in flags:
            p.requires_grad = flag
        if config is missing:
            model.__dict__.pop("lora_config", None)
        else:
            object.__setattr__(model, "lora_config", config)

    return undo


def _mismatches(targets, arrays):
    errors = [f"missing tensor {k!r} (shape {t.shape})" for k, t in targets.items() if k not in arrays]
    errors += [f"unexpected tensor {k!r} (shape {a.shape})" for k, a in arrays.items() if k not in targets]
    for k, a in arrays.items():
        if k not in targets:
            continue
        want = targets[k].shape
        if a.shape != want:
            what = ""
            if k.endswith("lora_A.weight"):
                what = f" (rank {a.shape[0]} in the file, {want[0]} in the model)"
            elif k.endswith("lora_B.weight") and a.ndim == 2:
                what = f" (rank {a.shape[1]} in the file, {want[1]} in the model)"
            errors.append(f"tensor {k!r} has shape {a.shape}, expected {want}{what}")
        elif not np.can_cast(a.dtype, targets[k].dtype, casting="same_kind"):
            errors.append(f"tensor {k!r} has dtype {a.dtype}, which cannot be copied into {targets[k].dtype}")
    return errors


# The fields that decide what the adapters compute. dropout only acts in training mode and is the
# model's own choice for further training, so a different dropout is not a mismatch.
_COMPARED_FIELDS = ("rank", "alpha", "use_rslora", "use_dora", "target_modules", "layers_to_transform", "bias")


def _config_mismatches(saved, model):
    """Differences between a saved LoRAConfig and the adapters a model already has, one line each."""
    current = getattr(model, "lora_config", None)
    errors = []
    if current is not None:
        for name in _COMPARED_FIELDS:
            a, b = getattr(saved, name), getattr(current, name)
            if name == "target_modules":
                a, b = sorted(a), sorted(b)
            if a != b:
                errors.append(f"{name}: {getattr(saved, name)!r} in {ADAPTER_CONFIG_NAME}, "
                              f"{getattr(current, name)!r} in the model's adapters")
    for path, m in lora_modules(model):  # what the modules compute, even if lora_config was replaced
        if not math.isclose(m.scaling, saved.scaling, rel_tol=1e-12) or m.use_dora != saved.use_dora:
            if not errors:
                errors.append(f"module {path!r}: scaling {m.scaling!r}, use_dora {m.use_dora} in the model; "
                              f"the saved config gives scaling {saved.scaling!r}, use_dora {saved.use_dora}")
            break
    return errors


def load_lora(model, directory):
    """Load adapters saved by :func:`save_lora`; adds them first (with the saved config) if the model
    has none. All or nothing: if anything does not match, the model is left exactly as it was (no
    adapters added, the same requires_grad flags, the same weights). The global random generator is
    left as it was (fresh adapters draw an initialisation that the loaded tensors replace).

    A model that already has adapters must have them with the saved config (rank, alpha, rsLoRA,
    DoRA, target modules, layers, bias): the same tensors under another alpha compute other logits.

    Raises:
        FileNotFoundError: no adapter config or weights in ``directory``.
        ValueError listing each missing tensor, unexpected tensor and tensor whose shape (rank)
        does not match, naming the file; each config field that differs from the model's existing
        adapters; or a malformed file; or merged adapters.
    """
    config = read_lora_config(directory)
    path = os.path.join(directory, ADAPTER_WEIGHTS_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no adapter weights")
    arrays = load_safetensors(path)
    existing = lora_modules(model)
    if any(m.merged for _, m in existing):
        raise ValueError("load_lora: the adapters are merged into the base weights; unmerge_lora() first")
    config_errors = _config_mismatches(config, model) if existing else []
    undo = None if existing else _undo_point(model)
    rng = _random.get_rng_state()
    try:
        if undo is not None:
            add_lora_adapters(model, config)
        targets = lora_state_dict(model, keep_vars=True)
        errors = _mismatches(targets, arrays)
        if config_errors:  # the config first (the cause), then the tensors it makes disagree
            raise ValueError(f"{os.path.join(directory, ADAPTER_CONFIG_NAME)}: the model already has LoRA adapters "
                             "with another config (remove_lora() first, or load into a model without "
                             "adapters):\n  " + "\n  ".join(config_errors + errors))
        if errors:
            raise ValueError(f"{path}: cannot load adapters:\n  " + "\n  ".join(errors))
    except BaseException:
        if undo is not None:
            undo()
        raise
    finally:
        _random.set_rng_state(rng)
    for k, t in targets.items():
        np.copyto(t.data, arrays[k], casting="same_kind")
        t._bump_version()
    return model


__all__ = ["LoRAConfig", "LoRALinear", "LoRAPair", "add_lora_adapters", "get_lora_parameters", "lora_state_dict",
           "merge_lora", "unmerge_lora", "remove_lora", "restore_lora", "save_lora", "load_lora",
           "read_lora_config", "lora_modules"]
