"""Trainer / TextTrainer: accumulation == large batch, end-to-end learning, non-finite steps, early stopping,
in-process exact resume, resume refusal with a field-by-field diff, the generic Trainer API."""
import math
import weakref

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np.text import GoldbullText, ModelConfig, TextTrainer, TextTrainingConfig
from goldbull_np.train import (Callback, CheckpointConfig, CheckpointManager, MetricsLogger, NonFiniteLossError,
                               OptimizerConfig, ResumeMismatchError, Trainable, Trainer, TrainingConfig,
                               ValidationMetrics)
from train_helpers import DataLoader, PoisonModel, TokenDataset, datasets, params, tiny_model, tokens


def _cfg(**kw):
    base = dict(learning_rate=1e-2, batch_size=4, gradient_accumulation_steps=1, warmup_steps=0,
                lr_scheduler="constant", max_grad_norm=0.0, weight_decay=0.0, save_steps=0, eval_steps=0,
                logging_steps=0, progress_bar=False, max_steps=4)
    base.update(kw)
    return TextTrainingConfig(**base)


def _masked_batch(ids, B=8, T=16, seed=0):
    """B sequences with very uneven numbers of ignored labels per row."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids) - T - 1, B)
    x = np.stack([ids[s:s + T] for s in starts])
    y = np.stack([ids[s + 1:s + T + 1] for s in starts])
    for b in range(B):
        y[b, : (b * 3) % T] = -100  # row b ignores its first 3b (mod T) positions
    y[5:] = np.where(np.arange(T) < T - 2, -100, y[5:])  # the second half of the batch is almost all ignored
    return {"input_ids": x, "labels": y}


def test_gradient_accumulation_equals_the_large_batch():
    tok, ids = tokens()
    big = _masked_batch(ids)
    micro = [{k: v[:4] for k, v in big.items()}, {k: v[4:] for k, v in big.items()}]
    deltas, losses = [], []
    for batch, accum in ((big, 1), (micro, 2)):
        m = tiny_model(tok.vocab_size)
        t = TextTrainer(m, _cfg(batch_size=8 // accum, gradient_accumulation_steps=accum))
        t.set_optimizer("sgd", OptimizerConfig(learning_rate=0.5, weight_decay=0.0))
        before = params(m)
        losses.append(t.train_step(batch))
        deltas.append({k: v - before[k] for k, v in params(m).items()})
    assert math.isclose(losses[0], losses[1], rel_tol=1e-6)
    for k in deltas[0]:
        np.testing.assert_allclose(deltas[1][k], deltas[0][k], rtol=1e-4, atol=1e-7, err_msg=k)
    # the test can fail: averaging the two micro-batch means (ignoring token counts) is different
    m = tiny_model(tok.vocab_size)
    naive = 0.0
    for b in micro:
        _, loss = m(b["input_ids"], b["labels"])
        naive += float(loss.data) / 2
    assert abs(naive - losses[0]) > 1e-3


def test_fused_adamw_steps_write_into_one_flat_buffer_and_skip_parameters_without_a_gradient():
    """The trainer zeroes nothing between steps: it sets the gradients to None (torch's set_to_none) and the
    fused AdamW lends its flat buffer's views, so each step's first gradient is written there. A parameter the
    loss never reaches keeps its value even under weight decay, as in torch (its .grad stays None)."""
    tok, ids = tokens()
    m = tiny_model(tok.vocab_size)
    m.spare = gb.nn.Parameter(np.ones((4, 4), np.float32))  # a matrix: in the weight-decay group
    t = TextTrainer(m, _cfg(weight_decay=0.5, gradient_accumulation_steps=2, batch_size=2))
    opt = t._ensure_optimizer()
    flat = weakref.ref(opt.flat_gradient)  # not a reference: one held is a gradient the step must not reuse
    seen = []

    class Written(Callback):
        def on_after_backward(self, trainer):
            seen.append(all(p.grad.base is flat() for n, p in m.named_parameters() if n != "spare")
                        and m.spare.grad is None)

    t.add_callback(Written())
    batch = _masked_batch(ids, B=4)
    micro = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    for _ in range(3):
        t.train_step(micro)
        assert opt.flat_gradient is flat()  # the same buffer every step: the step held no slice of it
        assert all(p.grad is None for p in m.parameters())
    assert seen == [True] * 3  # after the two micro-batches of each step
    np.testing.assert_array_equal(m.spare.data, np.ones((4, 4), np.float32))


def test_accumulated_training_run_matches_large_batch_run_with_adamw():
    tok, train, _ = datasets()
    out = []
    for bs, accum in ((8, 1), (4, 2)):
        m = tiny_model(tok.vocab_size)
        t = TextTrainer(m, _cfg(batch_size=bs, gradient_accumulation_steps=accum, max_steps=5, learning_rate=3e-3,
                                max_grad_norm=1.0, warmup_steps=2, lr_scheduler="cosine"))
        t.train(DataLoader(train, batch_size=bs, shuffle=True, drop_last=True, seed=3))
        out.append(params(m))
    for k in out[0]:
        np.testing.assert_allclose(out[1][k], out[0][k], rtol=1e-4, atol=2e-5, err_msg=k)


def test_short_run_lowers_validation_loss_and_logs(tmp_path):
    tok, train, val = datasets()
    m = tiny_model(tok.vocab_size)
    t = TextTrainer(m, _cfg(max_steps=60, learning_rate=1e-2, batch_size=8, warmup_steps=5, lr_scheduler="cosine",
                            max_grad_norm=1.0, eval_steps=20, logging_steps=10, output_dir=str(tmp_path / "run"),
                            save_steps=30),
                    tokenizer=tok)
    logger = MetricsLogger(tmp_path / "run" / "logs")
    t.add_logger(logger)
    before = t.evaluate(val)
    state = t.train(train, val)
    after = t.evaluate(val)
    assert isinstance(before, ValidationMetrics) and after.loss < before.loss - 0.5
    assert after.accuracy > before.accuracy and math.isclose(after.perplexity, math.exp(after.loss))
    assert state.step == 60 and state.best_step == 60
    steps = logger.read_steps()
    assert [r["step"] for r in steps] == [10, 20, 30, 40, 50, 60]
    assert all(r["tokens_per_second"] > 0 and r["grad_norm"] > 0 for r in steps)
    rows = logger.read_epochs()
    assert [r["step"] for r in rows if "val_loss" in r] == [20, 40, 60]  # every eval_steps
    ends = [r for r in rows if "val_loss" not in r]  # and the end of epoch 0 (41 steps of 8 sequences)
    assert [(r["epoch"], r["step"]) for r in ends] == [(0, len(train) // 8)] and ends[0]["train_loss"] > 0
    names = sorted(p.name for p in (tmp_path / "run").iterdir() if p.name.startswith("checkpoint-"))
    # saved at 20 (new best), 30 (save_steps), 40 (new best), 60 (save + best); the last 3 are kept
    assert names == ["checkpoint-00000030", "checkpoint-00000040", "checkpoint-00000060"]
    assert t.generate_sample("The ", max_new_tokens=5).startswith("The ")


def test_nonfinite_batch_is_skipped_and_counted():
    tok, ids = tokens()
    gb.manual_seed(0)
    m = PoisonModel(ModelConfig.tiny(vocab_size=tok.vocab_size, n_layer=1, n_embd=16, block_size=16))
    m.poison = int(ids[0])
    t = TextTrainer(m, _cfg())
    good = {"input_ids": np.where(ids[1:33] == m.poison, 1, ids[1:33]).reshape(2, 16) % tok.vocab_size,
            "labels": ids[2:34].reshape(2, 16)}
    good["input_ids"][good["input_ids"] == m.poison] = (m.poison + 1) % tok.vocab_size
    bad = {"input_ids": np.full((2, 16), m.poison), "labels": ids[2:34].reshape(2, 16)}
    assert math.isfinite(t.train_step(good))
    snap = params(m)
    assert math.isnan(t.train_step(bad))
    assert all(np.array_equal(v, snap[k]) for k, v in params(m).items())  # the bad step changed nothing
    assert all(p.grad is None or not np.any(p.grad) for p in m.parameters())
    assert t.state.nonfinite_steps == 1 and t.state.consecutive_nonfinite == 1 and t.state.step == 3 - 1
    assert math.isfinite(t.train_step(good))
    assert t.state.nonfinite_steps == 1 and t.state.consecutive_nonfinite == 0
    assert all(np.all(np.isfinite(p.data)) for p in m.parameters())


def test_consecutive_nonfinite_steps_stop_with_the_step_named():
    tok, train, val = datasets()
    gb.manual_seed(0)
    m = PoisonModel(ModelConfig.tiny(vocab_size=tok.vocab_size, n_layer=1, n_embd=16, block_size=16))
    m.poison = int(train.tokens[0])  # in (nearly) every batch
    t = TextTrainer(m, _cfg(max_steps=50, max_consecutive_nonfinite=3))
    with pytest.raises(NonFiniteLossError, match=r"at step 3 \(3 consecutive steps since step 1"):
        t.train(DataLoader(train, batch_size=4, shuffle=False))


def test_nan_validation_loss_never_becomes_best(tmp_path):
    tok, train, val = datasets()
    gb.manual_seed(0)
    m = PoisonModel(ModelConfig.tiny(vocab_size=tok.vocab_size, n_layer=1, n_embd=16, block_size=16))
    m.poison = int(val.tokens[0])
    train_clean = TokenDataset.from_array(np.where(train.tokens == m.poison, (m.poison + 1) % tok.vocab_size, train.tokens), 16)
    t = TextTrainer(m, _cfg(max_steps=4, eval_steps=2, save_steps=2, output_dir=str(tmp_path)))
    state = t.train(train_clean, val)
    assert math.isnan(state.last_eval["loss"])
    assert state.best_metric is None and state.best_step is None
    assert t.checkpoint_manager.best() is None and len(t.checkpoint_manager.checkpoints()) == 2


def test_early_stopping_on_validation_loss():
    # train on "ab" repeated, validate on "ac": learning the training data makes validation worse
    tok, ids = tokens("abacab" * 200)
    a, b, c = (tok.encode(ch)[0] for ch in "abc")
    train = TokenDataset.from_array(np.tile([a, b], 400), 16)
    val = TokenDataset.from_array(np.tile([a, c], 100), 16)
    m = tiny_model(tok.vocab_size)
    t = TextTrainer(m, _cfg(max_steps=50, eval_steps=1, early_stopping_patience=2, learning_rate=3e-2))
    state = t.train(train, val)
    # stops after `patience` evaluations (one per step here) without a better validation loss
    assert state.stopped_early and state.step == state.best_step + 2 < 10


class _Stop(Exception):
    pass


class _StopAt(Callback):
    """Dies (as a killed process would) right after optimizer step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, result):
        if trainer.state.step == self.step:
            raise _Stop


def test_in_process_resume_is_bit_identical(tmp_path):
    tok, train, val = datasets()
    kw = dict(max_steps=9, batch_size=3, gradient_accumulation_steps=2, learning_rate=5e-3, warmup_steps=3,
              lr_scheduler="cosine", max_grad_norm=0.5, weight_decay=0.1, eval_steps=4, save_steps=2,
              logging_steps=1, eval_iters=2)

    def run(out, stop_at=None, resume=False):
        m = tiny_model(tok.vocab_size, dropout=0.1)  # dropout: the RNG state must be restored too
        t = TextTrainer(m, _cfg(output_dir=str(out), **kw), tokenizer=tok)
        if stop_at:
            t.add_logger(_StopAt(stop_at))
        t.train(train, val, resume_from=out if resume else None)
        return m, t

    ref, _ = run(tmp_path / "ref")
    with pytest.raises(_Stop):
        run(tmp_path / "cut", stop_at=7)  # dies after step 7; the last checkpoint is step 6
    resumed, t = run(tmp_path / "cut", resume=True)
    assert t.state.step == 9
    for k, v in params(ref).items():
        assert np.array_equal(params(resumed)[k], v), k
    opt_a, opt_b = _optim(tmp_path / "ref"), _optim(tmp_path / "cut")
    assert opt_a.keys() == opt_b.keys() and all(np.array_equal(opt_a[k], opt_b[k]) for k in opt_a)


def _optim(run_dir):
    from safetensors.numpy import load_file
    ck = CheckpointManager(run_dir).latest()
    return load_file(str(ck / "optimizer.safetensors"))


def test_resume_with_a_different_batch_size_or_data_refuses_with_a_diff(tmp_path):
    tok, train, val = datasets()
    m = tiny_model(tok.vocab_size)
    TextTrainer(m, _cfg(max_steps=2, save_steps=2, output_dir=str(tmp_path)), tokenizer=tok).train(train)
    t = TextTrainer(tiny_model(tok.vocab_size), _cfg(max_steps=4, batch_size=2, gradient_accumulation_steps=2,
                                                     output_dir=str(tmp_path)))
    with pytest.raises(ResumeMismatchError) as e:
        t.train(train, resume_from=tmp_path)
    msg = str(e.value)
    assert "batch_size: checkpoint=4  now=2" in msg and "gradient_accumulation_steps: checkpoint=1  now=2" in msg
    other = TokenDataset.from_array(train.tokens[::-1].copy(), 16)
    t = TextTrainer(tiny_model(tok.vocab_size), _cfg(max_steps=4, output_dir=str(tmp_path)))
    with pytest.raises(ResumeMismatchError, match="data"):
        t.train(other, resume_from=tmp_path)
    t = TextTrainer(tiny_model(tok.vocab_size), _cfg(max_steps=4, output_dir=str(tmp_path)))
    state = t.train(other, resume_from=tmp_path, allow_mismatch=True)  # the override flag
    assert state.step == 4


def test_generic_trainer_api(tmp_path):
    tok, train, val = datasets()
    m = tiny_model(tok.vocab_size)
    t = Trainer(m, TrainingConfig(learning_rate=1e-2, batch_size=8, num_epochs=1, gradient_clipping=1.0,
                                  weight_decay=0.01, save_frequency=5), tokenizer=tok, progress=False)
    assert isinstance(t, Trainable)
    from goldbull_np.optim.lr_scheduler import WarmupScheduler, ConstantScheduler
    t.set_optimizer("adamw", OptimizerConfig(beta2=0.99))
    t.set_lr_scheduler(WarmupScheduler(3, 1e-2).chain(ConstantScheduler(1e-2)))
    mgr = CheckpointManager(tmp_path / "ck", CheckpointConfig(max_checkpoints=2))
    t.set_checkpoint_manager(mgr)
    t.add_logger(MetricsLogger(tmp_path / "logs"))
    state = t.train(train, val)
    assert state.step == len(train) // 8  # one epoch
    assert state.last_eval is not None  # evaluated at the epoch's end
    assert [c.step for c in mgr.checkpoints()][-1] == state.step
    v = t.validate(val)
    t.save_checkpoint(tmp_path / "manual")
    t2 = Trainer(tiny_model(tok.vocab_size, seed=9), t.config, progress=False)
    t2.load_checkpoint(tmp_path / "manual")
    assert t2.state.step == state.step and t2.validate(val).loss == v.loss


def test_train_on_dataset_reads_a_file(tmp_path):
    p = tmp_path / "lines.txt"
    p.write_text("\n".join(f"line number {i} says hello to the trainer" for i in range(60)) + "\n")
    gb.manual_seed(0)
    m = GoldbullText(ModelConfig.tiny(vocab_size=256 + 8, n_layer=1, n_embd=16, block_size=32))
    t = Trainer(m, TrainingConfig(learning_rate=1e-2, batch_size=8, save_frequency=0), progress=False)
    state = t.train_on_dataset(p, epochs=2)
    from goldbull_np.data import ByteTokenizer, PreprocessConfig, TextDataset
    n_items = len(TextDataset.from_file(p, PreprocessConfig(max_sequence_length=32), ByteTokenizer()))
    n_train = n_items - int(n_items * 0.1)
    assert state.step == 2 * (n_train // 8) and state.last_eval["loss"] < math.log(264)
