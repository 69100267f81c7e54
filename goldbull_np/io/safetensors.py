"""safetensors files: one writer and one validating reader for every file goldbull_np opens.

The format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the tensor data::

    {"__metadata__": {"format": "np"},                              (optional, str -> str)
     "layers.0.w": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]}, ...}

The reader trusts nothing in a file. A Git LFS pointer, a pickle / torch zip, gzip or GGUF file is
named as such (not reported as a bad header) once it fails to parse.
It enforces: a header length within the file and at most
``MAX_HEADER_SIZE``; the header a JSON object with no duplicate keys (at any level) and not nested
deep enough to overflow the parser; every entry an object whose ``dtype`` is one of :data:`DTYPES`,
whose ``shape`` is a list of non-negative ints and whose ``data_offsets`` is a pair of ints with
``prod(shape) * itemsize == end - begin`` (Python ints: no overflow); the tensors' byte ranges, in
offset order, tile the data exactly, from 0 to the end of the file (no overlap, no hole, no trailing
bytes); ``__metadata__`` a str -> str object; BOOL bytes 0 or 1. Every violation is a ValueError
naming the file (and the tensor). Tensors are read into fresh arrays (no view of the file survives
the call); BF16 is widened to float32 (exactly: its bits are float32's top half).

The writer lays tensors out as the safetensors library does (largest itemsize first, then by name,
header padded to a multiple of 8, so every tensor is aligned), from C-contiguous little-endian copies
where needed, through :func:`goldbull_np.io.atomic.atomic_write`.
"""
import json
import os
import struct
import sys
from collections.abc import Mapping

import numpy as np

from .atomic import atomic_write

MAX_HEADER_SIZE = 100_000_000  # bytes of JSON (the safetensors library's own limit)
METADATA_KEY = "__metadata__"

# format dtype -> the little-endian NumPy dtype its bytes are read as (BF16 as raw uint16, then widened)
DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
          "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
          "U8": np.dtype("u1"), "BOOL": np.dtype("?")}
# NumPy (kind, itemsize) -> format dtype, for writing (NumPy has no bfloat16)
_WRITE_CODES = {("f", 8): "F64", ("f", 4): "F32", ("f", 2): "F16", ("i", 8): "I64", ("i", 4): "I32",
                ("i", 2): "I16", ("i", 1): "I8", ("u", 1): "U8", ("b", 1): "BOOL"}


# ---- header -----------------------------------------------------------------------------------------
class _DuplicateKey(ValueError):
    pass


def _unique_object(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_entry(path, name, info):
    """``(dtype, shape, begin, end)`` of one header entry, or ValueError naming the file and tensor."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(info, dict):
        raise ValueError(f"{where}: header entry must be a JSON object, got {type(info).__name__}")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in info:
            raise ValueError(f"{where}: header entry has no {key!r}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"{where}: unsupported dtype {dtype!r} (supported: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(_is_int(d) and 0 <= d <= sys.maxsize for d in shape):
        raise ValueError(f"{where}: shape must be a list of non-negative integers, got {shape!r:.200}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        raise ValueError(f"{where}: data_offsets must be a pair of integers [begin, end], got {offsets!r:.200}")
    begin, end = offsets
    if not 0 <= begin <= end:
        raise ValueError(f"{where}: data_offsets {offsets} must satisfy 0 <= begin <= end")
    count = 1
    for d in shape:  # Python ints: a product past 2**63 is just a large number, never a wrapped one
        count *= d
    nbytes = count * DTYPES[dtype].itemsize
    if nbytes != end - begin:
        raise ValueError(f"{where}: shape {shape} of {dtype} needs {nbytes} bytes but data_offsets {offsets} "
                         f"span {end - begin}")
    try:  # NumPy's own limits (dimensions, total size, e.g. (0, 2**62)), checked without allocating
        np.broadcast_to(np.empty((), DTYPES[dtype]), tuple(shape))
    except ValueError as exc:
        raise ValueError(f"{where}: shape {shape!r:.200} cannot be an array ({exc})") from None
    return dtype, tuple(shape), begin, end


def _check_metadata(path, meta):
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: {METADATA_KEY} must be a JSON object of strings, got {type(meta).__name__}")
    for k, v in meta.items():
        if not isinstance(v, str):
            raise ValueError(f"{path}: {METADATA_KEY} value of {k!r} must be a string, got {type(v).__name__}")
    return dict(meta)


LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"


def _what_else(head):
    """What a file that is not safetensors is, from its first bytes (None if nothing we recognise)."""
    if head.startswith(LFS_POINTER_PREFIX):
        return ("a Git LFS pointer, not the weights themselves: fetch the real file (git lfs pull, "
                "or download it again)")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (e.g. torch.save), which goldbull_np never loads: convert it to safetensors"
    if head.startswith(b"PK\x03\x04"):
        return ("a zip archive (torch.save's format, a pickle inside), which goldbull_np never loads: "
                "convert it to safetensors")
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed: decompress it first"
    if head.startswith(b"GGUF"):
        return "a GGUF file, not safetensors"
    return None


def _read_header(f, path):
    """``(entries, metadata, data_start)``: entries ``{name: (dtype, shape, begin, end)}`` in header order."""
    try:
        return _parse_header(f, path)
    except ValueError:
        # Only a file that fails as safetensors is sniffed: a real header length can start with any bytes.
        f.seek(0)
        other = _what_else(f.read(64))
        if other is not None:
            raise ValueError(f"{path}: not a safetensors file: it is {other}") from None
        raise


def _parse_header(f, path):
    size = os.fstat(f.fileno()).st_size
    if size < 8:
        raise ValueError(f"{path}: not a safetensors file (only {size} bytes)")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_HEADER_SIZE:
        raise ValueError(f"{path}: safetensors header length {n} exceeds the limit of {MAX_HEADER_SIZE} bytes")
    if n > size - 8:
        raise ValueError(f"{path}: safetensors header length {n} exceeds the file size ({size} bytes): "
                         "truncated or not a safetensors file")
    raw = f.read(n)
    if len(raw) != n:
        raise ValueError(f"{path}: file shrank while reading the header")
    try:
        text = raw.decode("utf-8")
        if not text.startswith("{"):
            raise ValueError("the header must be a JSON object")
        header = json.loads(text, object_pairs_hook=_unique_object)
    except _DuplicateKey as exc:
        raise ValueError(f"{path}: malformed safetensors header: duplicate key {exc.args[0]!r}") from None
    except RecursionError:
        raise ValueError(f"{path}: malformed safetensors header: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path}: malformed safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header must be a JSON object, got {type(header).__name__}")
    metadata = None
    entries = {}
    for name, info in header.items():
        if name == METADATA_KEY:
            metadata = _check_metadata(path, info)
        else:
            entries[name] = _check_entry(path, name, info)
    data_size = size - 8 - n
    expected, prev = 0, None  # the byte ranges, in offset order, must tile [0, data_size)
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        after = "the start of the data" if prev is None else f"tensor {prev!r}"
        if begin < expected:
            raise ValueError(f"{path}: tensor {name!r}: data_offsets [{begin}, {end}] overlap {after} "
                             f"(which ends at {expected})")
        if begin > expected:
            raise ValueError(f"{path}: tensor {name!r}: data_offsets [{begin}, {end}] leave a hole of "
                             f"{begin - expected} bytes after {after}")
        if end > data_size:
            raise ValueError(f"{path}: tensor {name!r}: data_offsets [{begin}, {end}] run past the end of the "
                             f"file (its data section holds {data_size} bytes): truncated file")
        expected, prev = end, name
    if expected != data_size:
        raise ValueError(f"{path}: {data_size - expected} trailing bytes after the last tensor "
                         f"({'none' if prev is None else repr(prev)})")
    return entries, metadata, 8 + n


def read_safetensors_header(path):
    """The validated header of a safetensors file, without reading any tensor data.

    Returns:
        ``(tensors, metadata)``: ``tensors`` maps each name (in header order) to
        ``{"dtype": str, "shape": tuple, "data_offsets": (begin, end)}``; ``metadata`` is the
        ``__metadata__`` dict (str -> str) or None.
    Raises:
        ValueError naming the file (and the tensor) for anything the format does not allow.
    """
    with open(path, "rb") as f:
        entries, metadata, _ = _read_header(f, path)
    return ({k: {"dtype": dt, "shape": shape, "data_offsets": (b, e)} for k, (dt, shape, b, e) in entries.items()},
            metadata)


# ---- reading ----------------------------------------------------------------------------------------
def _read_tensor(f, path, name, dtype, shape, nbytes):
    raw = DTYPES[dtype]
    flat = np.empty(nbytes // raw.itemsize, dtype=raw)
    if nbytes:
        got = f.readinto(memoryview(flat).cast("B"))
        if got != nbytes:
            raise ValueError(f"{path}: tensor {name!r}: file shrank while reading ({got} of {nbytes} bytes)")
    if dtype == "BF16":
        flat = (flat.astype(np.uint32) << 16).view(np.float32)  # bf16 is the top half of a float32
    elif dtype == "BOOL":
        if nbytes and flat.view(np.uint8).max() > 1:
            raise ValueError(f"{path}: tensor {name!r}: BOOL data holds a byte other than 0 or 1")
    elif not raw.isnative:
        flat = flat.astype(raw.newbyteorder("="))
    return flat.reshape(shape)  # the header check made sure NumPy can hold this shape


def load_safetensors(path, *, with_metadata=False):
    """Every tensor of a safetensors file, validated (see the module docstring), as fresh arrays.

    Args:
        path: the file.
        with_metadata: also return the ``__metadata__`` dict (or None).
    Returns:
        ``{name: ndarray}`` in header order (BF16 as float32), or ``(that, metadata)``.
    Raises:
        FileNotFoundError for a missing file; ValueError naming the file (and the tensor) for a
        malformed one.
    """
    with open(path, "rb") as f:
        entries, metadata, start = _read_header(f, path)
        arrays = {}
        f.seek(start)
        for name, (dtype, shape, begin, end) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
            arrays[name] = _read_tensor(f, path, name, dtype, shape, end - begin)  # contiguous: sequential reads
    out = {name: arrays[name] for name in entries}
    return (out, metadata) if with_metadata else out


# ---- writing ----------------------------------------------------------------------------------------
def _format_dtype(name, a):
    code = _WRITE_CODES.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        supported = ", ".join(str(np.dtype(k + str(s))) if k != "b" else "bool" for k, s in _WRITE_CODES)
        raise ValueError(f"save_safetensors: tensor {name!r} has dtype {a.dtype}, which safetensors files "
                         f"written here cannot hold (supported: {supported})")
    return code


def save_safetensors(tensors, path, metadata=None, *, overwrite=True):
    """Write ``tensors`` to a safetensors file atomically (temp file, fsync, rename).

    Args:
        tensors: ``{name: ndarray}``; any layout (written C-contiguous, little-endian). Tensors that
            share memory are written twice: de-duplicate tied weights first.
        path: the target file.
        metadata: optional ``{str: str}`` stored as ``__metadata__``.
        overwrite: replace an existing file (else FileExistsError).
    Raises:
        TypeError: a name or a metadata key/value that is not a str, or a value that is not an ndarray.
        ValueError: the name ``__metadata__``, or a dtype outside F64/F32/F16/I64/I32/I16/I8/U8/BOOL.
    """
    if not isinstance(tensors, Mapping):
        raise TypeError(f"save_safetensors: tensors must be a dict of name -> ndarray, got {type(tensors).__name__}")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"save_safetensors: metadata must be a dict of str -> str, got {type(metadata).__name__}")
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"save_safetensors: metadata {k!r}: {v!r} is not str -> str "
                                f"({type(k).__name__} -> {type(v).__name__})")
    specs = []
    for name, a in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save_safetensors: tensor names must be str, got {name!r}")
        if name == METADATA_KEY:
            raise ValueError(f"save_safetensors: {METADATA_KEY!r} is reserved and cannot name a tensor")
        if not isinstance(a, np.ndarray):
            raise TypeError(f"save_safetensors: tensor {name!r} is a {type(a).__name__}, not an ndarray")
        specs.append((name, _format_dtype(name, a), a))
    specs.sort(key=lambda s: (-s[2].dtype.itemsize, s[0]))  # largest itemsize first: every tensor aligned
    header, offset = {}, 0
    if metadata is not None:
        header[METADATA_KEY] = dict(metadata)
    for name, code, a in specs:
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    if len(blob) > MAX_HEADER_SIZE:
        raise ValueError(f"save_safetensors: the header would be {len(blob)} bytes (limit {MAX_HEADER_SIZE})")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for _, code, a in specs:
                if a.size:
                    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<") if code != "BOOL" else a.dtype)
                    f.write(a.reshape(-1).view(np.uint8).data)

    atomic_write(path, write, overwrite=overwrite)


__all__ = ["save_safetensors", "load_safetensors", "read_safetensors_header", "DTYPES", "MAX_HEADER_SIZE"]
