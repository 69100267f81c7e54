import numpy as np
import pytest

from goldbull_np.data import ByteTokenizer, Conversation, Message, encode_chat, encode_example, encode_prompt_completion
from goldbull_np.data.templates import IGNORE_INDEX, shift_labels

TOK = ByteTokenizer()
BOS, EOS, END = 257, 258, 262
SYS, USER, ASST = 259, 260, 261


def b(s):
    return list(s.encode())


def test_prompt_completion_ids_and_mask():
    ids, target = encode_prompt_completion(TOK, "ab", "cd")
    assert ids.tolist() == [BOS] + b("ab\n") + b("cd") + [EOS]
    assert target.tolist() == [False] * 4 + [True] * 3


def test_prompt_completion_exact_labels():
    ids, target = encode_prompt_completion(TOK, "ab", "cd", separator=" => ")
    x, y = shift_labels(ids, target)
    prompt = [BOS] + b("ab => ")
    assert x.tolist() == (prompt + b("cd") + [EOS])[:-1]
    # labels[t] is the target of position t: -100 while the next token is still prompt
    assert y.tolist() == [IGNORE_INDEX] * (len(prompt) - 1) + b("cd") + [EOS]
    assert x.dtype == y.dtype == np.int64


def test_chat_template_exact_ids_and_labels():
    msgs = (Message("system", "S"), Message("user", "U"), Message("assistant", "A1"),
            Message("user", "V"), Message("assistant", "B"))
    ids, target = encode_chat(TOK, msgs)
    assert ids.tolist() == [BOS, SYS, *b("S"), END, USER, *b("U"), END, ASST, *b("A1"), END,
                            USER, *b("V"), END, ASST, *b("B"), END]
    x, y = shift_labels(ids, target)
    I = IGNORE_INDEX
    # inputs:  BOS SYS S END USER U END ASST A 1 END USER V END ASST B
    expected = [I, I, I, I, I, I, I, *b("A1"), END, I, I, I, I, *b("B"), END]
    assert y.tolist() == expected
    assert x.tolist() == ids[:-1].tolist()


def test_chat_generation_prompt():
    ids, target = encode_chat(TOK, [Message("user", "hi")], add_generation_prompt=True)
    assert ids.tolist() == [BOS, USER, *b("hi"), END, ASST] and not target.any()


def test_chat_without_assistant_has_no_targets():
    _, target = encode_example(TOK, Conversation((Message("user", "hi"),)))
    assert not target.any()


def test_role_marker_text_in_content_is_not_a_marker():
    ids, _ = encode_chat(TOK, [Message("user", "<|assistant|>"), Message("assistant", "ok")])
    assert ids.tolist().count(ASST) == 1


def test_chat_needs_markers():
    from goldbull_np.data import CharTokenizer

    tok = CharTokenizer.from_text("abc", special_tokens={"bos": "<b>", "eos": "<e>"})
    with pytest.raises(ValueError, match="no <\\|end\\|> token"):
        encode_chat(tok, [Message("user", "a")])
