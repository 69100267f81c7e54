"""Shared pieces of the training tests: a tiny corpus, tiny models, real DataLoaders."""
import numpy as np

import goldbull_np as gb
from goldbull_np.data import CharTokenizer, DataLoader
from goldbull_np.text import GoldbullText, ModelConfig
from goldbull_np.data import TokenDataset
from goldbull_np.train.data import split_tokens

CORPUS = ("The quick brown fox jumps over the lazy dog. A stitch in time saves nine. "
          "Every good boy deserves fudge. To be or not to be, that is the question. ") * 40


def tokens(text=CORPUS):
    tok = CharTokenizer.from_text(text, special_tokens={})
    return tok, np.asarray(tok.encode(text), dtype=np.int64)


def tiny_model(vocab, seed=0, **over):
    gb.manual_seed(seed)
    kw = dict(n_layer=1, n_head=2, n_embd=16, block_size=16)
    kw.update(over)
    return GoldbullText(ModelConfig.tiny(vocab_size=vocab, **kw))


def datasets(block=16, val_fraction=0.1, text=CORPUS):
    tok, ids = tokens(text)
    train, val = split_tokens(ids, block, val_fraction)
    return tok, train, val


def params(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


class PoisonModel(GoldbullText):
    """A GoldbullText whose loss is NaN for any batch that contains token ``poison``."""

    poison = -1

    def forward(self, input_ids, labels=None, **kw):
        logits, loss = super().forward(input_ids, labels, **kw)
        if loss is not None and np.any(np.asarray(input_ids) == self.poison):
            loss = loss * float("nan")
        return logits, loss


__all__ = ["CORPUS", "tokens", "tiny_model", "datasets", "params", "PoisonModel", "DataLoader", "TokenDataset"]
