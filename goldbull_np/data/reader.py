"""Streaming file reading: gzip by magic bytes, physical lines in bounded memory, UTF-8 checking.

Everything here reads a file in fixed-size chunks, so a multi-GB file (or a 200 MB line with no
newline) never has to fit in memory: a line longer than the limit is skipped while it streams past,
keeping at most `4 * max_line_length` bytes of it.
"""
from __future__ import annotations

import glob
import gzip
import os
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from .errors import DataEncodingError, DataFormatError, DataWarning

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_SIZE = 1 << 20  # bytes read per call; bounds the memory of every reader here
ENCODING_ERRORS = ("strict", "replace")
_BOM = "\ufeff"
_REPLACEMENT_UTF8 = "\ufffd".encode()


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a file for binary reading, transparently decompressing gzip (detected by magic bytes).

    Args:
        path: file to open.
    Returns:
        A binary file object yielding the decompressed bytes; closing it closes the file.
    """
    raw = open(path, "rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == GZIP_MAGIC:
        f = gzip.GzipFile(fileobj=raw, mode="rb")
        f.myfileobj = raw  # GzipFile.close() then closes the underlying file too
        return f
    return raw


def iter_chunks(path: str | os.PathLike, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the (decompressed) bytes of a file in chunks of at most `chunk_size`."""
    with open_binary(path) as f:
        while True:
            try:
                chunk = f.read(chunk_size)
            except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
                raise DataFormatError(f"cannot decompress gzip data: {e}", str(path)) from e
            if not chunk:
                return
            yield chunk


# Byte-order marks of encodings that are not UTF-8 (UTF-32 LE before UTF-16 LE: it starts with FF FE too)
_OTHER_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"), (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
               (b"\xfe\xff", "UTF-16 (big-endian)"), (b"\xff\xfe", "UTF-16 (little-endian)"))


def check_utf8_start(head: bytes, path) -> None:
    """Raise DataEncodingError naming the encoding if the (decompressed) file starts with a UTF-16 or
    UTF-32 byte-order mark: that is not invalid UTF-8 to be replaced, it is another encoding."""
    for bom, name in _OTHER_BOMS:
        if head.startswith(bom):
            raise DataEncodingError(f"the file is {name} text (byte-order mark {bom.hex(' ').upper()}), not UTF-8; "
                                    "convert it first (e.g. iconv -f UTF-16 -t UTF-8)", str(path), 1, 0)


def _check_errors_mode(errors: str) -> None:
    if errors not in ENCODING_ERRORS:
        raise ValueError(f"encoding errors must be one of {ENCODING_ERRORS}, got {errors!r}")


@dataclass(frozen=True)
class Line:
    """One physical line of a file.

    Attributes:
        number: 1-based line number (blank lines counted).
        text: decoded text without the line terminator, or None when the line was skipped
            for being longer than the reader's limit.
        offset: byte offset of the line's first byte in the (decompressed) file.
        length: number of bytes in the line, without the terminator.
    """

    number: int
    text: str | None
    offset: int
    length: int


class LineReader:
    """Iterate over the physical lines of a text file in bounded memory.

    Lines end at b"\\n" (a trailing b"\\r" is dropped). A UTF-8 byte-order mark at the start of the
    file is dropped. `replaced` counts U+FFFD substitutions made in "replace" mode.

    Args:
        path: file to read (plain or gzip).
        max_line_length: lines longer than this many characters are yielded with text=None;
            None means no limit (memory is then bounded only by the longest line).
        errors: "strict" raises DataEncodingError on invalid UTF-8; "replace" substitutes U+FFFD.
    """

    def __init__(self, path: str | os.PathLike, max_line_length: int | None = None, errors: str = "strict"):
        _check_errors_mode(errors)
        self.path = str(path)
        self.max_line_length = max_line_length
        self.errors = errors
        self.replaced = 0
        # A character is at most 4 UTF-8 bytes: beyond this many bytes a line is too long for sure.
        self._max_bytes = None if max_line_length is None else 4 * max_line_length

    def __iter__(self) -> Iterator[Line]:
        pending = bytearray()  # bytes of the current line seen so far (dropped once too long)
        line_len = 0  # bytes of the current line, including dropped ones
        too_long = False
        number, line_start, pos = 1, 0, 0
        for chunk in iter_chunks(self.path):
            if pos == 0 and number == 1:
                check_utf8_start(chunk, self.path)
            parts = chunk.split(b"\n")
            for i, part in enumerate(parts):
                line_len += len(part)
                if not too_long:
                    if self._max_bytes is not None and line_len > self._max_bytes:
                        too_long = True
                        pending = bytearray()  # free what we held of this line
                    else:
                        pending += part
                pos += len(part)
                if i == len(parts) - 1:
                    break  # no newline after the last part: the line continues in the next chunk
                yield self._make_line(number, pending, too_long, line_start, line_len)
                pos += 1  # the newline
                number, line_start, line_len, too_long = number + 1, pos, 0, False
                pending = bytearray()
        if line_len > 0:  # a last line without a trailing newline
            yield self._make_line(number, pending, too_long, line_start, line_len)

    def _make_line(self, number: int, raw: bytearray, too_long: bool, offset: int, length: int) -> Line:
        if too_long:
            return Line(number, None, offset, length)
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        text = self._decode(bytes(raw), number, offset)
        if number == 1 and text.startswith(_BOM):
            text = text[1:]
        if self.max_line_length is not None and len(text) > self.max_line_length:
            return Line(number, None, offset, length)
        return Line(number, text, offset, length)

    def _decode(self, raw: bytes, number: int, offset: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if self.errors == "strict":
                raise DataEncodingError(f"invalid UTF-8 ({e.reason})", self.path, number, offset + e.start) from e
        text = raw.decode("utf-8", "replace")
        self.replaced += text.count("\ufffd") - raw.count(_REPLACEMENT_UTF8)
        return text


def _utf8_cut(data: bytes) -> int:
    """Length of the longest prefix of `data` that does not end inside a UTF-8 sequence."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        b = data[n - back]
        if b < 0x80:  # ASCII: complete
            return n
        if b >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return n if back >= need else n - back
    return n  # only continuation bytes: let the decoder report them


class TextStream:
    """Decode a whole file as a stream of text chunks, for parsers that are not line-based (JSON).

    Invalid UTF-8 raises DataEncodingError with the file, line and byte offset (strict mode) or is
    replaced by U+FFFD and counted in `replaced`. The byte-order mark is dropped.

    Args:
        path: file to read (plain or gzip).
        errors: "strict" or "replace".
    """

    def __init__(self, path: str | os.PathLike, errors: str = "strict"):
        _check_errors_mode(errors)
        self.path = str(path)
        self.errors = errors
        self.replaced = 0

    def __iter__(self) -> Iterator[str]:
        carry, consumed, newlines, first = b"", 0, 0, True
        for chunk in iter_chunks(self.path):
            data = carry + chunk
            if first:
                check_utf8_start(data, self.path)
            cut = _utf8_cut(data)
            text = self._decode(data[:cut], consumed, newlines)
            if first and text.startswith(_BOM):
                text = text[1:]
            first = False
            newlines += data.count(b"\n", 0, cut)
            consumed += cut
            carry = data[cut:]
            if text:
                yield text
        if carry:  # a sequence cut off by the end of the file
            yield self._decode(carry, consumed, newlines)

    def _decode(self, raw: bytes, consumed: int, newlines: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if self.errors == "strict":
                line = newlines + raw.count(b"\n", 0, e.start) + 1
                raise DataEncodingError(f"invalid UTF-8 ({e.reason})", self.path, line, consumed + e.start) from e
        text = raw.decode("utf-8", "replace")
        self.replaced += text.count("\ufffd") - raw.count(_REPLACEMENT_UTF8)
        return text


MAX_REPLACED_SHARE = 0.001  # of the characters: above this, the file is not the UTF-8 text it claims to be


def read_text_file(path: str | os.PathLike, *, max_replaced_share: float = MAX_REPLACED_SHARE) -> tuple[str, int]:
    """The whole text of a UTF-8 file (plain or gzip), the one reader behind ``--data`` everywhere.

    Invalid UTF-8 is replaced by U+FFFD and counted; a few replaced characters are warned about
    (DataWarning), more than ``max_replaced_share`` of the text is refused: it is not UTF-8 text
    (a binary file, another encoding). A UTF-16/UTF-32 byte-order mark is refused naming the encoding,
    and so is text whose bytes are mostly NUL (UTF-16 without a byte-order mark).

    Returns:
        ``(text, replaced)``: the decoded text (byte-order mark dropped) and the number of replaced
        characters.
    Raises:
        DataEncodingError / DataFormatError naming the file.
    """
    stream = TextStream(path, errors="replace")
    text = "".join(stream)
    nuls = text.count("\0", 0, 4096)
    if nuls and nuls > 0.1 * min(len(text), 4096):
        raise DataEncodingError("the file's bytes are mostly NUL: UTF-16 or UTF-32 text without a byte-order "
                                "mark, or a binary file, not UTF-8; convert it first", str(path), 1, 0)
    if stream.replaced:
        share = stream.replaced / max(len(text), 1)
        msg = (f"{stream.replaced:,} of {len(text):,} characters ({share:.2%}) were not valid UTF-8 and were "
               "replaced by U+FFFD")
        if share > max_replaced_share:
            raise DataFormatError(f"{msg}: more than {max_replaced_share:.1%}, so this is not UTF-8 text "
                                  "(a binary file or another encoding?); convert it to UTF-8 first", str(path))
        warnings.warn(f"{path}: {msg}", DataWarning, stacklevel=2)
    return text, stream.replaced


def warn_long_line(path: str, line: Line, limit: int | None) -> None:
    """Warn that a physical line was skipped because it is longer than `limit` characters."""
    warnings.warn(
        f"{path}, line {line.number}: skipped a line of {line.length} bytes "
        f"(longer than max_line_length={limit} characters)",
        DataWarning,
        stacklevel=3,
    )


def expand_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> tuple[list[str], list[str]]:
    """Resolve files, directories and glob patterns to a sorted list of files.

    Args:
        paths: one path/pattern or several. A directory means every non-hidden file below it.
    Returns:
        (files, unmatched): the files found (in the given order, each group sorted, no repeats),
        and the inputs that matched nothing.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[str] = []
    unmatched: list[str] = []
    seen: set[str] = set()
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = []
            for root, dirs, names in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]  # do not descend into hidden dirs
                found.extend(os.path.join(root, n) for n in names if not n.startswith("."))
            found.sort()
        elif os.path.isfile(p):
            found = [p]
        elif glob.has_magic(p):
            found = sorted(f for f in glob.glob(p, recursive=True) if os.path.isfile(f))
        else:
            found = []
        if not found:
            unmatched.append(p)
        for f in found:
            if f not in seen:
                seen.add(f)
                files.append(f)
    return files, unmatched
