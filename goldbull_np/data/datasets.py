"""TextDataset: examples from files -> token sequences -> fixed-size training items.

Packing choice: NO PACKING ACROSS EXAMPLE BOUNDARIES. An item holds tokens of exactly one example,
so no example can attend to another and the model needs no document mask. With packing on, a
plain-text example longer than T is split into consecutive blocks (block k covers tokens
[kT, kT+T] of that example: T inputs, T shifted labels); its last block is shorter and the
collate function pads it. Input/output examples and conversations are never split (the completion
would lose its prompt): they are truncated to T+1 tokens. For nanoGPT-style dense blocks over a
continuous corpus use text_mode="document" (a file is one example) or TokenDataset.

Items: ds[i] -> {"input_ids": (n,) int64, "labels": (n,) int64, "attention_mask": (n,) int64},
n <= T, labels already shifted (labels[t] is the target of position t; -100 = no loss).
"""
from __future__ import annotations

import os
import warnings
from typing import Iterable

import numpy as np

from .errors import DataWarning, EmptyDatasetError
from .formats import Example, ExampleReader, TextExample
from .preprocess import DatasetStats, PreprocessConfig, example_key, is_empty, normalize_example
from .reader import expand_paths
from .templates import encode_example, shift_labels
from .tokenizers import ByteTokenizer, Tokenizer


class TextDataset:
    """Tokenized training items built from examples (see the module docstring for the layout).

    Args:
        examples: the examples (from ExampleReader, or made in code).
        preprocess_config: a PreprocessConfig (default: PreprocessConfig()).
        tokenizer: any goldbull tokenizer (default: ByteTokenizer()).
        cleaning: an optional CleaningConfig applied to every example before tokenizing.
        stats: a DatasetStats to continue filling (used by from_files).
        description: what the examples came from, for the "no training examples" error.
    Raises:
        EmptyDatasetError: when no example is kept.
    """

    def __init__(self, examples: Iterable[Example], preprocess_config: PreprocessConfig | None = None,
                 tokenizer: Tokenizer | None = None, *, cleaning=None, stats: DatasetStats | None = None,
                 description: str = "the given examples"):
        self.config = config = preprocess_config or PreprocessConfig()
        self.tokenizer = tokenizer or ByteTokenizer()
        self.stats = stats or DatasetStats()
        self.block_size = T = config.max_sequence_length
        cleaner = None
        if cleaning is not None:
            from .cleaning import Preprocessor

            cleaner = Preprocessor(cleaning)
        seen: set[bytes] = set()
        seqs_ids, seqs_target = [], []
        items_seq, items_start = [], []  # per item: sequence index, block start within the sequence
        for ex in examples:
            self.stats.examples_read += 1
            if config.normalize_unicode:
                ex = normalize_example(ex)
            if cleaner is not None:
                ex, reason = cleaner.clean(ex)
                if ex is None:
                    self.stats.dropped[reason] += 1
                    continue
            if is_empty(ex):
                self.stats.dropped["empty"] += 1
                continue
            if config.filter_duplicates:
                key = example_key(ex)
                if key in seen:
                    self.stats.dropped["duplicate"] += 1
                    continue
                seen.add(key)
            ids, target = encode_example(self.tokenizer, ex, config.prompt_separator)  # (n,), (n,)
            if len(ids) < max(config.min_sequence_length, 2):
                self.stats.dropped["too_short"] += 1
                continue
            split = config.packing and isinstance(ex, TextExample)
            if not split and len(ids) > T + 1:
                ids, target = ids[: T + 1], target[: T + 1]
                self.stats.truncated += 1
            if not target[1:].any():
                self.stats.dropped["no_target_tokens"] += 1
                continue
            j = len(seqs_ids)
            seqs_ids.append(ids)
            seqs_target.append(target)
            n_blocks = -(-(len(ids) - 1) // T)  # ceil((n-1)/T): every block has >= 1 label
            items_seq.extend([j] * n_blocks)
            items_start.extend(range(0, n_blocks * T, T))
            self.stats.examples_kept += 1
            self.stats.tokens += len(ids)
        if not seqs_ids:
            raise EmptyDatasetError(f"no training examples found in {description}{_drop_summary(self.stats)}")
        self._ids = np.concatenate(seqs_ids)  # (N,) int32: all kept sequences back to back
        self._target = np.concatenate(seqs_target)  # (N,) bool
        lengths = np.array([len(s) for s in seqs_ids], dtype=np.int64)
        self._seq_start = np.concatenate([[0], np.cumsum(lengths)])  # (S+1,)
        self._item_seq = np.asarray(items_seq, dtype=np.int64)  # (I,)
        self._item_start = np.asarray(items_start, dtype=np.int64)  # (I,)
        self.stats.items = len(self._item_seq)

    # ------------------------------------------------------------------ construction from files
    @classmethod
    def from_file(cls, path: str | os.PathLike, preprocess_config: PreprocessConfig | None = None,
                  tokenizer: Tokenizer | None = None, *, cleaning=None) -> "TextDataset":
        """Read one file (text, JSON or JSONL, plain or gzip). See from_files."""
        return cls.from_files([path], preprocess_config, tokenizer, cleaning=cleaning)

    @classmethod
    def from_files(cls, paths, preprocess_config: PreprocessConfig | None = None,
                   tokenizer: Tokenizer | None = None, *, cleaning=None) -> "TextDataset":
        """Read files, directories or glob patterns, in order, streaming each file.

        A path or pattern that matches nothing, an empty or whitespace-only file contributes no
        examples; if no example is found at all, EmptyDatasetError("no training examples found in ...").

        Args:
            paths: one path/pattern or a list of them.
            preprocess_config: a PreprocessConfig (default: PreprocessConfig()).
            tokenizer: any goldbull tokenizer (default: ByteTokenizer()).
            cleaning: an optional CleaningConfig applied before tokenizing.
        Returns:
            The dataset; `dataset.stats` says what was kept and dropped.
        Raises:
            DataFormatError (and subclasses) naming file and line for malformed input;
            EmptyDatasetError when nothing is left.
        """
        config = preprocess_config or PreprocessConfig()
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        paths = [os.fspath(p) for p in paths]
        files, unmatched = expand_paths(paths)
        stats = DatasetStats(files=len(files), unmatched=unmatched)
        if unmatched:
            warnings.warn(f"no files match {', '.join(unmatched)}", DataWarning, stacklevel=2)

        def examples():
            for f in files:
                reader = ExampleReader(f, config.format, config.text_mode, config.encoding_errors,
                                       config.max_line_length)
                try:
                    yield from reader
                finally:
                    stats.dropped["line_too_long"] += reader.lines_too_long
                    stats.replaced_characters += reader.replaced_characters

        return cls(examples(), config, tokenizer, cleaning=cleaning, stats=stats,
                   description=", ".join(paths) if paths else "(no paths given)")

    # ------------------------------------------------------------------ access
    @property
    def pad_token_id(self) -> int:
        """Id the collate function pads input_ids with."""
        pad = self.tokenizer.pad_token_id
        return 0 if pad is None else pad

    @property
    def num_sequences(self) -> int:
        """Number of kept examples (one sequence each)."""
        return len(self._seq_start) - 1

    def __len__(self) -> int:
        return len(self._item_seq)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} items")
        j = self._item_seq[i]
        s, e = self._seq_start[j], self._seq_start[j + 1]
        a = s + self._item_start[i]
        b = min(a + self.block_size + 1, e)  # T inputs + the one extra token the last label needs
        input_ids, labels = shift_labels(self._ids[a:b], self._target[a:b])  # (n,), (n,)
        return {"input_ids": input_ids, "labels": labels, "attention_mask": np.ones_like(input_ids)}

    def __repr__(self) -> str:
        return (f"TextDataset(items={len(self)}, examples={self.num_sequences}, "
                f"block_size={self.block_size}, tokenizer={self.tokenizer!r})")


def _drop_summary(stats: DatasetStats) -> str:
    parts = []
    if stats.unmatched:
        parts.append(f"no files matched {', '.join(stats.unmatched)}")
    if stats.examples_read:
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(stats.dropped.items()) if v)
        parts.append(f"{stats.examples_read} examples read, all dropped ({dropped})")
    elif stats.files:
        parts.append(f"{stats.files} file(s) read, no examples in them")
    return f" ({'; '.join(parts)})" if parts else ""
