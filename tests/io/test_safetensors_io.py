"""goldbull_np.io.safetensors: hostile files are refused (a ValueError naming the file and the tensor, one
test per rule) and round-trips agree with the safetensors library's own save_file/load_file."""
import json
import os
import struct

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from goldbull_np.io import load_safetensors, read_safetensors_header, save_safetensors
from goldbull_np.io.safetensors import MAX_HEADER_SIZE

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_]


def raw_file(path, header, data=b"", length=None):
    """A safetensors file from a header (dict/list, or exact text) and data bytes; ``length`` overrides N."""
    text = header if isinstance(header, (str, bytes)) else json.dumps(header)
    blob = text.encode() if isinstance(text, str) else text
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob) if length is None else length))
        f.write(blob)
        f.write(data)
    return path


def f32(offsets, shape=(2,)):
    return {"dtype": "F32", "shape": list(shape), "data_offsets": list(offsets)}


def refused(path, *fragments, header_too=True):
    with pytest.raises(ValueError) as info:
        load_safetensors(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    if header_too:  # the header reader enforces the same rules
        with pytest.raises(ValueError):
            read_safetensors_header(path)
    return msg


def sample(dtype, shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 100).astype(dtype)


# ---- hostile files ----------------------------------------------------------------------------------
def test_overlapping_offsets(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": f32([0, 8]), "b": f32([4, 12])}, bytes(12))
    refused(p, "'b'", "overlap", "'a'")


def test_same_offsets(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": f32([0, 8]), "b": f32([0, 8])}, bytes(8))
    refused(p, "overlap")


def test_trailing_bytes(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": f32([0, 8])}, bytes(9))
    refused(p, "1 trailing bytes", "'a'")


def test_hole_between_tensors_and_at_the_start(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": f32([0, 8]), "b": f32([12, 20])}, bytes(20))
    refused(p, "'b'", "hole of 4 bytes", "'a'")
    p = raw_file(tmp_path / "n.safetensors", {"a": f32([4, 12])}, bytes(12))
    refused(p, "'a'", "hole", "start")


def test_duplicate_tensor_name(tmp_path):
    entry = json.dumps(f32([0, 8]))
    p = raw_file(tmp_path / "m.safetensors", '{"a": %s, "a": %s}' % (entry, entry), bytes(8))
    refused(p, "duplicate key 'a'")
    # duplicates inside an entry too (which dtype would be meant?)
    p = raw_file(tmp_path / "n.safetensors", '{"a": {"dtype": "F32", "dtype": "F64", "shape": [2], '
                                             '"data_offsets": [0, 8]}}', bytes(8))
    refused(p, "duplicate key 'dtype'")


def test_header_is_a_list(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", [1, 2])
    refused(p, "JSON object")


def test_header_is_not_json_or_not_utf8(tmp_path):
    refused(raw_file(tmp_path / "a.safetensors", "{not json"), "malformed")
    refused(raw_file(tmp_path / "b.safetensors", b"{\xff\xfe}"), "malformed")


def test_entry_not_an_object(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": [0, 8]}, bytes(8))
    refused(p, "'a'", "JSON object", "list")


@pytest.mark.parametrize("shape", ["2", ["2"], [2.0], [True, 2], [-2], [[2]], None])
def test_bad_shape(tmp_path, shape):
    p = raw_file(tmp_path / "m.safetensors", {"a": {"dtype": "F32", "shape": shape, "data_offsets": [0, 8]}},
                 bytes(8))
    refused(p, "'a'", "shape")


@pytest.mark.parametrize("offsets", [[0], [0, 8, 8], ["0", "8"], [0.0, 8.0], [False, 8], [8, 0], [-8, 0], 8])
def test_bad_data_offsets(tmp_path, offsets):
    p = raw_file(tmp_path / "m.safetensors", {"a": {"dtype": "F32", "shape": [2], "data_offsets": offsets}},
                 bytes(8))
    refused(p, "'a'", "data_offsets")


@pytest.mark.parametrize("dtype", ["F8_E4M3", "U32", "U64", "C64", "f32", 4, None])
def test_unsupported_dtype(tmp_path, dtype):
    p = raw_file(tmp_path / "m.safetensors", {"a": {"dtype": dtype, "shape": [2], "data_offsets": [0, 8]}},
                 bytes(8))
    refused(p, "'a'", "dtype")


def test_missing_field(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": {"dtype": "F32", "shape": [2]}}, bytes(8))
    refused(p, "'a'", "data_offsets")


def test_size_does_not_match_shape(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": f32([0, 12])}, bytes(12))
    refused(p, "'a'", "needs 8 bytes", "span 12")


def test_deep_nesting(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    refused(raw_file(tmp_path / "a.safetensors", '{"a": %s}' % deep), "nested too deeply")
    deep = '{"x":' * 200_000 + "1" + "}" * 200_000
    refused(raw_file(tmp_path / "b.safetensors", '{"__metadata__": %s}' % deep), "nested too deeply")


def test_element_count_overflow(tmp_path):
    # 2**32 * 2**32 wraps to 0 in int64, so an int64 product would accept data_offsets [0, 0]
    p = raw_file(tmp_path / "m.safetensors", {"a": f32([0, 0], shape=(2 ** 32, 2 ** 32))})
    refused(p, "'a'", "needs 73786976294838206464 bytes")
    p = raw_file(tmp_path / "n.safetensors", '{"a": {"dtype": "U8", "shape": [%d], "data_offsets": [0, 0]}}'
                 % (2 ** 70))
    refused(p, "'a'", "shape")


def test_shapes_numpy_cannot_hold(tmp_path):
    refused(raw_file(tmp_path / "a.safetensors", {"a": f32([0, 0], shape=(0, 2 ** 62))}), "'a'", "cannot be an array")
    refused(raw_file(tmp_path / "b.safetensors", {"a": f32([0, 4], shape=(1,) * 80)}, bytes(4)), "'a'")


@pytest.mark.parametrize("meta", [{"k": 1}, {"k": ["v"]}, {"k": None}, ["k", "v"], "kv"])
def test_non_string_metadata(tmp_path, meta):
    p = raw_file(tmp_path / "m.safetensors", {"__metadata__": meta, "a": f32([0, 8])}, bytes(8))
    refused(p, "__metadata__")


def test_huge_header_length(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": f32([0, 8])}, bytes(8), length=2 ** 63)
    refused(p, "exceeds the limit")
    p = raw_file(tmp_path / "n.safetensors", {"a": f32([0, 8])}, bytes(8), length=MAX_HEADER_SIZE + 1)
    refused(p, "exceeds the limit")
    p = raw_file(tmp_path / "o.safetensors", {"a": f32([0, 8])}, bytes(8), length=10_000)
    refused(p, "exceeds the file size")


def test_truncated_file(tmp_path):
    good = tmp_path / "good.safetensors"
    save_safetensors({"a": np.arange(6, dtype=np.float32), "b": np.ones(4, np.float32)}, good)
    blob = good.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(blob[:-3])
    refused(cut, "'b'", "truncated")
    cut.write_bytes(blob[:5])
    refused(cut, "only 5 bytes")
    cut.write_bytes(blob[:20])  # inside the header
    refused(cut, "exceeds the file size")


def test_bool_bytes_must_be_0_or_1(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}},
                 b"\x01\x02")
    refused(p, "'a'", "BOOL", header_too=False)  # a rule about the data: only a full read sees it


def test_empty_tensors_may_share_offsets(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"e": f32([0, 0], (0,)), "a": f32([0, 8]), "z": f32([8, 8], (0, 3))},
                 np.arange(2, dtype="<f4").tobytes())
    out = load_safetensors(p)
    assert list(out) == ["e", "a", "z"] and out["z"].shape == (0, 3)
    np.testing.assert_array_equal(out["a"], [0, 1])


def test_header_order_and_data_order_may_differ(tmp_path):
    p = raw_file(tmp_path / "m.safetensors", {"a": f32([8, 16]), "b": f32([0, 8])},
                 np.arange(4, dtype="<f4").tobytes())
    out = load_safetensors(p)
    np.testing.assert_array_equal(out["a"], [2, 3])
    np.testing.assert_array_equal(out["b"], [0, 1])
    tensors, meta = read_safetensors_header(p)
    assert meta is None and tensors["a"] == {"dtype": "F32", "shape": (2,), "data_offsets": (8, 16)}


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_safetensors(tmp_path / "nope.safetensors")


def split(path):
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


# ---- round trips against the safetensors library ------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(3, 4), (5,), (0, 2), (2, 1, 3)])
def test_round_trip_matches_the_library(tmp_path, dtype, shape):
    tensors = {"w": sample(dtype, shape), "b": sample(dtype, (7,), seed=1), "s": sample(np.float32, (2,), seed=2)}
    meta = {"format": "np", "note": "\u00e9"}
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    save_safetensors(tensors, ours, metadata=meta)
    save_file(tensors, str(theirs), metadata=meta)
    for a, b in [(load_file(str(ours)), tensors), (load_safetensors(theirs), tensors),
                 (load_safetensors(ours), tensors)]:
        assert set(a) == set(b)
        for k in b:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            np.testing.assert_array_equal(a[k], b[k])
    with safe_open(str(ours), framework="np") as f:
        assert f.metadata() == meta
    assert load_safetensors(theirs, with_metadata=True)[1] == meta
    # the same header apart from where each tensor sits, and every tensor aligned to its itemsize
    (h1, d1), (h2, _) = split(ours), split(theirs)
    assert {k: {**v, "data_offsets": None} for k, v in h1.items() if k != "__metadata__"} == \
        {k: {**v, "data_offsets": None} for k, v in h2.items() if k != "__metadata__"}
    start = 8 + len(ours.read_bytes()) - len(d1)
    assert start % 8 == 0
    for k, v in h1.items():
        if k != "__metadata__":
            assert v["data_offsets"][0] % tensors[k].dtype.itemsize == 0, k


def test_scalars_non_contiguous_and_big_endian_arrays(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    tensors = {"t": base.T, "step": base[::2, 1::3], "be": np.arange(5, dtype=">i4"), "x": np.array(2.5),
               "f": np.asfortranarray(sample(np.float64, (3, 5)))}
    p = tmp_path / "m.safetensors"
    save_safetensors(tensors, p)
    lib, ours = load_file(str(p)), load_safetensors(p)
    for k, v in tensors.items():
        for got in (lib[k], ours[k]):
            assert got.shape == v.shape and got.dtype == v.dtype.newbyteorder("=")
            np.testing.assert_array_equal(got, v)


def test_bf16_is_widened_to_float32(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as torch_save

    t = torch.tensor([[1.0, -2.5, 3.140625], [0.0, 1e30, -1e-30]], dtype=torch.bfloat16)
    p = tmp_path / "m.safetensors"
    torch_save({"w": t, "h": t.to(torch.float16)}, str(p))
    out = load_safetensors(p)
    assert out["w"].dtype == np.float32 and out["h"].dtype == np.float16
    np.testing.assert_array_equal(out["w"], t.float().numpy())
    np.testing.assert_array_equal(out["h"], t.to(torch.float16).numpy())


def test_loaded_arrays_are_owned_copies(tmp_path):
    p = tmp_path / "m.safetensors"
    save_safetensors({"a": np.arange(4, dtype=np.float32)}, p)
    a = load_safetensors(p)["a"]
    assert a.flags.writeable and a.flags.c_contiguous and not isinstance(a, np.memmap)
    os.remove(p)
    save_safetensors({"a": np.zeros(4, np.float32)}, p)
    a[0] = 7  # no view of the file: neither the delete nor the rewrite reaches it
    np.testing.assert_array_equal(a, [7, 1, 2, 3])


def test_save_refuses_what_the_format_cannot_hold(tmp_path):
    p = tmp_path / "m.safetensors"
    with pytest.raises(TypeError, match="metadata"):
        save_safetensors({"a": np.zeros(2)}, p, metadata={"step": 3})
    with pytest.raises(TypeError, match="'a'"):
        save_safetensors({"a": [1.0, 2.0]}, p)
    for dt in (np.complex64, np.uint32, np.uint64, object):
        with pytest.raises(ValueError, match="'a'"):
            save_safetensors({"a": np.zeros(2, dtype=dt)}, p)
    with pytest.raises(ValueError, match="reserved"):
        save_safetensors({"__metadata__": np.zeros(2)}, p)
    assert not p.exists() and not [q for q in tmp_path.iterdir() if q.name.startswith(".tmp-")]


def test_save_is_atomic_and_can_refuse_to_overwrite(tmp_path, monkeypatch):
    p = tmp_path / "m.safetensors"
    save_safetensors({"a": np.ones(3, np.float32)}, p)
    with pytest.raises(FileExistsError, match="m.safetensors"):
        save_safetensors({"a": np.zeros(3, np.float32)}, p, overwrite=False)

    class Boom(np.ndarray):
        pass

    bad = np.zeros(3, np.float32).view(Boom)
    monkeypatch.setattr(np, "ascontiguousarray", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_safetensors({"a": bad}, p)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_safetensors(p)["a"], np.ones(3))
    assert sorted(q.name for q in tmp_path.iterdir()) == ["m.safetensors"]
