"""The ``goldbull`` command through subprocess: --help everywhere, exit codes 0/1/2, train -> resume ->
generate -> eval, the embedded default corpus, config files."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 30


def goldbull(*args, cwd=None, timeout=240):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "goldbull_np.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "small.txt"
    p.write_text(TEXT)
    return p


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    r = goldbull("train", "--data", corpus, "--preset", "tiny", "--out", out, "--max-steps", 6, "--save-steps", 3,
                 "--eval-steps", 3, "--seed", 1, "--no-progress", "--sample-tokens", 20)
    assert r.returncode == 0, r.stderr
    return out, r


@pytest.mark.parametrize("cmd", [[], ["train"], ["generate"], ["eval"], ["info"]])
def test_help_everywhere(cmd):
    r = goldbull(*cmd, "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: goldbull")
    if cmd == ["train"]:
        for flag in ("--config", "--data", "--preset", "--out", "--max-steps", "--save-steps", "--seed", "--resume"):
            assert flag in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["train", "--max-steps", "0"], "--max-steps"),
    (["train", "--preset", "huge"], "--preset"),
    (["train", "--bogus"], "unrecognized arguments"),
    (["generate"], "--checkpoint"),
    (["eval", "--checkpoint", "x"], "--data"),
    (["train", "--data", "does/not/exist.txt"], "data file not found"),
])
def test_usage_errors_exit_2(args, needle):
    r = goldbull(*args)
    assert r.returncode == 2 and needle in r.stderr


def test_config_validation_error_exits_2_naming_the_field(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[training]\nlearning_rate = -1.0\n")
    r = goldbull("train", "--config", cfg)
    assert r.returncode == 2 and "TextTrainingConfig.learning_rate" in r.stderr and "bad.toml" in r.stderr
    cfg.write_text("[modle]\npreset = 'tiny'\n")
    r = goldbull("train", "--config", cfg)
    assert r.returncode == 2 and "unknown table(s) modle" in r.stderr


def test_failure_exits_1_with_one_line_and_traceback_only_with_debug(tmp_path):
    r = goldbull("generate", "--checkpoint", tmp_path / "nothing")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("goldbull generate: error: ")
    assert "Traceback" not in r.stderr
    r = goldbull("--debug", "generate", "--checkpoint", tmp_path / "nothing")
    assert r.returncode == 1 and "Traceback" in r.stderr
    r = goldbull("generate", "--checkpoint", tmp_path / "nothing", "--debug")
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_info():
    r = goldbull("info")
    assert r.returncode == 0 and "goldbull_np" in r.stdout


def test_train_writes_checkpoints_logs_and_a_sample(run_dir):
    out, r = run_dir
    assert "sample:" in r.stdout and "checkpoint-00000006" in r.stdout
    names = sorted(p.name for p in out.iterdir())
    assert "checkpoint-00000006" in names and "logs" in names
    ck = out / "checkpoint-00000006"
    assert {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json",
            "goldbull_tokenizer.json"} <= {p.name for p in ck.iterdir()}
    state = json.loads((ck / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["config"]["seed"] == 1
    steps = [json.loads(line) for line in (out / "logs" / "steps.jsonl").read_text().splitlines()]
    assert steps and steps[-1]["step"] == 6


def test_resume_continues_and_refuses_a_changed_batch_size(run_dir, corpus):
    out, _ = run_dir
    r = goldbull("train", "--data", corpus, "--preset", "tiny", "--out", out, "--max-steps", 8, "--save-steps", 3,
                 "--eval-steps", 3, "--seed", 1, "--no-progress", "--sample-tokens", 0, "--batch-size", 4, "--resume")
    assert r.returncode == 1
    assert "cannot resume" in r.stderr and "batch_size: checkpoint=16  now=4" in r.stderr
    r = goldbull("train", "--data", corpus, "--preset", "tiny", "--out", out, "--max-steps", 8, "--save-steps", 3,
                 "--eval-steps", 3, "--seed", 1, "--no-progress", "--sample-tokens", 0, "--resume")
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stdout and "done: 8 steps" in r.stdout


def test_generate_and_eval_from_a_run(run_dir, corpus):
    out, _ = run_dir
    r = goldbull("generate", "--checkpoint", out, "--prompt", "First", "--max-new-tokens", 12, "--seed", 0)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("First") and len(r.stdout.rstrip("\n")) >= len("First") + 1
    r = goldbull("eval", "--checkpoint", out / "checkpoint-00000006", "--data", corpus, "--json",
                 "--max-batches", 3)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert 0 < m["loss"] < 10 and 0 <= m["accuracy"] <= 1 and m["tokens"] > 0


def test_default_corpus_and_config_file(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[model]\npreset = "tiny"\nn_layer = 1\n\n[data]\ntokenizer = "byte"\n\n'
                   "[training]\nmax_steps = 3\nbatch_size = 4\neval_steps = 3\neval_iters = 2\nsave_steps = 3\n")
    r = goldbull("train", "--config", cfg, "--no-progress", "--sample-tokens", 10, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "embedded corpus" in r.stdout and "byte vocabulary" in r.stdout and "1 layers" in r.stdout
    assert (tmp_path / "goldbull_runs" / "default" / "checkpoint-00000003" / "model.safetensors").is_file()
