"""TrainingMetrics, ValidationMetrics, MetricsLogger (JSONL + CSV), the embedded corpus."""
import csv
import json
import math

from goldbull_np.train import MetricsLogger, TrainingMetrics, ValidationMetrics
from goldbull_np.train.corpus import default_corpus


def test_training_metrics_token_weighted_and_skips_nonfinite():
    m = TrainingMetrics()
    m.add_loss(2.0, tokens=10)
    m.add_loss(float("nan"), tokens=5)
    m.add_loss(4.0, tokens=30)
    assert m.steps == 2 and m.skipped_steps == 1 and m.tokens == 40
    assert math.isclose(m.average_loss(), (20 + 120) / 40)
    assert math.isnan(TrainingMetrics().average_loss())


def test_validation_metrics_from_sums():
    v = ValidationMetrics.from_sums(loss_sum=20.0, correct=3, tokens=10)
    assert (v.loss, v.accuracy, v.tokens) == (2.0, 0.3, 10) and math.isclose(v.perplexity, math.exp(2.0))
    assert math.isnan(ValidationMetrics.from_sums(0.0, 0, 0).loss)


def test_metrics_logger_writes_jsonl_and_csv(tmp_path):
    lg = MetricsLogger(tmp_path / "logs")
    lg.log_step(10, 2.5, 1e-3, 0.7, tokens_per_second=1234.5, elapsed=3.0)
    lg.log_step(20, 2.25, 9e-4, 0.6, tokens_per_second=1300.0, elapsed=6.0)
    tm = TrainingMetrics()
    tm.add_loss(2.3, 10)
    lg.log_epoch(0, tm, ValidationMetrics(2.1, 0.4, math.exp(2.1)), step=20)
    lg.close()
    rows = [json.loads(line) for line in (tmp_path / "logs" / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20] and rows[0]["lr"] == 1e-3 and rows[1]["grad_norm"] == 0.6
    assert rows[0]["tokens_per_second"] == 1234.5 and rows[1]["elapsed"] == 6.0
    with open(tmp_path / "logs" / "steps.csv") as f:
        table = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in table] == [2.5, 2.25]
    assert {"step", "loss", "lr", "grad_norm", "tokens_per_second", "elapsed"} <= set(table[0])
    ep = lg.read_epochs()
    assert ep[0]["val_loss"] == 2.1 and ep[0]["val_accuracy"] == 0.4 and ep[0]["train_loss"] == 2.3
    # appending after a restart keeps one CSV header
    lg2 = MetricsLogger(tmp_path / "logs")
    lg2.log_step(30, 2.0, 8e-4, 0.5)
    lg2.close()
    assert (tmp_path / "logs" / "steps.csv").read_text().count("step,") == 1


def test_truncate_after_drops_rows_of_a_killed_run(tmp_path):
    lg = MetricsLogger(tmp_path)
    for s in (10, 20, 30):
        lg.log_step(s, 1.0, 1e-3)
    lg.log_epoch(0, None, ValidationMetrics(1.0, 0.5, 2.7), step=30)
    lg.truncate_after(20)
    lg.log_step(30, 0.9, 1e-3)
    lg.close()
    assert [r["step"] for r in lg.read_steps()] == [10, 20, 30] and lg.read_epochs() == []
    with open(tmp_path / "steps.csv") as f:
        assert [r["loss"] for r in csv.DictReader(f)] == ["1.0", "1.0", "0.9"]


def test_plot_without_matplotlib_is_none_or_png(tmp_path):
    lg = MetricsLogger(tmp_path)
    lg.log_step(1, 2.0, 1e-3)
    out = lg.plot()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert out is None and not (tmp_path / "loss_curve.png").exists()
    else:
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_corpus_is_deterministic_ascii_prose():
    a, b = default_corpus(), default_corpus()
    assert a == b and len(a) > 200_000
    assert a.isascii() and "the" in a and len(set(a)) < 128


def test_csv_columns_follow_the_task(tmp_path):
    """A task's own rates and validation metrics get CSV columns (not only a language model's)."""
    lg = MetricsLogger(tmp_path)
    lg.log_step(1, 0.5, 1e-3, 0.1, examples_per_second=100.0, elapsed=1.0)
    lg.log_epoch(0, None, {"loss": 0.4, "top5": 0.9}, step=1)
    lg.close()
    with open(tmp_path / "steps.csv") as f:
        assert list(csv.DictReader(f))[0]["examples_per_second"] == "100.0"
    with open(tmp_path / "epochs.csv") as f:
        row = list(csv.DictReader(f))[0]
    assert row["val_top5"] == "0.9" and row["val_loss"] == "0.4"
    lg.truncate_after(1)  # rewriting keeps the file's columns
    with open(tmp_path / "epochs.csv") as f:
        assert "val_top5" in next(csv.reader(f))
