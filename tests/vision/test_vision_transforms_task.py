"""Mixup/CutMix targets as timm's, augmentation seeded and bounded, class weights, the task's metrics."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.vision import GoldbullVision, ImageClassificationTask, Mixup, VisionConfig, mixup_target
from goldbull_np.vision.task import balanced_class_weights, resolve_class_weights
from goldbull_np.vision.transforms import Augmentation, rand_bbox


def timm_mixup_target(target, num_classes, lam=1.0, smoothing=0.0):
    """timm.data.mixup.mixup_target, in NumPy (timm: one_hot(x, C, on, off) and flip(0))."""
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    def one_hot(t):
        y = np.full((len(t), num_classes), off)
        y[np.arange(len(t)), t] = on
        return y
    return one_hot(target) * lam + one_hot(target[::-1]) * (1.0 - lam)


@pytest.mark.parametrize("lam,smoothing", [(1.0, 0.0), (0.7, 0.1), (0.3, 0.0), (0.55, 0.2)])
def test_mixup_target_equals_timm(lam, smoothing):
    y = np.array([0, 3, 1, 1, 2])
    np.testing.assert_allclose(mixup_target(y, 4, lam, smoothing), timm_mixup_target(y, 4, lam, smoothing), rtol=1e-6)


@pytest.mark.parametrize("B", [1, 2, 5])
def test_mixup_mixes_with_the_reversed_batch_any_size(B):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 2, 4, 4)).astype(np.float32)
    y = np.arange(B) % 3
    mx, t, lam = Mixup(mixup_alpha=0.4, num_classes=3)(x, y, np.random.default_rng(1))
    np.testing.assert_allclose(mx, x * lam + x[::-1] * (1 - lam), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t, timm_mixup_target(y, 3, lam), rtol=1e-6)
    assert 0 < lam < 1
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-6)


def test_cutmix_pastes_the_box_and_corrects_lam():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 10, 10)).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    mx, t, lam = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=4)(x, y, np.random.default_rng(3))
    changed = (mx != x).any(axis=(0, 1))
    area = changed.sum()
    assert abs(lam - (1 - area / 100.0)) < 1e-6 or area == 0
    np.testing.assert_allclose(t, timm_mixup_target(y, 4, lam), rtol=1e-6)
    y0, y1, x0, x1 = rand_bbox((10, 10), 0.5, np.random.default_rng(0))
    assert 0 <= y0 <= y1 <= 10 and 0 <= x0 <= x1 <= 10


def test_augmentation_is_seeded_bounded_and_respects_p():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 8, 3)).astype(np.float32)
    aug = Augmentation(p=1.0)
    out1, out2 = aug(a, np.random.default_rng(5)), aug(a, np.random.default_rng(5))
    np.testing.assert_array_equal(out1, out2)
    assert out1.shape == a.shape and out1.min() >= 0 and out1.max() <= 1 and not np.allclose(out1, a)
    np.testing.assert_array_equal(Augmentation(p=0.0)(a, np.random.default_rng(5)), a)
    ident = Augmentation(p=1.0, scale=(1.0, 1.0), ratio=(1.0, 1.0), rotation=0.0, hflip=False, brightness=0,
                         contrast=0, saturation=0)
    np.testing.assert_allclose(ident(a, np.random.default_rng(0)), a, atol=1e-6)


def test_class_weights():
    np.testing.assert_allclose(balanced_class_weights([10, 30]), [2.0, 2 / 3], rtol=1e-6)
    assert resolve_class_weights(None, None, 3) is None
    np.testing.assert_allclose(resolve_class_weights([1, 2, 3], None, 3), [1, 2, 3])
    with pytest.raises(ValueError, match="3 non-negative"):
        resolve_class_weights([1, 2], None, 3)
    with pytest.raises(ValueError, match="balanced"):
        resolve_class_weights("balanced", None, 3)
    with pytest.raises(ValueError, match="every class"):
        balanced_class_weights([3, 0])


def _batch(B=6, C=3, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"images": rng.integers(0, 256, (B, size, size, 1), dtype=np.uint8), "labels": np.arange(B) % C}


def test_weighted_soft_target_loss_matches_the_formula():
    gb.manual_seed(0)
    model = GoldbullVision(VisionConfig.resnet_tiny(num_classes=3))
    task = ImageClassificationTask(label_smoothing=0.1, mixup_alpha=0.5, augmentation_probability=0.0,
                                   class_weights=[1.0, 2.0, 0.5])
    task.configure(object())
    batch = _batch()
    state = gb.random.get_rng_state()
    loss, weight, counts = task.loss(model, batch)
    assert weight == 6 and counts["examples"] == 6
    # recompute: same draws, same model
    gb.random.set_rng_state(state)
    from goldbull_np.vision.transforms import match_channels, normalize
    x = normalize(match_channels(batch["images"].astype(np.float32) / 255, 1), model.config)
    mx, t, _ = Mixup(0.5, 0.0, label_smoothing=0.1, num_classes=3)(x, batch["labels"], gb.random.default_generator())
    logits = model(gb.Tensor(mx))[0].data.astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
    w = (t * np.array([1.0, 2.0, 0.5])).sum(1)
    want = (w * -(t * logp).sum(1)).sum() / w.sum()
    np.testing.assert_allclose(float(loss.data), want, rtol=1e-4)


def test_hard_targets_use_torch_weighted_smoothing():
    gb.manual_seed(0)
    model = GoldbullVision(VisionConfig.resnet_tiny(num_classes=3))
    task = ImageClassificationTask(label_smoothing=0.1, mixup_alpha=0.0, augmentation_probability=0.0,
                                   class_weights="balanced")
    task.configure(object())
    task.set_class_counts([2, 2, 2])
    loss, _, _ = task.loss(model, _batch())
    assert np.isfinite(float(loss.data))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_evaluate_counts_and_summary():
    gb.manual_seed(0)
    model = GoldbullVision(VisionConfig.resnet_tiny(num_classes=3))
    model.eval()
    task = ImageClassificationTask()
    with gb.no_grad():
        c1 = task.evaluate(model, _batch(seed=1))
        c2 = task.evaluate(model, _batch(seed=2))
    totals = {k: c1[k] + c2[k] for k in c1}
    s = task.summarize(totals)
    conf = np.asarray(s["confusion_matrix"])
    assert conf.shape == (3, 3) and conf.sum() == 12 and s["examples"] == 12
    assert s["accuracy"] == np.trace(conf) / 12 and s["top5_accuracy"] == 1.0
    np.testing.assert_allclose(s["per_class_accuracy"], np.diag(conf) / conf.sum(1))
