"""Shared pieces of the reliability tests: a tiny corpus, a tiny model and a TextTrainer config."""
import numpy as np

import goldbull_np as gb
from goldbull_np.data import CharTokenizer
from goldbull_np.text import GoldbullText, ModelConfig, TextTrainingConfig
from goldbull_np.train.data import split_tokens

CORPUS = ("The quick brown fox jumps over the lazy dog. A stitch in time saves nine. "
          "To be or not to be, that is the question. ") * 20


def datasets(block=16):
    tok = CharTokenizer.from_text(CORPUS, special_tokens={})
    ids = np.asarray(tok.encode(CORPUS), dtype=np.int64)
    train, val = split_tokens(ids, block, 0.1)
    return tok, train, val


def tiny_model(vocab, seed=0):
    gb.manual_seed(seed)
    return GoldbullText(ModelConfig.tiny(vocab_size=vocab, n_layer=1, n_head=2, n_embd=16, block_size=16))


def cfg(**kw):
    base = dict(learning_rate=1e-2, batch_size=4, warmup_steps=0, lr_scheduler="constant", max_grad_norm=0.0,
                weight_decay=0.0, save_steps=0, eval_steps=0, logging_steps=0, progress_bar=False, max_steps=2)
    base.update(kw)
    return TextTrainingConfig(**base)
