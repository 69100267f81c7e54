"""``ModelOptimizer``: deployment passes over a copy of a model; the input is never changed.

    optimizer = (ModelOptimizer().add_pass(FuseLinearLayers()).add_pass(OptimizeAttention())
                 .add_pass(PruneUnusedLayers()).add_pass(QuantizeWeights(8)))
    optimized = optimizer.optimize(model)        # a new model; optimizer.reports says what each pass did
    optimized.save("out/deploy")                 # save_pretrained (int8 layers included); from_pretrained reads it

Each pass changes the copy in place and returns a :class:`PassReport` (what it changed, parameters and
bytes before and after); ``optimize`` checks after every exact pass that the outputs on a sample input
still equal the original's (within float tolerance; the quantisation pass reports its error instead) and
measures decode tokens/s before and after each pass for language models (``measure=True``); a report's
``max_rel_output_change`` is the pass's own effect (outputs after it against outputs before it).

- :class:`FuseLinearLayers`: LoRA adapters merged into their base Linear (the wrappers removed); two
  Linears in a row in a Sequential with nothing between folded into one; a BatchNorm2d right after a
  Conv2d (in a Sequential, or a ResNet basic block's conv/bn pairs) folded into the convolution.
  (GoldbullText's and BERT's q/k/v already are one projection.)
- :class:`OptimizeAttention`: every attention on the fused kernel (grouped K/V heads kept grouped) and a
  preallocated KV cache reused by every ``generate`` call.
- :class:`QuantizeWeights`: int8 (per output channel) or int4 (group-wise) Linears (goldbull_np.nn.quantized).
- :class:`PruneUnusedLayers`: modules that no forward pass reaches (found from the sample input's graph),
  LoRA adapters and bottleneck adapters with zero effect, and the transformer blocks and attention heads
  named by the user.
"""
import copy
import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ..autograd import no_grad
from ..autograd.tensor import Tensor


@dataclass
class PassReport:
    """What one pass did to the model."""

    name: str
    changes: List[str] = field(default_factory=list)
    parameters_before: int = 0
    parameters_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    tokens_per_second_before: Optional[float] = None
    tokens_per_second_after: Optional[float] = None
    max_rel_output_change: Optional[float] = None

    def __str__(self):
        tps = ""
        if self.tokens_per_second_before is not None:
            tps = f", decode {self.tokens_per_second_before:.0f} -> {self.tokens_per_second_after:.0f} tok/s"
        return (f"{self.name}: {'; '.join(self.changes) or 'nothing to change'} ({self.parameters_before:,} -> "
                f"{self.parameters_after:,} values, {self.bytes_before / 2**20:.2f} -> {self.bytes_after / 2**20:.2f} MiB"
                f"{tps})")


def model_size(model):
    """(values, bytes) of every parameter and persistent buffer, shared ones once."""
    seen, n, b = set(), 0, 0
    for t in model.state_dict(keep_vars=True).values():
        if id(t) in seen:
            continue
        seen.add(id(t))
        n += int(t.data.size)
        b += int(t.data.nbytes)
    return n, b


class Pass:
    """Base of the passes: ``apply(model) -> list of change descriptions``; ``exact`` passes keep outputs."""

    exact = True

    @property
    def name(self):
        return type(self).__name__

    def apply(self, model) -> list:  # pragma: no cover - abstract
        raise NotImplementedError


def _replace(model, path, module):
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    parent._modules[leaf] = module


class FuseLinearLayers(Pass):
    """LoRA merged into the base weights; Linear->Linear and Conv2d->BatchNorm2d pairs of a Sequential folded."""

    def apply(self, model):
        from ..nn import Identity, Linear, Sequential
        from ..nn import lora
        changes = []
        merged = lora.remove_lora(model, merge=True)
        if merged:
            changes.append(f"merged {len(merged)} LoRA-wrapped Linear(s) into their base weights")
        for path, seq in list(model.named_modules()):
            if not isinstance(seq, Sequential):
                continue
            names = list(seq._modules)
            i = 0
            while i + 1 < len(names):
                a, b = seq._modules[names[i]], seq._modules[names[i + 1]]
                if type(a) is Linear and type(b) is Linear:
                    seq._modules[names[i]] = _fold_linears(a, b)
                    seq._modules[names[i + 1]] = Identity()
                    changes.append(f"folded {path}.{names[i]} and {path}.{names[i + 1]} into one Linear")
                elif _is_conv_bn(a, b):
                    seq._modules[names[i]] = _fold_conv_bn(a, b)
                    seq._modules[names[i + 1]] = Identity()
                    changes.append(f"folded BatchNorm2d {path}.{names[i + 1]} into Conv2d {path}.{names[i]}")
                i += 1
        for path, blk in list(model.named_modules()):  # convolutions followed by a norm inside a block
            for conv_name, bn_name in _conv_norm_pairs(blk):
                conv, bn = blk._modules[conv_name], blk._modules[bn_name]
                if _is_conv_bn(conv, bn):
                    blk._modules[conv_name] = _fold_conv_bn(conv, bn)
                    blk._modules[bn_name] = Identity()
                    changes.append(f"folded BatchNorm2d {path}.{bn_name} into Conv2d {path}.{conv_name}")
        return changes


def _conv_norm_pairs(module):
    """(conv, norm) child names of a block whose forward applies the norm right after the conv."""
    from ..vision.model import BasicBlock
    return [("conv1", "bn1"), ("conv2", "bn2")] if type(module) is BasicBlock else []


def _fold_linears(a, b):
    """b(a(x)) = x (W_b W_a)^T + (W_b b_a + b_b) as one Linear."""
    from ..nn import Linear
    W = b.weight.data.astype(np.float64) @ a.weight.data.astype(np.float64)  # (out_b, in_a)
    bias = np.zeros(b.out_features) if a.bias is None else b.weight.data.astype(np.float64) @ a.bias.data
    if b.bias is not None:
        bias = bias + b.bias.data
    has_bias = a.bias is not None or b.bias is not None
    lin = Linear(a.in_features, b.out_features, bias=has_bias)
    lin.weight.data = W.astype(a.weight.data.dtype)
    if has_bias:
        lin.bias.data = bias.astype(a.weight.data.dtype)
    return lin


def _is_conv_bn(a, b):
    try:
        from ..nn.conv import BatchNorm2d, Conv2d
    except ImportError:  # pragma: no cover - the vision layers are part of nn
        return False
    return (type(a) is Conv2d and type(b) is BatchNorm2d and b.track_running_stats and b.running_mean is not None
            and b.num_features == a.out_channels)


def _fold_conv_bn(conv, bn):
    """bn(conv(x)) in eval mode as one Conv2d: W' = W * g / sqrt(var + eps), b' = (b - mean) g / sqrt(...) + beta."""
    folded = copy.deepcopy(conv)
    g = bn.weight.data.astype(np.float64) if bn.affine else np.ones(bn.num_features)
    beta = bn.bias.data.astype(np.float64) if bn.affine else np.zeros(bn.num_features)
    inv = g / np.sqrt(bn.running_var.data.astype(np.float64) + bn.eps)  # (OC,)
    w = conv.weight.data.astype(np.float64) * inv[:, None, None, None]
    b0 = conv.bias.data.astype(np.float64) if conv.bias is not None else np.zeros(conv.out_channels)
    from ..nn.parameter import Parameter
    folded.weight = Parameter(w.astype(conv.weight.data.dtype))
    folded.bias = Parameter(((b0 - bn.running_mean.data) * inv + beta).astype(conv.weight.data.dtype))
    return folded


class QuantizeWeights(Pass):
    """int8 (per output channel) or int4 (group-wise) weights for every plain Linear but a tied head."""

    exact = False

    def __init__(self, bits=8, group_size=32):
        if bits not in (4, 8):
            raise ValueError(f"QuantizeWeights: bits must be 4 or 8, got {bits!r}")
        self.bits, self.group_size = bits, group_size

    @property
    def name(self):
        return f"QuantizeWeights(int{self.bits})"

    def apply(self, model):
        from ..nn.quantized import quantize_model
        cfg = quantize_model(model, bits=self.bits, group_size=self.group_size)
        return [f"{len(cfg['modules'])} Linear(s) to int{self.bits}"] if cfg else []


class OptimizeAttention(Pass):
    """Every attention on the fused kernel, with a preallocated KV cache for generation; grouped K/V heads
    stay grouped (the kernel reads each K/V head once for its group of query heads).

    Args:
        batch_sizes: the batch sizes to keep a KV cache for (reused by every generate call).
    """

    def __init__(self, batch_sizes=(1,)):
        self.batch_sizes = tuple(int(b) for b in batch_sizes)

    def apply(self, model):
        from ..nn.transformer import CausalSelfAttention
        attn = [(p, m) for p, m in model.named_modules() if isinstance(m, CausalSelfAttention)]
        other = sorted({type(m).__name__ for _, m in model.named_modules()
                        if "attention" in type(m).__name__.lower() and not isinstance(m, CausalSelfAttention)})
        if other:
            raise ValueError(f"OptimizeAttention: attention module(s) {other} do not run on the fused kernel")
        changes = []
        if attn:
            m0 = attn[0][1]
            changes.append(f"{len(attn)} attention module(s) on the fused kernel, {m0.n_head} query heads over "
                           f"{m0.n_kv_head} K/V heads" + (" (grouped, kept grouped)" if m0.n_kv_head < m0.n_head else ""))
        if callable(getattr(model, "preallocate_kv_cache", None)):
            held = model.preallocate_kv_cache(self.batch_sizes)
            changes.append(f"preallocated KV caches for batch size(s) {list(self.batch_sizes)} ({held / 2**20:.2f} MiB), "
                           "reused by every generate call")
        return changes


class PruneUnusedLayers(Pass):
    """Modules no forward pass reaches, adapters with zero effect, and the transformer blocks ``layers``.

    Args:
        layers: indices of transformer blocks to remove (``model.layers``; the config's n_layer follows).
        heads: ``{block index: [head indices]}`` attention heads to remove (multi-head attention, the same
            number from every block, since the config has one n_head; head_dim is kept).
    """

    def __init__(self, layers=(), heads=None):
        self.layers = sorted(set(int(i) for i in layers))
        self.heads = {int(k): sorted(set(int(h) for h in v)) for k, v in (heads or {}).items()}
        self.sample = None  # set by ModelOptimizer: the input that finds unreached modules

    def apply(self, model):
        from ..nn import lora
        from ..nn.adapters import AdapterTransformerBlock
        changes = []
        idle = [path for path, m in lora.lora_modules(model)
                if not any(np.any(pair.lora_B.data) for pair in m.lora.values()) and not m.use_dora]
        if idle:
            removed = lora.remove_lora(model, merge=False)
            lora.restore_lora(model, {p: m for p, m in removed.items() if p not in idle}, unmerge=False)
            changes.append(f"removed {len(idle)} LoRA adapter(s) whose B is zero")
        for i, blk in enumerate(getattr(model, "layers", ())):
            if isinstance(blk, AdapterTransformerBlock) and all(
                    not np.any(a.up_proj.weight.data) and (a.up_proj.bias is None or not np.any(a.up_proj.bias.data))
                    for a in (blk.attn_adapter, blk.mlp_adapter) if a is not None):
                model.layers._modules[str(i)] = _plain_block(blk)
                changes.append(f"removed the zero-effect bottleneck adapters of layers.{i}")
        if self.heads:
            changes.append(self._drop_heads(model))
        if self.layers:
            changes.append(self._drop_blocks(model))
        if self.sample is not None:
            changes += self._drop_unreached(model)
        return changes

    def _drop_blocks(self, model):
        import dataclasses
        blocks = model.layers
        n = len(blocks)
        bad = [i for i in self.layers if not 0 <= i < n]
        if bad or len(self.layers) >= n:
            raise ValueError(f"PruneUnusedLayers: layers {self.layers} do not leave at least one of the {n} blocks")
        kept = [blocks._modules[str(i)] for i in range(n) if i not in self.layers]
        blocks._modules.clear()
        for i, blk in enumerate(kept):
            blocks._modules[str(i)] = blk
        if hasattr(model, "config") and dataclasses.is_dataclass(model.config):
            object.__setattr__(model, "config", dataclasses.replace(model.config, n_layer=len(kept)))
        return f"removed transformer block(s) {self.layers} (n_layer {n} -> {len(kept)})"

    def _drop_heads(self, model):
        """Remove the named heads: their q, k and v rows of qkv_proj and their columns of o_proj."""
        import dataclasses

        from ..nn import Linear
        blocks = model.layers
        counts = {len(v) for v in self.heads.values()}
        if set(self.heads) != set(range(len(blocks))) or len(counts) != 1:
            raise ValueError(f"PruneUnusedLayers: heads must name the same number of heads in every one of the "
                             f"{len(blocks)} blocks (the config has one n_head), got {self.heads}")
        for i, drop in self.heads.items():
            attn = blocks._modules[str(i)].attn
            H, Hkv, D = attn.n_head, attn.n_kv_head, attn.head_dim
            if Hkv != H:
                raise ValueError(f"PruneUnusedLayers: layers.{i} has grouped K/V heads ({H} query over {Hkv}); "
                                 "head pruning is for multi-head attention")
            if type(attn.qkv_proj) is not Linear or type(attn.o_proj) is not Linear:
                raise ValueError(f"PruneUnusedLayers: layers.{i}'s projections are wrapped (LoRA?): run "
                                 "FuseLinearLayers first")
            bad = [h for h in drop if not 0 <= h < H]
            if bad or len(drop) >= H:
                raise ValueError(f"PruneUnusedLayers: heads {drop} of layers.{i} do not leave one of its {H} heads")
            keep = [h for h in range(H) if h not in drop]
            rows = np.concatenate([np.arange(part * H * D + h * D, part * H * D + (h + 1) * D)
                                   for part in range(3) for h in keep])  # q | k | v of the kept heads
            cols = np.concatenate([np.arange(h * D, (h + 1) * D) for h in keep])
            q, o = attn.qkv_proj, attn.o_proj
            attn.qkv_proj = _sliced_linear(q, rows=rows)
            attn.o_proj = _sliced_linear(o, cols=cols)
            attn.n_head = attn.n_kv_head = len(keep)
        k = counts.pop()
        c = model.config
        object.__setattr__(model, "config", dataclasses.replace(c, n_head=c.n_head - k, n_kv_head=c.n_kv_head - k,
                                                                head_dim=c.head_dim))
        return f"removed {k} attention head(s) from each of {len(blocks)} blocks (n_head {c.n_head} -> {c.n_head - k})"

    def _drop_unreached(self, model):
        """Remove the outermost modules whose parameters the forward's autograd graph never reaches (read
        from the graph, since fused ops use a module's weights without calling its forward); each removal
        is kept only if the forward still runs and gives the same outputs."""
        from ..autograd import enable_grad
        from ..nn.quantized import QuantizedLinear
        if any(isinstance(m, QuantizedLinear) for m in model.modules()):
            return ["unreached-module search skipped: quantised layers cut the graph (prune before QuantizeWeights)"]
        params = [p for p in model.parameters()]
        flags = [p.requires_grad for p in params]
        try:
            for p in params:
                p.requires_grad = True
            with enable_grad():
                out = model(self.sample)
            out = out[0] if isinstance(out, tuple) else out
            reached = _graph_leaves(out)
        finally:
            for p, f in zip(params, flags):
                p.requires_grad = f
        mods = dict(model.named_modules())
        unreached = [path for path, m in mods.items() if path and list(m.parameters())
                     and not any(id(p) in reached for p in m.parameters())]
        roots = [p for p in unreached if not any(p.startswith(q + ".") for q in unreached if q != p)]
        before = _outputs(model, self.sample)
        removed, kept = [], []
        for path in roots:
            parent_path, _, leaf = path.rpartition(".")
            parent = model.get_submodule(parent_path) if parent_path else model
            module = parent._modules.pop(leaf)
            try:
                ok = np.array_equal(_outputs(model, self.sample), before)
            except (AttributeError, KeyError, TypeError):
                ok = False
            if ok:
                removed.append(path)
            else:
                parent._modules[leaf] = module
                kept.append(path)
        out = [f"removed {len(removed)} module(s) no forward pass reaches: {', '.join(removed)}"] if removed else []
        if kept:
            out.append(f"kept {', '.join(kept)}: unreached by the sample, but the forward refers to them")
        return out


def _graph_leaves(out):
    """ids of the leaf Tensors (parameters) the autograd graph of ``out`` reaches."""
    leaves, seen = set(), set()
    stack = [out.grad_fn] if out.grad_fn is not None else []
    while stack:
        fn = stack.pop()
        for node in fn.next_functions:
            if node is None:
                continue
            if isinstance(node, Tensor):
                leaves.add(id(node))
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append(node)
    return leaves


def _sliced_linear(lin, rows=None, cols=None):
    """A Linear holding the given output rows / input columns of ``lin``."""
    from ..nn import Linear
    w = lin.weight.data
    w = w[rows] if rows is not None else w
    w = w[:, cols] if cols is not None else w
    out = Linear(w.shape[1], w.shape[0], bias=lin.bias is not None)
    out.weight.data = np.ascontiguousarray(w)
    if lin.bias is not None:
        out.bias.data = np.ascontiguousarray(lin.bias.data[rows] if rows is not None else lin.bias.data)
    return out


def _plain_block(blk):
    from ..nn.transformer import TransformerBlock
    plain = TransformerBlock.__new__(TransformerBlock)
    plain.__dict__.update({k: v for k, v in blk.__dict__.items()})
    plain._modules = {k: v for k, v in blk._modules.items() if k not in ("attn_adapter", "mlp_adapter")}
    return plain


class ModelOptimizer:
    """An ordered list of passes applied to a copy of a model (see the module docstring)."""

    def __init__(self):
        self.passes: List[Pass] = []
        self.reports: List[PassReport] = []

    def add_pass(self, p: Pass) -> "ModelOptimizer":
        if not isinstance(p, Pass):
            raise TypeError(f"add_pass takes a goldbull_np.export.optimize.Pass, got {type(p).__name__}")
        self.passes.append(p)
        return self

    def optimize(self, model, sample_input=None, *, measure: bool = True, tolerance: float = 1e-4,
                 decode_tokens: int = 32):
        """Apply the passes to a copy of ``model``; returns the optimised copy.

        Args:
            model: the model (unchanged).
            sample_input: an input for the output checks (default for a language model: 2 x 16 token ids).
            measure: measure batch-1 decode tokens/s before and after each pass (language models).
            tolerance: the largest relative change of the outputs an exact pass may cause.
        """
        work = copy.deepcopy(model)
        work.eval()
        sample = _default_sample(work) if sample_input is None else sample_input
        reference = _outputs(work, sample)
        can_decode = measure and hasattr(work, "generate")
        tps = _decode_tps(work, decode_tokens) if can_decode else None
        self.reports = []
        for p in self.passes:
            if isinstance(p, PruneUnusedLayers):
                p.sample = sample
            n0, b0 = model_size(work)
            changes = p.apply(work)
            n1, b1 = model_size(work)
            out = _outputs(work, sample)  # compared with the outputs before this pass
            rel = float(np.abs(out - reference).max() / (np.abs(reference).max() + 1e-12)) \
                if out.shape == reference.shape else float("inf")
            reference = out
            pruned_blocks = isinstance(p, PruneUnusedLayers) and (p.layers or p.heads)
            if p.exact and not pruned_blocks and rel > tolerance:
                raise RuntimeError(f"{p.name} changed the outputs by {rel:.2e} (relative), above {tolerance}: "
                                   f"its changes were {changes}")
            after = _decode_tps(work, decode_tokens) if can_decode else None
            self.reports.append(PassReport(p.name, changes, n0, n1, b0, b1, tps, after, rel))
            tps = after
        object.__setattr__(work, "optimization_report", list(self.reports))
        return work


def _default_sample(model):
    c = getattr(model, "config", None)
    if c is not None and hasattr(c, "vocab_size"):
        return np.random.default_rng(0).integers(0, c.vocab_size, (2, min(16, getattr(c, "block_size", 16))))
    raise ValueError("ModelOptimizer.optimize: pass sample_input= for a model that is not a language model")


def _outputs(model, sample):
    with no_grad():
        out = model(sample)
    out = out[0] if isinstance(out, tuple) else out
    return np.asarray(out.data if isinstance(out, Tensor) else out, dtype=np.float64)


def _decode_tps(model, n):
    prompt = np.zeros((1, 4), np.int64)
    n = max(1, min(n, model.config.block_size - 4))
    model.generate(prompt, max_new_tokens=2, temperature=0)
    t = time.perf_counter()
    model.generate(prompt, max_new_tokens=n, temperature=0)
    return n / (time.perf_counter() - t)


__all__ = ["ModelOptimizer", "Pass", "PassReport", "FuseLinearLayers", "OptimizeAttention", "QuantizeWeights",
           "PruneUnusedLayers",
           "model_size"]
