"""A PyTorch ``model.pt`` that ``torch.load(path, weights_only=True)`` reads as a state_dict, written without torch.

torch's zip layout (``torch.save``'s own, ZIP_STORED, data 64-byte aligned)::

    archive/data.pkl         pickle protocol 2: {name: torch._utils._rebuild_tensor_v2(storage, 0, size, stride,
                             False, OrderedDict())}, each storage a persistent id
                             ("storage", torch.<Dtype>Storage, key, "cpu", numel)
    archive/data/<key>       the storage's raw little-endian bytes
    archive/version          "3"
    archive/byteorder        "little"
    archive/.format_version, archive/.storage_alignment, archive/.data/serialization_id

The pickle is assembled opcode by opcode here, so it names exactly the four globals the weights-only
unpickler allows for a state dict (``torch._utils._rebuild_tensor_v2``, the ``torch.*Storage`` classes,
``collections.OrderedDict``) and nothing else; no Python object is pickled.
"""
import io
import os
import struct
import zipfile

import numpy as np

from ..io import atomic_write

# NumPy dtype -> torch storage class name
_STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
             np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage", np.dtype(np.int32): "IntStorage",
             np.dtype(np.int16): "ShortStorage", np.dtype(np.int8): "CharStorage", np.dtype(np.uint8): "ByteStorage",
             np.dtype(np.bool_): "BoolStorage"}
_ALIGN = 64


class _Pickle:
    """Protocol-2 opcodes for the few shapes a state dict needs (dict, str, int, tuple, bool, globals)."""

    def __init__(self):
        self.out = io.BytesIO()
        self.out.write(b"\x80\x02")  # PROTO 2

    def raw(self, b: bytes):
        self.out.write(b)

    def str(self, s: str):
        data = s.encode("utf-8")
        self.raw(b"X" + struct.pack("<I", len(data)) + data)  # BINUNICODE

    def int(self, v: int):
        if 0 <= v < 256:
            self.raw(b"K" + struct.pack("<B", v))  # BININT1
        elif 0 <= v < 65536:
            self.raw(b"M" + struct.pack("<H", v))  # BININT2
        elif -(2 ** 31) <= v < 2 ** 31:
            self.raw(b"J" + struct.pack("<i", v))  # BININT
        else:
            data = int(v).to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            self.raw(b"\x8a" + struct.pack("<B", len(data)) + data)  # LONG1

    def ints(self, values):
        values = list(values)
        if not values:
            self.raw(b")")  # EMPTY_TUPLE (a 0-d tensor's size and stride), as torch writes it
            return
        self.raw(b"(")  # MARK
        for v in values:
            self.int(int(v))
        self.raw(b"t")  # TUPLE

    def global_(self, module: str, name: str):
        self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")  # GLOBAL

    def bytes(self) -> bytes:
        return self.out.getvalue() + b"."  # STOP


def state_dict_pickle(arrays: dict) -> bytes:
    """The ``data.pkl`` of a state dict whose i-th tensor is storage key ``str(i)``."""
    p = _Pickle()
    p.raw(b"}(")  # EMPTY_DICT, MARK
    for key, (name, a) in enumerate(arrays.items()):
        p.str(name)
        p.global_("torch._utils", "_rebuild_tensor_v2")
        p.raw(b"(")  # MARK: the arguments
        p.raw(b"(")  # MARK: the persistent id
        p.str("storage")
        p.global_("torch", _STORAGES[a.dtype])
        p.str(str(key))
        p.str("cpu")
        p.int(int(a.size))
        p.raw(b"tQ")  # TUPLE, BINPERSID
        p.int(0)  # storage offset
        p.ints(a.shape)
        p.ints([s // a.itemsize for s in a.strides] if a.size else [1] * a.ndim)
        p.raw(b"\x89")  # NEWFALSE: requires_grad
        p.global_("collections", "OrderedDict")
        p.raw(b")R")  # EMPTY_TUPLE, REDUCE: backward hooks
        p.raw(b"tR")  # TUPLE, REDUCE
    p.raw(b"u")  # SETITEMS
    return p.bytes()


def _aligned(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Write ``name`` stored, its data starting at a multiple of 64 bytes in the file (as torch.save does)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    header = 30 + len(name.encode("utf-8"))  # local file header + name, before the extra field
    pad = (-(zf.fp.tell() + header + 4)) % _ALIGN  # + 4 bytes of the extra field's own header
    info.extra = struct.pack("<HH", 0xFA17, pad) + b"\0" * pad
    zf.writestr(info, data)


def save_torch_state_dict(arrays: dict, path, *, overwrite: bool = False) -> None:
    """Write ``{name: ndarray}`` as a torch ``.pt`` file (weights_only-loadable), atomically.

    Raises:
        TypeError / ValueError naming a tensor that is not an ndarray or has a dtype torch files cannot hold.
    """
    prepared = {}
    for name, a in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"export_pytorch: tensor names must be strings, got {name!r}")
        if not isinstance(a, np.ndarray):
            raise TypeError(f"export_pytorch: tensor {name!r} is a {type(a).__name__}, not an ndarray")
        a = a if a.flags.c_contiguous else a.copy(order="C")  # (np.ascontiguousarray makes 0-d arrays 1-d)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        if a.dtype not in _STORAGES:
            raise ValueError(f"export_pytorch: tensor {name!r} has dtype {a.dtype}, which a torch file written "
                             f"here cannot hold (supported: {', '.join(str(d) for d in _STORAGES)})")
        prepared[name] = a
    pkl = state_dict_pickle(prepared)
    prefix = os.path.splitext(os.path.basename(os.fspath(path)))[0] or "archive"
    prefix = "archive" if not prefix.isidentifier() else prefix

    def write(tmp):
        with open(tmp, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            _aligned(zf, f"{prefix}/data.pkl", pkl)
            _aligned(zf, f"{prefix}/.format_version", b"1")
            _aligned(zf, f"{prefix}/.storage_alignment", b"64")
            _aligned(zf, f"{prefix}/byteorder", b"little")
            for key, a in enumerate(prepared.values()):
                _aligned(zf, f"{prefix}/data/{key}", a.tobytes())
            _aligned(zf, f"{prefix}/version", b"3\n")
            _aligned(zf, f"{prefix}/.data/serialization_id", b"0" * 40)

    atomic_write(path, write, overwrite=overwrite)


__all__ = ["save_torch_state_dict", "state_dict_pickle"]
