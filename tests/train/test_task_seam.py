"""The training core's seams: a custom Task trained through Trainer, accumulation equal to the big batch for
a second task (examples as the weight), the task's collate, callback events and their state across resume,
the after-backward hook, parameters unfrozen later, dropout_rate and label_smoothing."""
import math

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn
from goldbull_np.text import LanguageModelingTask
from goldbull_np.train import (Callback, CheckpointManager, EarlyStopping, Task, Trainer, TrainingConfig,
                               WeightedLossTask)
from train_helpers import datasets, tiny_model


class Regression(WeightedLossTask):
    """Mean squared error of a model on {"x": (B, 3), "y": (B, 1)}; a batch weighs as many as its examples."""

    def collate(self, items):
        return {k: np.stack([it[k] for it in items]) for k in items[0]}

    def loss(self, model, batch):
        err = model(gb.from_numpy(batch["x"])) - gb.from_numpy(batch["y"])  # (B,1)
        return (err * err).mean(), len(batch["x"]), {"examples": len(batch["x"])}

    def evaluate(self, model, batch):
        loss, n, _ = self.loss(model, batch)
        return self.loss_counts(float(loss.data), n)


def regression_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x @ np.float32([[1.5], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    return [{"x": x[i], "y": y[i]} for i in range(n)]


def _cfg(**kw):
    base = dict(learning_rate=5e-2, batch_size=8, max_steps=40, max_grad_norm=0.0, weight_decay=0.0,
                save_steps=0, logging_steps=0, progress_bar=False)
    base.update(kw)
    return TrainingConfig(**base)


def test_a_custom_task_trains_through_the_trainer():
    gb.manual_seed(0)
    model = nn.Linear(3, 1)
    trainer = Trainer(model, _cfg(), task=Regression())
    data = regression_data()
    before = trainer.evaluate(data)
    state = trainer.train(data, regression_data(16, seed=1))
    after = trainer.evaluate(regression_data(16, seed=1))
    assert set(before) == {"loss"} and after.loss < before.loss / 20
    assert state.step == 40 and state.counts["examples"] == 40 * 8 and state.best_step == 40


def test_a_model_without_a_default_task_needs_one():
    with pytest.raises(TypeError, match="task="):
        Trainer(nn.Linear(3, 1), _cfg())


def test_accumulation_of_uneven_micro_batches_equals_the_big_batch_for_examples():
    """Weight = examples: micro-batches of 5 and 3 examples accumulate to the gradient of the 8-example mean
    (the average of the two means would weight them 1:1 and differ)."""
    rows = Regression().collate(regression_data(8))
    micro = [{k: v[:5] for k, v in rows.items()}, {k: v[5:] for k, v in rows.items()}]
    out = []
    for batch in (rows, micro):
        gb.manual_seed(0)
        model = nn.Linear(3, 1)
        t = Trainer(model, _cfg(learning_rate=0.1), task=Regression(), optimizer=gb.optim.SGD(model.parameters(), lr=0.1))
        loss = t.train_step(batch)
        out.append((loss, model.weight.data.copy(), model.bias.data.copy()))
    assert math.isclose(out[0][0], out[1][0], rel_tol=1e-6)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-5)
    np.testing.assert_allclose(out[1][2], out[0][2], rtol=1e-5)
    gb.manual_seed(0)
    model = nn.Linear(3, 1)
    naive = sum(float(Regression().loss(model, b)[0].data) for b in micro) / 2
    assert abs(naive - out[0][0]) > 1e-3  # the test can fail: an unweighted mean is different


class Recorder(Callback):
    """Records the events and counts steps in its state (saved into trainer_state.json)."""

    def __init__(self):
        self.events, self.steps_seen = [], 0

    def on_train_begin(self, trainer):
        self.events.append("train_begin")

    def on_step_begin(self, trainer):
        self.events.append("step_begin")

    def on_after_backward(self, trainer):
        self.events.append("after_backward")

    def on_step_end(self, trainer, result):
        self.events.append("step_end")
        self.steps_seen += 1

    def on_log(self, trainer, logs):
        self.events.append("log")

    def on_evaluate(self, trainer, metrics):
        self.events.append("evaluate")

    def on_save(self, trainer, path):
        self.events.append("save")

    def on_train_end(self, trainer):
        self.events.append("train_end")

    def state_dict(self):
        return {"steps_seen": self.steps_seen}

    def load_state_dict(self, state):
        self.steps_seen = state["steps_seen"]


class _Stop(Exception):
    pass


class StopAfter(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, result):
        if trainer.state.step == self.step:
            raise _Stop


def test_callback_events_in_order_and_their_state_resumes(tmp_path):
    data, val = regression_data(), regression_data(16, seed=1)
    cfg = _cfg(max_steps=6, logging_steps=2, eval_steps=3, save_steps=2, early_stopping_patience=50)

    def run(out, extra=(), resume=False):
        gb.manual_seed(0)
        rec = Recorder()
        t = Trainer(nn.Linear(3, 1), cfg.replace(output_dir=str(out)), task=Regression(),
                    callbacks=[rec, *extra])
        t.train(data, val, resume_from=out if resume else None)
        return t, rec

    t, rec = run(tmp_path / "ref")
    assert rec.events[:6] == ["train_begin", "step_begin", "after_backward", "step_end", "step_begin",
                              "after_backward"]
    assert rec.events[6:9] == ["step_end", "log", "save"] and rec.events[-1] == "train_end"
    assert rec.events.count("evaluate") == 2 and rec.events.count("step_end") == 6
    stopper = [cb for cb in t.callbacks if isinstance(cb, EarlyStopping)]
    assert len(stopper) == 1  # from early_stopping_patience
    with pytest.raises(_Stop):
        run(tmp_path / "cut", extra=[StopAfter(5)])  # the last checkpoint is step 4
    t2, rec2 = run(tmp_path / "cut", resume=True)
    assert rec2.steps_seen == rec.steps_seen == 6  # 4 restored from trainer_state.json + 2 after resume
    es = [cb for cb in t2.callbacks if isinstance(cb, EarlyStopping)][0]
    assert es.state_dict() == stopper[0].state_dict()
    np.testing.assert_array_equal(t2.model.weight.data, t.model.weight.data)
    from goldbull_np.train import read_trainer_state
    saved = read_trainer_state(CheckpointManager(tmp_path / "cut").latest())
    assert saved["callbacks"]["Recorder"] == {"steps_seen": 6} and "EarlyStopping" in saved["callbacks"]


def test_a_non_callback_is_refused_by_name():
    t = Trainer(nn.Linear(3, 1), _cfg(), task=Regression())
    with pytest.raises(TypeError, match="goldbull_np.train.Callback.*got object"):
        t.add_callback(object())


class ZeroGrads(Callback):
    """Stands where an all-reduce or a loss scaler hooks: after backward, before clipping and the step."""

    def on_after_backward(self, trainer):
        for g in trainer.optimizer_step.gradient_arrays():
            g[...] = 0


def test_after_backward_runs_before_clip_and_step():
    gb.manual_seed(0)
    model = nn.Linear(3, 1)
    w0 = model.weight.data.copy()
    t = Trainer(model, _cfg(max_steps=2), task=Regression(), optimizer=gb.optim.SGD(model.parameters(), lr=0.1),
                callbacks=[ZeroGrads()])
    norms = []

    class Norms(Callback):
        def on_step_end(self, trainer, result):
            norms.append(result.grad_norm)

    t.add_callback(Norms())
    t.train(regression_data())
    assert norms == [0.0, 0.0]
    np.testing.assert_array_equal(model.weight.data, w0)


def test_parameters_unfrozen_after_the_first_step_are_clipped():
    """The clipped set is read every step (no cached parameter list): a parameter made trainable after the
    optimizer was built is clipped with the rest (and reported, since no optimizer updates it)."""
    gb.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    model[0].requires_grad_(False)
    t = Trainer(model, _cfg(max_grad_norm=1e-3), task=Regression())
    batch = Regression().collate(regression_data(8))
    t.train_step(batch)
    model[0].requires_grad_(True)
    with pytest.warns(RuntimeWarning, match="does not hold it"):
        t.train_step(batch)
    step = t.optimizer_step
    # the last step clipped the late parameter's gradient too: after clipping the global norm is the limit
    grads = [p.grad for p in model[0].parameters()]
    assert all(g is not None for g in grads)
    assert math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)) <= 1e-3 * (1 + 1e-4)
    assert step is t.optimizer_step


def test_task_collate_builds_the_batches_and_the_default_keeps_the_loaders():
    calls = []

    class Counting(Regression):
        def collate(self, items):
            calls.append(len(items))
            return super().collate(items)

    gb.manual_seed(0)
    Trainer(nn.Linear(3, 1), _cfg(max_steps=2), task=Counting()).train(regression_data())
    assert calls == [8, 8]
    assert Task().collate([1]) is None


def test_dropout_rate_sets_the_models_dropout():
    tok, train, _ = datasets()
    m = tiny_model(tok.vocab_size, dropout=0.1)
    Trainer(m, _cfg(max_steps=1, dropout_rate=0.25, learning_rate=1e-3, batch_size=4)).train(train)
    ps = [mod.p for mod in m.modules() if isinstance(mod, nn.Dropout)]
    assert ps and all(p == 0.25 for p in ps)
    without = tiny_model(tok.vocab_size, dropout=0.0)  # built without Dropout layers: nothing to set
    with pytest.raises(ValueError, match="dropout_rate = 0.25.*no Dropout"):
        Trainer(without, _cfg(max_steps=1, dropout_rate=0.25, batch_size=4)).train(train)


def test_label_smoothing_reaches_the_language_modelling_loss():
    tok, train, _ = datasets()
    m = tiny_model(tok.vocab_size)
    batch = {k: np.stack([train[i][k] for i in range(4)]) for k in ("input_ids", "labels")}
    plain, w, _ = LanguageModelingTask(label_smoothing=0.0).loss(m, batch)
    task = LanguageModelingTask()
    task.configure(TrainingConfig(label_smoothing=0.1))
    smooth, w2, _ = task.loss(m, batch)
    logits, _ = m(batch["input_ids"])
    want = gb.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1),
                                          label_smoothing=0.1)
    assert w == w2 == batch["labels"].size
    assert float(smooth.data) == pytest.approx(float(want.data), rel=1e-6)
    assert abs(float(smooth.data) - float(plain.data)) > 1e-4  # near-uniform logits at init: a small change
