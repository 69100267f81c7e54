"""The conv2d, pooling and batch-norm kernels: every fast backend that registers them equals the
NumPy reference (contiguous and awkward shapes: stride, padding incl. asymmetric, dilation, groups,
depthwise, 1x1, odd sizes), on every C ISA tier; bad inputs raise before C."""
import numpy as np
import pytest

import goldbull_np.kernels as K
from goldbull_np.kernels import reference as ref
from kernels_helpers import FAST, assert_all_close, backend_module, rand

CONV_FAST = [(b, dt) for b, dt in FAST if b.startswith("c")]  # numba defines no conv kernels

# (B, C, H, W, OC, KH, KW, stride, padding, dilation, groups)
CONV_CASES = [
    (2, 3, 7, 6, 5, 3, 3, 1, 1, 1, 1),
    (2, 4, 9, 8, 6, 3, 3, 2, 1, 1, 2),
    (1, 6, 5, 7, 6, 3, 3, 1, 1, 1, 6),        # depthwise
    (3, 5, 6, 6, 4, 1, 1, 1, 0, 1, 1),        # 1x1 (the direct path)
    (2, 4, 6, 6, 8, 1, 1, 2, 0, 1, 1),        # strided 1x1
    (2, 2, 11, 9, 3, 5, 3, (2, 3), (2, 1), (1, 2), 1),
    (2, 4, 6, 5, 4, 2, 2, 1, (0, 1, 0, 1), 1, 1),   # "same" for an even kernel: asymmetric pads
    (1, 8, 13, 13, 16, 3, 3, 1, 1, 1, 4),
    (2, 6, 8, 8, 12, 3, 3, 2, 1, 1, 6),       # groups == C with a channel multiplier
    (4, 3, 16, 16, 16, 3, 3, 1, 1, 1, 1),     # above the parallel threshold
]


@pytest.mark.parametrize("backend,dtype", CONV_FAST)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d(backend, dtype, case):
    mod = backend_module(backend)
    B, C, H, W, OC, KH, KW, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, w = rand(rng, (B, C, H, W), dtype), rand(rng, (OC, C // groups, KH, KW), dtype)
    b = rand(rng, (OC,), dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = ref.conv2d_forward(x, w, b, **kw)
    assert_all_close(mod.conv2d_forward(x, w, b, **kw), y, dtype, "forward", scale=10)
    assert_all_close(mod.conv2d_forward(x, w, None, **kw), ref.conv2d_forward(x, w, None, **kw), dtype, "no bias", 10)
    g = rand(rng, y.shape, dtype)
    for need in ((True, True, True), (True, False, False), (False, True, False), (False, False, True)):
        nk = dict(need_dx=need[0], need_dweight=need[1], need_dbias=need[2])
        assert_all_close(mod.conv2d_backward(g, x, w, **kw, **nk), ref.conv2d_backward(g, x, w, **kw, **nk),
                         dtype, f"backward {need}", scale=30)


@pytest.mark.parametrize("backend,dtype", CONV_FAST)
@pytest.mark.parametrize("kernel,stride,padding,dilation", [(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 2), ((3, 2), (1, 2), (1, 0), 1)])
def test_max_pool2d(backend, dtype, kernel, stride, padding, dilation):
    mod = backend_module(backend)
    rng = np.random.default_rng(1)
    x = rand(rng, (2, 3, 9, 8), dtype)
    out, idx = mod.max_pool2d_forward(x, kernel, stride, padding, dilation)
    rout, ridx = ref.max_pool2d_forward(x, kernel, stride, padding, dilation)
    assert_all_close(out, rout, dtype, "out")
    np.testing.assert_array_equal(idx, ridx)
    g = rand(rng, out.shape, dtype)
    assert_all_close(mod.max_pool2d_backward(g, idx, x.shape), ref.max_pool2d_backward(g, ridx, x.shape), dtype)


@pytest.mark.parametrize("backend,dtype", CONV_FAST)
@pytest.mark.parametrize("shape,affine", [((4, 3, 10), True), ((2, 5, 1), False), ((8, 16, 64), True)])
def test_batch_norm(backend, dtype, shape, affine):
    mod = backend_module(backend)
    rng = np.random.default_rng(2)
    x = rand(rng, shape, dtype) * 3 + 1
    w, b = (rand(rng, shape[1:2], dtype), rand(rng, shape[1:2], dtype)) if affine else (None, None)
    want = ref.batch_norm_forward(x, w, b, 1e-5)
    assert_all_close(mod.batch_norm_forward(x, w, b, 1e-5), want, dtype, "forward", scale=10)
    g = rand(rng, shape, dtype)
    assert_all_close(mod.batch_norm_backward(g, x, w, want[1], want[2], affine),
                     ref.batch_norm_backward(g, x, w, want[1], want[2], affine), dtype, "backward", scale=10)


def test_auto_resolves_conv_to_c_when_built():
    from kernels_helpers import c_available
    if not c_available():
        pytest.skip("C extension not built")
    with K.use("auto"):
        for name in ("conv2d_forward", "conv2d_backward", "max_pool2d_forward", "batch_norm_forward"):
            assert K.resolve_backend(name, np.float32) == "c"
        assert K.resolve_backend("avg_pool2d_forward", np.float32) == "c"
        assert K.resolve_backend("conv2d_forward", np.float64) == "numpy"


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_bad_inputs_raise(backend):
    mod = backend_module(backend)
    x = np.zeros((1, 4, 5, 5), np.float32)
    w = np.zeros((6, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        mod.conv2d_forward(x[:, :, :2, :2], w)
    with pytest.raises(ValueError, match="groups"):
        mod.conv2d_forward(x, w, groups=3)
    with pytest.raises(ValueError, match="4-D"):
        mod.conv2d_forward(x[0], w)
    with pytest.raises(ValueError, match="stride"):
        mod.conv2d_forward(x, w, stride=0)
    with pytest.raises(ValueError, match="bias"):
        mod.conv2d_forward(x, w, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="padding"):
        mod.max_pool2d_forward(x, 2, 2, 2)
    with pytest.raises(ValueError):
        mod.max_pool2d_backward(np.zeros((1, 4, 2, 2), np.float32), np.full((1, 4, 2, 2), 99, np.int64), x.shape)
    if backend == "c":
        with pytest.raises(TypeError):
            mod.conv2d_forward(x.astype(np.float64), w)
        with pytest.raises(ValueError, match="contiguous"):
            mod.conv2d_forward(np.asfortranarray(x), w)
        with pytest.raises(ValueError, match="contiguous"):
            mod.batch_norm_forward(x.reshape(1, 4, 25).transpose(0, 1, 2)[:, :, ::2], None, None, 1e-5)
