"""BertTokenizer: WordPiece from a Hugging Face ``tokenizer.json`` through the ``tokenizers`` package.

Encoding matches transformers' BertTokenizerFast (and what bert-score feeds the model): the text is
stripped, normalised/pre-tokenised/WordPiece'd as tokenizer.json says, wrapped in [CLS] ... [SEP]
(its post-processor) and truncated to ``max_length`` tokens (the encoder's 512 positions by default:
the tail of a longer text is dropped, [SEP] kept). Batches are right-padded with [PAD].
"""
import os
import shutil

import numpy as np


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError("BertTokenizer needs the optional dependency 'tokenizers'; install it with: "
                          "pip install 'goldbull_np[bpe]'") from None
    return tokenizers


class BertTokenizer:
    """``tok(texts) -> {"input_ids", "attention_mask", "token_type_ids"}`` (B, T) int64, right-padded.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``.
        max_length: truncation length (default 512).
        path: the tokenizer.json it came from (copied by ``save``).
    """

    def __init__(self, tokenizer, max_length=512, path=None):
        self._tok = tokenizer
        self._tok.no_padding()
        self._tok.no_truncation()
        self.max_length = int(max_length)
        self.path = path
        self.pad_token_id = self._special("[PAD]", 0)
        self.cls_token_id = self._special("[CLS]", None)
        self.sep_token_id = self._special("[SEP]", None)

    def _special(self, token, default):
        i = self._tok.token_to_id(token)
        return default if i is None else int(i)

    @classmethod
    def from_file(cls, path, max_length=512):
        tk = _tokenizers()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such tokenizer file")
        try:
            tok = tk.Tokenizer.from_file(os.fspath(path))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises its own Exception type
            raise ValueError(f"{path}: not a tokenizers tokenizer.json ({exc})") from None
        return cls(tok, max_length, os.fspath(path))

    @classmethod
    def from_directory(cls, directory, max_length=512):
        return cls.from_file(os.path.join(directory, "tokenizer.json"), max_length)

    @property
    def vocab_size(self):
        return self._tok.get_vocab_size()

    def encode(self, text, max_length=None):
        """Token ids of one text, [CLS] and [SEP] included, truncated to ``max_length``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        return self._truncate(self._tok.encode(text.strip()).ids, max_length)

    def _truncate(self, ids, max_length):
        L = self.max_length if max_length is None else int(max_length)
        if len(ids) > L:  # keep the head and the closing [SEP]
            ids = ids[:L - 1] + ([ids[-1]] if self.sep_token_id is not None and ids[-1] == self.sep_token_id
                                 else [ids[L - 1]])
        return list(ids)

    def encode_batch(self, texts, max_length=None):
        """``[ids]`` for a list of texts (the tokenizers batch call, so it runs in Rust threads)."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a string, got {'None' if t is None else type(t).__name__}")
        return [self._truncate(e.ids, max_length) for e in self._tok.encode_batch([t.strip() for t in texts])]

    def pad(self, batch_ids):
        """Right-pad ``[ids]`` into the model's inputs."""
        B, T = len(batch_ids), max((len(x) for x in batch_ids), default=0)
        ids = np.full((B, T), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((B, T), dtype=np.int64)
        for i, x in enumerate(batch_ids):
            ids[i, :len(x)] = x
            mask[i, :len(x)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def __call__(self, texts, max_length=None):
        if isinstance(texts, str):
            texts = [texts]
        return self.pad(self.encode_batch(list(texts), max_length))

    def decode(self, ids, skip_special_tokens=True):
        return self._tok.decode(list(map(int, ids)), skip_special_tokens=skip_special_tokens)

    def save(self, directory):
        """Write tokenizer.json into ``directory``."""
        dst = os.path.join(directory, "tokenizer.json")
        if self.path and os.path.abspath(self.path) != os.path.abspath(dst):
            shutil.copyfile(self.path, dst)
        elif not self.path:
            self._tok.save(dst)


__all__ = ["BertTokenizer"]
