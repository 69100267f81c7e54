"""Weight quantisation for inference: ``QuantizedLinear`` (int8, or int4 stored and widened at load) and the
model-level ``quantize_model`` / on-disk ``quantization_config.json``.

int8: symmetric per output channel, ``scale[o] = max_k |W[o, k]| / 127``, ``qweight = rint(W / scale)``;
the forward quantises each activation row on the fly and runs the ``int8_linear_forward`` kernel (int32
sums of int8 products: exact integer dots, then rescaled), so weights stay 1 byte in memory.
int4: symmetric per group of ``group_size`` inputs of each output row, ``scale = max |W| / 7``, values in
[-7, 7] packed two per byte (low nibble first); the file is ~1/8 of float32, and at load the weight is
widened back to float32 (group scales do not fit the per-channel int8 kernel), so int4 saves disk, not RAM.

A quantised model directory holds ``config.json`` (the model's own), ``quantization_config.json``
(``{"quant_method": "goldbull", "bits": 8 | 4, "group_size": ..., "modules": [...]}``) and
``model.safetensors`` with ``<module>.qweight`` / ``<module>.scale`` (/ ``<module>.bias``) for each
quantised Linear; ``from_pretrained`` reads it back (model_base).
"""
import numpy as np

from .. import kernels
from ..autograd.tensor import Tensor
from .layers import Linear
from .module import Module

QUANT_CONFIG_NAME = "quantization_config.json"
BITS = (4, 8)


def quantize_int8(w):
    """w (OC, K) float -> (qweight (OC, K) int8, scale (OC,) float32)."""
    w = np.asarray(w, dtype=np.float32)
    m = np.max(np.abs(w), axis=1) if w.shape[1] else np.zeros(w.shape[0], np.float32)
    scale = np.where(m > 0, m / np.float32(127), np.float32(1)).astype(np.float32)
    return np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8), scale


def quantize_int4(w, group_size=32):
    """w (OC, K) float -> (packed (OC, ceil(K/2)) uint8, scale (OC, ceil(K/group_size)) float32)."""
    w = np.asarray(w, dtype=np.float32)
    OC, K = w.shape
    G = -(-K // group_size)
    padded = np.zeros((OC, G * group_size), np.float32)
    padded[:, :K] = w
    groups = padded.reshape(OC, G, group_size)
    m = np.max(np.abs(groups), axis=2)  # (OC, G)
    scale = np.where(m > 0, m / np.float32(7), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(groups / scale[:, :, None]), -7, 7).astype(np.int8).reshape(OC, -1)[:, :K]  # (OC, K)
    if K % 2:
        q = np.concatenate([q, np.zeros((OC, 1), np.int8)], axis=1)
    nib = (q & 0x0F).astype(np.uint8)  # two's-complement nibbles
    return (nib[:, 0::2] | (nib[:, 1::2] << 4)).astype(np.uint8), scale


def dequantize_int4(packed, scale, in_features, group_size=32):
    """The float32 weight (OC, in_features) of :func:`quantize_int4`'s output."""
    lo = (packed & 0x0F).astype(np.int8)
    hi = (packed >> 4).astype(np.int8)
    q = np.empty((packed.shape[0], packed.shape[1] * 2), np.int8)
    q[:, 0::2], q[:, 1::2] = lo, hi
    q = np.where(q > 7, q - 16, q)[:, :in_features].astype(np.float32)  # sign-extend the nibbles
    G = scale.shape[1]
    full = np.zeros((q.shape[0], G * group_size), np.float32)
    full[:, :in_features] = q
    return (full.reshape(q.shape[0], G, group_size) * scale[:, :, None]).reshape(q.shape[0], -1)[:, :in_features]


class QuantizedLinear(Module):
    """An inference-only Linear with int8 weights (``bits=8``) or int4-stored weights (``bits=4``).

    Args:
        in_features, out_features: as Linear.
        bias: keep a (float32) bias.
        bits: 8 or 4.
        group_size: int4's group of inputs sharing a scale.
    """

    def __init__(self, in_features, out_features, bias=True, bits=8, group_size=32):
        super().__init__()
        if bits not in BITS:
            raise ValueError(f"QuantizedLinear: bits must be one of {BITS}, got {bits!r}")
        self.in_features, self.out_features, self.bits, self.group_size = in_features, out_features, bits, group_size
        if bits == 8:
            self.register_buffer("qweight", Tensor(np.zeros((out_features, in_features), np.int8)))
            self.register_buffer("scale", Tensor(np.ones(out_features, np.float32)))
        else:
            G = -(-in_features // group_size)
            self.register_buffer("qweight", Tensor(np.zeros((out_features, -(-in_features // 2)), np.uint8)))
            self.register_buffer("scale", Tensor(np.ones((out_features, G), np.float32)))
        self.register_buffer("bias", Tensor(np.zeros(out_features, np.float32)) if bias else None)
        self._dense = None  # int4: (version of qweight/scale, the widened float32 weight), made on first use

    @classmethod
    def from_linear(cls, linear: Linear, bits=8, group_size=32) -> "QuantizedLinear":
        """Quantise a Linear's weight (its bias stays float32)."""
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, bits, group_size)
        w = linear.weight.data
        qw, scale = quantize_int8(w) if bits == 8 else quantize_int4(w, group_size)
        q.qweight.data, q.scale.data = qw, scale
        if linear.bias is not None:
            q.bias.data = np.asarray(linear.bias.data, dtype=np.float32).copy()
        return q

    def dequantized_weight(self) -> np.ndarray:
        """The float32 weight this layer computes with (OC, in_features)."""
        if self.bits == 8:
            return self.qweight.data.astype(np.float32) * self.scale.data[:, None]
        return dequantize_int4(self.qweight.data, self.scale.data, self.in_features, self.group_size)

    def forward(self, x):
        """x (..., in_features) -> (..., out_features), float32, with no gradient."""
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        if data.shape[-1] != self.in_features:
            raise ValueError(f"QuantizedLinear: input of shape {data.shape} does not end in {self.in_features}")
        x2 = np.ascontiguousarray(data.reshape(-1, self.in_features), dtype=np.float32)  # (N, K)
        bias = None if self.bias is None else self.bias.data
        if self.bits == 8:
            out = kernels.get("int8_linear_forward", np.float32)(x2, self.qweight.data, self.scale.data, bias)
        else:
            version = (self.qweight._version[0], self.scale._version[0], id(self.qweight.data), id(self.scale.data))
            if self._dense is None or self._dense[0] != version:
                self._dense = (version, np.ascontiguousarray(self.dequantized_weight()))
            out = kernels.get("linear_forward", np.float32)(x2, self._dense[1], bias)
        return Tensor(out.reshape(*data.shape[:-1], self.out_features))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}"
                + (f", group_size={self.group_size}" if self.bits == 4 else ""))


def quantization_config(model):
    """The quantization_config.json dict of a model holding QuantizedLinear modules, or None."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, QuantizedLinear)]
    if not found:
        return None
    kinds = {(m.bits, m.group_size if m.bits == 4 else None) for _, m in found}
    if len(kinds) > 1:
        raise ValueError(f"a model with mixed quantisation {sorted(kinds)} has no single quantization_config")
    bits, group = kinds.pop()
    return {"quant_method": "goldbull", "bits": bits, "group_size": group, "modules": [n for n, _ in found]}


def quantizable_linears(model, skip_tied=True):
    """``[(path, Linear)]`` of the model's plain Linears, without one whose weight is shared (a tied head)."""
    counts = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        counts[id(p)] = counts.get(id(p), 0) + 1
    return [(name, m) for name, m in model.named_modules()
            if type(m) is Linear and not (skip_tied and counts.get(id(m.weight), 0) > 1)]


def quantize_model(model, bits=8, group_size=32, modules=None):
    """Replace the model's Linears (all of them, or the ``modules`` paths) by QuantizedLinear, in place.

    Returns:
        The quantization config dict (what ``quantization_config.json`` holds).
    """
    if bits not in BITS:
        raise ValueError(f"quantize: bits must be one of {BITS}, got {bits!r}")
    targets = dict(quantizable_linears(model))
    names = sorted(targets) if modules is None else list(modules)
    unknown = [n for n in names if n not in targets]
    if unknown:
        raise ValueError(f"quantize: {unknown} are not quantizable Linears of the model (known: {sorted(targets)})")
    for name in names:
        _replace(model, name, QuantizedLinear.from_linear(targets[name], bits, group_size))
    return quantization_config(model)


def prepare_quantized(model, qconfig: dict, source="quantization_config.json"):
    """Replace the named Linears by empty QuantizedLinear shells (to be filled by load_weights)."""
    bits, names = qconfig.get("bits"), qconfig.get("modules")
    if bits not in BITS or not isinstance(names, list):
        raise ValueError(f"{source}: expected bits in {BITS} and a list of modules, got {qconfig!r}")
    group = qconfig.get("group_size") or 32
    targets = dict(quantizable_linears(model))
    unknown = [n for n in names if n not in targets]
    if unknown:
        raise ValueError(f"{source}: module(s) {unknown} are not Linears of this model")
    for name in names:
        lin = targets[name]
        _replace(model, name, QuantizedLinear(lin.in_features, lin.out_features, lin.bias is not None, bits, group))
    return model


def _replace(model, path, module):
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    parent._modules[leaf] = module


__all__ = ["QuantizedLinear", "quantize_model", "quantization_config", "prepare_quantized", "quantize_int8", "quantize_int4",
           "dequantize_int4", "quantizable_linears", "QUANT_CONFIG_NAME"]
