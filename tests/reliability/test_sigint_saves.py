"""Weak spot: Ctrl-C. The first SIGINT finishes the current step, saves a checkpoint and stops
(TrainingInterrupted naming it, exit 130 from the CLI); a second SIGINT stops at once; the handler is
put back afterwards; resuming from the interrupt checkpoint continues the run."""
import os
import signal

import pytest

from goldbull_np.text import TextTrainer
from goldbull_np.train import Callback, CheckpointManager, TrainingInterrupted
from rel_helpers import cfg, datasets, tiny_model


@pytest.fixture(autouse=True)
def python_handles_sigint():
    """Python's own SIGINT handler for each test, as in a program started from a terminal: a runner started in
    the background (`cmd &` in a script, nohup) inherits SIGINT ignored, and graceful_interrupt then rightly
    leaves it alone. The handler found is put back afterwards."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


class SigintAt(Callback):
    def __init__(self, step, times=1):
        self.step, self.times = step, times

    def on_step_end(self, trainer, result):
        if trainer.state.step == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)


def _trainer(out, *callbacks, **kw):
    tok, train, _ = datasets()
    t = TextTrainer(tiny_model(tok.vocab_size), cfg(output_dir=str(out), max_steps=8, save_steps=100, **kw),
                    tokenizer=tok, callbacks=list(callbacks))
    return t, train


def test_first_sigint_saves_a_checkpoint_and_stops(tmp_path):
    t, train = _trainer(tmp_path, SigintAt(3))
    with pytest.raises(TrainingInterrupted, match=r"after step 3; checkpoint saved: .*checkpoint-00000003") as e:
        t.train(train)
    assert e.value.step == 3
    assert [c.step for c in CheckpointManager(tmp_path).checkpoints()] == [3]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    t2, train = _trainer(tmp_path)
    assert t2.train(train, resume_from=tmp_path).step == 8


def test_second_sigint_stops_at_once(tmp_path):
    t, train = _trainer(tmp_path, SigintAt(3, times=2))
    with pytest.raises(KeyboardInterrupt) as e:
        t.train(train)
    assert not isinstance(e.value, TrainingInterrupted)
    assert CheckpointManager(tmp_path).checkpoints() == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_cli_reports_the_checkpoint_and_exits_130(tmp_path, capsys, monkeypatch):
    from goldbull_np.cli import main
    from goldbull_np.text import recipes
    real = recipes.TextTrainer

    class Interrupting(real):
        def __init__(self, *a, callbacks=(), **kw):
            super().__init__(*a, callbacks=[*callbacks, SigintAt(2)], **kw)

    monkeypatch.setattr(recipes, "TextTrainer", Interrupting)
    code = main(["train", "--out", str(tmp_path), "--max-steps", "5", "--preset", "tiny", "--no-progress",
                 "--sample-tokens", "0", "--save-steps", "100"])
    assert code == 130
    assert "checkpoint saved" in capsys.readouterr().err
    assert [c.step for c in CheckpointManager(tmp_path).checkpoints()] == [2]


def test_an_ignored_sigint_is_left_ignored():
    """A program started with SIGINT ignored (nohup, `cmd &`) keeps it ignored through training: no handler is
    installed, a SIGINT changes nothing, and the setting is as it was afterwards."""
    from goldbull_np.train.interrupt import graceful_interrupt
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with graceful_interrupt() as interrupt:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
    assert not interrupt.requested
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
