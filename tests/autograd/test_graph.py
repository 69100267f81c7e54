"""Graph behaviour of the backward engine: shapes of graphs, accumulation, depth, retain_graph, hooks,
grad modes, autograd.grad, and the release of saved arrays."""
import gc
import weakref

import numpy as np
import pytest

import goldbull_np as gb


def leaf(*values, dtype=gb.float64):
    return gb.tensor(np.array(values, dtype=dtype), requires_grad=True)


def test_diamond_graph():
    # x -> a = 2x, b = x^2 -> y = a * b = 2x^3: dy/dx = 6x^2, both paths must meet in x once
    x = leaf(1.0, 2.0, -3.0)
    a = x * 2
    b = x * x
    y = (a * b).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, 6 * x.data ** 2)


def test_fan_out_accumulates_and_grad_accumulates_across_backwards():
    x = leaf(0.5, -1.5)
    y = x.exp() + x.exp() + x * 3  # x used three times
    y.sum().backward()
    expected = 2 * np.exp(x.data) + 3
    np.testing.assert_allclose(x.grad, expected)
    (x * 4).sum().backward()  # a second backward adds to .grad
    np.testing.assert_allclose(x.grad, expected + 4)


def test_grad_is_an_ndarray_owned_by_the_leaf():
    x = leaf(1.0, 2.0)
    w = leaf(3.0, 4.0)
    (x + w).sum().backward()  # the same upstream array reaches both leaves
    assert isinstance(x.grad, np.ndarray) and np.asarray(x.grad).shape == (2,)
    assert x.grad is not w.grad and not np.shares_memory(x.grad, w.grad)
    x.grad += 1  # must not change w.grad
    np.testing.assert_array_equal(w.grad, [1.0, 1.0])


def test_a_reshaped_gradient_nobody_else_holds_becomes_grad_without_a_copy():
    x = gb.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
    (x.reshape(6, 4) * 2).sum().backward()  # reshape's backward hands back a view of a fresh array
    np.testing.assert_array_equal(x.grad, np.full((2, 3, 4), 2, np.float32))
    assert x.grad.base is not None and x.grad.base.shape == (6, 4)  # taken over, not copied
    # views of one array reaching two leaves (cat's backward slices it) are copied: each leaf owns its .grad
    a, c = leaf(1.0, 2.0), leaf(3.0, 4.0)
    (gb.cat([a, c]) * 3).sum().backward()
    assert not np.shares_memory(a.grad, c.grad)
    a.grad += 1
    np.testing.assert_array_equal(c.grad, [3.0, 3.0])


@pytest.mark.parametrize("path", ["leaf", "reshape", "add"])
def test_the_callers_root_gradient_is_read_not_copied_and_never_becomes_grad(path):
    x = gb.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    y = {"leaf": lambda: x, "reshape": lambda: x.reshape(3, 2), "add": lambda: x + 0.0}[path]()
    G = np.arange(6, dtype=np.float32).reshape(y.shape)
    y.backward(G)
    np.testing.assert_array_equal(x.grad, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert not np.shares_memory(x.grad, G)
    x.grad += 1  # the caller's array stays as it was
    np.testing.assert_array_equal(G, np.arange(6, dtype=np.float32).reshape(y.shape))


def test_deep_chain_100k_ops_has_no_recursion_error():
    x = gb.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0])
    del y  # the released graph is freed without deep recursion either


def test_deep_chain_freed_without_backward():
    import weakref
    x = gb.tensor([1.0], requires_grad=True)
    y = x + 1.0
    first = weakref.ref(y.grad_fn)
    for _ in range(100_000):
        y = y + 1.0
    del y  # dropping an un-backpropagated 100k graph must not overflow the C stack
    gc.collect()
    assert first() is None, "the graph's first node is still alive"


def test_backward_twice_raises_clear_error():
    x = leaf(1.0, 2.0)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = leaf(1.0, 2.0)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_shared_subgraph_freed_by_first_backward():
    x = leaf(1.0)
    h = x * 2
    (h * 3).sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 4).sum().backward()


def test_backward_with_explicit_gradient():
    x = leaf(1.0, 2.0, 3.0)
    y = x * x
    y.backward(gradient=np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(x.grad, [2.0, 0.0, -6.0])
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).backward(gradient=np.ones(2))


def test_hooks_on_non_leaf_and_leaf():
    x = leaf(1.0, 2.0)
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(np.array(g.numpy())))
    handle = y.register_hook(lambda g: g * 10)  # replaces the gradient flowing on
    x.register_hook(lambda g: seen.append(("leaf", np.array(g.numpy()))))
    (y * 2).sum().backward()
    np.testing.assert_array_equal(seen[0], [2.0, 2.0])
    assert seen[1][0] == "leaf"
    np.testing.assert_array_equal(seen[1][1], [60.0, 60.0])
    np.testing.assert_array_equal(x.grad, [60.0, 60.0])
    handle.remove()
    x.grad = None
    y2 = x * 3
    (y2 * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_hook_returned_array_is_not_aliased_by_grad():
    x = leaf(1.0, 2.0)
    replacement = gb.tensor([5.0, 5.0], dtype=gb.float64)
    x.register_hook(lambda g: replacement)
    (x * 1).sum().backward()
    x.grad += 1
    np.testing.assert_array_equal(replacement.numpy(), [5.0, 5.0])


def test_hook_requires_grad():
    with pytest.raises(RuntimeError):
        gb.zeros(2).register_hook(lambda g: g)


def test_retain_grad_keeps_non_leaf_grad():
    x = leaf(1.0, 2.0)
    h = x * x
    h.retain_grad()
    assert h.retains_grad
    out = (h * 3).sum()
    out.backward()
    np.testing.assert_array_equal(h.grad, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])
    z = x * 2
    (z * 1).sum().backward()
    assert z.grad is None  # not retained: only leaves get .grad


def test_no_grad_enable_grad_and_set_grad_enabled():
    x = leaf(1.0)
    assert gb.is_grad_enabled()
    with gb.no_grad():
        assert not gb.is_grad_enabled()
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None
        with gb.enable_grad():
            z = x * 2
            assert z.requires_grad
    assert gb.is_grad_enabled()

    @gb.no_grad()
    def f(t):
        return t * 2

    @gb.no_grad
    def g(t):
        return t * 2

    @gb.set_grad_enabled(False)
    def h(t):
        return t * 2

    assert gb.is_grad_enabled()  # decorating with set_grad_enabled does not switch the mode
    assert not f(x).requires_grad and not g(x).requires_grad and not h(x).requires_grad
    assert gb.is_grad_enabled()
    with gb.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert gb.is_grad_enabled()
    gb.set_grad_enabled(False)
    assert not gb.is_grad_enabled()
    gb.set_grad_enabled(True)
    assert gb.is_grad_enabled()


def test_no_grad_restores_mode_after_exception():
    with pytest.raises(ValueError):
        with gb.no_grad():
            raise ValueError
    assert gb.is_grad_enabled()


def test_detach_and_requires_grad_():
    x = leaf(1.0, 2.0)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    y = (x * d).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, d.numpy())  # d is a constant
    t = gb.zeros(2)
    assert t.requires_grad_() is t and t.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (t * 2).requires_grad_(False)


def test_autograd_grad_leaves_dot_grad_untouched():
    x = leaf(1.0, 2.0)
    w = leaf(3.0, 4.0)
    h = x * w
    y = (h * h).sum()
    gx, gh = gb.autograd.grad(y, [x, h])
    np.testing.assert_allclose(gx.numpy(), 2 * h.data * w.data)
    np.testing.assert_allclose(gh.numpy(), 2 * h.data)
    assert x.grad is None and w.grad is None
    unused = leaf(0.0)
    with pytest.raises(RuntimeError, match="allow_unused"):
        gb.autograd.grad((x * 2).sum(), [x, unused])
    gx, gu = gb.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_array_equal(gx.numpy(), [2.0, 2.0])


def test_indexing_with_repeated_indices_accumulates():
    x = leaf(10.0, 20.0, 30.0)
    idx = gb.tensor([0, 2, 0, 0])
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])
    w = gb.randn(5, 2, dtype=gb.float64, requires_grad=True)
    w.index_select(0, gb.tensor([4, 4, 1])).sum().backward()
    np.testing.assert_array_equal(w.grad[:, 0], [0, 1, 0, 0, 2])
    e = gb.randn(4, 3, requires_grad=True)
    gb.nn.functional.embedding(gb.tensor([[1, 1], [3, 1]]), e).sum().backward()
    np.testing.assert_array_equal(e.grad[:, 0], [0, 3, 0, 1])


def test_saved_arrays_are_released_after_backward():
    x = gb.randn(64, 64, dtype=gb.float64, requires_grad=True)
    h = x.exp()          # Exp saves its output array
    h2 = h * 3.0         # Mul saves h's array
    y = h2.sum()
    exp_node, mul_node = h.grad_fn, h2.grad_fn
    saved = weakref.ref(exp_node.out)  # ndarrays support weak references
    del h, h2
    assert saved() is not None  # alive: only the graph holds it
    y.backward()
    assert saved() is None, "the array saved for backward is still alive after backward()"
    assert exp_node.released and mul_node.released
    assert "out" not in vars(exp_node) and "a" not in vars(mul_node)
    assert exp_node.next_functions == ()  # links to parents dropped too


def test_saved_arrays_kept_with_retain_graph():
    x = gb.randn(8, dtype=gb.float64, requires_grad=True)
    h = x.exp()
    node = h.grad_fn
    saved = weakref.ref(node.out)
    y = (h * 2).sum()
    del h
    y.backward(retain_graph=True)
    assert saved() is not None and not node.released
    y.backward()
    assert saved() is None


def test_gc_paused_restores_gc_state():
    assert gc.isenabled()
    with gb.autograd.gc_paused():
        assert not gc.isenabled()
        x = leaf(1.0)
        (x * 2).sum().backward()
    assert gc.isenabled()
    gc.disable()
    try:
        with gb.autograd.gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: stays off
    finally:
        gc.enable()


class _HiddenScale(gb.Function):
    """``x * w`` where ``w`` is not an input: backward recomputes and runs a nested pass (as a checkpoint does)."""

    def forward(self, x, w=None):
        self.x, self.w = x, w
        return x * w.data

    def backward(self, g):
        from goldbull_np.autograd.engine import run_backward

        t = gb.Tensor._make(self.x, True, None)
        (gt,) = run_backward((t * self.w,), (g,), capture=[t], nested=True)
        return gt


def test_nested_pass_delivers_hidden_leaves_to_the_enclosing_pass():
    x, w = leaf(1.0, 2.0), leaf(3.0, 5.0)
    calls = []
    w.register_hook(lambda g: calls.append(1))
    (_HiddenScale.apply(x, w=w) * 2).sum().backward()  # Tensor.backward: into .grad, hook once
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])
    np.testing.assert_array_equal(x.grad, [6.0, 10.0])
    assert calls == [1]
    x.grad = w.grad = None
    gw, gx = gb.autograd.grad((_HiddenScale.apply(x, w=w) * 2).sum(), [w, x])  # returned, .grad untouched
    np.testing.assert_array_equal(gw.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(gx.numpy(), [6.0, 10.0])
    (gx,) = gb.autograd.grad((_HiddenScale.apply(x, w=w) * 2).sum(), [x])  # not asked for: dropped
    assert w.grad is None and x.grad is None and calls == [1, 1, 1]


def test_nested_pass_outside_any_backward_accumulates():
    from goldbull_np.autograd.engine import run_backward

    x, w = leaf(1.0, 2.0), leaf(3.0, 5.0)
    assert run_backward(((x * w).sum(),), (None,), capture=[x], nested=True)[0].tolist() == [3.0, 5.0]
    np.testing.assert_array_equal(w.grad, [1.0, 2.0])
    assert x.grad is None
