import json

import pytest

from goldbull_np.data import (
    Conversation, DataEncodingError, DataWarning, ExampleReader, MalformedJSONError, Message, PromptExample,
    SchemaError, TextExample, UnknownRoleError, detect_format,
)

DOC = {
    "version": 1,
    "examples": [{"input": "Translate to French: Hello world", "output": "Bonjour le monde"},
                 {"input": "Summarize: Long text", "output": "Brief"}],
    "conversations": [{"messages": [{"role": "user", "content": "What is ML?"},
                                    {"role": "assistant", "content": "Machine learning is..."}]}],
}
EXPECTED = [
    PromptExample("Translate to French: Hello world", "Bonjour le monde"),
    PromptExample("Summarize: Long text", "Brief"),
    Conversation((Message("user", "What is ML?"), Message("assistant", "Machine learning is..."))),
]


def _strip(examples):
    """Examples without their source/line, to compare content."""
    out = []
    for e in examples:
        if isinstance(e, TextExample):
            out.append(TextExample(e.text))
        elif isinstance(e, PromptExample):
            out.append(PromptExample(e.input, e.output))
        else:
            out.append(Conversation(e.messages))
    return out


def test_plain_text_one_example_per_line_blank_lines_skipped(write):
    p = write("t.txt", "This is the first example.\n\n   \nThis is the second.\n")
    ex = list(ExampleReader(p))
    assert [(e.text, e.line) for e in ex] == [("This is the first example.", 1), ("This is the second.", 4)]


def test_plain_text_document_mode(write):
    p = write("t.txt", "line one\n\nline three\n")
    assert [e.text for e in ExampleReader(p, text_mode="document")] == ["line one\n\nline three"]


@pytest.mark.parametrize("indent", [None, 2])
def test_json_examples_and_conversations(write, indent):
    p = write("d.json", json.dumps(DOC, indent=indent))
    assert detect_format(p) == "json"
    assert _strip(ExampleReader(p)) == EXPECTED


def test_json_reports_line_of_each_element(write):
    p = write("d.json", json.dumps(DOC, indent=2))
    lines = open(p).read().split("\n")
    for e in ExampleReader(p):
        assert lines[e.line - 1].strip() == "{"  # the element starts on that line


def test_json_streams_in_small_windows(write, monkeypatch):
    import goldbull_np.data.reader as reader_mod

    monkeypatch.setattr(reader_mod, "CHUNK_SIZE", 7)  # values span many chunks
    rows = [{"input": "x" * i, "output": "é" * i + "\"\\n"} for i in range(150)]
    p = write("big.json", json.dumps({"examples": rows}))
    got = list(ExampleReader(p))
    assert [(g.input, g.output) for g in got] == [(r["input"], r["output"]) for r in rows]


def test_jsonl_rows_of_either_kind_and_text(write):
    rows = [{"input": "a", "output": "b"}, {"messages": [{"role": "system", "content": "s"}]}, {"text": "plain"}]
    p = write("d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert _strip(ExampleReader(p)) == [PromptExample("a", "b"), Conversation((Message("system", "s"),)),
                                        TextExample("plain")]


def test_gzipped_jsonl_detected_through_gz_extension(write):
    p = write("d.jsonl.gz", json.dumps({"input": "a", "output": "b"}) + "\n", gz=True)
    assert detect_format(p) == "jsonl"
    assert _strip(ExampleReader(p)) == [PromptExample("a", "b")]


@pytest.mark.parametrize("content,fmt", [
    ('{"input": "a", "output": "b"}\n{"input": "c", "output": "d"}\n', "jsonl"),
    (json.dumps(DOC, indent=1), "json"),
    (json.dumps(DOC), "json"),
    ('[{"text": "x"}]', "json"),
    ("just some text\n", "text"),
])
def test_format_detected_from_content_when_extension_unknown(write, content, fmt):
    assert detect_format(write("data.dat", content)) == fmt


def test_json_extension_holding_jsonl_is_read_as_jsonl(write):
    p = write("rows.json", '{"input": "a", "output": "b"}\n{"input": "c", "output": "d"}\n')
    assert detect_format(p) == "jsonl"
    assert len(list(ExampleReader(p))) == 2


# ----------------------------------------------------------------------------- bad input

def test_malformed_jsonl_names_file_physical_line_and_reason(write):
    secret = "SECRET-ROW-CONTENT"
    p = write("d.jsonl", '{"input": "a", "output": "b"}\n\n\n{"input": "' + secret + '", "output": }\n')
    with pytest.raises(MalformedJSONError) as e:
        list(ExampleReader(p))
    msg = str(e.value)
    assert e.value.path == p and e.value.line == 4  # blank lines counted
    assert "d.jsonl, line 4" in msg and "Expecting value" in msg
    assert secret not in msg  # no raw row dumped
    assert isinstance(e.value.__cause__, json.JSONDecodeError)


def test_malformed_json_names_file_physical_line_and_reason(write):
    text = '{\n  "examples": [\n    {"input": "a", "output": "b"},\n\n    {"input": "c" "output": "d"}\n  ]\n}\n'
    p = write("d.json", text)
    with pytest.raises(MalformedJSONError) as e:
        list(ExampleReader(p))
    assert e.value.line == 5 and "Expecting ',' delimiter" in str(e.value) and "d.json, line 5" in str(e.value)
    assert isinstance(e.value.__cause__, json.JSONDecodeError)


@pytest.mark.parametrize("text,line", [
    ('{"examples": [{"input": "a", "output": "b"},]}', 1),  # trailing comma
    ('{"examples": [\n{"input": "a", "output": "b"}', 2),  # truncated file
    ('{"examples": []} trailing', 1),  # extra data
    ('{"examples": [\n{"input": "a",\n"output": "b\nc"}]}', 3),  # raw newline inside a string
])
def test_malformed_json_variants(write, text, line):
    with pytest.raises(MalformedJSONError) as e:
        list(ExampleReader(write("d.json", text)))
    assert e.value.line == line


@pytest.mark.parametrize("row,err,fragment", [
    ("[1, 2]", SchemaError, "row is a JSON array, expected an object"),
    ('"text"', SchemaError, "row is a JSON string"),
    ('{"input": "a"}', SchemaError, "missing the key 'output'"),
    ('{"output": "a"}', SchemaError, "missing the key 'input'"),
    ('{"input": 1, "output": "a"}', SchemaError, "'input' must be a string, got number"),
    ('{"foo": "bar"}', SchemaError, "none of the keys"),
    ('{"messages": "hi"}', SchemaError, "'messages' must be an array"),
    ('{"messages": []}', SchemaError, "'messages' is empty"),
    ('{"messages": [{"role": "user"}]}', SchemaError, "message 0 is missing the key 'content'"),
    ('{"messages": [{"content": "x"}]}', SchemaError, "message 0 is missing the key 'role'"),
    ('{"messages": [{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}]}', UnknownRoleError,
     "message 1: unknown role 'robot'"),
    ('{"messages": [{"role": "user", "content": ["x"]}]}', SchemaError, "'content' must be a string, got array"),
    ('{"messages": [{"role": "user", "content": null}]}', SchemaError, "'content' must be a string, got null"),
])
def test_jsonl_schema_errors_are_named_with_location(write, row, err, fragment):
    p = write("d.jsonl", '{"text": "fine"}\n' + row + "\n")
    with pytest.raises(err) as e:
        list(ExampleReader(p))
    assert fragment in str(e.value) and e.value.line == 2 and f"{p}, line 2" in str(e.value)


def test_json_schema_errors_in_examples_and_conversations(write):
    p = write("d.json", '{"examples": [\n{"input": "a", "output": "b"},\n{"input": "a"}]}')
    with pytest.raises(SchemaError, match="line 3: row is missing the key 'output'"):
        list(ExampleReader(p))
    p = write("e.json", '{"conversations": [\n{"messages": [{"role": "narrator", "content": "x"}]}]}')
    with pytest.raises(UnknownRoleError, match="line 2"):
        list(ExampleReader(p))
    p = write("f.json", '{"conversations": [{"input": "a", "output": "b"}]}')
    with pytest.raises(SchemaError, match="missing the key 'messages'"):
        list(ExampleReader(p))
    p = write("g.json", '{"data": []}')
    with pytest.raises(SchemaError, match="neither an 'examples' nor a 'conversations'"):
        list(ExampleReader(p))


@pytest.mark.parametrize("name", ["e.txt", "e.json", "e.jsonl"])
@pytest.mark.parametrize("content", ["", "  \n\n\t \n"])
def test_empty_and_whitespace_only_files_give_no_examples(write, name, content):
    assert list(ExampleReader(write(name, content))) == []


@pytest.mark.parametrize("name", ["u.txt", "u.jsonl", "u.json"])
def test_invalid_utf8_in_every_format(write, name):
    body = b'{"examples": [\n{"input": "a", "output": "b\xff"}]}' if name == "u.json" else \
        b'{"text": "ok"}\n{"text": "b\xff"}\n' if name == "u.jsonl" else b"ok\nb\xff\n"
    p = write(name, body)
    with pytest.raises(DataEncodingError) as e:
        list(ExampleReader(p))
    assert e.value.line == 2 and e.value.byte_offset == body.index(b"\xff")
    reader = ExampleReader(p, errors="replace")
    texts = [getattr(x, "text", None) or getattr(x, "output", None) for x in reader]
    assert texts[-1] == "b\ufffd" and reader.replaced_characters == 1


def test_long_line_skipped_with_warning_naming_file_and_line(write):
    p = write("l.jsonl", '{"text": "short"}\n{"text": "' + "y" * 500 + '"}\n{"text": "after"}\n')
    reader = ExampleReader(p, max_line_length=100)
    with pytest.warns(DataWarning, match=r"l\.jsonl, line 2: skipped a line"):
        got = [e.text for e in reader]
    assert got == ["short", "after"] and reader.lines_too_long == 1
