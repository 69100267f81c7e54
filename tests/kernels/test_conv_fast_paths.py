"""conv2d's AVX-512 implicit-GEMM path (csrc/conv_avx512.c) on shapes that reach each of its branches,
against the NumPy reference, at every C ISA tier (the lower tiers run conv.c's portable paths on the
same shapes): stride 2 read at unit stride from parity-split planes, 16k-wide stride-1 rows read in place from the padded planes, 8-wide rows from shifted copies of the source rows, batches split into chunks of several images, output grids whose pixel count is or is
not a multiple of 16 (a 16-lane vector inside one image, or across two), stride-1 rows of 16, 8 or 4
outputs (vector copies) and other grids (gathers), reductions longer than one 640-step block, output
channels that do not fill the 8-row tile, dinp as the transposed convolution (stride 1, at least 8
input channels, with groups, with pads larger than the dilated kernel) and as GEMM + col2im
(stride > 1, few input channels), dweight from 16-channel-multiple and few-channel patches; on the lower
tiers also conv.c's Winograd F(2x2, 3x3) shapes (several images a GEMM, odd sizes, pads 0-3, groups), and
the large stride-1 3x3 shapes that the AVX-512 tier hands to Winograd (all products, or dweight alone)."""
import numpy as np
import pytest

from goldbull_np.kernels import reference as ref
from kernels_helpers import FAST, assert_all_close, backend_module, rand

CONV_C = [b for b, _ in FAST if b.startswith("c")]

# (B, C, H, W, OC, KH, KW, stride, padding, dilation, groups)
FAST_CASES = [
    (5, 16, 16, 16, 24, 3, 3, 1, 1, 1, 1),     # 16-wide rows (B read in place), OC not a multiple of 8
    (2, 16, 16, 16, 8, 3, 3, 1, 2, 2, 1),      # in place, dilated
    (2, 8, 31, 16, 8, 3, 3, (2, 1), 1, 1, 1),  # in place, row stride 2
    (2, 80, 16, 16, 8, 3, 3, 1, 1, 1, 1),      # in place, K = 720: two reduction blocks
    (2, 32, 16, 16, 16, 1, 1, 1, 0, 1, 1),     # in place on x itself (1x1)
    (6, 32, 8, 8, 16, 3, 3, 1, 1, 1, 1),       # 8-wide rows from shifted copies of the padded planes
    (3, 16, 10, 10, 16, 3, 3, 1, 0, 1, 1),     # 8-wide rows from shifted copies of x itself (no pad)
    (2, 16, 12, 12, 8, 3, 3, 1, 0, 2, 1),      # 8-wide rows, dilated: column shifts 0, 2, 4
    (3, 16, 16, 16, 16, 3, 3, 2, 1, 1, 1),     # 8-wide rows from shifted copies of the parity planes
    (2, 8, 4, 16, 8, 1, 9, 1, 0, 1, 1),        # 8-wide rows with 9 column shifts: patch panels instead
    (2, 8, 15, 6, 8, 3, 1, (2, 1), 1, 1, 1),   # 8-wide rows, row stride 2: patch panels instead
    (7, 16, 8, 8, 32, 3, 3, 2, 1, 1, 1),       # stride 2 (phase planes): P = 16, dinp by phases
    (3, 16, 32, 32, 16, 3, 3, 2, 1, 1, 1),     # stride 2 with 16-wide output rows: in place on phase planes
    (2, 16, 13, 13, 8, 3, 3, 2, 2, 2, 1),      # stride 2, dilation 2
    (3, 8, 15, 14, 8, 1, 1, 2, 0, 1, 1),       # 1x1 stride 2 read from x in place (gathers)
    (2, 8, 9, 9, 8, 1, 1, 2, 1, 1, 1),         # 1x1 stride 2 with a pad: one phase plane read
    (5, 16, 4, 4, 16, 3, 3, 1, 1, 1, 1),       # 4x4 grids: four rows per 16-lane vector
    (3, 80, 7, 7, 12, 3, 3, 1, 1, 1, 1),       # K = 720 > 640 (two reduction blocks), P = 49
    (4, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1),      # the stem: 3 input channels
    (3, 24, 9, 11, 20, 3, 3, 1, 2, 2, 2),      # dilation 2, groups, odd sizes
    (4, 16, 10, 10, 16, 1, 1, 1, 1, 1, 1),     # 1x1 with pad 1 > dilated kernel - 1: negative transposed pads
    (3, 32, 12, 12, 48, 1, 1, 1, 0, 1, 1),     # 1x1 reading x in place
    (3, 16, 13, 13, 8, 1, 1, 2, 0, 1, 1),      # strided 1x1 in place (the grid ends inside the image)
    (2, 8, 9, 7, 9, 2, 3, (1, 2), (0, 1, 1, 0), 1, 1),  # asymmetric pads, stride (1, 2)
    (2, 12, 6, 6, 24, 3, 3, 1, 1, 1, 3),       # groups with 4 input channels each: dinp by col2im
    # conv.c (the lower tiers): a stride-1 dinp with >= 16 input channels a group is the convolution of
    # dout with the flipped, transposed weights; larger pads and fewer channels keep col2im
    (2, 32, 9, 11, 20, 3, 3, 1, 2, 2, 2),      # dinp as a convolution: groups of 16, dilation 2, odd sizes
    (2, 16, 9, 7, 9, 2, 3, 1, (0, 1, 1, 0), 1, 1),  # ... asymmetric pads, an even kernel height
    (2, 16, 8, 8, 8, 3, 3, 1, 3, 1, 1),        # pad 3 > kernel - 1: dinp by col2im
    # conv.c: stride-1 undilated 3x3 convolutions run Winograd F(2x2, 3x3), several images' tiles a GEMM:
    # the forward with >= 8 channels in and out a group, dinp (the transposed convolution) with >= 16 in,
    # dweight with >= 3 in
    (9, 16, 8, 8, 24, 3, 3, 1, 1, 1, 1),       # 16 tiles an image: 8 images a GEMM, then a batch of 1
    (3, 32, 9, 11, 16, 3, 3, 1, 1, 1, 1),      # odd output sizes: the last tile row and column dropped
    (2, 16, 7, 5, 20, 3, 3, 1, 2, 1, 1),       # pad 2 (transposed pad 0)
    (2, 16, 6, 9, 16, 3, 3, 1, 3, 1, 1),       # pad 3: forward and dweight by Winograd, dinp by col2im
    (2, 16, 5, 6, 16, 3, 3, 1, (0, 2, 1, 0), 1, 1),  # asymmetric pads
    (5, 16, 1, 1, 16, 3, 3, 1, 1, 1, 1),       # 1x1 images: one tile, three quarters dropped
    (3, 32, 6, 7, 48, 3, 3, 1, 1, 1, 2),       # groups of 16 and 24 channels: one (image, group) a GEMM
    (2, 16, 16, 16, 16, 3, 3, 1, 0, 1, 1),     # no pad: 14x14 outputs
    (2, 16, 9, 8, 40, 3, 3, 1, 1, 1, 1),       # odd OH, even OW: dout transposed by one pack, a zero row added
    (3, 8, 10, 10, 12, 3, 3, 1, 1, 1, 1),      # 8 inputs: forward and dweight by Winograd, dinp by col2im
    (4, 3, 12, 12, 16, 3, 3, 1, 1, 1, 1),      # a stem's 3 inputs: dweight only by Winograd
    (2, 16, 35, 34, 16, 3, 3, 1, 1, 1, 1),     # 18 x 17 tiles, odd OH: bands of 16 tile rows and 2 (3 output rows)
    (2, 16, 43, 45, 20, 3, 3, 1, (0, 1, 2, 0), 1, 1),  # 21 x 23 tiles, odd OW: bands of 12 and 9 tile rows
    # the AVX-512 tier hands stride-1 3x3 products to conv.c's Winograd where it measured faster (images of
    # 16+ tiles, 256+ tiles a batch): all three with 64+ channels, dweight alone with 32+ (backward split)
    (4, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1),     # forward, dinp and dweight by Winograd on every tier
    (4, 32, 16, 15, 48, 3, 3, 1, 1, 1, 1),     # AVX-512: dweight by Winograd, dinp and dbias by the implicit GEMM
    (16, 64, 8, 8, 64, 3, 3, 1, (1, 0, 1, 1), 1, 1),  # 16 tiles an image (7x8 outputs), 256 in the batch
    # conv.c: fewer than 64 output pixels an image: dweight over several images' patches a GEMM
    (9, 24, 8, 8, 20, 3, 3, 2, 1, 1, 1),       # P = 16: 4 images a GEMM, then 1 (K = 216, not a panel multiple)
    (5, 8, 7, 5, 8, 2, 2, 1, 0, 1, 1),         # P = 24: 3 images a GEMM
    (2, 8, 3, 40, 8, 1, 35, 1, 1, 1, 1),       # 35 kernel columns: past the tabulated column ranges
    (2, 8, 3, 41, 8, 1, 35, 2, 1, 1, 1),       # ... strided: taps from the zero-padded channel copy
]


@pytest.mark.parametrize("backend", CONV_C)
@pytest.mark.parametrize("case", FAST_CASES)
def test_conv2d_fast_paths(backend, case):
    mod = backend_module(backend)
    B, C, H, W, OC, KH, KW, stride, padding, dilation, groups = case
    rng = np.random.default_rng(3)
    x, w = rand(rng, (B, C, H, W), np.float32), rand(rng, (OC, C // groups, KH, KW), np.float32)
    b = rand(rng, (OC,), np.float32)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = ref.conv2d_forward(x, w, b, **kw)
    assert_all_close(mod.conv2d_forward(x, w, b, **kw), y, np.float32, "forward", scale=30)
    g = rand(rng, y.shape, np.float32)
    for need in ((True, True, True), (True, False, False), (False, True, False)):
        nk = dict(need_dx=need[0], need_dweight=need[1], need_dbias=need[2])
        assert_all_close(mod.conv2d_backward(g, x, w, **kw, **nk), ref.conv2d_backward(g, x, w, **kw, **nk),
                         np.float32, f"backward {need}", scale=100)


@pytest.mark.parametrize("backend", CONV_C)
def test_conv2d_thread_counts_agree(backend):
    """The batch split (1 or 2 threads) changes no result beyond rounding; on the AVX-512 path not at
    all (every output is one thread's, dweight sums fixed slices of the batch in a fixed order)."""
    mod = backend_module(backend)
    rng = np.random.default_rng(4)
    x, w = rand(rng, (9, 16, 8, 8), np.float32), rand(rng, (32, 16, 3, 3), np.float32)
    g = rand(rng, (9, 32, 8, 8), np.float32)
    outs = []
    try:
        for nt in (1, 2):
            mod.set_num_threads(nt)
            outs.append((mod.conv2d_forward(x, w, None, padding=1),) + mod.conv2d_backward(g, x, w, padding=1))
    finally:
        mod.set_num_threads(mod.runtime_info()["omp_max_threads"])
    for a, b in zip(*outs):
        if mod.isa() == "avx512":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def _random_cases(n, seed=5):
    """Convolutions with >= 8 channels per group (the transposed and phase dinp paths) drawn at random:
    kernel 1-4 per axis, stride 1-3, pads 0-3 (also above the dilated kernel), dilation 1-2, groups 1-2."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        G = int(rng.integers(1, 3))
        KH, KW = (int(v) for v in rng.integers(1, 5, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        dh, dw = (int(v) for v in rng.integers(1, 3, 2))
        pt, pb, pl, pr = (int(v) for v in rng.integers(0, 4, 4))
        H, W = (int(v) for v in rng.integers(3, 14, 2))
        if H + pt + pb < dh * (KH - 1) + 1 or W + pl + pr < dw * (KW - 1) + 1:
            continue
        cases.append((int(rng.integers(1, 5)), G * int(rng.integers(8, 21)), H, W, G * int(rng.integers(1, 13)),
                      KH, KW, (sh, sw), (pt, pb, pl, pr), (dh, dw), G))
    return cases


@pytest.mark.parametrize("backend", CONV_C)
@pytest.mark.parametrize("case", _random_cases(16))
def test_conv2d_fast_paths_random(backend, case):
    test_conv2d_fast_paths(backend, case)


def _winograd_cases(n, seed=7):
    """Stride-1 undilated 3x3 convolutions drawn at random for conv.c's Winograd F(2x2, 3x3) on the lower
    tiers (forward with >= 8 channels in and out a group, dweight with >= 3 in, dinp with >= 16 in):
    3-24 input and 8-24 output channels a group, sizes 1-24, pads 0-3 per side, batches 1-10 (so the
    images a GEMM and the thread split vary), groups 1-2."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        G = int(rng.integers(1, 3))
        pt, pb, pl, pr = (int(v) for v in rng.integers(0, 4, 4))
        H, W = (int(v) for v in rng.integers(1, 25, 2))
        if H + pt + pb < 3 or W + pl + pr < 3:
            continue
        cases.append((int(rng.integers(1, 11)), G * int(rng.integers(3, 25)), H, W, G * int(rng.integers(8, 25)),
                      3, 3, 1, (pt, pb, pl, pr), 1, G))
    return cases


@pytest.mark.parametrize("backend", CONV_C)
@pytest.mark.parametrize("case", _winograd_cases(16))
def test_conv2d_winograd_random(backend, case):
    test_conv2d_fast_paths(backend, case)


@pytest.mark.parametrize("backend", CONV_C)
def test_depthwise_thread_counts_agree_exactly(backend):
    """Depthwise convolutions (conv.c, every tier) schedule planes / images dynamically; each output is one
    thread's and dweight sums per-image partials in image order, so 1 and 2 threads give the same bits."""
    mod = backend_module(backend)
    rng = np.random.default_rng(6)
    x, w = rand(rng, (12, 32, 16, 16), np.float32), rand(rng, (32, 1, 3, 3), np.float32)
    g = rand(rng, (12, 32, 16, 16), np.float32)
    outs = []
    try:
        for nt in (1, 2):
            mod.set_num_threads(nt)
            outs.append((mod.conv2d_forward(x, w, None, padding=1, groups=32),)
                        + mod.conv2d_backward(g, x, w, padding=1, groups=32))
    finally:
        mod.set_num_threads(mod.runtime_info()["omp_max_threads"])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    want = ref.conv2d_backward(g, x, w, padding=1, groups=32)
    assert_all_close(outs[0][1:], want, np.float32, "backward", scale=100)
