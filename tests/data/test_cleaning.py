import json
import os
import sys

import pytest

from goldbull_np.data import (
    CleaningConfig, DataWarning, LanguageFilter, MissingDependencyError, Preprocessor, detect_language, strip_html,
)
from goldbull_np.data.cleaning import looks_like_html, normalize_whitespace

from .conftest import FIXTURES


def run(write, tmp_path, text, name="raw.txt", **kw):
    kw.setdefault("language_filter", None)
    result = Preprocessor(CleaningConfig(**kw)).process_file(write(name, text), tmp_path / ("out_" + name))
    return result, (tmp_path / ("out_" + name)).read_text(encoding="utf-8")


def test_defaults_are_the_designs():
    c = CleaningConfig()
    assert (c.remove_html, c.normalize_whitespace, c.filter_short_lines, c.min_line_length, c.max_line_length,
            c.remove_duplicates, c.language_filter) == (True, True, True, 10, 2048, True, None)


def test_strip_html_uses_a_parser():
    html = ('<html><head><title>T</title><style>p {color: red}</style></head><body>'
            '<p>Fish &amp; chips &lt;3</p><script>var x = "<p>no</p>";</script><!-- c --><br/>done</body></html>')
    assert normalize_whitespace(strip_html(html)) == "Fish & chips <3 done"
    assert strip_html("x < y and y > z") == "x < y and y > z"  # not HTML: untouched
    assert strip_html("a<=b, c>=d, <foo> and x&y") == "a<=b, c>=d, <foo> and x&y"  # no HTML tag or entity
    # Once text contains a real tag name it is parsed as HTML, as a browser would: "<b and c>" is a tag.
    assert strip_html("if a<b and c>d then") == "if ad then"


def test_looks_like_html():
    assert looks_like_html("<div>x</div>") and looks_like_html("a &amp; b") and looks_like_html("<!-- x -->")
    assert not looks_like_html("a <= b >= c") and not looks_like_html("<foo>bar</foo>") and not looks_like_html("AT&T")


def test_remove_html_rule(write, tmp_path):
    r, out = run(write, tmp_path, "<p>Hello <b>there</b> friend</p>\nplain text line here\n")
    assert out == "Hello there friend\nplain text line here\n"
    assert r.modified["html"] == 1 and r.num_examples == 2
    r, out = run(write, tmp_path, "<p>Hello <b>there</b> friend</p>\n", remove_html=False)
    assert out == "<p>Hello <b>there</b> friend</p>\n" and r.modified["html"] == 0


def test_normalize_whitespace_rule(write, tmp_path):
    r, out = run(write, tmp_path, "  lots   of\tspace\u00a0here  \nclean line of text\n")
    assert out == "lots of space here\nclean line of text\n" and r.modified["whitespace"] == 1
    r, out = run(write, tmp_path, "  lots   of\tspace here  \n", normalize_whitespace=False)
    assert out == "  lots   of\tspace here  \n"


def test_document_mode_keeps_paragraphs(write, tmp_path):
    r, out = run(write, tmp_path, "para  one\n\n\n\npara two  \n", text_mode="document")
    assert out == "para one\n\npara two\n" and r.num_examples == 1


def test_short_and_long_and_empty_rules(write, tmp_path):
    text = "tiny\n<p> </p>\n" + "x" * 50 + "\njust right length\n"
    with pytest.warns(DataWarning, match="line 3: skipped a line of 50 bytes"):
        r, out = run(write, tmp_path, text, min_line_length=10, max_line_length=40)
    assert out == "just right length\n"
    assert (r.removed["too_short"], r.removed["too_long"], r.removed["empty"]) == (1, 1, 1)
    assert r.num_examples == 1 and r.num_read == 4
    r, out = run(write, tmp_path, text, filter_short_lines=False, max_line_length=None)
    assert out == "tiny\n" + "x" * 50 + "\njust right length\n" and r.removed["too_short"] == 0


def test_duplicates_rule_after_cleaning(write, tmp_path):
    r, out = run(write, tmp_path, "same line of text\nsame   line of text\n<i>same line of text</i>\n")
    assert out == "same line of text\n" and r.removed["duplicate"] == 2
    r, out = run(write, tmp_path, "same line of text\nsame line of text\n", remove_duplicates=False)
    assert r.num_examples == 2


def test_jsonl_input_cleans_every_field_and_writes_jsonl(write, tmp_path):
    rows = [{"input": "<b>Question</b>   one?", "output": "An  answer"},
            {"messages": [{"role": "user", "content": "hi &amp; bye"}, {"role": "assistant", "content": "ok then"}]},
            {"input": "q", "output": "<p></p>"}]
    r, out = run(write, tmp_path, "\n".join(json.dumps(x) for x in rows), name="raw.jsonl")
    got = [json.loads(line) for line in out.splitlines()]
    assert got == [{"input": "Question one?", "output": "An answer"},
                   {"messages": [{"role": "user", "content": "hi & bye"}, {"role": "assistant", "content": "ok then"}]}]
    assert r.removed["empty"] == 1


def test_gzip_in_and_out(write, tmp_path):
    import gzip

    p = write("raw.txt.gz", "a line of text that is long enough\n", gz=True)
    r = Preprocessor(CleaningConfig()).process_file(p, tmp_path / "clean.txt.gz")
    assert gzip.decompress((tmp_path / "clean.txt.gz").read_bytes()) == b"a line of text that is long enough\n"
    assert r.num_examples == 1


def test_huge_line_removed_with_warning(huge_line_file, tmp_path):
    out = tmp_path / "clean.txt"
    with pytest.warns(DataWarning, match=r"huge\.txt, line 2: skipped a line of 209715200 bytes"):
        r = Preprocessor(CleaningConfig(max_line_length=2048)).process_file(huge_line_file, out)
    assert r.removed["too_long"] == 1 and r.num_examples == 3
    assert out.read_text().splitlines() == ["first line is fine here", "third line is fine too",
                                            "fourth line is also fine"]


def test_invalid_utf8_replace_counted_and_no_partial_output_on_error(write, tmp_path):
    from goldbull_np.data import DataEncodingError

    p = write("raw.txt", b"a good line of text\nbad \xff line of text\n")
    r = Preprocessor(CleaningConfig(encoding_errors="replace")).process_file(p, tmp_path / "o.txt")
    assert r.replaced_characters == 1 and r.num_examples == 2
    with pytest.raises(DataEncodingError, match="raw.txt, line 2"):
        Preprocessor(CleaningConfig()).process_file(p, tmp_path / "strict.txt")
    assert not any(name.startswith("strict.txt") for name in os.listdir(tmp_path))


# ----------------------------------------------------------------------------- language

def _samples():
    with open(os.path.join(FIXTURES, "language_samples.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_language_detector_accuracy_on_labelled_sample():
    rows = _samples()
    assert len({r["lang"] for r in rows}) >= 8 and len(rows) >= 40
    correct = sum(detect_language(r["text"])[0] == r["lang"] for r in rows)
    assert correct / len(rows) >= 0.9, f"accuracy {correct}/{len(rows)}"


def test_language_detection_is_deterministic():
    text = "Das ist ein kurzer Satz."
    assert len({detect_language(text) for _ in range(5)}) == 1
    assert detect_language("12345 !!!") == ("unknown", 0.0)


def test_language_filter_rule(write, tmp_path):
    rows = _samples()
    text = "\n".join(r["text"] for r in rows) + "\n"
    r, out = run(write, tmp_path, text, language_filter="en")
    kept = out.splitlines()
    english = [x["text"] for x in rows if x["lang"] == "en"]
    assert set(kept) <= set(x["text"] for x in rows)
    assert len(set(kept) & set(english)) >= len(english) - 1 and len(kept) <= len(english) + 2
    assert r.removed["language"] == len(rows) - len(kept)
    r, out = run(write, tmp_path, text, language_filter=["fr", "de"])
    assert r.num_examples >= 10 and r.removed["language"] >= len(rows) - 14


def test_unknown_language_code():
    with pytest.raises(ValueError, match="unknown language code"):
        LanguageFilter("xx")


def test_missing_langdetect_names_the_extra(monkeypatch):
    import goldbull_np.data.language as language

    monkeypatch.setattr(language, "_FACTORY", None)
    for mod in [m for m in sys.modules if m.startswith("langdetect.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "langdetect", None)  # makes `import langdetect` fail
    with pytest.raises(MissingDependencyError, match=r"needs the 'langdetect' package: pip install goldbull_np\[langdetect\]"):
        Preprocessor(CleaningConfig(language_filter="en"))
