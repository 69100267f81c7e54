"""PreprocessConfig (what TextDataset does to examples before and after tokenizing) and its stats."""
from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field

from .formats import FORMATS, TEXT_MODES, Conversation, Example, PromptExample, TextExample, map_text
from .reader import ENCODING_ERRORS


@dataclass
class PreprocessConfig:
    """How TextDataset turns files into training items.

    The first four fields are the design's; the rest have defaults that rarely need changing.
    """

    max_sequence_length: int = 1024  # T: tokens per item; longer text is split into blocks, other examples truncated
    min_sequence_length: int = 10  # encoded examples shorter than this (special tokens included) are dropped
    filter_duplicates: bool = True  # drop exact repeats of an example (after normalisation)
    normalize_unicode: bool = True  # NFC-normalise all text, so equal-looking strings tokenize alike
    text_mode: str = "line"  # plain text: "line" = one example per line, "document" = one per file
    packing: bool = True  # plain text: split long examples into consecutive blocks of T (False: truncate)
    prompt_separator: str = "\n"  # put between the input and the output of input/output examples
    max_line_length: int | None = 1_000_000  # physical lines longer than this (characters) are skipped, with a warning
    encoding_errors: str = "strict"  # invalid UTF-8: "strict" raises DataEncodingError, "replace" puts U+FFFD
    format: str | None = None  # force "text" / "json" / "jsonl" instead of detecting each file's format

    def __post_init__(self):
        if self.max_sequence_length < 1:
            raise ValueError(f"max_sequence_length must be >= 1, got {self.max_sequence_length}")
        if self.min_sequence_length < 0:
            raise ValueError(f"min_sequence_length must be >= 0, got {self.min_sequence_length}")
        check_reading_options(self)
        if self.max_line_length is not None and self.max_line_length < 1:
            raise ValueError(f"max_line_length must be >= 1 or None, got {self.max_line_length}")


def check_reading_options(config) -> None:
    """Validate the options PreprocessConfig and CleaningConfig share: text_mode, encoding_errors, format."""
    if config.text_mode not in TEXT_MODES:
        raise ValueError(f"text_mode must be one of {TEXT_MODES}, got {config.text_mode!r}")
    if config.encoding_errors not in ENCODING_ERRORS:
        raise ValueError(f"encoding_errors must be one of {ENCODING_ERRORS}, got {config.encoding_errors!r}")
    if config.format is not None and config.format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} or None, got {config.format!r}")


@dataclass
class DatasetStats:
    """What happened to the examples of a dataset.

    Attributes:
        files: files read.
        examples_read: examples parsed from the files.
        examples_kept: examples that made it into the dataset.
        dropped: reason -> count ("empty", "too_short", "duplicate", "no_target_tokens",
            "line_too_long", and the cleaning rules' reasons when a CleaningConfig was given).
        truncated: kept examples cut to max_sequence_length (non-packed ones).
        items: dataset items (blocks / examples) made from the kept examples.
        tokens: tokens in the kept (possibly truncated) examples.
        replaced_characters: U+FFFD substitutions in "replace" mode.
        unmatched: paths or patterns that matched no file.
    """

    files: int = 0
    examples_read: int = 0
    examples_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    truncated: int = 0
    items: int = 0
    tokens: int = 0
    replaced_characters: int = 0
    unmatched: list = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["dropped"] = dict(self.dropped)
        return d


def normalize_example(example: Example) -> Example:
    """NFC-normalise every text field."""
    return map_text(example, lambda s: unicodedata.normalize("NFC", s))


def example_key(example: Example) -> bytes:
    """A 16-byte digest identifying an example's content (for exact-duplicate filtering)."""
    h = hashlib.blake2b(digest_size=16)
    if isinstance(example, TextExample):
        h.update(b"t\0" + example.text.encode("utf-8", "surrogatepass"))
    elif isinstance(example, PromptExample):
        h.update(b"p\0" + example.input.encode("utf-8", "surrogatepass"))
        h.update(b"\0" + example.output.encode("utf-8", "surrogatepass"))
    elif isinstance(example, Conversation):
        h.update(b"c")
        for m in example.messages:
            h.update(b"\0" + m.role.encode() + b"\0" + m.content.encode("utf-8", "surrogatepass"))
    return h.digest()


def is_empty(example: Example) -> bool:
    """True when the example has no non-whitespace text where it matters."""
    if isinstance(example, TextExample):
        return not example.text.strip()
    if isinstance(example, PromptExample):
        return not example.output.strip()
    return not any(m.content.strip() for m in example.messages)
