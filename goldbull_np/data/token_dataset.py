"""TokenDataset: a memory-mapped .bin of token ids (uint16/uint32) for corpora larger than memory.

`TokenDataset.prepare(paths, "train.bin", tokenizer)` streams text files into three files:

    train.bin       the ids of every document back to back, each as bos + text + eos (raw, np.memmap)
    train.bin.idx   uint64 start offset of every document, then the total (raw, np.memmap)
    train.bin.json  metadata: dtype, counts, special-token ids, sources

Items are NON-OVERLAPPING blocks, in order, which makes them deterministic and exactly resumable
through the DataLoader (shuffle the items, not random windows):
    document_aware=True  (default when the .idx exists): blocks never cross a document boundary
        (same rule as TextDataset); a document's last block is shorter and gets padded, so items
        carry an attention_mask.
    document_aware=False: nanoGPT's stream; block i is tokens [iT, iT+T] of the whole stream and
        documents are separated only by their eos/bos tokens. Items are all exactly T long and have
        no attention_mask. A raw nanoGPT train.bin (no .json/.idx) is read this way, given its dtype.
"""
from __future__ import annotations

import json
import os
import unicodedata
from typing import Iterator

import numpy as np

from .errors import EmptyDatasetError
from .formats import ExampleReader, TextExample
from .reader import LineReader, expand_paths, warn_long_line
from .templates import encode_example
from .tokenizers import Tokenizer

_FLUSH_TOKENS = 1 << 20  # tokens buffered before a write
_DOC_CHARS = 1 << 20  # characters of a document encoded at a time (document mode)


class TokenDataset:
    """Blocks of a memory-mapped token file (see the module docstring).

    Args:
        path: the .bin file.
        block_size: T, the number of input positions per item.
        document_aware: keep blocks inside documents (needs the .idx file); None = when it exists.
        dtype: the ids' dtype; read from the .json sidecar when present, else required.
    """

    def __init__(self, path: str | os.PathLike, block_size: int, *, document_aware: bool | None = None,
                 dtype=None):
        self.path = os.fspath(path)
        self.block_size = T = int(block_size)
        if T < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.meta = {}
        if os.path.isfile(self.path + ".json"):
            with open(self.path + ".json", encoding="utf-8") as f:
                self.meta = json.load(f)
        dtype = dtype or self.meta.get("dtype")
        if dtype is None:
            raise ValueError(f"{self.path} has no .json sidecar: pass dtype (np.uint16 or np.uint32)")
        self.dtype = np.dtype(dtype)
        self.tokens = np.memmap(self.path, dtype=self.dtype, mode="r")  # (N,)
        has_idx = os.path.isfile(self.path + ".idx")
        self.document_aware = has_idx if document_aware is None else bool(document_aware)
        self.stride = T  # file-backed datasets hold non-overlapping blocks
        if self.document_aware:
            if not has_idx:
                raise FileNotFoundError(f"document_aware=True needs {self.path}.idx (written by prepare)")
            bounds = np.fromfile(self.path + ".idx", dtype=np.uint64).astype(np.int64)  # (D+1,)
            self._doc_start, self._doc_end = bounds[:-1], bounds[1:]  # (D,), (D,)
            blocks = np.maximum(0, -(-(self._doc_end - self._doc_start - 1) // T))  # (D,) ceil((len-1)/T)
            self._cum_blocks = np.cumsum(blocks)  # (D,)
            self._len = int(self._cum_blocks[-1]) if len(blocks) else 0
        else:
            self._len = max(0, (len(self.tokens) - 1) // T)
        if self._len == 0:
            raise EmptyDatasetError(f"no training examples found in {self.path}: {len(self.tokens)} tokens make no "
                                    f"block of block_size={T} (a block needs block_size + 1 tokens in one "
                                    f"{'document' if self.document_aware else 'stream'})")

    @classmethod
    def from_array(cls, ids, block_size: int, stride: int | None = None) -> "TokenDataset":
        """nanoGPT's stream over an in-memory (N,) array of ids: item i is tokens [i*stride, i*stride+T]
        (T inputs and T shifted labels), all exactly T long.

        Args:
            ids: (N,) integer ids.
            block_size: T.
            stride: tokens between consecutive items' starts; T (default) gives non-overlapping blocks,
                1 gives a window at every offset, which a shuffling loader turns into nanoGPT's
                random-offset sampling while staying deterministic and exactly resumable.
        """
        tokens = np.ascontiguousarray(np.asarray(ids))  # (N,)
        if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
            raise ValueError(f"from_array needs a 1-D integer array, got {tokens.dtype} of shape {tokens.shape}")
        self = cls.__new__(cls)
        self.path, self.meta, self.dtype, self.tokens = None, {}, tokens.dtype, tokens
        self.block_size = T = int(block_size)
        if T < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.document_aware = False
        self.stride = T if stride is None else int(stride)
        if not 1 <= self.stride <= T:
            raise ValueError(f"stride must be in [1, block_size={T}], got {stride}")
        self._len = max(0, (len(tokens) - T - 1) // self.stride + 1)
        if self._len == 0:
            raise EmptyDatasetError(f"no training examples found in an array of {len(tokens)} tokens: a block "
                                    f"of block_size={T} needs block_size + 1 tokens")
        return self

    def fingerprint(self) -> dict:
        """A cheap identity for resume checks: a hash of in-memory tokens, or of the file's metadata
        (never a pass over a large memory-mapped file)."""
        import hashlib

        fp = {"type": "TokenDataset", "tokens": int(len(self.tokens)), "block_size": self.block_size,
              "stride": self.stride, "document_aware": self.document_aware}
        if self.path is None:
            fp["sha256"] = hashlib.sha256(self.tokens.tobytes()).hexdigest()[:16]
        else:
            fp["path"] = os.path.abspath(self.path)
            fp["meta_sha256"] = hashlib.sha256(json.dumps(self.meta, sort_keys=True).encode()).hexdigest()[:16]
        return fp

    @property
    def pad_token_id(self) -> int:
        pad = self.meta.get("pad_token_id")
        return 0 if pad is None else int(pad)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        n, T = self._len, self.block_size
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} items")
        if not self.document_aware:
            start = i * self.stride
            x = np.asarray(self.tokens[start : start + T + 1], dtype=np.int64)  # (T+1,)
            return {"input_ids": x[:-1], "labels": x[1:]}
        d = int(np.searchsorted(self._cum_blocks, i, side="right"))
        k = i - (int(self._cum_blocks[d - 1]) if d else 0)
        a = int(self._doc_start[d]) + k * T
        b = min(a + T + 1, int(self._doc_end[d]))
        x = np.asarray(self.tokens[a:b], dtype=np.int64)  # (n+1,), n <= T
        return {"input_ids": x[:-1], "labels": x[1:], "attention_mask": np.ones(len(x) - 1, dtype=np.int64)}

    def __repr__(self) -> str:
        return (f"TokenDataset({self.path!r}, tokens={len(self.tokens)}, items={len(self)}, "
                f"block_size={self.block_size}, document_aware={self.document_aware})")

    # ------------------------------------------------------------------ writing
    @staticmethod
    def prepare(paths, out_path: str | os.PathLike, tokenizer: Tokenizer, *, text_mode: str = "document",
                format: str | None = None, encoding_errors: str = "strict", normalize_unicode: bool = True,
                max_line_length: int | None = 1_000_000, dtype=None) -> dict:
        """Tokenize files into out_path (+ .idx and .json), streaming: memory stays bounded.

        Args:
            paths: files, directories or globs (text, JSON, JSONL; plain or gzip).
            out_path: the .bin to write (replaced atomically when complete).
            tokenizer: any goldbull tokenizer; each document becomes bos + ids + eos.
            text_mode: plain text as one document per file ("document") or per line ("line").
            format: force a format instead of detecting it.
            encoding_errors: "strict" or "replace".
            normalize_unicode: NFC-normalise text first.
            max_line_length: longer physical lines are skipped with a DataWarning.
            dtype: np.uint16 / np.uint32; default uint16 when the vocabulary fits.
        Returns:
            The metadata written to out_path + ".json".
        Raises:
            EmptyDatasetError: when the inputs hold no text.
        """
        out_path = os.fspath(out_path)
        dtype = np.dtype(dtype or (np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32))
        if tokenizer.vocab_size - 1 > np.iinfo(dtype).max:
            raise ValueError(f"vocab_size {tokenizer.vocab_size} does not fit {dtype}")
        files, unmatched = expand_paths(paths)
        tmp_bin, tmp_idx = out_path + ".tmp", out_path + ".idx.tmp"
        n_tokens, n_docs = 0, 0
        with open(tmp_bin, "wb") as fb, open(tmp_idx, "wb") as fi:
            buf: list[int] = []
            starts: list[int] = []
            for f in files:
                for doc in _documents(f, tokenizer, text_mode, format, encoding_errors, normalize_unicode,
                                      max_line_length):
                    doc_len = 0
                    for ids in doc:
                        buf.extend(ids)
                        doc_len += len(ids)
                        if len(buf) >= _FLUSH_TOKENS:
                            np.asarray(buf, dtype=dtype).tofile(fb)
                            buf = []
                    if doc_len:
                        starts.append(n_tokens)
                        n_tokens += doc_len
                        n_docs += 1
                        if len(starts) >= _FLUSH_TOKENS:
                            np.asarray(starts, dtype=np.uint64).tofile(fi)
                            starts = []
            np.asarray(buf, dtype=dtype).tofile(fb)
            np.asarray(starts + [n_tokens], dtype=np.uint64).tofile(fi)
        if n_tokens == 0:
            os.remove(tmp_bin)
            os.remove(tmp_idx)
            where = ", ".join(map(os.fspath, [paths] if isinstance(paths, (str, os.PathLike)) else paths))
            raise EmptyDatasetError(f"no training examples found in {where or '(no paths given)'}")
        os.replace(tmp_bin, out_path)
        os.replace(tmp_idx, out_path + ".idx")
        meta = {
            "format": "goldbull-tokens", "version": 1, "dtype": dtype.name, "num_tokens": n_tokens,
            "num_documents": n_docs, "vocab_size": tokenizer.vocab_size, "tokenizer": tokenizer.kind,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id, "sources": files, "unmatched": unmatched,
        }
        with open(out_path + ".json", "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
        return meta


def _documents(path, tokenizer, text_mode, format, errors, normalize, max_line_length) -> Iterator[Iterator[list[int]]]:
    """Yield one generator of id chunks per document of a file."""
    nfc = (lambda s: unicodedata.normalize("NFC", s)) if normalize else (lambda s: s)
    reader = ExampleReader(path, format, text_mode, errors, max_line_length)
    if reader.format != "text":
        for ex in reader:
            if isinstance(ex, TextExample):
                ex = TextExample(nfc(ex.text))
            ids, _ = encode_example(tokenizer, ex)
            yield iter([ids.tolist()])
        return
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    lines = LineReader(path, max_line_length, errors)
    if text_mode == "line":
        batch: list[str] = []

        def flush():
            for ids in tokenizer.encode_batch(batch):
                yield iter([bos + ids + eos])

        for line in lines:
            if line.text is None:
                warn_long_line(path, line, max_line_length)
            elif line.text.strip():
                batch.append(nfc(line.text))
                if len(batch) >= 1024:
                    yield from flush()
                    batch = []
        yield from flush()
        return

    def document() -> Iterator[list[int]]:
        # A file is one document, encoded in pieces of ~_DOC_CHARS characters cut at line ends;
        # bos is written once the first non-blank line is seen, so a blank file adds nothing.
        # Lines are joined by "\n" (the file's final newline is not part of the document), as in
        # TextDataset's document mode.
        pending, size, started, first = [], 0, False, True
        for line in lines:
            if line.text is None:
                warn_long_line(path, line, max_line_length)
                continue
            pending.append(line.text if first else "\n" + line.text)
            first = False
            size += len(line.text) + 1
            if not started and line.text.strip():
                started = True
                yield bos
            if size >= _DOC_CHARS:
                if started:
                    yield tokenizer.encode(nfc("".join(pending)))
                pending, size = [], 0  # (before the first text: only whitespace is dropped)
        if started:
            yield tokenizer.encode(nfc("".join(pending)))
            yield eos

    yield document()
