"""BertModel: the BERT-family encoder (BERT, MiniLM, all-MiniLM-L6-v2, ...) on goldbull_np.

Embeddings (tokens + token types + learned positions, LayerNorm), then post-norm blocks
``x = attn_norm(x + attn(x, padding mask))``, ``x = mlp_norm(x + down_proj(gelu(up_proj(x))))``,
bidirectional attention whose padded keys are masked. It loads Hugging Face BERT directories
(config.json + model.safetensors, optionally tokenizer.json for WordPiece through ``tokenizers``)
and writes them back in the same format, so ``save_pretrained`` output loads in transformers too.

Module names (HF -> goldbull, "bert." prefix optional)::

    embeddings.{word,position,token_type}_embeddings   -> embeddings.{word,position,token_type}_embeddings
    embeddings.LayerNorm (weight|gamma, bias|beta)      -> embeddings.norm
    encoder.layer.{i}.attention.self.{query,key,value}  -> layers.{i}.attn.qkv_proj  (rows q | k | v)
    encoder.layer.{i}.attention.output.dense            -> layers.{i}.attn.o_proj
    encoder.layer.{i}.attention.output.LayerNorm        -> layers.{i}.attn_norm
    encoder.layer.{i}.intermediate.dense                -> layers.{i}.mlp.up_proj
    encoder.layer.{i}.output.dense                      -> layers.{i}.mlp.down_proj
    encoder.layer.{i}.output.LayerNorm                  -> layers.{i}.mlp_norm
    pooler.dense                                        -> pooler  (absent in some checkpoints)

LoRA (``goldbull_np.nn.lora``) targets q_proj, k_proj, v_proj (slices of the fused qkv_proj) and
o_proj by name, as in GoldbullText. Attention-probability dropout (``attention_probs_dropout_prob``)
is not applied (the fused attention kernel has none); hidden dropout is.
Legend: B batch, T tokens, C hidden_size, H heads, D = C // H.
"""
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from .. import random as _random
from .._config_io import read_json
from ..autograd.functions.nn import Attention
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..io import save_safetensors
from ..nn import init
from ..nn.containers import ModuleList
from ..nn.layers import Dropout, Embedding, LayerNorm, Linear
from ..nn.model_base import CONFIG_NAME, WEIGHTS_NAME, PretrainedConfig, PreTrainedModel, register_model_type
from ..nn.module import Module
from ..nn.transformer import MLP
from .model import token_ids

MODEL_TYPE = "bert"
_GELU = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
# HF fields that change what the model computes and that this encoder does not implement
_REFUSED = {"position_embedding_type": ("absolute",), "is_decoder": (False,), "add_cross_attention": (False,),
            "chunk_size_feed_forward": (0,)}


@dataclass
class BertConfig(PretrainedConfig):
    """Hyperparameters of the encoder, under Hugging Face's BertConfig names (config.json is HF's).

    Defaults are bert-base-uncased's.
    """

    model_type: ClassVar[str] = MODEL_TYPE
    architecture: ClassVar[str] = "BertModel"

    vocab_size: int = 30522
    hidden_size: int = 768                  # C
    num_hidden_layers: int = 12
    num_attention_heads: int = 12           # H; head dim = C / H
    intermediate_size: int = 3072           # MLP inner size
    hidden_act: str = "gelu"                # "gelu" (exact erf) | "gelu_new" / "gelu_pytorch_tanh" (tanh)
    hidden_dropout_prob: float = 0.1        # embedding and residual-branch dropout (training only)
    attention_probs_dropout_prob: float = 0.1  # accepted for HF parity; not applied (see module doc)
    max_position_embeddings: int = 512      # longest input, [CLS] and [SEP] included
    type_vocab_size: int = 2                # segment ids in [0, type_vocab_size)
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02         # N(0, std) init of weights (models built from scratch)
    add_pooling_layer: bool = True          # the tanh(dense([CLS])) pooler
    num_labels: int = 2                     # BertForSequenceClassification's classes
    classifier_dropout: Optional[float] = None  # None: hidden_dropout_prob

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size", "num_labels"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {v!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads})")
        if self.hidden_act not in _GELU:
            raise ValueError(f"BertConfig.hidden_act must be one of {sorted(_GELU)}, got {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BertConfig.{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def head_dim(self):
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf_dict(cls, d, source="config.json"):
        """A BertConfig from an HF config.json dict: known fields are read, the bookkeeping ones
        (``_name_or_path``, ``transformers_version``, ``id2label``, ...) ignored, and fields that would
        make transformers compute something else (a relative position type, a decoder, ...) refused."""
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(d).__name__}")
        for name, ok in _REFUSED.items():
            if name in d and d[name] not in ok:
                raise ValueError(f"{source}: config field {name}={d[name]!r} is not supported: the encoder "
                                 f"implements {name}={ok[0]!r} only")
        act = d.get("hidden_act", "gelu")
        if act not in _GELU:
            raise ValueError(f"{source}: config field hidden_act={act!r} is not supported: only "
                             f"{', '.join(sorted(_GELU))}")
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "num_labels" not in kw and isinstance(d.get("id2label"), dict) and d["id2label"]:
            kw["num_labels"] = len(d["id2label"])
        try:
            return cls(**kw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["id2label"] = {str(i): f"LABEL_{i}" for i in range(self.num_labels)}
        d["label2id"] = {f"LABEL_{i}": i for i in range(self.num_labels)}
        return d

    @classmethod
    def from_dict(cls, d, source="config"):
        d = dict(d)
        d.pop("id2label", None), d.pop("label2id", None)
        return super().from_dict(d, source)




class BertEmbeddings(Module):
    """``norm(word(ids) + position(0..T-1) + token_type(tt))`` then dropout: (B, T) -> (B, T, C)."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id
                                         if 0 <= c.pad_token_id < c.vocab_size else None)
        self.position_embeddings = Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.drop = Dropout(c.hidden_dropout_prob) if c.hidden_dropout_prob > 0 else None

    def forward(self, ids, token_type_ids):
        T = ids.shape[1]
        x = self.word_embeddings(ids) + self.position_embeddings(np.arange(T)) \
            + self.token_type_embeddings(token_type_ids)  # (B,T,C)
        x = self.norm(x)
        return self.drop(x) if self.drop is not None else x


class BertSelfAttention(Module):
    """Bidirectional multi-head attention with a fused q|k|v projection; padded keys are masked.

    ``n_head``/``n_kv_head``/``head_dim`` let LoRA address q_proj, k_proj, v_proj as slices of qkv_proj."""

    def __init__(self, c: BertConfig):
        super().__init__()
        C = c.hidden_size
        self.n_head = self.n_kv_head = c.num_attention_heads
        self.head_dim = c.head_dim
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv_proj = Linear(C, 3 * C)
        self.o_proj = Linear(C, C)

    def forward(self, x, key_padding_mask=None):
        """x (B, T, C); key_padding_mask (B, T) bool, True = a real token (None: no padding)."""
        B, T, C = x.shape
        H, D = self.n_head, self.head_dim
        qkv = self.qkv_proj(x).reshape(B, T, 3 * H, D).permute(0, 2, 1, 3)  # (B,3H,T,D)
        q, k, v = qkv.split([H, H, H], dim=1)  # (B,H,T,D) each
        y = Attention.apply(q, k, v, scale=self.scale, key_padding_mask=key_padding_mask)  # (B,H,T,D)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))  # (B,T,C)


class BertLayer(Module):
    """Post-norm block: ``x = attn_norm(x + drop(attn(x)))``, ``x = mlp_norm(x + drop(mlp(x)))``."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.attn = BertSelfAttention(c)
        self.attn_norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = MLP(c.hidden_size, c.intermediate_size, kind="gelu", bias=True,
                       gelu_approximate=_GELU[c.hidden_act])
        self.mlp_norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.drop = Dropout(c.hidden_dropout_prob) if c.hidden_dropout_prob > 0 else None

    def forward(self, x, key_padding_mask=None):
        a = self.attn(x, key_padding_mask)  # (B,T,C)
        x = self.attn_norm(x + (self.drop(a) if self.drop is not None else a))
        m = self.mlp(x)  # (B,T,C)
        return self.mlp_norm(x + (self.drop(m) if self.drop is not None else m))


class BertModel(PreTrainedModel):
    """The encoder: ``model(input_ids, attention_mask=None, token_type_ids=None, output_hidden_states=False)``.

    ``BertModel.from_pretrained(dir)`` loads a Hugging Face BERT/MiniLM directory (safetensors; a
    ``tokenizer.json`` beside it becomes ``model.tokenizer``, a :class:`goldbull_np.text.bert_tokenizer.
    BertTokenizer`); ``save_pretrained(dir)`` writes the same format back.

    Args:
        config: a BertConfig.
    """

    config_class = BertConfig

    def __init__(self, config: Optional[BertConfig] = None):
        super().__init__()
        config = BertConfig() if config is None else config
        if not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = Linear(config.hidden_size, config.hidden_size) if config.add_pooling_layer else None
        object.__setattr__(self, "tokenizer", None)
        self.init_weights()

    def init_weights(self):
        """BERT's init: N(0, initializer_range) for Linear and Embedding weights, zero biases, norms at 1."""
        std = self.config.initializer_range
        for m in self.modules():
            if isinstance(m, (Linear, Embedding)):
                init.normal_(m.weight, 0.0, std)
                if isinstance(m, Linear) and m.bias is not None:
                    init.zeros_(m.bias)
                if isinstance(m, Embedding) and m.padding_idx is not None:
                    m.weight.data[m.padding_idx] = 0
            elif isinstance(m, LayerNorm):
                m.reset_parameters()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states=False):
        """Contextual embeddings.

        Args:
            input_ids: (B, T) ints (array or Tensor; (T,) is one row). T <= max_position_embeddings:
                longer inputs raise (the tokenizer truncates to it).
            attention_mask: (B, T) 1 = token, 0 = padding (any position); None = no padding.
            token_type_ids: (B, T) segment ids; None = zeros.
            output_hidden_states: also return every layer's output.
        Returns:
            The last hidden state (B, T, C); with ``output_hidden_states``, ``(last, hidden_states)``
            where ``hidden_states`` is a tuple of num_hidden_layers + 1 (B, T, C) Tensors, the
            embeddings' output first (as transformers' ``hidden_states``; bert-score's layer k is [k]).
        """
        ids = token_ids(input_ids, "input_ids")
        B, T = ids.shape
        c = self.config
        if T > c.max_position_embeddings:
            raise ValueError(f"input of {T} tokens is longer than the encoder's {c.max_position_embeddings} "
                             "positions (max_position_embeddings); truncate it (the tokenizer does)")
        if ids.size and (ids.min() < 0 or ids.max() >= c.vocab_size):
            raise IndexError(f"input_ids must be in [0, {c.vocab_size}), got values in [{ids.min()}, {ids.max()}]")
        tt = np.zeros_like(ids) if token_type_ids is None else token_ids(token_type_ids, "token_type_ids")
        if tt.shape != ids.shape:
            raise ValueError(f"token_type_ids of shape {tt.shape} do not match input_ids of shape {ids.shape}")
        if tt.size and (tt.min() < 0 or tt.max() >= c.type_vocab_size):
            raise IndexError(f"token_type_ids must be in [0, {c.type_vocab_size})")
        kpm = None
        if attention_mask is not None:
            m = np.asarray(attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask)
            m = m[None, :] if m.ndim == 1 else m
            if m.shape != ids.shape:
                raise ValueError(f"attention_mask of shape {m.shape} does not match input_ids of shape {ids.shape}")
            kpm = m != 0  # (B,T) True = may attend
            if kpm.all():
                kpm = None
        x = self.embeddings(ids, tt)  # (B,T,C)
        hidden = [x]
        depth = self.__dict__.get("_depth")
        for layer in (self.layers if depth is None else list(self.layers)[:depth]):
            x = layer(x, kpm)  # (B,T,C)
            hidden.append(x)
        return (x, tuple(hidden)) if output_hidden_states else x

    def layer_output(self, input_ids, attention_mask=None, layer=None, token_type_ids=None):
        """``hidden_states[layer]`` (B, T, C) computing only the first ``layer`` blocks (0 = the
        embeddings' output; None = the last layer): what bert-score's ``num_layers`` reads."""
        L = self.config.num_hidden_layers
        layer = L if layer is None else layer
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer <= L:
            raise ValueError(f"layer must be an integer in [0, {L}] (0 = embeddings), got {layer!r}")
        try:
            object.__setattr__(self, "_depth", int(layer))
            return self(input_ids, attention_mask, token_type_ids)
        finally:
            object.__setattr__(self, "_depth", None)

    def pooled_output(self, last_hidden_state):
        """BERT's pooler: tanh(pooler([CLS] state)) (B, C); needs ``add_pooling_layer``."""
        if self.pooler is None:
            raise ValueError("this BertModel has no pooler (add_pooling_layer=False / none in the checkpoint)")
        return self.pooler(last_hidden_state[:, 0]).tanh()

    @staticmethod
    def mean_pool(last_hidden_state, attention_mask=None):
        """Mean of the token states where ``attention_mask`` is 1 (sentence-transformers' pooling): (B, C)."""
        h = last_hidden_state
        if attention_mask is None:
            return h.mean(1)
        m = np.asarray(attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask,
                       dtype=h.dtype)  # (B,T)
        denom = np.maximum(m.sum(1, keepdims=True), 1e-9)  # (B,1)
        return (h * Tensor._make(m[:, :, None], False, None)).sum(1) / Tensor._make(denom, False, None)

    def encode(self, texts, batch_size=32, normalize=True, max_length=None):
        """Sentence embeddings (N, C) float32 of a list of strings: tokenizer -> encoder -> mean pooling
        (-> L2 normalisation): all-MiniLM-L6-v2's recipe. Runs in eval mode without a graph."""
        tok = self._need_tokenizer()
        out = []
        was = self.training
        self.eval()
        try:
            with no_grad():
                for i in range(0, len(texts), batch_size):
                    enc = tok(texts[i:i + batch_size], max_length=max_length)
                    h = self(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
                    e = self.mean_pool(h, enc["attention_mask"]).data
                    if normalize:
                        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
                    out.append(e)
        finally:
            self.train(was)
        return np.concatenate(out, 0) if out else np.zeros((0, self.config.hidden_size), np.float32)

    def _need_tokenizer(self):
        tok = self.__dict__.get("tokenizer")
        if tok is None:
            raise ValueError("this BertModel has no tokenizer (load a directory with tokenizer.json, or set "
                             "model.tokenizer = BertTokenizer.from_file(path))")
        return tok

    # ---- parameter-efficient fine-tuning ----------------------------------------------------------
    def add_lora_adapters(self, config=None):
        """LoRA on the named Linears (default q_proj, k_proj, v_proj, o_proj); see ``nn.lora``."""
        from ..nn import lora
        return lora.add_lora_adapters(self, config)

    def get_lora_parameters(self):
        from ..nn import lora
        return lora.get_lora_parameters(self)

    def merge_lora(self):
        from ..nn import lora
        return lora.merge_lora(self)

    # ---- save / load (Hugging Face's format) --------------------------------------------------------
    def hf_state_dict(self, prefix=""):
        """``HF name -> array`` (the inverse of the mapping in the module doc)."""
        return to_hf_state_dict(self, prefix)

    def save_pretrained(self, save_directory) -> None:
        """Write an HF-format directory: config.json (HF BertConfig fields) and model.safetensors with HF
        tensor names (loadable by transformers' BertModel); the tokenizer's tokenizer.json if it has one."""
        _save_hf(self, save_directory, self.hf_state_dict())

    @classmethod
    def from_pretrained(cls, pretrained_dir, device="cpu"):
        """Load an HF BERT directory (or one written by ``save_pretrained``); never downloads.

        Raises:
            FileNotFoundError / ValueError naming the file, an unsupported config field, or each
            missing, unexpected or wrongly shaped tensor.
        """
        if device not in (None, "cpu"):
            raise ValueError(f"only device='cpu' is supported, got {device!r}")
        return load_bert(pretrained_dir, cls)

    def extra_repr(self):
        c = self.config
        return (f"vocab_size={c.vocab_size}, layers={c.num_hidden_layers}, hidden={c.hidden_size}, "
                f"heads={c.num_attention_heads}")


# ---- HF name mapping ------------------------------------------------------------------------------------
def _layer_rules(c: BertConfig):
    """``[(our name, [(hf name, shape)], combine)]`` for the encoder (no "bert." prefix)."""
    C, I, V, P, TV = c.hidden_size, c.intermediate_size, c.vocab_size, c.max_position_embeddings, c.type_vocab_size
    same = lambda a: a[0]  # noqa: E731
    stack = lambda a: np.concatenate(a, axis=0)  # noqa: E731 - q | k | v rows = qkv_proj's layout
    e = "embeddings."
    rules = [(e + "word_embeddings.weight", [(e + "word_embeddings.weight", (V, C))], same),
             (e + "position_embeddings.weight", [(e + "position_embeddings.weight", (P, C))], same),
             (e + "token_type_embeddings.weight", [(e + "token_type_embeddings.weight", (TV, C))], same),
             (e + "norm.weight", [(e + "LayerNorm.weight", (C,))], same),
             (e + "norm.bias", [(e + "LayerNorm.bias", (C,))], same)]
    for i in range(c.num_hidden_layers):
        h, o = f"encoder.layer.{i}.", f"layers.{i}."
        s = h + "attention.self."
        for p, shape in (("weight", (C, C)), ("bias", (C,))):
            rules += [(o + f"attn.qkv_proj.{p}", [(s + f"{n}.{p}", shape) for n in ("query", "key", "value")], stack),
                      (o + f"attn.o_proj.{p}", [(h + f"attention.output.dense.{p}", shape)], same),
                      (o + f"attn_norm.{p}", [(h + f"attention.output.LayerNorm.{p}", (C,))], same),
                      (o + f"mlp.up_proj.{p}", [(h + f"intermediate.dense.{p}", (I, C) if p == "weight" else (I,))],
                       same),
                      (o + f"mlp.down_proj.{p}", [(h + f"output.dense.{p}", (C, I) if p == "weight" else (C,))], same),
                      (o + f"mlp_norm.{p}", [(h + f"output.LayerNorm.{p}", (C,))], same)]
    if c.add_pooling_layer:
        rules += [("pooler.weight", [("pooler.dense.weight", (C, C))], same),
                  ("pooler.bias", [("pooler.dense.bias", (C,))], same)]
    return rules


def _normalise_hf_names(arrays):
    """Old TF-converted checkpoints name LayerNorm parameters gamma/beta."""
    out = {}
    for k, v in arrays.items():
        if ".LayerNorm.gamma" in k or ".LayerNorm.beta" in k:
            k = k.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")
        out[k] = v
    return out


def convert_hf_bert(arrays, config, source="checkpoint", prefix="", extra_rules=(), ignore=None):
    """Map HF tensors onto goldbull names.

    Args:
        arrays: HF ``name -> array`` (the encoder's names with or without ``prefix``, "bert." usually).
        config: the BertConfig.
        extra_rules: more ``(ours, [(hf, shape)], combine)`` rules with full HF names (a head).
        ignore: predicate on HF names that are neither used nor unexpected.
    Raises:
        ValueError listing every missing tensor, unexpected tensor and shape mismatch by HF name.
    """
    arrays = _normalise_hf_names(arrays)
    rules = [(ours, [(prefix + n, s) for n, s in srcs], f) for ours, srcs, f in _layer_rules(config)]
    if prefix and not any(k.startswith(prefix) for k in arrays):  # a bare encoder checkpoint
        rules = _layer_rules(config)
    rules += list(extra_rules)
    from .hf import apply_rules
    out, used, missing, bad = apply_rules(arrays, rules)
    skip = ignore or (lambda k: False)
    unexpected = sorted(k for k in arrays if k not in used and not k.endswith("position_ids") and not skip(k))
    errors = ([f"missing tensor(s) {missing}"] if missing else []) + bad + \
             ([f"unexpected tensor(s) {unexpected}"] if unexpected else [])
    if errors:
        raise ValueError(f"{source}: cannot load BERT weights: " + "; ".join(errors))
    return out


def to_hf_state_dict(model, prefix=""):
    """The inverse of :func:`convert_hf_bert` for a BertModel (``prefix`` + HF names)."""
    sd = model.state_dict()
    C = model.config.hidden_size
    out = {}
    for ours, srcs, _ in _layer_rules(model.config):
        a = sd[ours]
        if len(srcs) == 3:  # qkv_proj -> query, key, value
            for j, (name, _shape) in enumerate(srcs):
                out[prefix + name] = np.ascontiguousarray(a[j * C:(j + 1) * C])
        else:
            out[prefix + srcs[0][0]] = np.ascontiguousarray(a)
    return out


def _save_hf(model, save_directory, tensors):
    from ..nn.lora import lora_modules
    if lora_modules(model):
        raise ValueError("save_pretrained: the model has LoRA adapters; goldbull_np.nn.lora.remove_lora(model) "
                         "merges them into plain Linears first (or lora.save_lora(model, dir) saves only them)")
    os.makedirs(save_directory, exist_ok=True)
    model.config.to_json_file(os.path.join(save_directory, CONFIG_NAME))
    save_safetensors(tensors, os.path.join(save_directory, WEIGHTS_NAME), metadata={"format": "pt"})
    tok = model.__dict__.get("tokenizer")
    if tok is not None and hasattr(tok, "save"):
        tok.save(save_directory)


def _read_config(directory):
    path = os.path.join(directory, CONFIG_NAME)
    d = read_json(path, "no such config file (not a model directory)")
    if isinstance(d, dict) and d.get("model_type", MODEL_TYPE) != MODEL_TYPE:
        raise ValueError(f"{path}: model_type is {d.get('model_type')!r}, not a BERT directory ('bert')")
    return BertConfig.from_hf_dict(d, source=path), d


def _build(cls, config, *args):
    rng = _random.get_rng_state()
    try:
        return cls(config, *args)
    finally:
        _random.set_rng_state(rng)


def load_bert(directory, cls=None):
    """Load an HF BERT directory as ``cls`` (BertModel, BertForSequenceClassification), or, with
    ``cls=None``, as the class its config.json's ``architectures`` names (the model-type registry's
    loader). A classification checkpoint loads as a BertModel too (its encoder)."""
    from ..text.hf import read_hf_weights
    directory = os.fspath(directory)
    config, raw = _read_config(directory)
    archs = list(raw.get("architectures") or [])
    if cls is None:
        from .bert_classifier import BertForSequenceClassification
        cls = BertForSequenceClassification if "BertForSequenceClassification" in archs else BertModel
    arrays = read_hf_weights(directory)
    names = set(_normalise_hf_names(arrays))
    has_pooler = any(k.endswith("pooler.dense.weight") for k in names)
    config = dataclasses.replace(config, add_pooling_layer=has_pooler)
    model = _build(cls, config)
    model.load_state_dict(model._convert_hf(arrays, config, directory), strict=True)
    tok_path = os.path.join(directory, "tokenizer.json")
    if os.path.isfile(tok_path):
        from .bert_tokenizer import BertTokenizer
        object.__setattr__(model, "tokenizer", BertTokenizer.from_directory(directory, config.max_position_embeddings))
        if hasattr(model, "bert"):
            object.__setattr__(model.bert, "tokenizer", model.tokenizer)
    object.__setattr__(model, "hf_config", raw)
    return model


def _bert_convert(self, arrays, config, source):
    heads = lambda k: k.startswith(("cls.", "classifier.", "qa_outputs."))  # noqa: E731 - task heads
    return convert_hf_bert(arrays, config, source, prefix="bert.", ignore=heads)


BertModel._convert_hf = _bert_convert
register_model_type(MODEL_TYPE, load_bert, ("BertModel", "BertForSequenceClassification", "BertForMaskedLM",
                                            "BertForPreTraining"))

__all__ = ["BertConfig", "BertModel", "BertEmbeddings", "BertLayer", "BertSelfAttention", "convert_hf_bert",
           "to_hf_state_dict", "load_bert"]
