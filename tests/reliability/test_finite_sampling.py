"""Item 3: generation never samples from NaN. A non-finite temperature/top_p is refused (library and
CLI); a non-finite logit row is an error naming the row and the step, not a run of token 0."""
import math

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.cli import main
from goldbull_np.text import GoldbullText, ModelConfig
from goldbull_np.text.generation import NonFiniteLogitsError, sample_next_token


def _model():
    gb.manual_seed(0)
    return GoldbullText(ModelConfig.tiny(vocab_size=20))


@pytest.mark.parametrize("kw", [dict(temperature=math.nan), dict(temperature=math.inf), dict(temperature=-1.0),
                                dict(top_p=math.nan), dict(top_p=math.inf), dict(temperature="1")])
def test_generate_refuses_non_finite_sampling_args(kw):
    with pytest.raises(ValueError, match="temperature|top_p"):
        _model().generate(np.array([[1, 2]]), 3, **kw)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_nan_weights_are_an_error_naming_the_step(temperature):
    m = _model()
    m.lm_head.weight.data[...] = np.nan
    with pytest.raises(NonFiniteLogitsError, match=r"NaN in row 0 at generation step 0"):
        m.generate(np.array([[1, 2]]), 5, temperature=temperature)


def test_sampler_names_the_bad_row():
    logits = np.zeros((3, 5))
    logits[2, 1] = np.inf
    with pytest.raises(NonFiniteLogitsError, match=r"inf in row 2 at generation step 7"):
        sample_next_token(logits, 1.0, rng=np.random.default_rng(0), step=7)


def test_masked_logits_after_top_k_still_sample():
    logits = np.array([[0.0, 1.0, 2.0, 3.0]])
    tok = sample_next_token(logits, 1.0, top_k=1, rng=np.random.default_rng(0))
    assert tok.tolist() == [3]


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_cli_refuses_non_finite_temperature(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--checkpoint", str(tmp_path), "--temperature", value])
    assert exc.value.code == 2
    assert "--temperature" in capsys.readouterr().err


def test_cli_generate_from_nan_checkpoint_fails(tmp_path, capsys):
    from goldbull_np.data.tokenizers import CharTokenizer
    m = _model()
    m.lm_head.weight.data[...] = np.nan
    m.save_pretrained(tmp_path)
    CharTokenizer.from_text("abcdefghijklmnop", special_tokens={}).save(str(tmp_path))  # 16 <= vocab 20
    code = main(["generate", "--checkpoint", str(tmp_path), "--prompt", "ab", "--max-new-tokens", "3"])
    assert code == 1
    assert "NaN" in capsys.readouterr().err
