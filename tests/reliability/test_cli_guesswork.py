"""CLI weak spots where the user was left guessing: --preset merges with the config file's [model]
values; --threads above the CPU count is lowered and said so; finetune's sizes must be positive;
a full fine-tune into a reused --out drops the old adapters; resume recognises the same data file
given by another path (content, not spelling)."""
import argparse
import os

import pytest

from goldbull_np.cli import build_parser, main
from goldbull_np.cli._args import apply_threads, available_cpus
from goldbull_np.cli.text import build_run_config
from rel_helpers import CORPUS, tiny_model


def test_preset_flag_keeps_the_files_model_values(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('[model]\npreset = "small"\nn_layer = 1\n')
    args = build_parser().parse_args(["train", "--config", str(f), "--preset", "tiny"])
    assert build_run_config(args).model == {"preset": "tiny", "n_layer": 1}


def test_threads_beyond_the_cpus_are_lowered_and_said(capsys):
    from goldbull_np import kernels
    before = kernels.get_num_threads() if hasattr(kernels, "get_num_threads") else None
    args = argparse.Namespace(threads=100000)
    try:
        apply_threads(args)
    finally:
        if before:
            kernels.set_num_threads(before)
    assert args.threads == available_cpus()
    assert "more than the" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--block-size", "--batch-size", "--epochs", "--max-steps"])
def test_finetune_sizes_must_be_positive(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as e:
        main(["finetune", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path), flag, "0"])
    assert e.value.code == 2 and flag in capsys.readouterr().err


def test_full_finetune_into_a_reused_out_drops_old_adapters(tmp_path):
    from goldbull_np.data import CharTokenizer
    tok = CharTokenizer.from_text(CORPUS, special_tokens={})
    base = tmp_path / "base"
    tiny_model(tok.vocab_size).save_pretrained(base)
    tok.save(str(base))
    data = tmp_path / "d.txt"
    data.write_text(CORPUS)
    out = tmp_path / "out"
    common = ["finetune", "--checkpoint", str(base), "--data", str(data), "--out", str(out), "--max-steps", "1",
              "--no-progress", "--block-size", "16"]
    assert main(common) == 0
    assert (out / "adapter_model.safetensors").is_file()
    assert main(common + ["--lora-rank", "0"]) == 0
    assert not (out / "adapter_model.safetensors").exists() and not (out / "adapter_config.json").exists()


def test_resume_accepts_the_same_data_by_another_path(tmp_path, monkeypatch):
    from goldbull_np.text.recipes import train_text
    from goldbull_np.text.run_config import RunConfig
    data = tmp_path / "d.txt"
    data.write_text(CORPUS)
    run = RunConfig.from_dict({"model": {"preset": "tiny", "n_layer": 1, "n_embd": 16, "n_head": 2, "block_size": 16},
                               "data": {"path": str(data)},
                               "training": {"max_steps": 2, "save_steps": 2, "output_dir": str(tmp_path / "o"),
                                            "progress_bar": False, "batch_size": 4, "logging_steps": 0}})
    train_text(run, sample_tokens=0, log=lambda *_: None)
    monkeypatch.chdir(tmp_path)
    run.data = run.data.replace(path=os.path.join(".", "d.txt"))  # same file, another spelling
    run.training = run.training.replace(max_steps=3)
    assert train_text(run, resume=True, sample_tokens=0, log=lambda *_: None)["steps"] == 3


def test_a_failure_without_a_message_is_never_an_empty_line(monkeypatch, capsys):
    import goldbull_np.text.recipes as recipes

    def oom(*a, **kw):
        raise MemoryError()

    monkeypatch.setattr(recipes, "generate_from_checkpoint", oom)
    assert main(["generate", "--checkpoint", "x"]) == 1
    assert "error: out of memory (MemoryError)" in capsys.readouterr().err
