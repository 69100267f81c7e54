"""The autograd example in the README, run verbatim (the README's snippet must equal SNIPPET)."""
import contextlib
import io

SNIPPET = """\
import goldbull_np as gb

x = gb.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
w = gb.randn(2, 3, requires_grad=True)
y = (x @ w).tanh().sum()
y.backward()
print(x.grad.shape, w.grad.shape)  # (2, 2) (2, 3)
"""


def test_readme_autograd_example_runs_verbatim():
    out = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(out):
        exec(compile(SNIPPET, "README.md", "exec"), namespace)
    assert out.getvalue() == "(2, 2) (2, 3)\n"
    x, w = namespace["x"], namespace["w"]
    import numpy as np
    # and the gradient is right: d/dx sum(tanh(x @ w)) = (1 - tanh^2) @ w.T
    t = np.tanh(x.numpy() @ w.numpy())
    np.testing.assert_allclose(x.grad, (1 - t * t) @ w.numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad, x.numpy().T @ (1 - t * t), rtol=1e-5, atol=1e-6)
