"""CleaningConfig and Preprocessor: clean a raw file into a training file, counting each rule.

Rules, in order, on each example (a line of text, a document, or every text field of a JSON row):
    remove_html           markup to text with the standard library's html.parser (script/style
                          dropped, entities decoded); applied only to text that contains a known
                          HTML tag, a comment or an entity, so "a<b and c>d" is left alone
    normalize_whitespace  runs of whitespace to one space (newlines kept in document mode)
    (empty)               examples left with no text are removed
    max_line_length       longer examples are removed (a physical line over the limit is skipped
                          while it streams past, with a DataWarning naming file and line)
    filter_short_lines    examples shorter than min_line_length characters are removed
    remove_duplicates     exact repeats (after the rules above) are removed
    language_filter       examples not detected as the given language(s) are removed (langdetect)
"""
from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

from ..io import atomic_write
from .formats import Example, ExampleReader, TextExample, example_text, example_to_row, map_text
from .preprocess import check_reading_options, example_key, is_empty

REMOVAL_RULES = ("empty", "too_long", "too_short", "duplicate", "language")


@dataclass
class CleaningConfig:
    """What Preprocessor does (the design's fields first; lengths are in characters)."""

    remove_html: bool = True  # strip markup with html.parser, keep the text
    normalize_whitespace: bool = True  # collapse whitespace runs to one space
    filter_short_lines: bool = True  # remove examples shorter than min_line_length
    min_line_length: int = 10
    max_line_length: int | None = 2048  # remove longer examples (None: no limit, unbounded memory per line)
    remove_duplicates: bool = True  # remove exact repeats
    language_filter: str | list[str] | None = None  # e.g. "en" or ["en", "fr"]; needs goldbull_np[langdetect]
    language_min_probability: float = 0.0  # the detection must be at least this confident
    text_mode: str = "line"  # plain text input: "line" or "document"
    encoding_errors: str = "strict"  # "strict" or "replace" for invalid UTF-8
    format: str | None = None  # force "text" / "json" / "jsonl"

    def __post_init__(self):
        check_reading_options(self)
        if self.min_line_length < 0 or (self.max_line_length is not None and self.max_line_length < 1):
            raise ValueError("min_line_length must be >= 0 and max_line_length >= 1 (or None)")


@dataclass
class CleaningResult:
    """What process_file did.

    Attributes:
        num_examples: examples written.
        num_read: examples read.
        removed: rule -> examples removed ("empty", "too_long", "too_short", "duplicate", "language").
        modified: rule -> examples changed ("html", "whitespace").
        replaced_characters: U+FFFD substitutions ("replace" mode).
        output_path: the file written.
    """

    num_examples: int = 0
    num_read: int = 0
    removed: Counter = field(default_factory=lambda: Counter({r: 0 for r in REMOVAL_RULES}))
    modified: Counter = field(default_factory=lambda: Counter({"html": 0, "whitespace": 0}))
    replaced_characters: int = 0
    output_path: str | None = None


# ----------------------------------------------------------------------------- HTML

_HTML_TAGS = frozenset("""a abbr address article aside audio b blockquote body br button canvas caption code col
colgroup dd del details div dl dt em embed fieldset figcaption figure font footer form h1 h2 h3 h4 h5 h6 head
header hr html i iframe img input ins kbd label legend li link main mark meta nav noscript object ol option p
param pre q s samp script section select small source span strong style sub summary sup table tbody td template
textarea tfoot th thead time title tr u ul var video""".split())
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head"})
_BLOCK_TAGS = frozenset("""address article aside blockquote br dd div dl dt fieldset figcaption figure footer form
h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody td tfoot th thead title tr ul""".split())
_LOOKS_LIKE_HTML = re.compile(r"<!--|<!doctype|</?([a-zA-Z][a-zA-Z0-9]*)[\s/>]|&(#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z]+\d*);", re.I)


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0  # depth inside script/style/...

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def looks_like_html(text: str) -> bool:
    """True when `text` contains a known HTML tag, a comment, a doctype or a character reference."""
    for m in _LOOKS_LIKE_HTML.finditer(text):
        tag = m.group(1)
        if tag is None or tag.lower() in _HTML_TAGS:
            return True
    return False


def strip_html(text: str) -> str:
    """The text content of HTML (block elements become newlines); non-HTML text is returned as is."""
    if not looks_like_html(text):
        return text
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def normalize_whitespace(text: str, keep_newlines: bool = False) -> str:
    """Collapse whitespace runs to one space and strip the ends.

    With keep_newlines, lines are collapsed one by one and runs of blank lines become one.
    """
    if not keep_newlines:
        return " ".join(text.split())
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# ----------------------------------------------------------------------------- Preprocessor


class Preprocessor:
    """Apply a CleaningConfig to examples or to whole files.

    Args:
        config: the CleaningConfig (default: CleaningConfig()).
    """

    def __init__(self, config: CleaningConfig | None = None):
        self.config = config or CleaningConfig()
        self._seen: set[bytes] = set()
        self._language = None
        if self.config.language_filter:
            from .language import LanguageFilter

            self._language = LanguageFilter(self.config.language_filter, self.config.language_min_probability)
        self.modified = Counter()

    def reset(self) -> None:
        """Forget the examples seen (for duplicate removal) and the modification counts."""
        self._seen.clear()
        self.modified = Counter()

    def clean(self, example: Example) -> tuple[Example | None, str | None]:
        """Apply the rules to one example.

        Returns:
            (cleaned example, None) when kept, or (None, rule) naming the rule that removed it.
        """
        c = self.config
        keep_newlines = c.text_mode == "document" or not isinstance(example, TextExample)
        if c.remove_html:
            cleaned = map_text(example, strip_html)
            if cleaned != example:
                self.modified["html"] += 1
            example = cleaned
        if c.normalize_whitespace:
            cleaned = map_text(example, lambda s: normalize_whitespace(s, keep_newlines))
            if cleaned != example:
                self.modified["whitespace"] += 1
            example = cleaned
        if is_empty(example):
            return None, "empty"
        n = len(example_text(example))
        if c.max_line_length is not None and n > c.max_line_length:
            return None, "too_long"
        if c.filter_short_lines and n < c.min_line_length:
            return None, "too_short"
        if c.remove_duplicates:
            key = example_key(example)
            if key in self._seen:
                return None, "duplicate"
            self._seen.add(key)
        if self._language is not None and not self._language(example_text(example)):
            return None, "language"
        return example, None

    def process_file(self, in_path: str | os.PathLike, out_path: str | os.PathLike) -> CleaningResult:
        """Clean one file into another, streaming.

        Text input gives text output (one example per line, or the document); JSON/JSONL input
        gives JSONL output (one row per example). A ".gz" out_path is gzip-compressed. The output
        is written under a temporary name and renamed when complete.

        Args:
            in_path: the raw file (text, JSON or JSONL; plain or gzip).
            out_path: where to write the cleaned examples.
        Returns:
            A CleaningResult with num_examples and the count removed by each rule.
        """
        c = self.config
        self.reset()
        in_path, out_path = os.fspath(in_path), os.fspath(out_path)
        reader = ExampleReader(in_path, c.format, c.text_mode, c.encoding_errors, c.max_line_length)
        result = CleaningResult(output_path=out_path)
        opener = gzip.open if out_path.endswith(".gz") else open

        def write(tmp):
            with opener(tmp, "wt", encoding="utf-8", newline="\n") as out:
                for ex in reader:
                    result.num_read += 1
                    ex, reason = self.clean(ex)
                    if ex is None:
                        result.removed[reason] += 1
                        continue
                    result.num_examples += 1
                    if reader.format != "text":
                        out.write(json.dumps(example_to_row(ex), ensure_ascii=False) + "\n")
                    elif c.text_mode == "line":
                        out.write(ex.text.replace("\r", " ").replace("\n", " ") + "\n")
                    else:
                        out.write(ex.text + "\n")

        atomic_write(out_path, write)
        result.removed["too_long"] += reader.lines_too_long  # skipped while reading
        result.num_read += reader.lines_too_long
        result.modified.update(self.modified)
        result.replaced_characters = reader.replaced_characters
        return result
