"""conv2d / pooling / batch norm / group norm through autograd: forward against the NumPy reference,
gradients against float64 central differences on every backend (hypothesis draws stride, padding,
dilation, groups, odd sizes and 1x1 kernels), and against torch when it is importable."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import goldbull_np as gb
import goldbull_np.kernels as K
from goldbull_np import nn
from goldbull_np.nn import functional as F

BACKENDS = ["numpy", "c"]  # "c" is float32: its gradients are checked against float64 differences


def _c_ok():
    try:
        from goldbull_np.kernels import c_backend
        c_backend.load()
        return True
    except ImportError:
        return False


def numgrad(f, arrays, i, eps=1e-6):
    """Central differences of the float64 scalar f(*arrays) with respect to arrays[i]."""
    a = arrays[i]
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = a[idx]
        a[idx] = old + eps
        hi = f(*arrays)
        a[idx] = old - eps
        lo = f(*arrays)
        a[idx] = old
        g[idx] = (hi - lo) / (2 * eps)
    return g


def check_grads(backend, op, arrays, seed=0):
    """op(*tensors) -> Tensor. Backward of sum(op * gy) under `backend` (float32 for c) against float64
    central differences of the same op run on the reference."""
    if backend == "c" and not _c_ok():
        pytest.skip("C extension not built")
    rng = np.random.default_rng(seed)
    dtype = np.float32 if backend == "c" else np.float64
    with K.use("numpy"):
        y64 = op(*[gb.Tensor(a) for a in arrays]).data
    gy = rng.standard_normal(y64.shape)

    def f(*arrs):
        with K.use("numpy"), gb.no_grad():
            return float((op(*[gb.Tensor(a) for a in arrs]).data * gy).sum())

    with K.use(backend):
        ts = [gb.Tensor(a.astype(dtype)).requires_grad_() for a in arrays]
        y = op(*ts)
        assert y.dtype == dtype
        np.testing.assert_allclose(y.data, y64, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-4)
        (y * gb.Tensor(gy.astype(dtype))).sum().backward()
    for i, t in enumerate(ts):
        want = numgrad(f, [a.copy() for a in arrays], i)
        tol = dict(rtol=2e-3, atol=2e-3) if dtype == np.float32 else dict(rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(t.grad, want, **tol, err_msg=f"input {i}")


conv_cfg = st.fixed_dictionaries(dict(
    B=st.integers(1, 2), Cg=st.integers(1, 3), OCg=st.integers(1, 3), G=st.sampled_from([1, 2]),
    H=st.integers(1, 7), W=st.integers(1, 6), KH=st.sampled_from([1, 2, 3]), KW=st.sampled_from([1, 3]),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 3)), pad=st.tuples(st.integers(0, 2), st.integers(0, 1)),
    dil=st.tuples(st.integers(1, 2), st.integers(1, 2)), bias=st.booleans()))


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=12, deadline=None)
@given(cfg=conv_cfg)
def test_conv2d_grad(backend, cfg):
    c = cfg
    H = max(c["H"], c["dil"][0] * (c["KH"] - 1) + 1 - 2 * c["pad"][0])
    W = max(c["W"], c["dil"][1] * (c["KW"] - 1) + 1 - 2 * c["pad"][1])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((c["B"], c["Cg"] * c["G"], H, W))
    w = rng.standard_normal((c["OCg"] * c["G"], c["Cg"], c["KH"], c["KW"]))
    arrays = [x, w] + ([rng.standard_normal(c["OCg"] * c["G"])] if c["bias"] else [])
    check_grads(backend, lambda *t: F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None, c["stride"], c["pad"],
                                             c["dil"], c["G"]), arrays)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [2, 3])
def test_conv2d_same_padding_and_depthwise_grad(backend, k):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 1, k, k))
    check_grads(backend, lambda a, b: F.conv2d(a, b, padding="same", groups=4), [x, w])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (1, 2), (1, 1))])
def test_max_pool2d_grad(backend, kernel, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0  # distinct values: no ties
    check_grads(backend, lambda t: F.max_pool2d(t, kernel, stride, padding), [x])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pools_grad(backend, include_pad):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    check_grads(backend, lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=include_pad), [x])
    check_grads(backend, lambda t: F.adaptive_avg_pool2d(t, (3, 4)), [x])
    check_grads(backend, lambda t: F.adaptive_avg_pool2d(t, 1), [x])


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_and_group_norm_grad(backend):
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((3, 4, 3, 2)) * 2 + 1, rng.standard_normal(4), rng.standard_normal(4)
    check_grads(backend, lambda t, u, v: F.batch_norm(t, None, None, u, v, training=True), [x, w, b])
    check_grads(backend, lambda t: F.batch_norm(t, None, None, training=True), [x])
    check_grads(backend, lambda t, u, v: F.group_norm(t, 2, u, v), [x, w, b])
    check_grads(backend, lambda t: F.group_norm(t, 4), [x])




def test_batch_norm_running_stats_and_eval():
    bn = nn.BatchNorm2d(3, momentum=0.5)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32) * 2 + 3
    bn(gb.Tensor(x))
    m, v = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.data, 0.5 * m, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, 0.5 + 0.5 * v, rtol=1e-4)
    bn.eval()
    y = bn(gb.Tensor(x)).data
    want = (x - bn.running_mean.data[:, None, None]) / np.sqrt(bn.running_var.data[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}


def test_modules_shapes_and_errors():
    x = gb.Tensor(np.zeros((2, 3, 8, 8), np.float32))
    assert nn.Conv2d(3, 6, 3, padding=1)(x).shape == (2, 6, 8, 8)
    assert nn.Conv2d(3, 6, 3, stride=2, padding=1)(x).shape == (2, 6, 4, 4)
    assert nn.Conv2d(3, 3, 3, padding="same", groups=3, bias=False)(x).shape == (2, 3, 8, 8)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.AvgPool2d(3, 1, 1)(x).shape == (2, 3, 8, 8)
    assert nn.AdaptiveAvgPool2d((1, 1))(x).shape == (2, 3, 1, 1)
    assert nn.Flatten()(x).shape == (2, 192)
    assert nn.GroupNorm(1, 3)(x).shape == x.shape
    with pytest.raises(ValueError, match="divisible"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="4-D"):
        F.conv2d(gb.Tensor(np.zeros((3, 8, 8), np.float32)), nn.Conv2d(3, 6, 3).weight)
    with pytest.raises(ValueError, match="same"):
        F.conv2d(x, nn.Conv2d(3, 6, 3).weight, padding="same", stride=2)
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm2d(3)(gb.Tensor(np.zeros((1, 3, 1, 1), np.float32)))
    with pytest.raises(ValueError, match="smaller"):
        nn.Conv2d(3, 6, 5)(gb.Tensor(np.zeros((1, 3, 2, 2), np.float32)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_against_torch(backend):
    torch = pytest.importorskip("torch")
    if backend == "c" and not _c_ok():
        pytest.skip("C extension not built")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    with K.use(backend):
        tx, tw, tb = (gb.Tensor(a).requires_grad_() for a in (x, w, b))
        y = F.max_pool2d(F.conv2d(tx, tw, tb, stride=2, padding=1, dilation=1, groups=2), 2)
        y.sum().backward()
    X, Wt, Bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    Y = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(X, Wt, Bt, 2, 1, 1, 2), 2)
    Y.sum().backward()
    np.testing.assert_allclose(y.data, Y.detach().numpy(), atol=1e-5, rtol=1e-5)
    for ours, theirs in ((tx, X), (tw, Wt), (tb, Bt)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), atol=1e-5, rtol=1e-5)
