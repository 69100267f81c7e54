"""Training through the shared trainer: a short digits run (the 60-second target is a benchmark; here a
shorter run with a lower bar), checkpoints, from_pretrained, predict, resume, ViT, and the CLI."""
import os
import subprocess
import sys

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.vision import (GoldbullVision, VisionConfig, VisionTrainer, VisionTrainingConfig, predict,
                                train_classification)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cfg(**kw):
    base = dict(image_size=(8, 8), batch_size=32, num_epochs=3, learning_rate=3e-3, augmentation_probability=0.5,
                horizontal_flip=False, crop_scale_min=0.8, mixup_alpha=0.0, label_smoothing=0.1, progress_bar=False,
                logging_steps=0)
    base.update(kw)
    return VisionTrainingConfig(**base)


def test_digits_short_run_learns_and_predicts(digits_dir, tmp_path):
    s = train_classification(digits_dir, config=_cfg(output_dir=str(tmp_path / "run")), preset="resnet_tiny", log=lambda m: None)
    assert s["accuracy"] >= 0.9, s["accuracy"]
    assert s["num_val"] + s["num_train"] == 1797 and len(s["per_class_accuracy"]) == 10
    ck = s["checkpoint"]
    assert ck and os.path.isfile(os.path.join(ck, "model.safetensors"))
    model = GoldbullVision.from_pretrained(ck)
    assert model.config.class_names == [str(i) for i in range(10)]
    paths = [digits_dir / "3" / "0003.png", digits_dir / "7" / "0007.png"]
    res = predict(tmp_path / "run", paths, top_k=3)
    assert [r[1][0][0] for r in res] == ["3", "7"]
    assert all(len(r[1]) == 3 and r[1][0][1] >= r[1][1][1] for r in res)
    from PIL import Image
    imgs = np.stack([np.asarray(Image.open(p)) for p in paths])           # (2, 8, 8) uint8
    assert model.predict(imgs).tolist() == [3, 7]
    trainer = VisionTrainer(model, _cfg())
    assert trainer.predict(paths, top_k=1)[0][0][0] == "3"


def test_resume_reproduces_the_uninterrupted_run(digits_dir, tmp_path):
    def run(out, epochs, resume=False, seed_model=True):
        cfg = _cfg(num_epochs=epochs, output_dir=str(out), mixup_alpha=0.2, augmentation_probability=0.8, save_steps=10, lr_scheduler="constant",
                   max_steps=epochs)
        gb.manual_seed(0)
        m = GoldbullVision(VisionConfig.resnet_tiny(num_classes=10))
        t = VisionTrainer(m, cfg)
        from goldbull_np.train.checkpoint import CheckpointManager
        latest = CheckpointManager(out).latest() if resume else None
        t.train_classification(digits_dir, resume_from=latest)
        return m
    full = run(tmp_path / "a", 20)
    run(tmp_path / "b", 10)
    resumed = run(tmp_path / "b", 20, resume=True)
    for (n, p), (_, q) in zip(full.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-5, atol=1e-6, err_msg=n)


def test_vit_trains_a_few_steps():
    gb.manual_seed(0)
    model = GoldbullVision(VisionConfig.vit_tiny(num_classes=3, in_channels=1, image_size=(8, 8), patch_size=2,
                                                 n_embd=32, n_layer=2, n_head=2))
    rng = np.random.default_rng(0)
    items = [(rng.integers(0, 256, (8, 8, 1), dtype=np.uint8), i % 3) for i in range(24)]
    for i, (img, y) in enumerate(items):  # a learnable signal: brightness encodes the class
        img[:] = 40 + 80 * y
    cfg = VisionTrainingConfig(image_size=(8, 8), batch_size=8, num_epochs=10, learning_rate=3e-3, mixup_alpha=0.0,
                               augmentation_probability=0.0, progress_bar=False, logging_steps=0, label_smoothing=0.0)
    t = VisionTrainer(model, cfg)
    t.train(items, items)
    assert t.evaluate(items)["accuracy"] == 1.0


def test_class_count_mismatch_and_bad_config(digits_dir):
    model = GoldbullVision(VisionConfig.resnet_tiny(num_classes=3))
    with pytest.raises(ValueError, match="10 classes but the model has num_classes=3"):
        VisionTrainer(model, _cfg()).train_classification(digits_dir)
    with pytest.raises(ValueError, match="fewer than batch_size=4096"):
        VisionTrainer(GoldbullVision(VisionConfig.resnet_tiny(num_classes=10)), _cfg(batch_size=4096)).train_classification(digits_dir)
    from goldbull_np.train.config import ConfigError
    with pytest.raises(ConfigError, match="image_size"):
        VisionTrainingConfig(image_size=(0, 8))
    with pytest.raises(ConfigError, match="class_weights"):
        VisionTrainingConfig(class_weights="weighted")


def _goldbull(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "goldbull_np.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)


def test_cli_train_vision_and_predict(digits_dir, tmp_path):
    cfg = tmp_path / "v.toml"
    cfg.write_text('[training]\nimage_size = [8, 8]\nbatch_size = 64\nnum_epochs = 2\nlearning_rate = 3e-3\n'
                   'horizontal_flip = false\nmixup_alpha = 0.0\nlogging_steps = 0\n\n[model]\npreset = "resnet_tiny"\n')
    r = _goldbull("train-vision", "--images", digits_dir, "--config", cfg, "--out", tmp_path / "run", "--no-progress",
                  "--threads", "2")
    assert r.returncode == 0, r.stderr
    assert "validation: accuracy" in r.stdout
    img = digits_dir / "0" / "0000.png"
    r = _goldbull("predict", "--checkpoint", tmp_path / "run", img, "--top-k", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] == str(img) and float(lines[0].split("\t")[2]) >= float(lines[1].split("\t")[2])
    r = _goldbull("predict", "--checkpoint", tmp_path / "run", tmp_path / "nope.png")
    assert r.returncode == 2 and "not found" in r.stderr
    r = _goldbull("train-vision", "--images", tmp_path / "none")
    assert r.returncode == 2
