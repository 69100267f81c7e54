"""Training file formats: plain text, JSON ({"examples": ...} / {"conversations": ...}) and JSONL.

Formats (detected from the extension, then from the content; gzip from its magic bytes):

    text   one example per line (blank lines skipped), or the whole file as one document
    json   {"examples": [{"input": str, "output": str}, ...]}
           {"conversations": [{"messages": [{"role": str, "content": str}, ...]}, ...]}
           (both keys may appear; a top-level list of rows is accepted too)
    jsonl  one JSON object per line: {"input", "output"}, {"messages": [...]} or {"text"}

All readers stream: JSON is parsed one array element at a time from a bounded window of text, so
a multi-GB file needs memory for one example, not for the file.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Iterator, Union

from .errors import DataFormatError, MalformedJSONError, SchemaError, UnknownRoleError
from .reader import LineReader, TextStream, iter_chunks, warn_long_line

ROLES = ("system", "user", "assistant")
FORMATS = ("text", "json", "jsonl")
TEXT_MODES = ("line", "document")
_EXTENSIONS = {".txt": "text", ".text": "text", ".md": "text", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class TextExample:
    """Plain text (a line or a document); `source`/`line` say where it came from."""

    text: str
    source: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class PromptExample:
    """An input/output pair: loss is taken on the output only."""

    input: str
    output: str
    source: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Message:
    """One chat turn; `role` is one of ROLES."""

    role: str
    content: str


@dataclass(frozen=True)
class Conversation:
    """A list of chat turns: loss is taken on assistant turns only."""

    messages: tuple[Message, ...]
    source: str | None = None
    line: int | None = None


Example = Union[TextExample, PromptExample, Conversation]


def example_text(example: Example) -> str:
    """All the text of an example joined by newlines (for length, language and duplicate checks)."""
    if isinstance(example, TextExample):
        return example.text
    if isinstance(example, PromptExample):
        return example.input + "\n" + example.output
    return "\n".join(m.content for m in example.messages)


def map_text(example: Example, fn) -> Example:
    """Apply `fn(str) -> str` to every text field of an example, returning a new example."""
    if isinstance(example, TextExample):
        return TextExample(fn(example.text), example.source, example.line)
    if isinstance(example, PromptExample):
        return PromptExample(fn(example.input), fn(example.output), example.source, example.line)
    msgs = tuple(Message(m.role, fn(m.content)) for m in example.messages)
    return Conversation(msgs, example.source, example.line)


def example_to_row(example: Example) -> dict:
    """The JSONL row of an example (the inverse of parsing a row)."""
    if isinstance(example, TextExample):
        return {"text": example.text}
    if isinstance(example, PromptExample):
        return {"input": example.input, "output": example.output}
    return {"messages": [{"role": m.role, "content": m.content} for m in example.messages]}


# ----------------------------------------------------------------------------- rows


def _type_name(obj) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(obj), "number"
    )


def _short(s: str, n: int = 40) -> str:
    return repr(s if len(s) <= n else s[:n] + "...")


def row_to_example(obj, path: str | None, line: int | None, kind: str | None = None) -> Example:
    """Validate one parsed JSON row and turn it into an example.

    Args:
        obj: the parsed row.
        path, line: where it came from (for error messages).
        kind: "prompt" (an element of "examples"), "conversation" (of "conversations"), or None (any).
    Returns:
        A PromptExample, Conversation or TextExample.
    Raises:
        SchemaError / UnknownRoleError naming the file, line and the problem (never the row itself).
    """
    if not isinstance(obj, dict):
        raise SchemaError(f"row is a JSON {_type_name(obj)}, expected an object", path, line)
    if kind == "conversation" or (kind is None and "messages" in obj):
        return _conversation(obj, path, line)
    if kind == "prompt" or (kind is None and ("input" in obj or "output" in obj)):
        for key in ("input", "output"):
            if key not in obj:
                raise SchemaError(f"row is missing the key '{key}'", path, line)
            if not isinstance(obj[key], str):
                raise SchemaError(f"'{key}' must be a string, got {_type_name(obj[key])}", path, line)
        return PromptExample(obj["input"], obj["output"], path, line)
    if "text" in obj:
        if not isinstance(obj["text"], str):
            raise SchemaError(f"'text' must be a string, got {_type_name(obj['text'])}", path, line)
        return TextExample(obj["text"], path, line)
    keys = ", ".join(_short(k, 20) for k in list(obj)[:8]) or "none"
    raise SchemaError(
        f"row has none of the keys 'input'/'output', 'messages' or 'text' (its keys: {keys})", path, line
    )


def _conversation(obj: dict, path, line) -> Conversation:
    if "messages" not in obj:
        raise SchemaError("conversation is missing the key 'messages'", path, line)
    msgs = obj["messages"]
    if not isinstance(msgs, list):
        raise SchemaError(f"'messages' must be an array, got {_type_name(msgs)}", path, line)
    if not msgs:
        raise SchemaError("'messages' is empty", path, line)
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise SchemaError(f"message {i} is a JSON {_type_name(m)}, expected an object", path, line)
        for key in ("role", "content"):
            if key not in m:
                raise SchemaError(f"message {i} is missing the key '{key}'", path, line)
        role, content = m["role"], m["content"]
        if not isinstance(role, str):
            raise SchemaError(f"message {i}: 'role' must be a string, got {_type_name(role)}", path, line)
        if role not in ROLES:
            raise UnknownRoleError(
                f"message {i}: unknown role {_short(role, 20)} (expected one of {', '.join(ROLES)})", path, line
            )
        if not isinstance(content, str):
            raise SchemaError(f"message {i}: 'content' must be a string, got {_type_name(content)}", path, line)
        out.append(Message(role, content))
    return Conversation(tuple(out), path, line)


# ----------------------------------------------------------------------------- detection


def detect_format(path: str | os.PathLike) -> str:
    """Guess the format of a file: "text", "json" or "jsonl".

    The extension decides (".gz" is looked through); a ".json" file whose first line is a complete
    row object is JSONL; an unknown extension is decided from the first bytes of the content.
    """
    name = os.fspath(path).lower()
    for suffix in (".gz", ".gzip"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    ext = _EXTENSIONS.get(os.path.splitext(name)[1])
    if ext in ("text", "jsonl"):
        return ext
    sniffed = _sniff(path)
    if ext == "json":
        return "jsonl" if sniffed == "jsonl" else "json"
    return sniffed


def _sniff(path) -> str:
    head = b""
    for chunk in iter_chunks(path, 1 << 16):
        head = chunk
        break
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        return "json"
    if not text.startswith("{"):
        return "text"
    first = text.split("\n", 1)[0]
    try:
        obj = json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        return "json"  # an object spread over several lines (or too deep: the JSON reader says so)
    if isinstance(obj, dict) and any(k in obj for k in ("input", "output", "messages", "text")):
        return "jsonl"  # the first line is a complete row
    return "json"


# ----------------------------------------------------------------------------- reading


class ExampleReader:
    """Stream the examples of one file.

    After (or during) iteration, `lines_too_long` counts skipped over-long lines and
    `replaced_characters` the U+FFFD substitutions of "replace" mode.

    Args:
        path: the file (plain or gzip).
        format: "text", "json", "jsonl" or None to detect.
        text_mode: for text files, "line" (one example per non-blank line) or "document".
        errors: "strict" (invalid UTF-8 raises DataEncodingError) or "replace".
        max_line_length: physical lines (text, JSONL) or JSON values longer than this many
            characters are skipped with a DataWarning (JSON: rejected); None for no limit.
    """

    def __init__(self, path, format: str | None = None, text_mode: str = "line", errors: str = "strict",
                 max_line_length: int | None = None):
        if format is not None and format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS} or None, got {format!r}")
        if text_mode not in TEXT_MODES:
            raise ValueError(f"text_mode must be one of {TEXT_MODES}, got {text_mode!r}")
        self.path = os.fspath(path)
        self.format = format or detect_format(self.path)
        self.text_mode = text_mode
        self.errors = errors
        self.max_line_length = max_line_length
        self.lines_too_long = 0
        self.replaced_characters = 0

    def __iter__(self) -> Iterator[Example]:
        if self.format == "json":
            stream = TextStream(self.path, self.errors)
            try:
                yield from _JSONScanner(iter(stream), self.path, self.max_line_length).examples()
            finally:
                self.replaced_characters += stream.replaced
            return
        reader = LineReader(self.path, self.max_line_length, self.errors)
        try:
            if self.format == "jsonl":
                yield from self._jsonl(reader)
            elif self.text_mode == "line":
                for line in self._lines(reader):
                    if line.text.strip():
                        yield TextExample(line.text, self.path, line.number)
            else:
                text = "\n".join(line.text for line in self._lines(reader))
                if text.strip():
                    yield TextExample(text, self.path, 1)
        finally:
            self.replaced_characters += reader.replaced

    def _lines(self, reader: LineReader):
        for line in reader:
            if line.text is None:
                self.lines_too_long += 1
                warn_long_line(self.path, line, self.max_line_length)
                continue
            yield line

    def _jsonl(self, reader: LineReader) -> Iterator[Example]:
        for line in self._lines(reader):
            if not line.text.strip():
                continue
            try:
                obj = json.loads(line.text)
            except json.JSONDecodeError as e:
                raise MalformedJSONError(f"{e.msg} (column {e.colno})", self.path, line.number) from e
            except RecursionError:
                raise MalformedJSONError(_TOO_DEEP, self.path, line.number) from None
            yield row_to_example(obj, self.path, line.number)


_WS = re.compile(r"[ \t\n\r]*")
_TOO_DEEP = "JSON nested too deeply to parse (arrays/objects inside each other thousands of levels deep)"


class _JSONScanner:
    """Walk one JSON document held in a sliding window of text, decoding one value at a time."""

    def __init__(self, chunks: Iterator[str], path: str, max_value_chars: int | None):
        self.chunks, self.path, self.max_value_chars = chunks, path, max_value_chars
        self.buf, self.pos, self.eof = "", 0, False
        # Line numbers are counted incrementally from a mark (positions only move forward), so
        # locating each value costs the text since the previous one, not the whole window.
        self.mark_pos, self.mark_line = 0, 1  # buf[mark_pos] is on line mark_line
        self.col_base = 0  # 0-based column of buf[0]
        self.decoder = json.JSONDecoder()

    # -- window management
    def _fill(self, at_least: int = 1) -> bool:
        """Append at least `at_least` characters (or until EOF); False if nothing was added."""
        added = 0
        while added < at_least and not self.eof:
            try:
                chunk = next(self.chunks)
            except StopIteration:
                self.eof = True
                break
            self.buf += chunk
            added += len(chunk)
        return added > 0

    def _compact(self) -> None:
        """Drop the consumed text once it is large, keeping line and column bookkeeping."""
        if self.pos < (1 << 20):
            return
        line = self._line(self.pos)
        nl = self.buf.rfind("\n", 0, self.pos)
        self.col_base = self.pos - nl - 1 if nl >= 0 else self.col_base + self.pos
        self.buf, self.pos = self.buf[self.pos :], 0
        self.mark_pos, self.mark_line = 0, line

    def _line(self, p: int) -> int:
        if p < self.mark_pos:  # rare (an error before the mark): count from the window start
            return self.mark_line - self.buf.count("\n", p, self.mark_pos)
        self.mark_line += self.buf.count("\n", self.mark_pos, p)
        self.mark_pos = p
        return self.mark_line

    def _where(self, p: int) -> tuple[int, int]:
        nl = self.buf.rfind("\n", 0, p)
        col = p - nl if nl >= 0 else self.col_base + p + 1
        return self._line(p), col

    def _error(self, msg: str, p: int, cause: Exception | None = None):
        line, col = self._where(p)
        err = MalformedJSONError(f"{msg} (column {col})", self.path, line)
        err.__cause__ = cause
        return err

    # -- tokens
    def peek(self) -> str:
        """The next non-whitespace character, or "" at the end of the file."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if c == "" or c not in chars:
            raise self._error(f"Expecting {what}", self.pos)
        self.pos += 1
        return c

    def value(self):
        """Decode the JSON value at the cursor; returns (value, line)."""
        self.peek()
        self._compact()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number at the window's end may go on
                    line = self._line(self.pos)
                    self.pos = end
                    return obj, line
            except json.JSONDecodeError as e:
                near_end = e.pos >= len(self.buf) - 16 or e.msg.startswith("Unterminated string")
                if self.eof or not near_end:
                    raise self._error(e.msg, e.pos, e) from e
            except RecursionError:
                raise self._error(_TOO_DEEP, self.pos) from None
            size = len(self.buf) - self.pos
            if self.max_value_chars is not None and size > self.max_value_chars:
                line = self._line(self.pos)
                raise DataFormatError(
                    f"a JSON value starting on line {line} is longer than max_line_length="
                    f"{self.max_value_chars} characters", self.path, line)
            self._fill(max(size, 1))  # double the window: linear total work for a long value

    # -- grammar
    def examples(self) -> Iterator[Example]:
        c = self.peek()
        if c == "":
            return  # empty or whitespace-only file: no examples
        if c == "[":
            self.pos += 1
            yield from self._array(None)
        elif c == "{":
            self.pos += 1
            found = False
            if self.peek() == "}":
                self.pos += 1
            else:
                while True:
                    key_pos = self.pos
                    key, _ = self.value()
                    if not isinstance(key, str):
                        raise self._error("Expecting property name enclosed in double quotes", key_pos)
                    self.expect(":", "':' delimiter")
                    if key in ("examples", "conversations"):
                        found = True
                        self.expect("[", f"an array as the value of '{key}'")
                        yield from self._array("prompt" if key == "examples" else "conversation")
                    else:
                        self.value()  # another key: skip its value
                    if self.expect(",}", "',' delimiter") == "}":
                        break
            if not found:
                raise SchemaError("top-level object has neither an 'examples' nor a 'conversations' array",
                                  self.path, 1)
        else:
            raise self._error("Expecting a JSON object or array", self.pos)
        if self.peek() != "":
            raise self._error("Extra data after the top-level value", self.pos)

    def _array(self, kind: str | None) -> Iterator[Example]:
        """The elements of an array whose "[" was just consumed."""
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            obj, line = self.value()
            yield row_to_example(obj, self.path, line, kind)
            if self.expect(",]", "',' delimiter") == "]":
                return
