import json

import numpy as np
import pytest

from goldbull_np.data import (
    ByteTokenizer, CleaningConfig, DataWarning, EmptyDatasetError, MalformedJSONError, PreprocessConfig,
    TextDataset,
)
from goldbull_np.data.templates import IGNORE_INDEX

TOK = ByteTokenizer()
BOS, EOS = 257, 258


def cfg(**kw):
    kw.setdefault("min_sequence_length", 1)
    return PreprocessConfig(**kw)


def b(s):
    return list(s.encode())


def test_defaults_are_the_designs():
    c = PreprocessConfig()
    assert (c.max_sequence_length, c.min_sequence_length, c.filter_duplicates, c.normalize_unicode) == (1024, 10, True, True)


def test_items_are_dicts_of_int64_with_shifted_labels(write):
    ds = TextDataset.from_file(write("t.txt", "hello\n"), cfg())
    item = ds[0]
    assert set(item) == {"input_ids", "labels", "attention_mask"}
    assert all(v.dtype == np.int64 and v.ndim == 1 for v in item.values())
    seq = [BOS] + b("hello") + [EOS]
    assert item["input_ids"].tolist() == seq[:-1] and item["labels"].tolist() == seq[1:]
    assert item["attention_mask"].tolist() == [1] * 6
    assert ds[-1]["input_ids"].tolist() == item["input_ids"].tolist()
    with pytest.raises(IndexError):
        ds[1]


def test_packing_splits_long_text_but_never_crosses_examples(write):
    T = 4
    ds = TextDataset.from_file(write("t.txt", "abcdefghij\nXY\n"), cfg(max_sequence_length=T))
    seq1 = [BOS] + b("abcdefghij") + [EOS]  # 12 tokens -> ceil(11/4) = 3 blocks
    seq2 = [BOS] + b("XY") + [EOS]  # 4 tokens -> 1 block
    items = [ds[i] for i in range(len(ds))]
    assert len(ds) == 4 and ds.num_sequences == 2
    assert [it["input_ids"].tolist() for it in items] == [seq1[0:4], seq1[4:8], seq1[8:11], seq2[0:3]]
    assert [it["labels"].tolist() for it in items] == [seq1[1:5], seq1[5:9], seq1[9:12], seq2[1:4]]
    # no block holds tokens of both examples, and every token of each example is predicted once
    for it in items[:3]:
        assert not set(it["input_ids"].tolist()) & set(b("XY"))
    labels = [t for it in items[:3] for t in it["labels"].tolist()]
    assert labels == seq1[1:]


def test_document_mode_gives_dense_blocks(write):
    ds = TextDataset.from_file(write("t.txt", "ab\ncd\n"), cfg(text_mode="document", max_sequence_length=3))
    seq = [BOS] + b("ab\ncd") + [EOS]  # 7 tokens -> 2 blocks of 3
    assert [ds[i]["input_ids"].tolist() for i in range(len(ds))] == [seq[0:3], seq[3:6]]


def test_packing_off_truncates_and_counts(write):
    ds = TextDataset.from_file(write("t.txt", "abcdefghij\n"), cfg(max_sequence_length=4, packing=False))
    assert len(ds) == 1 and ds.stats.truncated == 1
    assert ds[0]["input_ids"].tolist() == [BOS] + b("abc") and ds[0]["labels"].tolist() == b("abcd")


def test_prompt_completion_labels_and_truncation(write):
    rows = [{"input": "ab", "output": "cd"}, {"input": "x" * 20, "output": "y"}]
    p = write("d.jsonl", "\n".join(json.dumps(r) for r in rows))
    ds = TextDataset.from_file(p, cfg(max_sequence_length=8))
    assert len(ds) == 1 and ds.stats.dropped["no_target_tokens"] == 1  # truncation ate the output
    it = ds[0]
    assert it["input_ids"].tolist() == [BOS] + b("ab\ncd")
    assert it["labels"].tolist() == [IGNORE_INDEX] * 3 + b("cd") + [EOS]


def test_conversation_loss_on_assistant_only(write):
    conv = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    ds = TextDataset.from_file(write("c.json", json.dumps({"conversations": [conv]})), cfg())
    it = ds[0]
    I = IGNORE_INDEX
    assert it["input_ids"].tolist() == [BOS, 260, *b("hi"), 262, 261, *b("yo")]
    assert it["labels"].tolist() == [I, I, I, I, I, *b("yo"), 262]


def test_stats_count_each_drop_reason(write):
    text = "a long enough line\nshort\na long enough line\n   \ncafe\u0301 is a long line\ncaf\u00e9 is a long line\n"
    ds = TextDataset.from_file(write("t.txt", text), PreprocessConfig(min_sequence_length=10))
    s = ds.stats
    assert s.examples_read == 5 and s.examples_kept == 2  # the blank line is not an example
    assert s.dropped["too_short"] == 1
    assert s.dropped["duplicate"] == 2  # exact repeat, and a repeat once NFC-normalised
    assert s.as_dict()["dropped"]["duplicate"] == 2 and s.files == 1 and s.items == 2
    ds2 = TextDataset.from_file(write("u.txt", text), PreprocessConfig(min_sequence_length=10, filter_duplicates=False,
                                                                        normalize_unicode=False))
    assert ds2.stats.examples_kept == 4


def test_from_files_globs_and_mixed_formats(write, tmp_path):
    write("a.txt", "first file line\n")
    write("b.jsonl", json.dumps({"input": "q", "output": "a"}) + "\n")
    write("c.json", json.dumps({"examples": [{"input": "q2", "output": "a2"}]}))
    with pytest.warns(DataWarning, match="no files match"):
        ds = TextDataset.from_files([str(tmp_path / "*.txt"), str(tmp_path / "*.json*"),
                                     str(tmp_path / "none*.txt")], cfg())
    assert ds.stats.files == 3 and ds.num_sequences == 3 and ds.stats.unmatched == [str(tmp_path / "none*.txt")]


@pytest.mark.parametrize("content", ["", " \n\t\n"])
def test_empty_inputs_contribute_nothing_and_total_zero_errors(write, tmp_path, content):
    empty = write("empty.txt", content)
    ok = write("ok.txt", "some training text\n")
    with pytest.warns(DataWarning):
        ds = TextDataset.from_files([empty, ok, str(tmp_path / "missing.txt")], cfg())
    assert ds.num_sequences == 1
    with pytest.warns(DataWarning):
        with pytest.raises(EmptyDatasetError, match="no training examples found in .*empty.txt.*missing.txt"):
            TextDataset.from_files([empty, str(tmp_path / "missing.txt")], cfg())


def test_glob_matching_nothing_errors(tmp_path):
    with pytest.warns(DataWarning), pytest.raises(EmptyDatasetError, match=r"no training examples found in .*\*\.txt"):
        TextDataset.from_file(str(tmp_path / "*.txt"), cfg())


def test_everything_dropped_errors_with_reasons(write):
    with pytest.raises(EmptyDatasetError, match="all dropped.*too_short: 2"):
        TextDataset.from_file(write("t.txt", "a\nb\n"), PreprocessConfig(min_sequence_length=10))


def test_malformed_input_propagates_with_location(write):
    with pytest.raises(MalformedJSONError, match="d.jsonl, line 2"):
        TextDataset.from_file(write("d.jsonl", '{"text": "fine"}\n{oops}\n'), cfg())


def test_invalid_utf8_replace_mode_counts(write):
    ds = TextDataset.from_file(write("t.txt", b"caf\xff line\n"), cfg(encoding_errors="replace"))
    assert ds.stats.replaced_characters == 1


def test_cleaning_config_applies_before_tokenizing(write):
    p = write("t.txt", "<p>Hello   <b>world</b> of html</p>\nshort\n")
    ds = TextDataset.from_file(p, cfg(), cleaning=CleaningConfig(language_filter=None))
    assert ds.num_sequences == 1 and ds.stats.dropped["too_short"] == 1
    assert ds[0]["labels"].tolist()[:-1] == b("Hello world of html")


def test_huge_line_skipped_with_warning(huge_line_file):
    with pytest.warns(DataWarning, match=r"huge\.txt, line 2: skipped"):
        ds = TextDataset.from_file(huge_line_file, cfg(max_line_length=10_000))
    assert ds.num_sequences == 3 and ds.stats.dropped["line_too_long"] == 1


def test_custom_tokenizer_and_pad_id(write):
    from goldbull_np.data import CharTokenizer

    tok = CharTokenizer.from_text("abc\n")
    ds = TextDataset.from_file(write("t.txt", "abc\n"), cfg(), tokenizer=tok)
    assert ds.pad_token_id == tok.pad_token_id and ds[0]["input_ids"][0] == tok.bos_token_id
