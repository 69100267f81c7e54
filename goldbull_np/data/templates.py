"""Turn examples into token ids plus a loss mask: plain text, prompt/completion, chat.

Every encoder returns (ids, target): `ids` the token sequence x, `target[i]` True where x[i] is a
token the model should learn to predict. Datasets shift once (labels[t] = x[t+1] where
target[t+1], else -100), so the masks here are stated on the tokens themselves.

Chat template (role markers and <|end|> are single special ids, never text):

    <|bos|><|system|>...<|end|><|user|>...<|end|><|assistant|>...<|end|>

Loss is taken on the content and the closing <|end|> of assistant turns only: the model learns
to answer and to stop, never to imitate the user or the system prompt.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .formats import Conversation, Example, Message, PromptExample, TextExample
from .tokenizers import Tokenizer

from ..constants import IGNORE_INDEX  # the label value that takes no loss


def encode_text(tokenizer: Tokenizer, text: str) -> tuple[np.ndarray, np.ndarray]:
    """bos + text + eos, every token a target.

    Returns:
        ids (n,) int32 and target (n,) bool.
    """
    ids = np.asarray(tokenizer.encode(text, add_special_tokens=True), dtype=np.int32)  # (n,)
    return ids, np.ones(len(ids), dtype=bool)


def encode_prompt_completion(tokenizer: Tokenizer, prompt: str, completion: str,
                             separator: str = "\n") -> tuple[np.ndarray, np.ndarray]:
    """bos + prompt + separator (no loss), then completion + eos (loss).

    Returns:
        ids (n,) int32 and target (n,) bool.
    """
    head = tokenizer.encode(prompt + separator)
    if tokenizer.bos_token_id is not None:
        head = [tokenizer.bos_token_id] + head
    tail = tokenizer.encode(completion)
    if tokenizer.eos_token_id is not None:
        tail = tail + [tokenizer.eos_token_id]
    ids = np.asarray(head + tail, dtype=np.int32)  # (n,)
    target = np.zeros(len(ids), dtype=bool)
    target[len(head):] = True
    return ids, target


def encode_chat(tokenizer: Tokenizer, messages: Sequence[Message],
                add_generation_prompt: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The chat template above; targets are assistant contents and their <|end|>.

    Args:
        tokenizer: must have the role markers and <|end|>.
        messages: the turns.
        add_generation_prompt: end with an open <|assistant|> marker (for generation).
    Returns:
        ids (n,) int32 and target (n,) bool.
    """
    end = tokenizer.end_of_turn_token_id
    if end is None:
        raise ValueError(f"{type(tokenizer).__name__} has no <|end|> token; chat data needs it "
                         "(BPETokenizer.add_chat_tokens() adds it)")
    ids: list[int] = []
    target: list[bool] = []
    if tokenizer.bos_token_id is not None:
        ids.append(tokenizer.bos_token_id)
        target.append(False)
    for m in messages:
        body = tokenizer.encode(m.content) + [end]
        ids.append(tokenizer.role_token_id(m.role))
        target.append(False)
        ids.extend(body)
        target.extend([m.role == "assistant"] * len(body))
    if add_generation_prompt:
        ids.append(tokenizer.role_token_id("assistant"))
        target.append(False)
    return np.asarray(ids, dtype=np.int32), np.asarray(target, dtype=bool)


def encode_example(tokenizer: Tokenizer, example: Example, separator: str = "\n") -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the kind of example (text, prompt/completion, conversation)."""
    if isinstance(example, TextExample):
        return encode_text(tokenizer, example.text)
    if isinstance(example, PromptExample):
        return encode_prompt_completion(tokenizer, example.input, example.output, separator)
    if isinstance(example, Conversation):
        return encode_chat(tokenizer, example.messages)
    raise TypeError(f"not an example: {type(example).__name__}")


def shift_labels(ids: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and already-shifted labels of one sequence.

    Args:
        ids: (n,) token ids; target: (n,) bool loss mask on tokens.
    Returns:
        input_ids (n-1,) int64 and labels (n-1,) int64 with labels[t] = ids[t+1] or -100.
    """
    input_ids = ids[:-1].astype(np.int64)  # (n-1,)
    labels = np.where(target[1:], ids[1:], IGNORE_INDEX).astype(np.int64)  # (n-1,)
    return input_ids, labels
