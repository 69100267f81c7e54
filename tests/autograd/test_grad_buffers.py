"""Parameter gradients written in place by the linear kernels (Function.grad_buffer / engine.grad_buffer).

Oracle: the same graph with plain parameters (no optimizer lending, gradients accumulated by the engine),
and where rounding differs (a second backward added inside the GEMM), the float sum of the two passes."""
import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import autograd, nn
from goldbull_np.autograd import engine
from goldbull_np.autograd import function as function_module
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


def test_float64_parameters_are_handed_nothing_and_accumulate_as_before(monkeypatch):
    """The float32 kernels write float32 only: float64 gradients take the engine's own sum."""
    ps = _params(np.float64)
    x = gb.tensor(X.data.astype(np.float64))
    handed = []
    real = function_module._grad_buffer
    with monkeypatch.context() as m:
        m.setattr(function_module, "_grad_buffer", lambda node, dt: _spy(handed, real(node, dt), node))
        _loss(ps, x).backward()
        _loss(ps, x).backward()
    assert handed == []
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


def test_grad_buffer_hands_each_leaf_out_once_and_only_inside_backward():
    p = nn.Parameter(np.zeros((2, 3), np.float32))
    p.grad = np.zeros((2, 3), np.float32)
    assert engine.grad_buffer(p, np.dtype(np.float32)) is None  # no pass running
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


def _without_buffers(monkeypatch, fn):
    """fn() with Function.grad_buffer handing out nothing: every gradient summed by the engine itself."""
    with monkeypatch.context() as m:
        m.setattr(autograd.Function, "grad_buffer", lambda self, i, dtype: None)
        return fn()


def _grads_of(build, leaves_data, gradient=None):
    leaves = [gb.tensor(a, requires_grad=True) for a in leaves_data]
    out = build(*leaves)
    out.backward(gradient)
    return [out.data] + [t.grad for t in leaves]


@pytest.mark.parametrize("norm", ["layer", "rms", "layer_linear"])
def test_a_norm_adds_its_input_gradient_into_the_pending_sum(norm, monkeypatch):
    """x -> h = 2x; the stream h reaches the loss directly and through a norm: the norm's dx is added into h's
    pending gradient in the kernel's pass; values and gradients are the engine's own sum, bit for bit."""
    rng = np.random.default_rng(7)
    data = [rng.standard_normal((3, 5, 16)).astype(np.float32), rng.standard_normal(16).astype(np.float32),
            rng.standard_normal((16, 16)).astype(np.float32)]

    def build(x, w, w2):
        h = x * 2.0  # a Function node whose gradient has two contributions
        if norm == "layer":
            n = F.layer_norm(h, (16,), w, w)
        elif norm == "rms":
            n = F.rms_norm(h, (16,), w)
        else:
            n = F.layer_norm_linear(h, w, w, w2)
        return (F.linear(h, w2, residual=n) * h).sum()  # h's gradient: from the residual, the product and n

    handed = []
    with monkeypatch.context() as m:  # the norm's dx does go into h's pending sum
        real = function_module._grad_buffer
        m.setattr(function_module, "_grad_buffer", lambda node, dt: _spy(handed, real(node, dt), node))
        got = _grads_of(build, data)
    assert any(not isinstance(node, gb.Tensor) for node in handed)
    want = _without_buffers(monkeypatch, lambda: _grads_of(build, data))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def _spy(handed, result, node):
    if result is not None:
        handed.append(node)
    return result


def test_a_pending_gradient_shared_by_two_inputs_is_not_written_into(monkeypatch):
    """Add hands one array to both of its inputs: a norm on either must not add into it (the other's would
    change too); nor into a caller's root gradient passed through."""
    rng = np.random.default_rng(8)
    data = [rng.standard_normal((4, 16)).astype(np.float32), rng.standard_normal(16).astype(np.float32)]
    root = rng.standard_normal((4, 16)).astype(np.float32)
    root_copy = root.copy()

    def build(x, w):
        a, b = x * 2.0, x * 3.0
        s = a + b  # Add: the same gradient array to a's node and b's, before the norm's backward runs
        return (F.layer_norm(a, (16,), w) + s) * 1.5  # (not the root's gradient itself: that one is borrowed)

    got = _grads_of(build, data, root)
    want = _without_buffers(monkeypatch, lambda: _grads_of(build, data, root))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(root, root_copy)  # the caller's gradient array is untouched


def test_a_transformer_block_sums_both_residual_gradients_in_its_norms(monkeypatch):
    """In a block without dropout each norm's dx goes into the stream's pending gradient (the residual's,
    handed on by the fused projection): two hand-outs per block, so no separate add of (B, T, C) arrays."""
    from goldbull_np.nn.transformer import TransformerBlock
    gb.manual_seed(0)
    blocks = [TransformerBlock(32, 4) for _ in range(2)]
    x = gb.tensor(np.random.default_rng(9).standard_normal((2, 8, 32)).astype(np.float32), requires_grad=True)
    handed = []
    real = function_module._grad_buffer
    monkeypatch.setattr(function_module, "_grad_buffer", lambda node, dt: _spy(handed, real(node, dt), node))
    h = x * 1.0
    for blk in blocks:
        h = blk(h)
    (h * 0.5).sum().backward()
    pending = [n for n in handed if not isinstance(n, gb.Tensor)]
    assert len(pending) == 2 * len(blocks), [type(n).__name__ for n in pending]


def test_a_stream_with_three_consumers_keeps_every_contribution(monkeypatch):
    """h feeds a norm (which adds into h's pending sum), a plain product (a fresh gradient summed by the engine:
    the pending array is replaced and freed) and a second norm: a freed array's id must never be taken for the
    hand-out of the first norm, so every contribution counts."""
    rng = np.random.default_rng(10)
    data = [rng.standard_normal((5, 16)).astype(np.float32), rng.standard_normal(16).astype(np.float32)]

    def build(x, w):
        h = x * 2.0
        out = F.layer_norm(h, (16,), w) * 1.5 + h * h + F.layer_norm(h, (16,), w, w) * 0.5 + h
        return (out * out).sum()

    got = _grads_of(build, data)
    want = _without_buffers(monkeypatch, lambda: _grads_of(build, data))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
