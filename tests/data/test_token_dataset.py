import json

import numpy as np
import pytest

from goldbull_np.data import ByteTokenizer, DataLoader, DataWarning, EmptyDatasetError, TokenDataset

TOK = ByteTokenizer()
BOS, EOS = 257, 258


def b(s):
    return list(s.encode())


@pytest.fixture
def corpus(write, tmp_path):
    write("a.txt", "hello world\nsecond line\n")
    write("b.txt.gz", "tiny\n", gz=True)
    write("c.txt", "   \n")  # blank: no document
    return tmp_path


def test_prepare_writes_memmap_index_and_metadata(corpus, tmp_path):
    out = tmp_path / "train.bin"
    meta = TokenDataset.prepare([str(corpus / "*.txt"), str(corpus / "*.gz")], out, TOK)
    doc_a = [BOS] + b("hello world\nsecond line") + [EOS]
    doc_b = [BOS] + b("tiny") + [EOS]
    assert np.fromfile(out, dtype=np.uint16).tolist() == doc_a + doc_b
    assert np.fromfile(str(out) + ".idx", dtype=np.uint64).tolist() == [0, len(doc_a), len(doc_a) + len(doc_b)]
    on_disk = json.loads(open(str(out) + ".json").read())
    assert on_disk == meta and meta["dtype"] == "uint16" and meta["num_documents"] == 2
    assert meta["num_tokens"] == len(doc_a) + len(doc_b) and meta["pad_token_id"] == TOK.pad_token_id


def test_document_aware_blocks_never_cross_documents(corpus, tmp_path):
    out = tmp_path / "train.bin"
    TokenDataset.prepare([str(corpus / "a.txt"), str(corpus / "b.txt.gz")], out, TOK)
    T = 8
    ds = TokenDataset(out, T)
    assert ds.document_aware and isinstance(ds.tokens, np.memmap)
    doc_a = [BOS] + b("hello world\nsecond line") + [EOS]  # 25 tokens -> ceil(24/8) = 3 blocks
    doc_b = [BOS] + b("tiny") + [EOS]  # 6 tokens -> 1 block
    assert len(ds) == 4
    expected_x = [doc_a[0:8], doc_a[8:16], doc_a[16:24], doc_b[0:5]]
    expected_y = [doc_a[1:9], doc_a[9:17], doc_a[17:25], doc_b[1:6]]
    for i in range(4):
        it = ds[i]
        assert it["input_ids"].tolist() == expected_x[i] and it["labels"].tolist() == expected_y[i]
        assert it["attention_mask"].tolist() == [1] * len(expected_x[i]) and it["input_ids"].dtype == np.int64
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["input_ids"].shape == (4, 8) and batch["attention_mask"][3].tolist() == [1] * 5 + [0] * 3
    assert batch["labels"][3, 5:].tolist() == [-100] * 3 and batch["input_ids"][3, 5:].tolist() == [TOK.pad_token_id] * 3
    assert len(doc_a) == 25


def test_stream_mode_is_nanogpt_blocks(corpus, tmp_path):
    out = tmp_path / "train.bin"
    TokenDataset.prepare([str(corpus / "a.txt"), str(corpus / "b.txt.gz")], out, TOK)
    stream = np.fromfile(out, dtype=np.uint16).tolist()
    ds = TokenDataset(out, 8, document_aware=False)
    assert len(ds) == (len(stream) - 1) // 8
    for i in range(len(ds)):
        assert ds[i]["input_ids"].tolist() == stream[i * 8 : i * 8 + 8]
        assert ds[i]["labels"].tolist() == stream[i * 8 + 1 : i * 8 + 9]
        assert set(ds[i]) == {"input_ids", "labels"}


def test_raw_nanogpt_bin_needs_dtype(tmp_path):
    raw = tmp_path / "train.bin"
    np.arange(100, dtype=np.uint16).tofile(raw)
    with pytest.raises(ValueError, match="pass dtype"):
        TokenDataset(raw, 10)
    ds = TokenDataset(raw, 10, dtype=np.uint16)
    assert len(ds) == 9 and ds[3]["labels"].tolist() == list(range(31, 41))


def test_line_mode_and_jsonl_documents(write, tmp_path):
    write("a.txt", "one\n\ntwo\n")
    write("b.jsonl", json.dumps({"input": "q", "output": "a"}) + "\n")
    out = tmp_path / "t.bin"
    meta = TokenDataset.prepare([str(tmp_path / "a.txt"), str(tmp_path / "b.jsonl")], out, TOK, text_mode="line")
    assert meta["num_documents"] == 3
    assert np.fromfile(out, dtype=np.uint16).tolist() == [BOS, *b("one"), EOS, BOS, *b("two"), EOS,
                                                         BOS, *b("q\na"), EOS]


def test_uint32_for_large_vocabularies(write, tmp_path):
    from goldbull_np.data import CharTokenizer

    tok = CharTokenizer([chr(0x4E00 + i) for i in range(70_000 - 8)] + ["a"])
    assert tok.vocab_size > 65536
    meta = TokenDataset.prepare(write("a.txt", "a"), tmp_path / "t.bin", tok)
    assert meta["dtype"] == "uint32"
    assert TokenDataset(tmp_path / "t.bin", 2)[0]["input_ids"][0] == tok.bos_token_id


def test_prepare_nothing_found(write, tmp_path):
    with pytest.raises(EmptyDatasetError, match="no training examples found in"):
        TokenDataset.prepare([write("e.txt", "  \n"), str(tmp_path / "none*.txt")], tmp_path / "t.bin", TOK)
    assert not list(tmp_path.glob("t.bin*"))


def test_prepare_skips_huge_line(huge_line_file, tmp_path):
    with pytest.warns(DataWarning, match="line 2: skipped"):
        meta = TokenDataset.prepare(huge_line_file, tmp_path / "t.bin", TOK, max_line_length=4096)
    assert meta["num_tokens"] == 2 + len("first line is fine here\nthird line is fine too\nfourth line is also fine")


def test_too_few_tokens_for_one_block(write, tmp_path):
    TokenDataset.prepare(write("a.txt", "ab\n"), tmp_path / "t.bin", TOK)  # bos a b eos: 4 tokens
    assert len(TokenDataset(tmp_path / "t.bin", 3)) == 1
    with pytest.raises(EmptyDatasetError, match="no training examples found in .*t.bin: 4 tokens"):
        TokenDataset(tmp_path / "t.bin", 4, document_aware=False)


def test_from_array_is_nanogpt_stream_blocks_and_fingerprints_cheaply():
    ids = np.arange(23, dtype=np.int64)
    ds = TokenDataset.from_array(ids, 5)
    assert len(ds) == 4  # (23 - 1) // 5
    np.testing.assert_array_equal(ds[1]["input_ids"], np.arange(5, 10))
    np.testing.assert_array_equal(ds[1]["labels"], np.arange(6, 11))
    assert set(ds[-1]) == {"input_ids", "labels"}
    assert ds.fingerprint() == TokenDataset.from_array(ids.copy(), 5).fingerprint()
    assert ds.fingerprint() != TokenDataset.from_array(ids[::-1].copy(), 5).fingerprint()
    with pytest.raises(EmptyDatasetError, match="no training examples"):
        TokenDataset.from_array(ids[:5], 5)
    with pytest.raises(ValueError, match="1-D integer"):
        TokenDataset.from_array(np.zeros((2, 3)), 2)


def test_from_array_stride_gives_overlapping_windows():
    ids = np.arange(20, dtype=np.int64)
    ds = TokenDataset.from_array(ids, 5, stride=1)
    assert len(ds) == 15  # starts 0..14: each window needs 6 tokens
    np.testing.assert_array_equal(ds[3]["input_ids"], np.arange(3, 8))
    np.testing.assert_array_equal(ds[14]["labels"], np.arange(15, 20))
    assert len(TokenDataset.from_array(ids, 5, stride=5)) == len(TokenDataset.from_array(ids, 5)) == 3
    assert ds.fingerprint() != TokenDataset.from_array(ids, 5).fingerprint()
    with pytest.raises(ValueError, match="stride"):
        TokenDataset.from_array(ids, 5, stride=6)
