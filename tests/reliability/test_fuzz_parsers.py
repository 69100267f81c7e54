"""The parsers that take untrusted bytes stay fixed: hypothesis draws structured and raw inputs for each
fuzz target (tests/reliability/fuzz_targets.py: the safetensors reader, config.json native and HF,
the data formats plain and gzip, tokenizer files) and each may only raise its documented, named
errors. With atheris installed, each target also gets a few seconds of coverage-guided fuzzing
(the long run is benchmarks/fuzz_parsers.py)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fuzz_targets as T

FUZZ = settings(max_examples=int(os.environ.get("GOLDBULL_FUZZ_EXAMPLES", 60)), deadline=None)  # more: a long run
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                        st.text(max_size=8))
json_value = st.recursive(json_scalar, lambda c: st.one_of(st.lists(c, max_size=4),
                                                          st.dictionaries(st.text(max_size=6), c, max_size=4)),
                          max_leaves=12)
dims = st.lists(st.one_of(st.integers(0, 4), st.integers(-3, 2**64), json_scalar), max_size=4)
entry = st.fixed_dictionaries({"dtype": st.sampled_from(["F32", "F16", "BF16", "I64", "BOOL", "U8", "F8", "x", 3]),
                               "shape": st.one_of(dims, json_value),
                               "data_offsets": st.one_of(st.lists(st.integers(-4, 200), min_size=2, max_size=2),
                                                         json_value)})
header = st.dictionaries(st.one_of(st.text(max_size=4), st.just("__metadata__")),
                         st.one_of(entry, json_value), max_size=4)


@FUZZ
@given(header, st.binary(max_size=256))
def test_safetensors_headers(h, data):
    T.safetensors_target(T.safetensors_header(h, data))


@FUZZ
@given(st.binary(max_size=512))
def test_safetensors_raw_bytes(data):
    T.safetensors_target(data)


@FUZZ
@given(st.integers(0, 2**64 - 1), st.binary(max_size=64))
def test_safetensors_header_lengths(n, rest):
    T.safetensors_target(n.to_bytes(8, "little") + rest)


config_keys = ["model_type", "n_layer", "n_head", "n_embd", "vocab_size", "block_size", "n_positions",
               "num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size", "rope_scaling",
               "head_dim", "tie_word_embeddings", "layer_norm_epsilon", "rms_norm_eps", "init_std", "dropout",
               "activation_function", "architectures", "num_key_value_heads", "max_position_embeddings"]
config_values = st.one_of(st.integers(-2, 10**13), json_value, st.sampled_from(["gpt2", "llama", "goldbull_text"]))


@FUZZ
@given(st.dictionaries(st.sampled_from(config_keys), config_values, max_size=8), st.sampled_from(T.seeds("config")))
def test_configs(over, seed):
    d = json.loads(seed)
    d.update(over)
    T.config_target(T.config_dict(d))


@FUZZ
@given(st.one_of(st.binary(max_size=512), json_value.map(lambda v: json.dumps(v).encode())))
def test_config_raw_bytes(data):
    T.config_target(data)


row = st.one_of(json_value, st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "assistant", "system", "robot"]), json_scalar),
     "content": st.one_of(st.text(max_size=10), json_scalar)}), max_size=3)}),
    st.fixed_dictionaries({"prompt": json_scalar, "completion": json_scalar}))


@FUZZ
@given(st.one_of(st.binary(max_size=300),
                 st.lists(row, max_size=4).map(lambda rows: "\n".join(json.dumps(r) for r in rows).encode()),
                 st.lists(row, max_size=4).map(lambda rows: json.dumps(rows).encode())))
def test_data_formats(data):
    T.data_target(data)


tok_config = st.fixed_dictionaries({"kind": st.one_of(st.sampled_from(["byte", "char", "bpe"]), json_scalar)},
                                   optional={"chars": st.one_of(st.lists(st.text(max_size=2), max_size=5), json_value),
                                             "special_tokens": st.one_of(st.dictionaries(st.text(max_size=4),
                                                                                         st.text(max_size=4), max_size=3),
                                                                         json_value),
                                             "tokenizer_file": st.one_of(st.sampled_from(["../x", "/etc/passwd",
                                                                                          "tokenizer.json"]),
                                                                         json_scalar)})


@FUZZ
@given(st.one_of(tok_config.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200)))
def test_tokenizer_files(data):
    T.tokenizer_target(data)


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
@pytest.mark.parametrize("target", sorted(T.TARGETS))
def test_atheris_finds_nothing_in_a_few_seconds(tmp_path, target):
    out = tmp_path / "fuzz.json"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "fuzz_parsers.py"), "--targets", target,
                        "--seconds", "2", "--engine", "atheris", "--artifacts", str(tmp_path / "artifacts"),
                        "--json", str(out)], capture_output=True, text=True, timeout=180)
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["executions"], p.stdout + p.stderr
    assert rows[0]["findings"] == 0, rows[0]["detail"]


@pytest.mark.parametrize("target", sorted(T.TARGETS))
@pytest.mark.parametrize("opener", ["[", '{"a":', '{"text": 1}\n['])
def test_deep_nesting_is_a_named_error_everywhere(target, opener):
    # beyond what the short fuzz runs reach (inputs of 100 kB): the parser's recursion limit
    data = (opener * 100_000).encode()
    if target == "safetensors":
        data = T.safetensors_header(data)
    T.TARGETS[target](data)
