"""Exception and warning types of the data layer.

Every error about a file names the file and, where there is one, the physical 1-based line
number (blank lines counted), so a user can open the file at the right place.
"""
from __future__ import annotations


class DataError(Exception):
    """Base class of every error raised by goldbull_np.data."""


class DataFormatError(DataError, ValueError):
    """A file's content does not follow the expected format.

    Attributes:
        path: the file (str), or None when the data did not come from a file.
        line: physical 1-based line number of the problem, or None.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.reason = message
        where = _location(path, line)
        super().__init__(f"{where}: {message}" if where else message)


class MalformedJSONError(DataFormatError):
    """JSON or JSONL text that the JSON parser rejects (the parser's error is chained)."""


class SchemaError(DataFormatError):
    """A well-formed JSON row that is not an object, misses a key, or has a value of the wrong type."""


class UnknownRoleError(SchemaError):
    """A conversation message whose role is not one of the known chat roles."""


class DataEncodingError(DataFormatError):
    """Bytes that are not valid UTF-8 (strict mode).

    Attributes:
        byte_offset: 0-based offset of the first bad byte in the (decompressed) file.
    """

    def __init__(self, message: str, path: str | None, line: int | None, byte_offset: int):
        self.byte_offset = byte_offset
        super().__init__(f"{message} at byte offset {byte_offset}", path, line)


class EmptyDatasetError(DataError, ValueError):
    """No training examples were found in any of the given inputs."""


class MissingDependencyError(DataError, ImportError):
    """An optional dependency (a pip extra of goldbull_np) is not installed."""


class DataWarning(UserWarning):
    """Something in the input was skipped (e.g. an over-long line); training can continue."""


def _location(path: str | None, line: int | None) -> str:
    if path is None:
        return f"line {line}" if line is not None else ""
    return f"{path}, line {line}" if line is not None else str(path)


def require(module: str, feature: str, extra: str):
    """Import an optional dependency or raise MissingDependencyError naming the pip extra.

    Args:
        module: module to import, e.g. "tokenizers".
        feature: what needs it, e.g. "BPETokenizer".
        extra: the goldbull_np extra that installs it, e.g. "bpe".
    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{feature} needs the '{module}' package: pip install goldbull_np[{extra}]"
        ) from e
