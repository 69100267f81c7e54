"""CheckpointManager: layout, atomic writes, keep-k + best rotation, foreign checkpoints, temp cleanup,
and bit-exact optimizer/model round trips (no pickle anywhere)."""
import json
import os

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.optim import AdamW
from goldbull_np.text import GoldbullText, ModelConfig
from goldbull_np.train import CheckpointConfig, CheckpointManager, load_checkpoint, read_trainer_state
from goldbull_np.train.checkpoint import flatten_optimizer_state, resolve_checkpoint, unflatten_optimizer_state


def _model(seed=0):
    gb.manual_seed(seed)
    return GoldbullText(ModelConfig.tiny(vocab_size=17, n_embd=16, block_size=8))


def _stepped(model, steps=3):
    opt = AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = rng.integers(0, 17, (2, 8))
        _, loss = model(x, np.roll(x, -1, 1))
        loss.backward()
        opt.step()
        opt.zero_grad()
    return opt


def _save(mgr, step, model, metric=None, **state):
    return mgr.save(step, model=model, trainer_state={"note": "test", **state}, metric=metric)


def test_layout_and_from_pretrained(tmp_path):
    m = _model()
    opt = _stepped(m)
    mgr = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=2))
    ck = mgr.save(7, model=m, optimizer=opt, trainer_state={"rng": gb.get_rng_state()}, metric=1.5)
    assert ck.name == "checkpoint-00000007"
    names = set(os.listdir(ck))
    assert {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"} <= names
    st = read_trainer_state(ck)
    assert st["step"] == 7 and st["metric"] == {"name": "validation_loss", "value": 1.5} and st["run_id"]
    m2 = GoldbullText.from_pretrained(ck)  # a checkpoint is a pretrained-model directory
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert np.array_equal(a, b), k
    # nothing pickled: every file is JSON or safetensors
    for name in names:
        head = (ck / name).read_bytes()[:2]
        assert head != b"\x80\x04" and not name.endswith((".pt", ".pkl", ".npy", ".npz"))


def test_optimizer_state_round_trips_bit_exactly(tmp_path):
    m = _model()
    opt = _stepped(m)
    mgr = CheckpointManager(tmp_path)
    ck = mgr.save(3, model=m, optimizer=opt, trainer_state={})
    m2 = _model(seed=5)
    opt2 = AdamW(m2.parameters(), lr=1.0, betas=(0.5, 0.5), weight_decay=0.0)
    load_checkpoint(ck, model=m2, optimizer=opt2)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for k, v in a["state"][i].items():
            w = b["state"][i][k]
            if isinstance(v, np.ndarray):
                assert v.dtype == w.dtype and np.array_equal(v, w), (i, k)
            else:
                assert v == w and type(v) is type(w), (i, k)
    # and both continue identically
    _stepped_same = [_continue(m, opt), _continue(m2, opt2)]
    for x, y in zip(*_stepped_same):
        assert np.array_equal(x, y)


def _continue(model, opt):
    x = np.arange(16).reshape(2, 8) % 17
    _, loss = model(x, np.roll(x, -1, 1))
    loss.backward()
    opt.step()
    opt.zero_grad()
    return [p.data.copy() for p in model.parameters()]


def test_flatten_keeps_numpy_scalar_dtypes():
    sd = {"state": {0: {"step": 3, "exp_avg": np.ones(2, np.float32), "scale": np.float32(0.5)}},
          "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]}
    arrays, js = flatten_optimizer_state(sd)
    json.dumps(js)  # JSON-serialisable
    back = unflatten_optimizer_state(arrays, json.loads(json.dumps(js)), sd)
    assert type(back["state"][0]["scale"]) is np.float32 and back["state"][0]["step"] == 3
    assert back["param_groups"][0]["betas"] == (0.9, 0.99)


def test_keep_last_k_plus_best(tmp_path):
    m = _model()
    mgr = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=2, best_metric="validation_loss"))
    metrics = {10: 3.0, 20: 1.0, 30: 2.0, 40: float("nan"), 50: 2.5, 60: None}
    for step, metric in metrics.items():
        _save(mgr, step, m, metric)
        steps = [c.step for c in mgr.checkpoints()]
        assert len(steps) >= 1
    assert [c.step for c in mgr.checkpoints()] == [20, 50, 60]  # last two + best (NaN never best)
    assert mgr.best().name == "checkpoint-00000020"
    assert mgr.latest().name == "checkpoint-00000060"


def test_accuracy_metric_is_maximised(tmp_path):
    m = _model()
    mgr = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=1, best_metric="validation_accuracy"))
    for step, acc in [(1, 0.2), (2, 0.9), (3, 0.5), (4, 0.1)]:
        _save(mgr, step, m, acc)
    assert [c.step for c in mgr.checkpoints()] == [2, 4]
    assert mgr.is_better(0.95, 0.9) and not mgr.is_better(float("nan"), 0.9)


def test_stale_foreign_checkpoint_is_left_alone_and_never_latest_or_best(tmp_path):
    m = _model()
    old = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=5))
    stale = _save(old, 9000, m, 0.01)  # an earlier run that went further and scored better
    _save(old, 20, m, 5.0)
    mgr = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=2))
    for step, metric in [(10, 3.0), (20, 2.0), (30, 2.5), (40, 2.7)]:
        _save(mgr, step, m, metric)
    mine = [c.step for c in mgr.checkpoints(mgr.run_id)]
    assert mine == [20, 30, 40]  # checkpoint-20 of the old run was replaced by ours
    assert stale.is_dir() and read_trainer_state(stale)["run_id"] == old.run_id
    assert mgr.latest().name == "checkpoint-00000040"  # most recently saved, not highest step
    assert mgr.best().name == "checkpoint-00000020"
    assert resolve_checkpoint(tmp_path).name == "checkpoint-00000020"  # best of the latest run


def test_temp_dirs_of_a_killed_run_are_removed_and_incomplete_dirs_ignored(tmp_path):
    m = _model()
    mgr = CheckpointManager(tmp_path)
    _save(mgr, 1, m)
    (tmp_path / ".tmp-checkpoint-00000002-deadbeef").mkdir()
    (tmp_path / ".tmp-checkpoint-00000002-deadbeef" / "model.safetensors").write_bytes(b"partial")
    (tmp_path / ".trash-checkpoint-00000000-abcd").mkdir()
    incomplete = tmp_path / "checkpoint-00000003"  # no trainer_state.json: not a checkpoint
    incomplete.mkdir()
    mgr2 = CheckpointManager(tmp_path)
    assert sorted(mgr2.removed_temp) == [".tmp-checkpoint-00000002-deadbeef", ".trash-checkpoint-00000000-abcd"]
    assert [c.step for c in mgr2.checkpoints()] == [1]
    assert mgr2.latest().name == "checkpoint-00000001"


def test_failed_save_leaves_previous_checkpoint_and_no_temp(tmp_path):
    m = _model()
    mgr = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=1))
    _save(mgr, 1, m)
    with pytest.raises(TypeError, match="no pickle"):
        mgr.save(2, model=m, trainer_state={}, optimizer=_BadOptimizer())
    assert [c.step for c in mgr.checkpoints()] == [1]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


class _BadOptimizer:
    def state_dict(self):
        return {"state": {0: {"thing": object()}}, "param_groups": []}


def test_never_zero_complete_checkpoints_during_rotation(tmp_path, monkeypatch):
    """Every removal happens after the new checkpoint is complete: check at each rmtree."""
    import goldbull_np.train.checkpoint as ckmod
    m = _model()
    mgr = CheckpointManager(tmp_path, CheckpointConfig(max_checkpoints=1, best_metric=None))
    real = ckmod.shutil.rmtree
    seen = []

    def spy(path, *a, **k):
        seen.append(len(mgr.checkpoints()))
        return real(path, *a, **k)

    monkeypatch.setattr(ckmod.shutil, "rmtree", spy)
    for step in range(1, 5):
        _save(mgr, step, m)
    assert seen and min(seen) >= 1
    assert [c.step for c in mgr.checkpoints()] == [4]
