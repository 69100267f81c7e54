"""Item 8: one writer per run directory. A second writing process gets an error naming the holder's
pid (library and CLI); opening a CheckpointManager while another process writes never deletes that
process's in-progress temporary checkpoint; the lock dies with its holder (SIGKILL included)."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from goldbull_np.cli import main
from goldbull_np.io import DirectoryLock, DirectoryLockedError
from goldbull_np.text import TextTrainer
from goldbull_np.train import CheckpointManager
from rel_helpers import cfg, datasets, tiny_model

HOLDER = textwrap.dedent("""
    import sys, time
    from goldbull_np.io import DirectoryLock
    lock = DirectoryLock(sys.argv[1]).acquire()
    import pathlib
    tmp = pathlib.Path(sys.argv[1]) / ".tmp-checkpoint-00000002-abcdef"   # a save in progress
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(b"partial")
    print("ready", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path/run's lock, in the middle of writing a checkpoint."""
    run = tmp_path / "run"
    run.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield run, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_second_writer_is_refused_naming_the_holder(holder):
    run, proc = holder
    tok, train, _ = datasets()
    t = TextTrainer(tiny_model(tok.vocab_size), cfg(output_dir=str(run)), tokenizer=tok)
    with pytest.raises(DirectoryLockedError, match=rf"pid {proc.pid}\b"):
        t.train(train)
    assert not (run / "logs").exists() and CheckpointManager(run).checkpoints() == []


def test_cli_second_writer_exits_with_the_holder_named(holder, capsys):
    run, proc = holder
    code = main(["train", "--out", str(run), "--max-steps", "1", "--preset", "tiny", "--no-progress",
                 "--sample-tokens", "0"])
    assert code == 1
    assert f"pid {proc.pid}" in capsys.readouterr().err


def test_a_reader_never_deletes_a_live_writers_temporary_checkpoint(holder):
    run, proc = holder
    mgr = CheckpointManager(run)
    assert mgr.removed_temp == []
    assert (run / ".tmp-checkpoint-00000002-abcdef" / "model.safetensors").is_file()
    assert proc.poll() is None


def test_the_lock_dies_with_its_holder_and_leftovers_are_then_cleaned(holder):
    run, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    mgr = CheckpointManager(run)
    assert mgr.removed_temp == [".tmp-checkpoint-00000002-abcdef"]
    tok, train, _ = datasets()
    TextTrainer(tiny_model(tok.vocab_size), cfg(output_dir=str(run), save_steps=2), tokenizer=tok).train(train)
    assert [c.step for c in CheckpointManager(run).checkpoints()] == [2]


def test_one_process_shares_its_lock(tmp_path):
    a, b = DirectoryLock(tmp_path), DirectoryLock(tmp_path)
    a.acquire()
    b.acquire()  # the same process: not an error
    a.release()
    assert b.held_here()
    b.release()
    assert not b.held_here()
