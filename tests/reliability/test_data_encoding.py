"""Item 5: `--data` goes through the data library's one reader (read_text_file) in the CLI and the
library: gzip is decompressed, UTF-16/32 is refused naming the encoding (not reported as invalid
UTF-8), replaced characters are counted and warned about, and above a small share refused."""
import gzip
import warnings

import pytest

from goldbull_np.cli import main

from goldbull_np.data.errors import DataEncodingError, DataFormatError, DataWarning
from goldbull_np.data.reader import LineReader, TextStream, read_text_file
from goldbull_np.text.recipes import read_text
from rel_helpers import CORPUS


def test_gzip_is_decompressed(tmp_path):
    p = tmp_path / "c.txt.gz"
    p.write_bytes(gzip.compress(CORPUS.encode()))
    assert read_text(p)[0] == CORPUS


@pytest.mark.parametrize("encoding, name", [("utf-16", "UTF-16"), ("utf-32", "UTF-32"), ("utf-16-be", None)])
def test_utf16_and_utf32_are_refused_naming_the_encoding(tmp_path, encoding, name):
    p = tmp_path / "c.txt"
    data = CORPUS.encode(encoding)
    if name is None:  # BOM-less big-endian: caught by its NUL bytes
        data = CORPUS.encode("utf-16-be")
    p.write_bytes(data)
    with pytest.raises(DataEncodingError, match=name or "mostly NUL"):
        read_text_file(p)


def test_utf16_in_the_line_and_stream_readers_is_named(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_bytes('{"text": "hi"}\n'.encode("utf-16"))
    with pytest.raises(DataEncodingError, match=r"UTF-16 \(little-endian\).*byte-order mark FF FE"):
        list(LineReader(p, errors="replace"))
    with pytest.raises(DataEncodingError, match="UTF-16"):
        list(TextStream(p))


def test_a_few_replaced_characters_are_counted_and_warned(tmp_path):
    p = tmp_path / "c.txt"
    p.write_bytes(CORPUS.encode() + b"\xff")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        text, replaced = read_text_file(p)
    assert replaced == 1 and text.endswith("\ufffd")
    assert any(issubclass(x.category, DataWarning) and "1 of" in str(x.message) for x in w)


def test_binary_garbage_is_refused(tmp_path):
    p = tmp_path / "c.bin"
    p.write_bytes(bytes(range(128, 256)) * 50)
    with pytest.raises(DataFormatError, match=r"c.bin: .*not valid UTF-8.*not UTF-8 text"):
        read_text_file(p)


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_cli_refuses_utf16_data(tmp_path, capsys, command):
    p = tmp_path / "c.txt"
    p.write_bytes(CORPUS.encode("utf-16"))
    if command == "train":
        argv = ["train", "--data", str(p), "--out", str(tmp_path / "o"), "--max-steps", "1", "--preset", "tiny",
                "--no-progress", "--sample-tokens", "0"]
    else:
        argv = ["finetune", "--data", str(p), "--out", str(tmp_path / "o"), "--max-steps", "1",
                "--checkpoint", str(_base(tmp_path)), "--no-progress"]
    assert main(argv) == 1
    assert "UTF-16" in capsys.readouterr().err


def _base(tmp_path):
    from goldbull_np.data import CharTokenizer
    from rel_helpers import tiny_model
    tok = CharTokenizer.from_text(CORPUS, special_tokens={})
    d = tmp_path / "base"
    tiny_model(tok.vocab_size).save_pretrained(d)
    tok.save(str(d))
    return d


def test_cli_reports_replaced_characters_as_one_line(tmp_path, capsys):
    p = tmp_path / "c.txt"
    p.write_bytes(CORPUS.encode() + b"\xff")
    assert main(["train", "--data", str(p), "--out", str(tmp_path / "o"), "--max-steps", "1", "--preset", "tiny",
                 "--no-progress", "--sample-tokens", "0"]) == 0
    err = capsys.readouterr().err
    assert "goldbull train: warning: " in err and "1 of" in err and "replaced by U+FFFD" in err
