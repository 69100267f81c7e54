"""BPETokenizer: byte-level BPE backed by Hugging Face `tokenizers` (the optional extra `bpe`).

Reads and writes the standard tokenizer.json, so the tokenizer of an existing model (GPT-2 style
byte-level BPE) loads as is. `tokenizers` is imported only when a BPETokenizer is made.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, Iterator, Sequence

from .errors import require
from .tokenizers import SPECIAL_TOKENS, Tokenizer, _check_special

TOKENIZER_FILE = "tokenizer.json"
# Candidate strings of each special token in existing tokenizers, first match wins.
_KNOWN_SPECIALS = {
    "bos": ("<|bos|>", "<s>", "<bos>", "<|begin_of_text|>", "<|endoftext|>"),
    "eos": ("<|eos|>", "</s>", "<eos>", "<|end_of_text|>", "<|endoftext|>"),
    "pad": ("<|pad|>", "<pad>", "[PAD]"),
    "system": ("<|system|>",),
    "user": ("<|user|>",),
    "assistant": ("<|assistant|>",),
    "end": ("<|end|>",),
}


def _hf():
    return require("tokenizers", "BPETokenizer", "bpe")


class BPETokenizer(Tokenizer):
    """A Hugging Face `tokenizers.Tokenizer` behind the goldbull tokenizer interface.

    Special-token strings in user text are encoded as ordinary text (the HF tokenizer runs with
    `encode_special_tokens=True`); special ids are only added by id.

    Args:
        tokenizer: a `tokenizers.Tokenizer`.
        special_tokens: name -> string of the special tokens it has; None infers them from the
            vocabulary (e.g. GPT-2: bos = eos = <|endoftext|>, pad falls back to eos, no role markers).
    """

    kind = "bpe"

    def __init__(self, tokenizer, special_tokens: dict[str, str] | None = None):
        self._tk = tokenizer
        self._tk.encode_special_tokens = True
        if special_tokens is None:
            special_tokens = _infer_specials(tokenizer)
        self._special, self._special_ids = {}, {}
        for name, s in special_tokens.items():
            i = tokenizer.token_to_id(s)
            if i is None:
                raise ValueError(f"special token {name}={s!r} is not in the tokenizer's vocabulary")
            self._special[name], self._special_ids[name] = s, i
        self._special_id_set = set(self._special_ids.values())

    # ------------------------------------------------------------------ building
    @classmethod
    def train(cls, paths, vocab_size: int, *, min_frequency: int = 2, special_tokens: dict[str, str] | None = None,
              max_word_length: int = 100, max_token_length: int | None = None, errors: str = "replace",
              max_line_length: int | None = 1 << 20, show_progress: bool = False) -> "BPETokenizer":
        """Train a byte-level BPE (GPT-2 pre-tokenization) on text files, streaming them.

        Runs of more than `max_word_length` non-space (or space) characters are cut into pieces
        for training only, so pathological input (a 1 MB word, a 10,000-character run) trains in
        bounded time; encoding such text later is unaffected and still lossless.

        Args:
            paths: files, directories or glob patterns (text, JSON or JSONL; plain or gzip).
            vocab_size: final vocabulary size, special tokens and the 256 byte symbols included.
            min_frequency: a pair must occur this often to be merged.
            special_tokens: name -> string (default SPECIAL_TOKENS); they get the first ids.
            max_word_length: longest run of characters the trainer sees as one word.
            max_token_length: longest token the trainer may create (None: no limit).
            errors: "strict" or "replace" for invalid UTF-8.
            max_line_length: longer physical lines are skipped with a DataWarning.
            show_progress: show the trainer's progress bar.
        Returns:
            The trained tokenizer.
        """
        hf = _hf()
        special = _check_special(special_tokens)
        if vocab_size < 256 + len(special):
            raise ValueError(f"vocab_size must be at least {256 + len(special)} (256 bytes + special tokens)")
        tk = hf.Tokenizer(hf.models.BPE())
        tk.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tk.decoder = hf.decoders.ByteLevel()
        trainer = hf.trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(special.values()),
            initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=show_progress,
            max_token_length=max_token_length,
        )
        texts = _training_texts(paths, max_word_length, errors, max_line_length)
        tk.train_from_iterator(texts, trainer)
        return cls(tk, special)

    @classmethod
    def from_file(cls, path: str | os.PathLike, special_tokens: dict[str, str] | None = None) -> "BPETokenizer":
        """Load a Hugging Face tokenizer.json (e.g. GPT-2's).

        Args:
            path: the tokenizer.json file.
            special_tokens: as in the constructor (None infers them).
        """
        hf = _hf()
        try:
            tk = hf.Tokenizer.from_file(os.fspath(path))
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - the tokenizers library raises a bare Exception
            raise ValueError(f"{os.fspath(path)}: not a valid tokenizer.json ({str(exc)[:200]})") from None
        return cls(tk, special_tokens)

    def add_chat_tokens(self) -> list[str]:
        """Add the missing special tokens (role markers, <|end|>, pad) to the vocabulary.

        Needed before chat data can be encoded with a tokenizer that lacks them (GPT-2); the model's
        embedding must then grow to the new vocab_size.

        Returns:
            The names of the tokens added.
        """
        added = [n for n in SPECIAL_TOKENS if n not in self._special and n not in ("bos", "eos")]
        if added:
            self._tk.add_special_tokens([SPECIAL_TOKENS[n] for n in added])
            for n in added:
                self._special[n] = SPECIAL_TOKENS[n]
                self._special_ids[n] = self._tk.token_to_id(SPECIAL_TOKENS[n])
            self._special_id_set = set(self._special_ids.values())
        return added

    # ------------------------------------------------------------------ interface
    @property
    def vocab_size(self) -> int:
        return self._tk.get_vocab_size(with_added_tokens=True)

    @property
    def hf_tokenizer(self):
        """The underlying `tokenizers.Tokenizer`."""
        return self._tk

    def _encode(self, text: str) -> list[int]:
        return self._tk.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        out = [e.ids for e in self._tk.encode_batch(list(texts), add_special_tokens=False)]  # parallel in Rust
        return [self._wrap(ids) for ids in out] if add_special_tokens else out

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = [int(i) for i in ids]
        n = self.vocab_size
        for i in ids:
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is out of range for a vocabulary of {n}")
        if skip_special_tokens:
            ids = [i for i in ids if i not in self._special_id_set]
            return self._tk.decode(ids, skip_special_tokens=False)
        # Decode text runs separately so a special token's string is kept verbatim.
        parts, run = [], []
        for i in ids:
            if i in self._special_id_set:
                parts.append(self._tk.decode(run, skip_special_tokens=False) if run else "")
                parts.append(self._tk.id_to_token(i))
                run = []
            else:
                run.append(i)
        if run:
            parts.append(self._tk.decode(run, skip_special_tokens=False))
        return "".join(parts)

    def save(self, directory: str | os.PathLike) -> None:
        """Write tokenizer.json (the Hugging Face format) and goldbull_tokenizer.json to `directory`."""
        super().save(directory)
        self._tk.save(os.path.join(directory, TOKENIZER_FILE))

    def _config(self) -> dict:
        return {"tokenizer_file": TOKENIZER_FILE}

    @classmethod
    def _from_config(cls, directory: str, config: dict) -> "BPETokenizer":
        name = config.get("tokenizer_file", TOKENIZER_FILE)
        if not isinstance(name, str) or not name or os.path.isabs(name) or os.path.normpath(name).startswith(".."):
            raise ValueError(f"tokenizer_file must name a file inside the tokenizer directory, got {name!r:.200}")
        path = os.path.join(directory, name)
        return cls.from_file(path, config.get("special_tokens"))


def _infer_specials(tk) -> dict[str, str]:
    vocab = tk.get_vocab(with_added_tokens=True)
    found = {}
    for name, candidates in _KNOWN_SPECIALS.items():
        for s in candidates:
            if s in vocab:
                found[name] = s
                break
    return found


def _split_long_runs(text: str, n: int) -> Iterator[str]:
    """Cut every run of more than n non-space (or space) characters into pieces of n."""
    if len(text) <= n:
        yield text
        return
    cuts = [0]
    for m in re.finditer(r"\S{%d,}|\s{%d,}" % (n + 1, n + 1), text):
        cuts.extend(range(m.start() + n, m.end(), n))
    cuts.append(len(text))
    for a, b in zip(cuts, cuts[1:]):
        if b > a:
            yield text[a:b]


def _training_texts(paths, max_word_length: int, errors: str, max_line_length: int | None) -> Iterator[str]:
    from .formats import ExampleReader, TextExample, example_text
    from .reader import expand_paths

    files, _ = expand_paths(paths)
    if not files:
        raise FileNotFoundError(f"no files match {paths!r}")
    for f in files:
        reader = ExampleReader(f, errors=errors, max_line_length=max_line_length)
        for ex in reader:
            text = ex.text + "\n" if isinstance(ex, TextExample) else example_text(ex)
            yield from _split_long_runs(text, max_word_length)
