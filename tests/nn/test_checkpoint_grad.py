"""Activation checkpointing under both backward modes. Leaves found inside a checkpointed call (its
parameters, whether or not they could be found from ``fn``) get their gradients exactly as without the
checkpoint: accumulated into ``.grad`` by ``Tensor.backward()``; under ``autograd.grad(outputs, inputs)``
returned when they are among ``inputs`` and never written to ``.grad``; leaf hooks run once."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn
from goldbull_np.nn.checkpoint import checkpoint


def make(seed=0):
    gb.manual_seed(seed)
    lin = nn.Linear(3, 2)
    x = gb.randn(4, 3, requires_grad=True)
    return lin, x


FNS = {"lambda": lambda lin: (lambda t: lin(t)), "module": lambda lin: lin,
       "method": lambda lin: lin.forward}


def params(lin):
    return [lin.weight, lin.bias]


def no_grads(*ts):
    return all(t.grad is None for t in ts)


@pytest.mark.parametrize("kind", list(FNS))
def test_grad_wrt_input_leaves_parameters_untouched(kind):
    lin, x = make()
    out = checkpoint(FNS[kind](lin), x)
    (gx,) = gb.autograd.grad((out * out).sum(), [x])
    assert no_grads(x, *params(lin))
    (want,) = gb.autograd.grad((lin(x) * lin(x)).sum(), [x])
    np.testing.assert_allclose(gx.data, want.data, rtol=1e-6)


@pytest.mark.parametrize("kind", list(FNS))
def test_grad_wrt_parameters_through_checkpoint(kind):
    lin, x = make()
    out = checkpoint(FNS[kind](lin), x)
    got = gb.autograd.grad((out * out).sum(), [lin.weight, lin.bias])
    assert no_grads(x, *params(lin))
    y = lin(x)
    want = gb.autograd.grad((y * y).sum(), [lin.weight, lin.bias])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.data, w.data, rtol=1e-6)


@pytest.mark.parametrize("kind", list(FNS))
def test_grad_wrt_a_mix_and_a_leaf_used_inside_and_outside(kind):
    lin, x = make()
    x2 = gb.randn(4, 3)

    def loss(ckpt):
        y = checkpoint(FNS[kind](lin), x) if ckpt else lin(x)
        return ((y + lin(x2)) ** 2).sum()

    got = gb.autograd.grad(loss(True), [lin.weight, x])
    want = gb.autograd.grad(loss(False), [lin.weight, x])
    assert no_grads(x, *params(lin))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.data, w.data, rtol=1e-6)


@pytest.mark.parametrize("kind", list(FNS))
def test_backward_accumulates_like_the_plain_call(kind):
    lin, x = make()
    for _ in range(2):  # the second backward adds onto the first
        out = checkpoint(FNS[kind](lin), x)
        (out * out).sum().backward()
    got = [t.grad.copy() for t in [x, *params(lin)]]
    lin2, x2 = make()
    for _ in range(2):
        y = lin2(x2)
        (y * y).sum().backward()
    for g, t in zip(got, [x2, *params(lin2)]):
        np.testing.assert_allclose(g, t.grad, rtol=1e-6)


@pytest.mark.parametrize("kind", list(FNS))
@pytest.mark.parametrize("mode", ["backward", "grad"])
def test_leaf_hooks_run_once(kind, mode):
    def run(ckpt):
        lin, x = make()
        calls = []
        lin.weight.register_hook(lambda g: (calls.append(1), g * 2)[1])
        y = checkpoint(FNS[kind](lin), x) if ckpt else lin(x)
        loss = (y * y).sum()
        if mode == "backward":
            loss.backward()
            return lin.weight.grad.copy(), len(calls)
        return gb.autograd.grad(loss, [lin.weight])[0].data, len(calls)

    (plain, n_plain), (ck, n_ck) = run(False), run(True)
    assert n_plain == n_ck == 1
    np.testing.assert_allclose(ck, plain, rtol=1e-6)


@pytest.mark.parametrize("mode", ["backward", "grad"])
def test_nested_checkpoints(mode):
    gb.manual_seed(1)
    a, b = nn.Linear(3, 5), nn.Linear(5, 2)
    x = gb.randn(4, 3, requires_grad=True)

    def loss(ckpt):
        if ckpt:
            y = checkpoint(lambda t: b(checkpoint(lambda u: a(u).tanh(), t)), x)
        else:
            y = b(a(x).tanh())
        return (y * y).sum()

    leaves = [a.weight, b.bias, x]
    if mode == "grad":
        got = [g.data for g in gb.autograd.grad(loss(True), leaves)]
        assert no_grads(*leaves, a.bias, b.weight)
        want = [g.data for g in gb.autograd.grad(loss(False), leaves)]
    else:
        loss(True).backward()
        got = [t.grad.copy() for t in leaves]
        for t in [a.weight, a.bias, b.weight, b.bias, x]:
            t.grad = None
        loss(False).backward()
        want = [t.grad for t in leaves]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_unused_parameter_through_checkpoint_needs_allow_unused():
    lin, x = make()
    other = nn.Parameter(np.ones(2, np.float32))
    out = checkpoint(lambda t: lin(t), x)
    with pytest.raises(RuntimeError, match="not used"):
        gb.autograd.grad(out.sum(), [other])
    out = checkpoint(lambda t: lin(t), x)
    assert gb.autograd.grad(out.sum(), [other], allow_unused=True) == (None,)
    assert no_grads(x, *params(lin), other)
