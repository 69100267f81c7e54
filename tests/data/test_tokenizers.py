import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goldbull_np.data import (
    SPECIAL_TOKENS, BPETokenizer, ByteTokenizer, CharTokenizer, MissingDependencyError, load_tokenizer,
)

from .conftest import FIXTURES

GPT2_TINY = os.path.join(FIXTURES, "gpt2_tiny_tokenizer.json")
SPECIAL_TEXT = "<|bos|>hi<|user|>there<|end|><|eos|><|pad|><|assistant|><|system|>"
CORPUS = ("the cat sat on the mat. the dog sat on the log. <|user|> héllo wörld 日本語\n" * 50
          + "machine learning needs clean data and good tokenizers\n" * 50)


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    d = tmp_path_factory.mktemp("bpe")
    (d / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    return BPETokenizer.train(str(d / "corpus.txt"), vocab_size=320)


# ----------------------------------------------------------------------------- byte

@settings(max_examples=300, deadline=None)
@given(st.text())
def test_byte_round_trip_any_text(s):
    tok = ByteTokenizer()
    assert tok.decode(tok.encode(s)) == s
    assert tok.decode(tok.encode(s, add_special_tokens=True), skip_special_tokens=True) == s


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters()))
def test_byte_round_trip_even_lone_surrogates(s):
    tok = ByteTokenizer()
    assert tok.decode(tok.encode(s)) == s


def test_byte_ids_and_specials():
    tok = ByteTokenizer()
    assert tok.encode("aé") == [97, 0xC3, 0xA9]
    assert tok.vocab_size == 256 + len(SPECIAL_TOKENS)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (256, 257, 258)
    assert tok.role_token_ids == {"system": 259, "user": 260, "assistant": 261}
    assert tok.end_of_turn_token_id == 262
    assert tok.encode("a", add_special_tokens=True) == [257, 97, 258]
    assert tok.decode([257, 97, 262]) == "<|bos|>a<|end|>"
    assert tok.decode([257, 97, 262], skip_special_tokens=True) == "a"
    assert tok.decode([0xC3]) == "\ufffd"  # a cut multi-byte character does not raise
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([263])


@pytest.mark.parametrize("make", [ByteTokenizer, lambda: CharTokenizer.from_text(CORPUS + SPECIAL_TEXT), "bpe"])
def test_special_token_strings_in_text_are_ordinary_text(make, bpe):
    tok = bpe if make == "bpe" else make()
    ids = tok.encode(SPECIAL_TEXT)
    assert not set(ids) & set(tok.special_token_ids.values())
    assert tok.decode(ids) == SPECIAL_TEXT


def test_encode_batch_and_numpy_ids(bpe):
    for tok in (ByteTokenizer(), CharTokenizer.from_text(CORPUS), bpe):
        texts = ["the cat", "", "sat on the mat"]
        assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]
        assert tok.encode_batch(texts, add_special_tokens=True) == [tok.encode(t, True) for t in texts]
        ids = np.asarray(tok.encode("the cat"), dtype=np.int64)
        assert tok.decode(ids) == "the cat"


# ----------------------------------------------------------------------------- char

def test_char_tokenizer_is_nanogpt_style():
    text = "hello world"
    tok = CharTokenizer.from_text(text)
    chars = sorted(set(text))
    assert tok.chars == chars
    assert tok.encode("hello") == [chars.index(c) for c in "hello"]  # stoi of sorted chars
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab_size == len(chars) + len(SPECIAL_TOKENS) + 1  # + unk
    unk = tok.special_token_ids["unk"]
    assert tok.encode("hi!") == [chars.index("h"), unk, unk]
    assert tok.decode(tok.encode("hex")) == "he\ufffd"


def test_char_train_streams_files(write):
    p = write("c.txt", "abc\nxyz", gz=True)
    tok = CharTokenizer.train([p])
    assert tok.chars == sorted("abc\nxyz")


# ----------------------------------------------------------------------------- save / load

def test_save_load_byte_and_char(tmp_path):
    for tok in (ByteTokenizer(), CharTokenizer.from_text("héllo\n日本")):
        d = tmp_path / tok.kind
        tok.save(d)
        config = json.loads((d / "goldbull_tokenizer.json").read_text())
        assert config["kind"] == tok.kind
        again = load_tokenizer(d)
        assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
        assert again.special_token_ids == tok.special_token_ids
        assert again.encode("héllo 日本") == tok.encode("héllo 日本")
        assert type(tok).load(d).vocab_size == tok.vocab_size
    with pytest.raises(ValueError, match="holds a CharTokenizer"):
        ByteTokenizer.load(tmp_path / "char")


def test_no_pickle_on_disk(tmp_path, bpe):
    bpe.save(tmp_path)
    names = os.listdir(tmp_path)
    assert names, "save wrote nothing"
    for name in names:
        raw = (tmp_path / name).read_bytes()
        assert not raw.startswith(b"\x80"), f"{name} looks like a pickle"
        json.loads(raw.decode("utf-8"))  # every file is JSON


def test_load_tokenizer_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        load_tokenizer(tmp_path)


# ----------------------------------------------------------------------------- BPE

def test_bpe_trains_to_vocab_size_with_specials_first(bpe):
    assert bpe.vocab_size == 320
    assert list(bpe.special_token_ids.values()) == list(range(len(SPECIAL_TOKENS)))
    assert bpe.special_tokens == SPECIAL_TOKENS
    assert len(bpe.encode("the cat sat on the mat")) < len("the cat sat on the mat")  # merges learnt


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_bpe_round_trip_any_text(bpe, s):
    assert bpe.decode(bpe.encode(s)) == s


def test_bpe_save_load_round_trip(tmp_path, bpe):
    bpe.save(tmp_path)
    assert (tmp_path / "tokenizer.json").exists()
    again = load_tokenizer(tmp_path)
    assert isinstance(again, BPETokenizer) and again.special_token_ids == bpe.special_token_ids
    s = "the cat <|user|> 日本語 sat"
    assert again.encode(s) == bpe.encode(s)
    # the written tokenizer.json is a plain Hugging Face file (which, unlike us, would parse
    # "<|user|>" in text as the control token: compare on text without special strings)
    from tokenizers import Tokenizer

    plain = "the cat 日本語 sat"
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode(plain).ids == bpe.encode(plain)


def test_bpe_decode_keeps_special_strings(bpe):
    ids = bpe.encode("hi", add_special_tokens=True)
    assert ids[0] == bpe.bos_token_id and ids[-1] == bpe.eos_token_id
    assert bpe.decode(ids) == "<|bos|>hi<|eos|>"
    assert bpe.decode(ids, skip_special_tokens=True) == "hi"


def test_load_gpt2_style_tokenizer_json():
    tok = load_tokenizer(GPT2_TINY)  # a tokenizer.json file on its own (GPT-2 layout, "Ġ t" merges)
    assert isinstance(tok, BPETokenizer)
    eot = tok.hf_tokenizer.token_to_id("<|endoftext|>")
    assert tok.bos_token_id == tok.eos_token_id == tok.pad_token_id == eot  # GPT-2: one special token
    assert tok.encode("!") == [0] and tok.encode(" ") == [220] and tok.encode("\n") == [198]  # GPT-2 byte ids
    assert tok.encode(" the") == [tok.hf_tokenizer.token_to_id("Ġthe")]
    s = "Hello the world<|endoftext|> naïve 日本"
    ids = tok.encode(s)
    assert eot not in ids and tok.decode(ids) == s
    assert tok.role_token_ids == {}
    with pytest.raises(ValueError, match="add_chat_tokens"):
        tok.role_token_id("user")
    added = tok.add_chat_tokens()
    assert set(added) == {"pad", "system", "user", "assistant", "end"}
    assert tok.vocab_size == eot + 1 + len(added) and tok.role_token_id("user") > eot


def test_bpe_directory_with_only_tokenizer_json(tmp_path):
    (tmp_path / "tokenizer.json").write_bytes(open(GPT2_TINY, "rb").read())
    assert isinstance(load_tokenizer(tmp_path), BPETokenizer)


def test_bpe_vocab_size_too_small(write):
    with pytest.raises(ValueError, match="at least 263"):
        BPETokenizer.train(write("c.txt", "abc"), vocab_size=100)


def test_bpe_pathological_input_trains_in_bounded_time(tmp_path):
    # Without cutting long runs, HF's trainer does not finish on a 1 MB word within minutes.
    script = textwrap.dedent(f"""
        import random
        from goldbull_np.data import BPETokenizer
        rng = random.Random(0)
        word = "".join(rng.choice("abcdefghij") for _ in range(1_000_000))
        d = {str(tmp_path)!r}
        open(d + "/word.txt", "w").write(word)
        open(d + "/runs.txt", "w").write(("a" * 10_000 + "\\n" + " " * 10_000 + "\\n" + "!" * 10_000 + "\\n") * 5)
        tok = BPETokenizer.train([d + "/word.txt", d + "/runs.txt"], vocab_size=400)
        assert tok.vocab_size == 400
        assert tok.decode(tok.encode(word)) == word
        assert tok.decode(tok.encode("a" * 10_000)) == "a" * 10_000
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90,
                         cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_missing_tokenizers_package_names_the_extra(monkeypatch):
    for mod in [m for m in sys.modules if m.startswith("tokenizers.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # makes `import tokenizers` fail
    with pytest.raises(MissingDependencyError, match=r"BPETokenizer needs the 'tokenizers' package: "
                                                     r"pip install goldbull_np\[bpe\]"):
        BPETokenizer.from_file(GPT2_TINY)


@pytest.mark.parametrize("make", [ByteTokenizer, lambda: CharTokenizer.from_text("hi there"), "bpe"])
def test_parse_special_tokens_is_opt_in(make, bpe):
    tok = bpe if make == "bpe" else make()
    ids = tok.encode("<|user|>hi<|end|>", parse_special_tokens=True)
    sid = tok.special_token_ids
    assert ids[0] == sid["user"] and ids[-1] == sid["end"] and ids[1:-1] == tok.encode("hi")
    assert tok.decode(ids) == "<|user|>hi<|end|>"
    assert sid["user"] not in tok.encode("<|user|>hi")
