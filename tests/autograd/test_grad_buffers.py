"""Parameter gradients written in place by the linear kernels (Function.grad_buffer / engine.leaf_grad_buffer).

Oracle: the same graph with plain parameters (no optimizer lending, gradients accumulated by the engine),
and where rounding differs (a second backward added inside the GEMM), the float sum of the two passes."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import autograd, nn
from goldbull_np.autograd import engine
from goldbull_np.nn import functional as F

RNG = np.random.default_rng(3)
N, C, H, OC = 24, 20, 40, 12


def _params(dtype=np.float32):
    shapes = [(C,), (C,), (H, C), (H,), (OC, H), (OC,), (OC, OC)]
    return [nn.Parameter(RNG.standard_normal(s).astype(dtype) * 0.3) for s in shapes]


def _loss(ps, x):
    """layer_norm_linear -> gelu_linear -> linear, with the last weight used twice (a tied weight)."""
    ln_w, ln_b, w1, b1, w2, b2, w3 = ps
    h = F.layer_norm_linear(x, ln_w, ln_b, w1, b1)  # (N, H)
    y = F.gelu_linear(h, w2, b2)  # (N, OC)
    z = F.linear(F.linear(y, w3), w3)  # w3 reaches the loss through two Linear nodes
    return (z * z).sum()


def _plain_grads(ps, x, passes=1):
    """Gradients by the engine alone: copies of the parameters, no optimizer."""
    qs = [nn.Parameter(p.data.copy()) for p in ps]
    for _ in range(passes):
        _loss(qs, x).backward()
    return [q.grad for q in qs]


X = gb.tensor(RNG.standard_normal((N, C)).astype(np.float32))


def test_lent_buffers_receive_the_gradients_bit_for_bit():
    ps = _params()
    opt = gb.optim.AdamW(ps, lr=1e-3)
    opt.zero_grad(set_to_none=True)  # lends each parameter its view of the flat buffer
    _loss(ps, X).backward()
    for p, want in zip(ps, _plain_grads(ps, X)):
        np.testing.assert_array_equal(p.grad, want)
        assert p.grad.base is opt.flat_gradient  # written in place (or copied in), never a stray array


def test_accumulating_into_existing_grads_sums_the_passes():
    ps = _params()
    opt = gb.optim.AdamW(ps, lr=1e-3)
    opt.zero_grad(set_to_none=False)  # .grad is the zeroed view: the kernels add into it
    _loss(ps, X).backward()
    for p, want in zip(ps, _plain_grads(ps, X)):
        np.testing.assert_array_equal(p.grad, want)  # 0 + g is g exactly
    _loss(ps, X).backward()  # a second micro-batch: added in the GEMM epilogue, once
    for p, want in zip(ps, _plain_grads(ps, X, passes=2)):
        np.testing.assert_allclose(p.grad, want, rtol=2e-6, atol=1e-6)
        assert p.grad.base is opt.flat_gradient


def test_no_optimizer_second_backward_adds_in_place():
    ps = _params()
    _loss(ps, X).backward()
    first = [p.grad for p in ps]
    _loss(ps, X).backward()
    for p, g0, want in zip(ps, first, _plain_grads(ps, X, passes=2)):
        assert p.grad is g0  # the same array, accumulated in place as torch's .grad is
        np.testing.assert_allclose(p.grad, want, rtol=2e-6, atol=1e-6)


def test_autograd_grad_touches_neither_grad_nor_the_lent_buffer():
    ps = _params()
    opt = gb.optim.AdamW(ps, lr=1e-3)
    opt.zero_grad(set_to_none=True)
    opt.flat_gradient[...] = np.nan  # nothing may write here outside a Tensor.backward() pass
    grads = autograd.grad(_loss(ps, X), ps)
    for p, g, want in zip(ps, grads, _plain_grads(ps, X)):
        np.testing.assert_array_equal(g, want)
        assert p.grad is None
        assert not np.shares_memory(g, opt.flat_gradient)
    assert np.isnan(opt.flat_gradient).all()


@pytest.mark.parametrize("set_to_none", [True, False])
def test_a_leaf_with_a_hook_gets_the_hooked_gradient(set_to_none):
    ps = _params()
    opt = gb.optim.AdamW(ps, lr=1e-3)
    seen = []
    ps[2].register_hook(lambda g: (seen.append(g.data.copy()), g * 2)[1])
    opt.zero_grad(set_to_none=set_to_none)
    _loss(ps, X).backward()
    want = _plain_grads(ps, X)
    np.testing.assert_array_equal(seen[0], want[2])
    np.testing.assert_array_equal(ps[2].grad, 2 * want[2])
    np.testing.assert_array_equal(ps[4].grad, want[4])


def test_float64_parameters_are_not_handed_float32_buffers():
    ps = _params(np.float64)
    x = gb.tensor(X.data.astype(np.float64))
    _loss(ps, x).backward()
    _loss(ps, x).backward()
    for p, want in zip(ps, _plain_grads(ps, x, passes=2)):
        assert p.grad.dtype == np.float64
        np.testing.assert_allclose(p.grad, want, rtol=1e-12)


def test_checkpointed_linear_gradients_reach_the_lent_buffer():
    from goldbull_np.nn.checkpoint import checkpoint

    ps = _params()
    opt = gb.optim.AdamW(ps, lr=1e-3)
    opt.zero_grad(set_to_none=True)
    ln_w, ln_b, w1, b1, w2, b2, w3 = ps
    inner = checkpoint(lambda x: F.gelu_linear(F.layer_norm_linear(x, ln_w, ln_b, w1, b1), w2, b2), X)
    (F.linear(inner, w3) ** 2).sum().backward()
    qs = [nn.Parameter(p.data.copy()) for p in ps]
    qh = F.gelu_linear(F.layer_norm_linear(X, qs[0], qs[1], qs[2], qs[3]), qs[4], qs[5])
    (F.linear(qh, qs[6]) ** 2).sum().backward()
    for p, q in zip(ps, qs):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-6, atol=1e-7)


def test_leaf_grad_buffer_hands_each_leaf_out_once_and_only_inside_backward():
    p = nn.Parameter(np.zeros((2, 3), np.float32))
    p.grad = np.zeros((2, 3), np.float32)
    assert engine.leaf_grad_buffer(p, np.dtype(np.float32)) is None  # no pass running
    got = []

    class Probe(autograd.Function):
        def forward(self, w):
            return w.sum()

        def backward(self, g):
            got.append(self.grad_buffer(0, np.dtype(np.float32)))
            got.append(self.grad_buffer(0, np.dtype(np.float32)))
            buf, accumulate = got[0]
            buf += 1.0  # the gradient is ones, added into .grad by the backward itself
            return buf

    Probe.apply(p).backward()
    assert got[0][0] is p.grad and got[0][1] is True and got[1] is None
    np.testing.assert_array_equal(p.grad, np.ones((2, 3), np.float32))  # added once, not again by the pass
