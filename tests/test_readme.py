"""The README's Python examples, read from README.md itself and run, so the README cannot drift."""
import contextlib
import io
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_autograd_example_runs_verbatim():
    snippet = _python_blocks()[0]
    assert "y.backward()" in snippet
    out, namespace = io.StringIO(), {}
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "README.md", "exec"), namespace)
    assert out.getvalue() == "(2, 2) (2, 3)\n"
    x, w = namespace["x"].numpy(), namespace["w"].numpy()
    t = np.tanh(x @ w)  # d/dx sum(tanh(x @ w)) = (1 - tanh^2) @ w.T
    np.testing.assert_allclose(namespace["x"].grad, (1 - t * t) @ w.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(namespace["w"].grad, x.T @ (1 - t * t), rtol=1e-5, atol=1e-6)


def test_readme_training_example_runs(tmp_path, monkeypatch):
    snippet = _python_blocks()[1]
    assert "max_steps=2000" in snippet
    snippet = snippet.replace("max_steps=2000", "max_steps=3")  # the same code, three steps
    rng = np.random.default_rng(0)
    words = ["the", "king", "shall", "speak", "and", "we", "hear", "thee", "now", "good"]
    for name, n in (("input.txt", 3000), ("train.txt", 2500), ("val.txt", 500)):
        text = " ".join(rng.choice(words, size=n // 4)) + "\n"
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    with contextlib.redirect_stderr(io.StringIO()):
        exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["trainer"].state.step == 3
    assert namespace["trainer"].state.tokens_seen > 0
    assert any((tmp_path / "runs" / "x").iterdir()), "the run wrote nothing to output_dir"


def test_readme_custom_task_example_runs():
    snippet = _python_blocks()[2]
    assert "class Regression(WeightedLossTask)" in snippet
    out, namespace = io.StringIO(), {}
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "README.md", "exec"), namespace)
    lines = out.getvalue().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["step 100", "step 200"]
    last = float(lines[-1].rsplit(" ", 1)[1])
    assert last < 0.01, lines  # y is an exact linear function of x: the fit gets close
    assert namespace["trainer"].state.counts["examples"] == 200 * 2 * 16
