"""Item 4 and the checkpoint weak spots: a checkpoint that would make training produce NaN (non-finite
optimizer moments or weights) is refused on resume, naming the file; a non-finite checkpoint never
evicts the last finite one; a pickle or a Git LFS pointer where safetensors belong is named as such;
an impossible data position in trainer_state.json is refused."""
import json
import pickle
import warnings

import numpy as np
import pytest

from goldbull_np.io import load_safetensors, save_safetensors
from goldbull_np.text import TextTrainer
from goldbull_np.train import CheckpointConfig, CheckpointManager
from rel_helpers import cfg, datasets, tiny_model


def _run(out, **kw):
    tok, train, val = datasets()
    t = TextTrainer(tiny_model(tok.vocab_size), cfg(output_dir=str(out), **kw), tokenizer=tok)
    t.train(train)
    return t, train


def _resume(out, max_steps=4):
    tok, train, _ = datasets()
    t = TextTrainer(tiny_model(tok.vocab_size), cfg(output_dir=str(out), max_steps=max_steps), tokenizer=tok)
    t.train(train, resume_from=out)
    return t


def test_nan_optimizer_moments_are_refused_on_resume(tmp_path):
    _run(tmp_path, save_steps=2)
    ck = CheckpointManager(tmp_path).latest()
    arrays = load_safetensors(ck / "optimizer.safetensors")
    name = next(k for k in arrays if k.endswith("exp_avg_sq"))
    arrays[name] = np.full_like(arrays[name], np.nan)
    save_safetensors(arrays, ck / "optimizer.safetensors")
    with pytest.raises(ValueError, match=r"optimizer.safetensors: .*'exp_avg_sq' of parameter \d+ holds \d+ non-finite"):
        _resume(tmp_path)
    # nothing was written over the good checkpoint
    assert [c.step for c in CheckpointManager(tmp_path).checkpoints()] == [2]


def test_nan_weights_are_refused_on_resume(tmp_path):
    _run(tmp_path, save_steps=2)
    ck = CheckpointManager(tmp_path).latest()
    w = load_safetensors(ck / "model.safetensors")
    k = sorted(w)[0]
    w[k] = np.full_like(w[k], np.nan)
    save_safetensors(w, ck / "model.safetensors")
    with pytest.raises(ValueError, match=rf"model.safetensors: cannot resume .*{k}"):
        _resume(tmp_path)


def test_a_non_finite_checkpoint_never_evicts_the_last_finite_one(tmp_path):
    tok, _, _ = datasets()
    m = tiny_model(tok.vocab_size)
    mgr = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=1))
    mgr.save(1, model=m, trainer_state={})
    m.lm_head.weight.data[...] = np.nan
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        mgr.save(2, model=m, trainer_state={})
        mgr.save(3, model=m, trainer_state={})
    assert any("not finite" in str(x.message) for x in w)
    infos = mgr.checkpoints()
    assert [(c.step, c.finite) for c in infos] == [(1, True), (3, False)]
    m.lm_head.weight.data[...] = 0.0
    mgr.save(4, model=m, trainer_state={})  # a finite one again: the old finite one may go now
    assert [c.step for c in mgr.checkpoints()] == [4]


def test_pickle_optimizer_file_is_named_as_pickle(tmp_path):
    _run(tmp_path, save_steps=2)
    ck = CheckpointManager(tmp_path).latest()
    (ck / "optimizer.safetensors").write_bytes(pickle.dumps({"state": {}}, protocol=4))
    with pytest.raises(ValueError, match=r"optimizer.safetensors: not a safetensors file: it is a Python pickle"):
        _resume(tmp_path)


def test_lfs_pointer_weights_are_named_as_lfs(tmp_path):
    p = tmp_path / "model.safetensors"
    p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 12345\n")
    with pytest.raises(ValueError, match=r"model.safetensors: not a safetensors file: it is a Git LFS pointer"):
        load_safetensors(p)


def test_real_header_starting_like_a_pickle_still_loads(tmp_path):
    # a header length of 0x0280 = 640 starts with the bytes 80 02 (pickle protocol 2's opcode)
    name = "x" * 580
    p = tmp_path / "a.safetensors"
    save_safetensors({name: np.zeros(2, np.float32)}, p)
    assert p.read_bytes()[:2] == b"\x80\x02"
    assert load_safetensors(p)[name].shape == (2,)


@pytest.mark.parametrize("position", [-1, 10**12, "3", None])
def test_impossible_data_position_is_refused(tmp_path, position):
    _run(tmp_path, save_steps=2)
    ck = CheckpointManager(tmp_path).latest()
    st = json.loads((ck / "trainer_state.json").read_text())
    st["data"]["position"] = position
    (ck / "trainer_state.json").write_text(json.dumps(st))
    with pytest.raises(ValueError, match=r"data\.position"):
        _resume(tmp_path)


def test_tokenizer_from_another_model_is_named_not_an_embedding_error(tmp_path):
    from goldbull_np.data import CharTokenizer
    from goldbull_np.text.recipes import generate_from_checkpoint
    tok = CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz0123456789", special_tokens={})
    tiny_model(10).save_pretrained(tmp_path)
    tok.save(str(tmp_path))
    with pytest.raises(ValueError, match=rf"{tmp_path}: the tokenizer has 36 tokens but the model's vocab_size is 10"):
        generate_from_checkpoint(tmp_path, "abc", max_new_tokens=2)


def test_generate_from_a_run_directory_skips_a_nan_latest_checkpoint(tmp_path):
    from goldbull_np.train.checkpoint import resolve_checkpoint
    tok, _, _ = datasets()
    m = tiny_model(tok.vocab_size)
    mgr = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=3))
    mgr.save(1, model=m, trainer_state={})
    m.lm_head.weight.data[...] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mgr.save(2, model=m, trainer_state={})
    assert resolve_checkpoint(tmp_path).name == "checkpoint-00000001"


def test_a_nan_learning_rate_in_the_saved_scheduler_is_refused(tmp_path):
    _run(tmp_path, save_steps=2)
    ck = CheckpointManager(tmp_path).latest()
    st = json.loads((ck / "trainer_state.json").read_text())
    for k, v in list(st["scheduler"].items()):
        if isinstance(v, float):
            st["scheduler"][k] = float("nan")
    (ck / "trainer_state.json").write_text(json.dumps(st))
    with pytest.raises(ValueError, match=r"trainer_state.json: cannot restore the LR scheduler: .*learning rate nan"):
        _resume(tmp_path)


# fields of trainer_state.json a sweep over every field (None, "x", -1, [], {}, 1e300, 10**30) found
# escaping as AttributeError/TypeError/KeyError/OverflowError: now each a ValueError naming the file
HOSTILE_STATE = [(("trainer",), None), (("trainer", "step"), None), (("trainer", "counts"), None),
                 (("trainer", "elapsed"), None), (("rng",), None), (("rng", "state"), {}),
                 (("rng", "state", "state"), -1), (("rng", "uinteger"), -1), (("data", "loader"), None),
                 (("data", "loader"), {}), (("data", "loader", "seed"), None), (("scheduler",), "x"),
                 (("training",), None), (("fingerprint",), None), (("fingerprint", "model"), -1),
                 (("metric",), "x"), (("optimizer",), None), (("optimizer", "state"), None),
                 (("optimizer", "state", "0"), None), (("optimizer", "state", "0", "step"), 1e300),
                 (("optimizer", "state", "0", "step"), 10**30), (("step",), None), (("saved_at",), None)]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    _run(out, save_steps=2)
    return out


@pytest.mark.parametrize("field, value", HOSTILE_STATE, ids=lambda x: ".".join(x) if isinstance(x, tuple) else repr(x))
def test_malformed_trainer_state_is_a_named_error(tmp_path, saved_run, field, value):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    ck = CheckpointManager(run).latest()
    st = json.loads((ck / "trainer_state.json").read_text())
    d = st
    for k in field[:-1]:
        d = d[k]
    d[field[-1]] = value
    (ck / "trainer_state.json").write_text(json.dumps(st))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, FileNotFoundError), match=r"trainer_state.json|no checkpoint"):
            _resume(run)


def test_parameters_turned_nan_stop_training_at_once(tmp_path):
    from goldbull_np.optim.step import NonFiniteParametersError
    from goldbull_np.train import Callback

    class Poison(Callback):
        def on_step_begin(self, trainer):
            if trainer.state.step == 2:  # after checkpoint-2 was saved
                trainer.model.lm_head.weight.data[0, 0] = np.nan  # as a bad update would leave it

    tok, train, _ = datasets()
    t = TextTrainer(tiny_model(tok.vocab_size), cfg(output_dir=str(tmp_path), max_steps=8, save_steps=2,
                                                      max_consecutive_nonfinite=5),
                    tokenizer=tok, callbacks=[Poison()])
    with pytest.raises(NonFiniteParametersError, match=r"parameters are not finite at step 3"):
        t.train(train)
    assert [(c.step, c.finite) for c in CheckpointManager(tmp_path).checkpoints()] == [(2, True)]
