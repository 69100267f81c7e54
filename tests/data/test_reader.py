import tracemalloc

import pytest

from goldbull_np.data import DataEncodingError, DataFormatError
from goldbull_np.data.reader import LineReader, TextStream, expand_paths


def test_lines_numbers_offsets_crlf_bom_and_last_line(write):
    p = write("a.txt", b"\xef\xbb\xbfhello\r\n\nw\xc3\xa9rld\nlast")
    lines = list(LineReader(p))
    assert [(ln.number, ln.text) for ln in lines] == [(1, "hello"), (2, ""), (3, "wérld"), (4, "last")]
    assert [ln.offset for ln in lines] == [0, 10, 11, 18]


def test_gzip_detected_by_magic_bytes_not_name(write):
    p = write("data.txt", "one\ntwo\n", gz=True)  # gzip content under a .txt name
    assert [ln.text for ln in LineReader(p)] == ["one", "two"]
    assert "".join(TextStream(p)) == "one\ntwo\n"


def test_corrupt_gzip_names_file(write):
    p = write("bad.gz", b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataFormatError, match="bad.gz"):
        list(LineReader(p))


def test_invalid_utf8_strict_names_file_line_and_byte_offset(write):
    p = write("b.txt", b"ok\nbad \xff here\n")
    with pytest.raises(DataEncodingError) as e:
        list(LineReader(p))
    assert e.value.path == p and e.value.line == 2 and e.value.byte_offset == 7
    assert "b.txt, line 2" in str(e.value) and "byte offset 7" in str(e.value)
    assert isinstance(e.value.__cause__, UnicodeDecodeError)


def test_invalid_utf8_replace_substitutes_and_counts(write):
    # a genuine U+FFFD in the input must not be counted as a substitution
    p = write("b.txt", b"ok \xef\xbf\xbd\nbad \xff\xfe here\n")
    reader = LineReader(p, errors="replace")
    assert [ln.text for ln in reader] == ["ok \ufffd", "bad \ufffd\ufffd here"]
    assert reader.replaced == 2


def test_text_stream_reports_line_and_offset_across_chunks(write, monkeypatch):
    import goldbull_np.data.reader as reader_mod

    monkeypatch.setattr(reader_mod, "CHUNK_SIZE", 5)
    p = write("c.json", "é\né\n".encode() + b"ab\xc3")  # last char cut off by the end of the file
    with pytest.raises(DataEncodingError) as e:
        list(TextStream(p))
    assert (e.value.line, e.value.byte_offset) == (3, 8)
    # multi-byte characters split across chunk boundaries decode correctly
    p = write("d.txt", "ééé\n日本語\n")
    assert "".join(TextStream(p)) == "ééé\n日本語\n"


def test_200mb_line_streams_in_bounded_memory(huge_line_file):
    tracemalloc.start()
    try:
        lines = list(LineReader(huge_line_file, max_line_length=1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [ln.text for ln in lines] == ["first line is fine here", None, "third line is fine too",
                                        "fourth line is also fine"]
    assert lines[1].number == 2 and lines[1].length == 200 << 20
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB while reading a 200 MB line"


def test_expand_paths_globs_dirs_and_unmatched(tmp_path):
    (tmp_path / "d" / ".git").mkdir(parents=True)
    for name in ("d/b.txt", "d/a.txt", "d/.hidden", "d/.git/config", "c.jsonl"):
        (tmp_path / name).write_text("x")
    files, unmatched = expand_paths([str(tmp_path / "d"), str(tmp_path / "*.jsonl"), str(tmp_path / "nope*.txt"),
                                     str(tmp_path / "missing.txt"), str(tmp_path / "d" / "a.txt")])
    assert files == [str(tmp_path / "d" / "a.txt"), str(tmp_path / "d" / "b.txt"), str(tmp_path / "c.jsonl")]
    assert unmatched == [str(tmp_path / "nope*.txt"), str(tmp_path / "missing.txt")]
