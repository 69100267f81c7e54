"""A run killed with SIGKILL (mid-epoch, mid-accumulation, and mid-checkpoint-write) and resumed ends with
parameters and optimizer moments bit-identical to an uninterrupted run."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from goldbull_np.train import CheckpointManager, read_trainer_state

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "resume_script.py"
ROOT = HERE.parents[1]


def _run(out, *flags):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(SCRIPT), str(out), *flags], capture_output=True, text=True,
                          env=env, timeout=300)


def _final(out):
    ck = CheckpointManager(out).latest()
    return ck, load_file(str(ck / "model.safetensors")), load_file(str(ck / "optimizer.safetensors"))


def test_sigkill_at_any_point_then_resume_is_bit_identical(tmp_path):
    ref = _run(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    ref_ck, ref_model, ref_opt = _final(tmp_path / "ref")
    assert read_trainer_state(ref_ck)["step"] == 12

    out = tmp_path / "killed"
    # 3 micro-batches per step, 11 per epoch: forward 20 is the 2nd micro-batch of step 7, in the middle
    # of the second epoch; checkpoint 6 is the latest on disk
    r = _run(out, "--kill-at-forward", "20")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert CheckpointManager(out).latest().name == "checkpoint-00000006"
    assert read_trainer_state(CheckpointManager(out).latest())["data"]["epoch"] == 1
    # resume, and die again while checkpoint 9 is being renamed into place
    r = _run(out, "--resume", "--kill-in-save", "9")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert any(p.name.startswith(".tmp-checkpoint-00000009") for p in out.iterdir())  # the half-saved one
    r = _run(out, "--resume")
    assert r.returncode == 0, r.stderr
    assert "final step 12" in r.stdout
    assert not any(p.name.startswith((".tmp-", ".trash-")) for p in out.iterdir())
    ck, model, opt = _final(out)
    assert read_trainer_state(ck)["step"] == 12
    assert model.keys() == ref_model.keys() and opt.keys() == ref_opt.keys()
    for k in ref_model:
        assert np.array_equal(model[k], ref_model[k]), k
    for k in ref_opt:
        assert np.array_equal(opt[k], ref_opt[k]), k
    st, ref_st = read_trainer_state(ck), read_trainer_state(ref_ck)
    assert st["rng"] == ref_st["rng"] and st["data"] == ref_st["data"] and st["scheduler"] == ref_st["scheduler"]
    assert st["trainer"]["best_metric"] == ref_st["trainer"]["best_metric"]
