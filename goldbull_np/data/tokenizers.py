"""Tokenizers with one interface: ByteTokenizer, CharTokenizer (here) and BPETokenizer (bpe.py).

Interface (see `Tokenizer`): encode(text, add_special_tokens=False) -> list[int],
decode(ids, skip_special_tokens=False) -> str, encode_batch, vocab_size, bos/eos/pad token ids,
chat role markers, save(dir) / load(dir); `load_tokenizer(dir)` reads whichever kind is saved there.

Special tokens are never produced by `encode(text)`: a special-token string inside user text
("<|user|>") is encoded as ordinary text. Control tokens enter a sequence only by id, through
`add_special_tokens=True` or the chat template (templates.py).
"""
from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from typing import Iterable, Sequence

CONFIG_FILE = "goldbull_tokenizer.json"  # written by every tokenizer's save(); names the kind
# name -> string of the special tokens, in id order for the tokenizers that own their vocabulary.
SPECIAL_TOKENS = {
    "pad": "<|pad|>",
    "bos": "<|bos|>",
    "eos": "<|eos|>",
    "system": "<|system|>",
    "user": "<|user|>",
    "assistant": "<|assistant|>",
    "end": "<|end|>",  # closes a chat turn
}
ROLE_NAMES = ("system", "user", "assistant")


class Tokenizer(ABC):
    """Base class: subclasses fill `_special` (name -> token string) and `_special_ids` (name -> id)."""

    kind: str = ""
    _special: dict[str, str]
    _special_ids: dict[str, int]

    # ------------------------------------------------------------------ abstract
    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""

    @abstractmethod
    def _encode(self, text: str) -> list[int]:
        """Ids of `text` as ordinary text (no special tokens)."""

    @abstractmethod
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of `ids`; special tokens appear as their strings unless `skip_special_tokens`.

        Args:
            ids: token ids (a list or a 1-D integer array).
            skip_special_tokens: leave special tokens out of the text.
        Returns:
            The decoded string.
        """

    @abstractmethod
    def _config(self) -> dict:
        """What save() writes to goldbull_tokenizer.json besides kind and special_tokens."""

    @classmethod
    @abstractmethod
    def _from_config(cls, directory: str, config: dict) -> "Tokenizer":
        """Rebuild from a directory written by save()."""

    # ------------------------------------------------------------------ shared
    def encode(self, text: str, add_special_tokens: bool = False, *, parse_special_tokens: bool = False) -> list[int]:
        """Token ids of `text`.

        Args:
            text: any string; special-token strings inside it are ordinary text by default.
            add_special_tokens: put bos before and eos after the ids.
            parse_special_tokens: opt in to turning special-token strings in `text` into their
                control ids (only for trusted text, e.g. a hand-written template).
        Returns:
            A list of ints.
        """
        if parse_special_tokens and self._special:
            ids: list[int] = []
            pattern = "(" + "|".join(re.escape(s) for s in sorted(self._special.values(), key=len, reverse=True)) + ")"
            by_string = {s: self._special_ids[n] for n, s in self._special.items()}
            for k, piece in enumerate(re.split(pattern, text)):
                if k % 2:  # a captured special-token string
                    ids.append(by_string[piece])
                elif piece:
                    ids.extend(self._encode(piece))
        else:
            ids = self._encode(text)
        if add_special_tokens:
            ids = self._wrap(ids)
        return ids

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        """encode() of each text.

        Args:
            texts: strings to encode.
            add_special_tokens: as in encode().
        Returns:
            One list of ids per text.
        """
        return [self.encode(t, add_special_tokens) for t in texts]

    def _wrap(self, ids: list[int]) -> list[int]:
        bos, eos = self.bos_token_id, self.eos_token_id
        return ([bos] if bos is not None else []) + ids + ([eos] if eos is not None else [])

    @property
    def special_tokens(self) -> dict[str, str]:
        """Special-token name -> string (pad, bos, eos, system, user, assistant, end; as present)."""
        return dict(self._special)

    @property
    def special_token_ids(self) -> dict[str, int]:
        """Special-token name -> id."""
        return dict(self._special_ids)

    @property
    def bos_token_id(self) -> int | None:
        return self._special_ids.get("bos")

    @property
    def eos_token_id(self) -> int | None:
        return self._special_ids.get("eos")

    @property
    def pad_token_id(self) -> int | None:
        """The pad id (falls back to eos when the tokenizer has no pad token)."""
        pad = self._special_ids.get("pad")
        return pad if pad is not None else self.eos_token_id

    @property
    def end_of_turn_token_id(self) -> int | None:
        """The id that closes a chat turn (<|end|>)."""
        return self._special_ids.get("end")

    @property
    def role_token_ids(self) -> dict[str, int]:
        """Chat role -> marker id, for the roles this tokenizer has markers for."""
        return {r: self._special_ids[r] for r in ROLE_NAMES if r in self._special_ids}

    def role_token_id(self, role: str) -> int:
        """Marker id of a chat role; ValueError when the tokenizer has no marker for it."""
        try:
            return self._special_ids[role]
        except KeyError:
            raise ValueError(
                f"this {type(self).__name__} has no chat marker for role {role!r}; "
                "chat data needs the role markers (BPETokenizer.add_chat_tokens() adds them)"
            ) from None

    def save(self, directory: str | os.PathLike) -> None:
        """Write the tokenizer to `directory` as JSON (goldbull_tokenizer.json, plus tokenizer.json for BPE)."""
        os.makedirs(directory, exist_ok=True)
        config = {"kind": self.kind, "special_tokens": self.special_tokens, **self._config()}
        with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=True, indent=1)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Tokenizer":
        """Read a tokenizer written by save(); the saved kind must match this class."""
        tok = load_tokenizer(directory)
        if not isinstance(tok, cls):
            raise ValueError(f"{directory} holds a {type(tok).__name__}, not a {cls.__name__}")
        return tok

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _check_ids(ids: Iterable[int], vocab_size: int) -> list[int]:
    ids = [int(i) for i in ids]
    for i in ids:
        if not 0 <= i < vocab_size:
            raise ValueError(f"token id {i} is out of range for a vocabulary of {vocab_size}")
    return ids


def _check_special(special: dict[str, str] | None) -> dict[str, str]:
    if special is not None and (not isinstance(special, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in special.items())):
        raise ValueError(f"special_tokens must be an object of name -> non-empty string, got {special!r:.200}")
    special = dict(SPECIAL_TOKENS if special is None else special)
    if len(set(special.values())) != len(special):
        raise ValueError(f"special-token strings must be distinct, got {special}")
    return special


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0..255, then the special tokens: lossless on any string, no dependencies.

    Args:
        special_tokens: name -> string of the special tokens (default SPECIAL_TOKENS); their ids
            follow the bytes in this order (pad=256, bos=257, eos=258, system, user, assistant, end).
    """

    kind = "byte"

    def __init__(self, special_tokens: dict[str, str] | None = None):
        self._special = _check_special(special_tokens)
        self._special_ids = {name: 256 + i for i, name in enumerate(self._special)}
        self._id_to_special = {i: self._special[n] for n, i in self._special_ids.items()}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self._special)

    def _encode(self, text: str) -> list[int]:
        # surrogatepass: even a lone surrogate (legal in a Python str) survives the round trip
        return list(text.encode("utf-8", "surrogatepass"))

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = _check_ids(ids, self.vocab_size)
        parts: list[str] = []
        run: list[int] = []
        for i in ids:
            if i < 256:
                run.append(i)
                continue
            parts.append(_bytes_to_str(bytes(run)))
            run = []
            if not skip_special_tokens:
                parts.append(self._id_to_special[i])
        parts.append(_bytes_to_str(bytes(run)))
        return "".join(parts)

    def _config(self) -> dict:
        return {}

    @classmethod
    def _from_config(cls, directory: str, config: dict) -> "ByteTokenizer":
        return cls(config.get("special_tokens"))


def _bytes_to_str(b: bytes) -> str:
    try:
        return b.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # ids that do not form UTF-8 (e.g. a sampled model output)
        return b.decode("utf-8", "replace")


class CharTokenizer(Tokenizer):
    """One id per character of a corpus (nanoGPT shakespeare-char): chars sorted, then specials.

    Characters not seen in the corpus map to <|unk|>, which decodes to U+FFFD.

    Args:
        chars: the vocabulary characters; their ids are their positions in sorted order.
        special_tokens: name -> string (default SPECIAL_TOKENS plus "unk"); ids follow the chars.
    """

    kind = "char"

    def __init__(self, chars: Iterable[str], special_tokens: dict[str, str] | None = None):
        chars = sorted(set(chars))
        if any(len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer vocabulary entries must be single characters")
        if special_tokens is None:
            special_tokens = {**SPECIAL_TOKENS, "unk": "<|unk|>"}
        self._special = _check_special(special_tokens)
        self.chars = chars
        self._stoi = {c: i for i, c in enumerate(chars)}
        self._special_ids = {name: len(chars) + i for i, name in enumerate(self._special)}
        self._itos = chars + [self._special[n] for n in self._special]
        self._unk = self._special_ids.get("unk")

    @classmethod
    def from_text(cls, text: str, special_tokens: dict[str, str] | None = None) -> "CharTokenizer":
        """Build the vocabulary from the characters of `text`."""
        return cls(set(text), special_tokens)

    @classmethod
    def train(cls, paths, special_tokens: dict[str, str] | None = None, errors: str = "replace") -> "CharTokenizer":
        """Build the vocabulary from the characters of files, streaming them.

        Args:
            paths: files, directories or glob patterns (plain or gzip).
            special_tokens: as in the constructor.
            errors: "strict" or "replace" for invalid UTF-8.
        Returns:
            The tokenizer.
        """
        from .reader import TextStream, expand_paths

        files, _ = expand_paths(paths)
        if not files:
            raise FileNotFoundError(f"no files match {paths!r}")
        chars: set[str] = set()
        for f in files:
            for chunk in TextStream(f, errors):
                chars.update(chunk)
        return cls(chars, special_tokens)

    @property
    def vocab_size(self) -> int:
        return len(self._itos)

    def _encode(self, text: str) -> list[int]:
        stoi, unk = self._stoi, self._unk
        if unk is None:
            try:
                return [stoi[c] for c in text]
            except KeyError as e:
                raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None
        return [stoi.get(c, unk) for c in text]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = _check_ids(ids, self.vocab_size)
        n, itos, unk = len(self.chars), self._itos, self._unk
        if skip_special_tokens:
            return "".join(itos[i] for i in ids if i < n)
        return "".join("\ufffd" if i == unk else itos[i] for i in ids)

    def _config(self) -> dict:
        return {"chars": self.chars}

    @classmethod
    def _from_config(cls, directory: str, config: dict) -> "CharTokenizer":
        return cls(config["chars"], config.get("special_tokens"))


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load a tokenizer from a directory written by any tokenizer's save(), or from a
    directory / file holding only a Hugging Face tokenizer.json (e.g. GPT-2's).

    Args:
        path: a directory, or a tokenizer.json file.
    Returns:
        A ByteTokenizer, CharTokenizer or BPETokenizer.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        from .bpe import BPETokenizer

        return BPETokenizer.from_file(path)
    config_path = os.path.join(path, CONFIG_FILE)
    if os.path.isfile(config_path):
        from ..io import read_json

        config = read_json(config_path, "no tokenizer config")  # bad JSON / nesting / encoding: ValueError
        if not isinstance(config, dict):
            raise ValueError(f"{config_path}: expected a JSON object, got {type(config).__name__}")
        kind = config.get("kind")
        try:
            if kind == "byte":
                return ByteTokenizer._from_config(path, config)
            if kind == "char":
                chars = config.get("chars")
                if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
                    raise ValueError(f"'chars' must be a list of single characters, got {chars!r:.200}")
                return CharTokenizer._from_config(path, config)
            if kind == "bpe":
                from .bpe import BPETokenizer

                return BPETokenizer._from_config(path, config)
        except ValueError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise ValueError(f"{config_path}: {exc}") from None
        raise ValueError(f"{config_path}: unknown tokenizer kind {kind!r:.100}")
    if os.path.isfile(os.path.join(path, "tokenizer.json")):
        from .bpe import BPETokenizer

        return BPETokenizer.from_file(os.path.join(path, "tokenizer.json"))
    raise FileNotFoundError(f"no tokenizer in {path}: expected {CONFIG_FILE} or tokenizer.json")
