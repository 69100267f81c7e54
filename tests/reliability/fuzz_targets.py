"""Fuzz targets for the parsers that take untrusted bytes, shared by the bounded CI tests
(test_fuzz_parsers.py, hypothesis and a few seconds of atheris) and the long run
(benchmarks/fuzz_parsers.py).

Each target takes ``bytes``, feeds them to one parser through a file (the way users hand us data)
and returns normally or raises one of the target's ``ALLOWED`` exceptions: the documented, named
errors. Anything else (AttributeError, RecursionError, OverflowError, MemoryError, struct.error, a
tokenizers-library exception, ...) is a finding. Targets also check what a successful parse returns.
"""
import gzip
import json
import os
import struct
import tempfile

from goldbull_np.data.errors import DataError
from goldbull_np.io import load_safetensors

_TMP = tempfile.mkdtemp(prefix="goldbull-fuzz-")


def _file(name, data: bytes) -> str:
    path = os.path.join(_TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _dir(name, files: dict) -> str:
    d = os.path.join(_TMP, name)
    os.makedirs(d, exist_ok=True)
    for fn in os.listdir(d):
        os.unlink(os.path.join(d, fn))
    for fn, data in files.items():
        with open(os.path.join(d, fn), "wb") as f:
            f.write(data)
    return d


# ---- safetensors ---------------------------------------------------------------------------------------
def safetensors_target(data: bytes) -> None:
    path = _file("w.safetensors", data)
    try:
        arrays = load_safetensors(path)
    except ValueError:
        return
    # what loaded is exactly what the file holds: the tensors tile the data section, shapes as declared
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    raw = 0
    for name, a in arrays.items():
        info = header[name]
        assert a.shape == tuple(info["shape"]), name
        raw += info["data_offsets"][1] - info["data_offsets"][0]
    assert 8 + n + raw == len(data)


def safetensors_header(header, data: bytes = b"") -> bytes:
    """A safetensors file with this header (a JSON value or raw bytes) and data section."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


# ---- configs -------------------------------------------------------------------------------------------
def config_target(data: bytes) -> None:
    """config.json, native and Hugging Face: read_json -> the config mapping -> the size bounds."""
    from goldbull_np.text import ModelConfig
    from goldbull_np.text.hf import hf_config_to_model_config
    from goldbull_np._config_io import read_json
    from goldbull_np.nn.model_base import directory_model_type
    from goldbull_np.text.hf import is_hf_directory
    directory = _dir("model", {"config.json": data})
    path = os.path.join(directory, "config.json")
    assert is_hf_directory(directory) in (True, False)
    try:
        assert isinstance(directory_model_type(directory, default="goldbull_text"), str)
    except ValueError:
        pass
    try:
        d = read_json(path, "missing")
    except ValueError:
        return
    for build in (lambda: ModelConfig.from_dict(d, source=path), lambda: hf_config_to_model_config(d, path)[0]):
        try:
            cfg = build()
            cfg.check_fits(source=path)
        except ValueError:
            continue
        assert cfg.num_parameters() > 0


def config_dict(d) -> bytes:
    return json.dumps(d).encode()


# ---- data formats ----------------------------------------------------------------------------------------
def data_target(data: bytes) -> None:
    """The example readers (text, JSON, JSONL incl. chat rows) over raw and gzip-compressed bytes,
    and the one --data reader."""
    from goldbull_np.data.formats import ExampleReader
    from goldbull_np.data.reader import read_text_file
    import warnings
    for name, blob in (("d", data), ("d.gz", gzip.compress(data, mtime=0))):
        path = _file(name, blob)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for fmt in ("text", "json", "jsonl"):
                for errors in ("strict", "replace"):
                    try:
                        for _ in ExampleReader(path, format=fmt, errors=errors, max_line_length=10_000):
                            pass
                    except (DataError, ValueError):
                        pass
            try:
                text, replaced = read_text_file(path)
                assert isinstance(text, str) and replaced >= 0
            except (DataError, ValueError):
                pass


# ---- tokenizer files ---------------------------------------------------------------------------------------
def tokenizer_target(data: bytes) -> None:
    """load_tokenizer on a directory whose goldbull_tokenizer.json, or whose tokenizer.json, is these bytes."""
    from goldbull_np.data.tokenizers import CONFIG_FILE, load_tokenizer
    for files in ({CONFIG_FILE: data}, {"tokenizer.json": data}):
        d = _dir("tok", files)
        try:
            tok = load_tokenizer(d)
        except (ValueError, DataError, FileNotFoundError):
            continue
        try:
            ids = tok.encode("hello, world")
        except ValueError:  # a char vocabulary without <|unk|> refuses unseen characters, by design
            continue
        assert all(0 <= i < tok.vocab_size for i in ids)
        tok.decode(ids)


def tokenizer_config(kind, **fields) -> bytes:
    return json.dumps({"kind": kind, **fields}).encode()


TARGETS = {"safetensors": safetensors_target, "config": config_target, "data": data_target,
           "tokenizer": tokenizer_target}


def seeds(name):
    """Valid inputs of each target, to start mutation from."""
    import numpy as np

    from goldbull_np.io import save_safetensors
    if name == "safetensors":
        p = os.path.join(_TMP, "seed.safetensors")
        save_safetensors({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.int64),
                          "c": np.zeros(0, np.float16), "d": np.array([True, False])}, p, metadata={"k": "v"})
        return [open(p, "rb").read()]
    if name == "config":
        from goldbull_np.text import ModelConfig
        return [json.dumps(ModelConfig.tiny().to_dict()).encode(),
                json.dumps({"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 8, "vocab_size": 11,
                            "n_positions": 8}).encode(),
                json.dumps({"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 2,
                            "hidden_size": 8, "vocab_size": 11, "intermediate_size": 16,
                            "max_position_embeddings": 8, "rope_scaling": {"rope_type": "default"}}).encode()]
    if name == "data":
        return [b"hello world\nsecond line\n", b'{"text": "a"}\n{"prompt": "p", "completion": "c"}\n',
                b'[{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}]',
                "caf\u00e9\n".encode("utf-16")]
    if name == "tokenizer":
        from goldbull_np.data import CharTokenizer
        d = os.path.join(_TMP, "seedtok")
        CharTokenizer.from_text("abc hello, world").save(d)
        from goldbull_np.data.tokenizers import CONFIG_FILE
        return [open(os.path.join(d, CONFIG_FILE), "rb").read(), tokenizer_config("byte")]
    raise KeyError(name)
