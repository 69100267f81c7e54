"""Gradient clipping: float64 norm accumulation, non-finite norms, value clipping."""
import math

import numpy as np
import pytest

import goldbull_np as gb
from goldbull_np import nn


def params_with_grads(*grads):
    ps = []
    for g in grads:
        p = nn.Parameter(np.zeros(np.shape(g), np.float32))
        p.grad = np.array(g, dtype=np.float32)
        ps.append(p)
    return ps


def test_clip_grad_norm_scales_to_max_norm():
    ps = params_with_grads([3.0, 0.0], [[4.0]])
    norm = gb.optim.clip_grad_norm_(ps, 1.0)
    assert isinstance(norm, float) and norm == pytest.approx(5.0)
    np.testing.assert_allclose(ps[0].grad, [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(ps[1].grad, [[0.8]], rtol=1e-5)
    # below the limit: untouched
    ps = params_with_grads([0.3, 0.4])
    assert nn.utils.clip_grad_norm_(ps, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(ps[0].grad, np.float32([0.3, 0.4]))
    assert gb.optim.clip_grad_norm_(params_with_grads([1.0]) + [nn.Parameter(np.zeros(2))], 1.0) == 1.0
    assert gb.optim.clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0) == 0.0


def test_huge_float32_grads_clip_to_finite_values():
    ps = params_with_grads(np.full(1000, 1e20), [1e20])
    norm = gb.optim.clip_grad_norm_(ps, 1.0)
    assert norm == pytest.approx(1e20 * math.sqrt(1001), rel=1e-6)
    assert all(np.isfinite(p.grad).all() for p in ps)
    total = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in ps))
    assert total == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_norm_leaves_grads_untouched(bad):
    ps = params_with_grads([1.0, bad], [100.0])
    before = [p.grad.copy() for p in ps]
    norm = gb.optim.clip_grad_norm_(ps, 1.0)
    assert not math.isfinite(norm)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.grad, b)
    with pytest.raises(RuntimeError, match="non-finite"):
        gb.optim.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)


def test_other_norm_types_and_value_clipping():
    ps = params_with_grads([3.0, -4.0])
    assert gb.optim.clip_grad_norm_(ps, 10.0, norm_type=math.inf) == 4.0
    assert gb.optim.clip_grad_norm_(ps, 10.0, norm_type=1) == pytest.approx(7.0)
    gb.optim.clip_grad_value_(ps, 3.5)
    np.testing.assert_array_equal(ps[0].grad, np.float32([3.0, -3.5]))


def test_norm_accumulates_in_float64_across_chunks():
    """The sum of squares runs in blocks (no BLAS); long float32 and float64 grads give the exact
    float64 norm."""
    from goldbull_np.kernels.reference import _CHUNK
    from goldbull_np.optim.clip import sum_squares_f64
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(3 * _CHUNK + 17).astype(np.float32), rng.standard_normal((5, 7)),
             np.zeros(0, np.float32), rng.standard_normal(_CHUNK).astype(np.float32) * 1e20]
    expected = sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)
    assert math.isclose(sum_squares_f64(grads), expected, rel_tol=1e-12)


def test_gradients_in_a_fused_adamw_buffer_are_one_array_and_clip_like_separate_arrays():
    """A fused AdamW keeps the float32 gradients as views of one flat buffer and hands that buffer out
    (``gradient_arrays``, a public API: no address arithmetic): the norm is then one kernel call over it,
    and the norm and the clipped gradients equal those of copies."""
    from goldbull_np.optim.clip import clip_gradients_
    gb.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 3))
    ps = list(model.parameters())
    opt = gb.optim.AdamW(ps, lr=1e-3)
    assert opt.gradient_arrays() == []  # no gradients yet
    opt.zero_grad(set_to_none=False)
    rng = np.random.default_rng(1)
    for p in ps:
        p.grad[...] = rng.standard_normal(p.shape) * 3
    runs = opt.gradient_arrays()
    assert len(runs) == 1 and runs[0] is not None and runs[0].size == sum(p.grad.size for p in ps)
    assert np.shares_memory(runs[0], opt.flat_gradient)
    ps[1].grad = ps[1].grad.copy()  # a gradient outside the buffer splits the run and stands alone
    assert [r.size for r in opt.gradient_arrays()] == [ps[0].grad.size, ps[1].grad.size,
                                                      ps[2].grad.size + ps[3].grad.size]
    opt.zero_grad(set_to_none=False)
    for p in ps:
        p.grad[...] = rng.standard_normal(p.shape) * 3
    copies = params_with_grads(*[p.grad.copy() for p in ps])
    assert clip_gradients_(opt.gradient_arrays(), 1.0) == pytest.approx(nn.utils.clip_grad_norm_(copies, 1.0),
                                                                        rel=1e-12)
    for p, c in zip(ps, copies):
        np.testing.assert_allclose(p.grad, c.grad, rtol=1e-6)
    assert gb.optim.SGD(ps, lr=0.1).flat_gradient is None


@pytest.mark.parametrize("set_to_none", [True, False])
def test_clip_grad_norm_of_model_parameters_is_one_call_over_the_flat_buffer(set_to_none, monkeypatch):
    """clip_grad_norm_(model.parameters()) recognises the gradients as the fused AdamW buffer's views (by
    identity) and clips the buffer's slices that hold exactly them; a subset of the parameters clips only
    theirs; the norm and the clipped gradients equal those of separate copies."""
    from goldbull_np.optim import clip as clip_mod
    gb.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 3))
    ps = list(model.parameters())
    opt = gb.optim.AdamW(ps, lr=1e-3)
    x = gb.tensor(np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32) * 10)
    for subset in (range(len(ps)), [0, 1, 3]):
        opt.zero_grad(set_to_none=set_to_none)
        (model(x) ** 2).sum().backward()
        chosen = [ps[i] for i in subset]
        assert all(p.grad.base is opt.flat_gradient for p in ps)
        copies = params_with_grads(*[p.grad.copy() for p in chosen])
        chosen_ids = {id(p) for p in chosen}
        untouched = {id(p): p.grad.copy() for p in ps if id(p) not in chosen_ids}
        calls = []
        real = clip_mod.sum_squares_f64
        monkeypatch.setattr(clip_mod, "sum_squares_f64", lambda arrays: calls.append(len(arrays)) or real(arrays))
        norm = nn.utils.clip_grad_norm_(iter(chosen), 1.0)
        monkeypatch.setattr(clip_mod, "sum_squares_f64", real)
        assert calls == [1 if len(chosen) == len(ps) else 2]  # one slice per run of consecutive parameters
        assert norm == pytest.approx(nn.utils.clip_grad_norm_(copies, 1.0), rel=1e-12) and norm > 1
        for p, c in zip(chosen, copies):
            np.testing.assert_allclose(p.grad, c.grad, rtol=1e-6)
        for p in ps:
            if id(p) in untouched:
                np.testing.assert_array_equal(p.grad, untouched[id(p)])
    # a gradient outside the buffer: every array on its own, as before
    ps[0].grad = ps[0].grad.copy()
    from goldbull_np.optim.adam import coalesce_flat_gradients
    assert len(coalesce_flat_gradients([p.grad for p in ps])) == len(ps)


def test_float16_grads_give_the_float64_norm_and_stay_float16():
    """No kernel backend has a float16 path but the NumPy reference's sum_squares: the norm is still
    accumulated in float64, and clipping scales the float16 gradient in place."""
    p = nn.Parameter(np.zeros(300, np.float16))
    p.grad = (np.arange(300) % 7 - 3).astype(np.float16) * np.float16(100)
    expected = math.sqrt(float(np.sum(p.grad.astype(np.float64) ** 2)))
    assert nn.utils.clip_grad_norm_([p], 1.0) == pytest.approx(expected, rel=1e-12)
    assert p.grad.dtype == np.float16
    assert math.sqrt(float(np.sum(p.grad.astype(np.float64) ** 2))) == pytest.approx(1.0, rel=1e-2)
