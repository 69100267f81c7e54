"""Each layer's forward against a NumPy reference, and its gradients (input and parameters) through
float64 gradcheck."""
import math

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn

_erf = np.vectorize(math.erf)


def gradcheck_module(module, *inputs):
    """gradcheck of module(*inputs) with respect to every float input and every parameter."""
    module.double()
    params = list(module.parameters())
    n = len(inputs)
    assert gb.gradcheck(lambda *args: module(*args[:n]), list(inputs) + params)


def x64(*shape, seed=0):
    return gb.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_linear():
    gb.manual_seed(0)
    lin = nn.Linear(5, 3)
    bound = 1 / math.sqrt(5)
    assert lin.weight.shape == (3, 5) and np.abs(lin.weight.data).max() <= bound
    x = gb.randn(2, 4, 5)
    np.testing.assert_allclose(lin(x).data, x.data @ lin.weight.data.T + lin.bias.data, rtol=1e-5, atol=1e-6)
    gradcheck_module(lin, x64(2, 5))
    gradcheck_module(nn.Linear(4, 2, bias=False), x64(3, 4))


def test_embedding():
    emb = nn.Embedding(7, 3, padding_idx=0)
    assert not emb.weight.data[0].any()
    ids = np.array([[0, 3, 3], [6, 1, 0]])
    np.testing.assert_array_equal(emb(ids).data, emb.weight.data[ids])
    out = emb(ids)
    out.backward(np.ones(out.shape, np.float32))
    expect = np.zeros((7, 3), np.float32)
    for i in ids.reshape(-1):
        expect[i] += 1
    expect[0] = 0  # padding row gets no gradient
    np.testing.assert_array_equal(emb.weight.grad, expect)
    emb2 = nn.Embedding(5, 2).double()
    assert gb.gradcheck(lambda w: emb2(np.array([1, 4, 1])), [emb2.weight])


def test_layer_norm():
    ln = nn.LayerNorm(6)
    ln.weight.data[:] = np.arange(6)
    ln.bias.data[:] = 0.5
    x = gb.randn(3, 6)
    xd = x.data.astype(np.float64)
    ref = (xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True) + 1e-5) * np.arange(6) + 0.5
    np.testing.assert_allclose(ln(x).data, ref, rtol=1e-4, atol=1e-5)
    gradcheck_module(nn.LayerNorm(4), x64(2, 3, 4))
    no_bias = nn.LayerNorm(4, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight"]
    gradcheck_module(no_bias, x64(3, 4))


def test_rms_norm():
    rn = nn.RMSNorm(5, eps=1e-6)
    rn.weight.data[:] = 2.0
    x = gb.randn(4, 5)
    xd = x.data.astype(np.float64)
    np.testing.assert_allclose(rn(x).data, 2 * xd / np.sqrt((xd ** 2).mean(-1, keepdims=True) + 1e-6), rtol=1e-5)
    gradcheck_module(nn.RMSNorm(4, eps=1e-5), x64(3, 4))


@pytest.mark.parametrize("name,ref", [
    ("gelu", lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    ("gelu_tanh", lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    ("silu", lambda x: x / (1 + np.exp(-x))),
    ("relu", lambda x: np.maximum(x, 0)),
    ("tanh", np.tanh),
    ("identity", lambda x: x),
])
def test_activations(name, ref):
    mod = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU("tanh"), "silu": nn.SiLU(), "relu": nn.ReLU(),
           "tanh": nn.Tanh(), "identity": nn.Identity(3, foo=1)}[name]
    x = x64(3, 5)
    np.testing.assert_allclose(mod(x).data, ref(x.data), rtol=1e-6, atol=1e-7)
    if name != "relu":  # relu's kink makes finite differences meaningless at 0; fine elsewhere
        gradcheck_module(mod, x)


def test_dropout():
    gb.manual_seed(0)
    d = nn.Dropout(0.25)
    x = gb.ones(200, 100)
    y = d(x).data
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


@pytest.mark.parametrize("kind", ["gelu", "swiglu"])
def test_mlp(kind):
    gb.manual_seed(1)
    mlp = nn.MLP(4, hidden=6, kind=kind, bias=kind == "gelu")
    x = gb.randn(2, 3, 4)
    xd = x.data.astype(np.float64)
    up = xd @ mlp.up_proj.weight.data.T
    if kind == "gelu":
        up = up + mlp.up_proj.bias.data
        h = 0.5 * up * (1 + _erf(up / math.sqrt(2)))
        ref = h @ mlp.down_proj.weight.data.T + mlp.down_proj.bias.data
    else:
        gate = xd @ mlp.gate_proj.weight.data.T
        ref = (gate / (1 + np.exp(-gate)) * up) @ mlp.down_proj.weight.data.T
    np.testing.assert_allclose(mlp(x).data, ref, rtol=1e-4, atol=1e-5)
    gradcheck_module(mlp, x64(2, 2, 4))
