"""GoldbullText: a decoder-only transformer language model (GPT-2 / Llama family).

Module names (the LoRA and Hugging Face loaders map onto them)::

    embed_tokens     Embedding(vocab_size, C)
    embed_positions  Embedding(block_size, C)            only with position="learned"
    layers           ModuleList of TransformerBlock:      attn_norm, attn.qkv_proj, attn.o_proj,
                                                          mlp_norm, mlp.up_proj, mlp.down_proj (+ gate_proj)
    norm             final LayerNorm / RMSNorm
    lm_head          Linear(C, vocab_size, bias=False); its weight IS embed_tokens.weight when tied

Batches: ``input_ids`` (B, T) and ``labels`` (B, T) int64 where labels are already shifted
(labels[b, t] is the target after position t; IGNORE_INDEX = -100: no loss): forward never shifts.
"""

import numpy as np

from .. import random as _random
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..nn import init
from ..nn.checkpoint import checkpoint_sequential
from ..kernels import IGNORE_INDEX
from ..nn.layers import Dropout, Embedding, Linear
from ..nn.model_base import PreTrainedModel, register_model, register_model_type
from ..nn.containers import ModuleList
from ..nn.rotary import RotaryEmbedding
from ..nn.transformer import KVCache, TransformerBlock, make_norm
from .config import ModelConfig
from .generation import check_sampling_args, sample_next_token


def token_ids(x, name):
    """input_ids / labels as a 2-D int64 array (a 1-D input becomes one row); TypeError for non-integers."""
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (B, T), got {arr.shape}")
    return arr.astype(np.int64, copy=False)


@register_model
class GoldbullText(PreTrainedModel):
    """Decoder LM: ``forward(input_ids, labels=None) -> (logits, loss)`` and ``generate``.

    On the model base (``goldbull_np.nn.PreTrainedModel``): ``save_pretrained(dir)`` /
    ``from_pretrained(dir)`` (a goldbull directory, or a Hugging Face GPT-2 / Llama one), tied
    embeddings stored once.

    Args:
        config: a ModelConfig.
        device: only "cpu" (accepted for parity with the original design).
    Weights are initialised GPT-2 style from the global generator (``gb.manual_seed``).
    """

    config_class = ModelConfig

    def __init__(self, config=None, device="cpu"):
        super().__init__()
        if device not in (None, "cpu"):
            raise ValueError(f"GoldbullText: only device='cpu' exists, got {device!r}")
        config = ModelConfig() if config is None else config
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        config.validate()
        config.check_fits(source="GoldbullText")  # before allocating: a runaway config fails at once
        self.config = config
        c = config
        self.embed_tokens = Embedding(c.vocab_size, c.n_embd)
        if c.position == "learned":
            self.embed_positions = Embedding(c.block_size, c.n_embd)
            rotary = None
        else:
            rotary = RotaryEmbedding(c.head_dim, c.block_size, c.rope_theta)
        self.rotary = rotary  # shared by every attention layer (non-persistent buffers)
        self.drop = Dropout(c.dropout) if c.dropout > 0 else None
        self.layers = ModuleList(
            TransformerBlock(c.n_embd, c.n_head, c.n_kv_head, mlp=c.mlp, mlp_hidden=c.mlp_hidden, norm=c.norm,
                             bias=c.bias, dropout=c.dropout, norm_eps=c.norm_eps, rotary=rotary,
                             gelu_approximate=c.gelu_approximate, head_dim=c.head_dim)
            for _ in range(c.n_layer))
        self.norm = make_norm(c.norm, c.n_embd, c.bias, c.norm_eps)
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.init_weights()

    def init_weights(self):
        """GPT-2 init: N(0, init_std) for Linear and Embedding weights, zero biases, norms at 1, and
        o_proj / down_proj at init_std / sqrt(2 * n_layer)."""
        std = self.config.init_std
        for name, m in self.named_modules():
            if isinstance(m, Linear):
                if name == "lm_head" and self.config.tie_embeddings:
                    continue  # it is the embedding table, initialised below
                if name.endswith(("o_proj", "down_proj")):
                    init.scaled_residual_normal_(m.weight, self.config.n_layer, std)
                else:
                    init.normal_(m.weight, 0.0, std)
                if m.bias is not None:
                    init.zeros_(m.bias)
            elif isinstance(m, Embedding):
                init.normal_(m.weight, 0.0, std)
            elif hasattr(m, "reset_parameters") and not isinstance(m, (Linear, Embedding)):
                m.reset_parameters()  # norms: weight 1, bias 0

    # ---- forward ----------------------------------------------------------------------------
    def hidden_states(self, input_ids, kv_cache=None):
        """The final-norm hidden states (B, T, C); with ``kv_cache`` the tokens continue its positions."""
        ids = token_ids(input_ids, "input_ids")
        B, T = ids.shape
        start = 0 if kv_cache is None else kv_cache.pos
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than block_size "
                             f"{self.config.block_size}")
        x = self.embed_tokens(ids)  # (B,T,C)
        if self.config.position == "learned":
            x = x + self.embed_positions(np.arange(start, start + T))  # (T,C) broadcast over B
        if self.drop is not None:
            x = self.drop(x)
        every = self.__dict__.get("_checkpoint_every", 0)
        if every and kv_cache is None and is_grad_enabled():
            # gradient checkpointing: keep only each segment's input, recompute the rest in backward
            x = checkpoint_sequential(self.layers, x, every)
        else:
            for i, layer in enumerate(self.layers):
                x = layer(x, None if kv_cache is None else kv_cache[i])  # (B,T,C)
        return self.norm(x)

    def forward(self, input_ids, labels=None, attention_mask=None, kv_cache=None):
        """Logits for every position and, with labels, the mean cross-entropy.

        Args:
            input_ids: (B, T) ints (array or Tensor).
            labels: (B, T) ints, already shifted; IGNORE_INDEX (-100) positions carry no loss.
            attention_mask: (B, T) 1 = token, 0 = pad; only right padding is supported, and since
                attention is causal real tokens never see the pads, so it needs no masking: it is
                checked and otherwise ignored (give pads label IGNORE_INDEX).
            kv_cache: a KVCache (inference): the tokens continue the cached sequence.
        Returns:
            (logits (B, T, vocab_size), loss scalar Tensor or None).
        """
        if attention_mask is not None:
            m = np.asarray(attention_mask.data if isinstance(attention_mask, Tensor) else attention_mask)
            if m.ndim == 2 and m.shape[1] > 1 and np.any(np.diff(m.astype(np.int8), axis=1) > 0):
                raise ValueError("attention_mask: only right padding (1s then 0s in each row) is supported")
        x = self.hidden_states(input_ids, kv_cache)  # (B,T,C)
        logits = self.lm_head(x)  # (B,T,V)
        loss = None
        if labels is not None:
            y = token_ids(labels, "labels")
            if y.shape != logits.shape[:2]:
                raise ValueError(f"labels of shape {y.shape} do not match input_ids of shape {logits.shape[:2]}")
            V = logits.shape[-1]
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), ignore_index=IGNORE_INDEX)
        return logits, loss

    # ---- generation -------------------------------------------------------------------------
    def new_kv_cache(self, batch_size):
        """An empty KVCache of block_size positions for ``batch_size`` sequences (a preallocated one, reset,
        when :meth:`preallocate_kv_cache` made one for that batch size)."""
        pool = self.__dict__.get("_kv_cache_pool")
        if pool is not None and batch_size in pool:
            cache = pool[batch_size]
            cache.reset()
            return cache
        c = self.config
        return KVCache(c.n_layer, batch_size, c.n_kv_head, c.block_size, c.head_dim,
                       dtype=self.embed_tokens.weight.dtype)

    def preallocate_kv_cache(self, batch_sizes=(1,)):
        """Keep one KV cache per batch size and reuse it in every ``generate`` call instead of allocating
        (and page-faulting) block_size positions per call. Not for concurrent generate calls on one model.
        Returns the bytes held."""
        pool = {}
        object.__setattr__(self, "_kv_cache_pool", None)
        for b in batch_sizes:
            pool[int(b)] = self.new_kv_cache(int(b))
        object.__setattr__(self, "_kv_cache_pool", pool)
        return sum(layer.k.nbytes + layer.v.nbytes for cache in pool.values() for layer in cache.layers)

    def _last_logits(self, ids, kv_cache):
        h = self.hidden_states(ids, kv_cache)  # (B,T,C)
        return self.lm_head(h[:, -1]).data  # (B,V): only the last position is projected

    def generate(self, input_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, eos_token_id=None,
                 seed=None, use_cache=True):
        """Sample a continuation autoregressively (in eval mode, without recording a graph).

        With the KV cache each new token runs the model on that one token against preallocated
        per-layer key/value buffers, so its cost does not grow with the prefix (beyond attention's
        own O(prefix) reads). When the sequence reaches block_size, the cache is refilled from the
        last block_size // 2 tokens; without the cache the context is the last block_size tokens
        (so the two agree exactly while prompt + new tokens <= block_size).

        Args:
            input_ids: (B, T) or (T,) ints.
            max_new_tokens: tokens to add.
            temperature: 0 = greedy; else logits / temperature.
            top_k, top_p: restrict sampling to the k most likely / the top-p probability mass.
            eos_token_id: a row stops at this token (later positions are filled with it); generation
                ends early when every row has stopped.
            seed: seeds a private generator; None draws from the global one.
            use_cache: use the KV cache (default) or re-run the whole context every step.
        Returns:
            int64 Tensor (B, T + n) (or (T + n,) for 1-D input), n <= max_new_tokens.
        """
        check_sampling_args(max_new_tokens, temperature, top_k, top_p)
        flat = (input_ids.ndim if isinstance(input_ids, Tensor) else np.ndim(input_ids)) == 1
        ids = token_ids(input_ids, "input_ids")
        B, T = ids.shape
        if T == 0:
            raise ValueError("generate needs at least one prompt token")
        rng = np.random.default_rng(seed) if seed is not None else _random.default_generator()
        seq = np.empty((B, T + max_new_tokens), dtype=np.int64)
        seq[:, :T] = ids
        n = T
        done = np.zeros(B, dtype=bool)
        block = self.config.block_size
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                cache = self.new_kv_cache(B) if use_cache else None
                if use_cache and max_new_tokens:
                    logits = self._last_logits(seq[:, max(0, n - block):n], cache)  # (B,V)
                for i in range(max_new_tokens):
                    if not use_cache:
                        logits = self._last_logits(seq[:, max(0, n - block):n], None)
                    nxt = sample_next_token(logits, temperature, top_k, top_p, rng, step=i)  # (B,)
                    if eos_token_id is not None:
                        nxt = np.where(done, eos_token_id, nxt)
                        done |= nxt == eos_token_id
                    seq[:, n] = nxt
                    n += 1
                    if i == max_new_tokens - 1 or (eos_token_id is not None and done.all()):
                        break
                    if use_cache:
                        if cache.pos >= block:  # full: refill from the most recent half window
                            cache.reset()
                            logits = self._last_logits(seq[:, n - block // 2:n], cache)
                        else:
                            logits = self._last_logits(seq[:, n - 1:n], cache)
        finally:
            self.train(was_training)
        out = seq[:, :n]
        return Tensor(out[0] if flat else out)

    def check_tokenizer(self, tokenizer, source="the tokenizer") -> None:
        """ValueError naming ``source`` if ``tokenizer`` can produce ids this model has no embedding for
        (a tokenizer from another model or run), instead of an embedding-id error at the first batch."""
        n = getattr(tokenizer, "vocab_size", None)
        if n is not None and n > self.config.vocab_size:
            raise ValueError(f"{source}: the tokenizer has {n} tokens but the model's vocab_size is "
                             f"{self.config.vocab_size}: they belong to different models")

    # ---- training -----------------------------------------------------------------------------
    def default_task(self):
        """Language modelling (:class:`goldbull_np.text.LanguageModelingTask`): what a Trainer trains
        this model on unless told otherwise."""
        from .task import LanguageModelingTask
        return LanguageModelingTask()

    # ---- parameter-efficient fine-tuning (goldbull_np.nn.lora / nn.adapters / nn.checkpoint) ----------
    def add_lora_adapters(self, config=None):
        """Wrap the targeted Linears in LoRA adapters and freeze the base (see ``nn.lora``).
        Returns the adapted Linears' names."""
        from ..nn import lora
        return lora.add_lora_adapters(self, config)

    def get_lora_parameters(self):
        """The trainable LoRA Parameters (A, B, DoRA magnitudes, biases trained by ``bias``)."""
        from ..nn import lora
        return lora.get_lora_parameters(self)

    def merge_lora(self):
        """Fold the adapters into the base weights (forward then costs what the base model costs)."""
        from ..nn import lora
        return lora.merge_lora(self)

    def unmerge_lora(self):
        """Undo merge_lora (the base weights come back within float rounding)."""
        from ..nn import lora
        return lora.unmerge_lora(self)

    def save_lora(self, save_directory):
        """Write only the adapters: adapter_model.safetensors + adapter_config.json."""
        from ..nn import lora
        return lora.save_lora(self, save_directory)

    def load_lora(self, directory):
        """Load adapters written by save_lora (adding them first if the model has none)."""
        from ..nn import lora
        return lora.load_lora(self, directory)

    def add_adapters_to_layers(self, layers, config=None):
        """Insert bottleneck adapters after attention and after the MLP of the blocks ``layers``."""
        from ..nn import adapters
        return adapters.add_adapters_to_layers(self, layers, config)

    def get_adapter_parameters(self):
        """The bottleneck adapters' Parameters."""
        from ..nn import adapters
        return adapters.get_adapter_parameters(self)

    def freeze_base_parameters(self):
        """Freeze everything but the adapters (bottleneck and LoRA). Returns the trainable count."""
        from ..nn import adapters
        return adapters.freeze_base_parameters(self)

    def enable_gradient_checkpointing(self, every_n_layers=1):
        """Recompute block activations in backward instead of storing them: each run of
        ``every_n_layers`` blocks keeps only its input (``nn.checkpoint``). Gradients are unchanged."""
        if isinstance(every_n_layers, bool) or not isinstance(every_n_layers, int) or every_n_layers < 1:
            raise ValueError(f"every_n_layers must be a positive integer, got {every_n_layers!r}")
        object.__setattr__(self, "_checkpoint_every", every_n_layers)
        return self

    def disable_gradient_checkpointing(self):
        object.__setattr__(self, "_checkpoint_every", 0)
        return self

    @property
    def gradient_checkpointing(self):
        return bool(self.__dict__.get("_checkpoint_every", 0))

    def extra_repr(self):
        c = self.config
        return (f"vocab_size={c.vocab_size}, n_layer={c.n_layer}, n_embd={c.n_embd}, "
                f"position={c.position!r}, tie_embeddings={c.tie_embeddings}")


def _load_hf(directory):
    from .hf import load_hf_pretrained
    return load_hf_pretrained(GoldbullText, directory)


# Hugging Face directories convert into GoldbullText (goldbull_np.text.hf)
register_model_type("gpt2", _load_hf, ("GPT2LMHeadModel", "GPT2Model"))
register_model_type("llama", _load_hf, ("LlamaForCausalLM", "LlamaModel"))
