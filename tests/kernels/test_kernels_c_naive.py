"""The fast C kernels agree with the naive C references kept beside them."""
import os
import sys

import numpy as np
import pytest

from kernels_helpers import c_available, c_lower_isas, c_runs_isa, run_script

pytestmark = pytest.mark.skipif(not c_available(), reason="C extension not built")


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 19, 5), (61, 33, 300), (130, 70, 17)])
@pytest.mark.parametrize("ta,tb", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_sgemm_matches_naive(M, N, K, ta, tb):
    _check_sgemm_against_naive(M, N, K, ta, tb, seed=M * N + K)


def _check_sgemm_against_naive(M, N, K, ta, tb, seed):
    """sgemm (with the bias epilogue) equals sgemm_naive on op(a) (M,K) @ op(b) (K,N)."""
    from goldbull_np.kernels import c_backend as cb
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((K, M) if ta else (M, K), np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N), np.float32)
    bias = rng.standard_normal(N, np.float32)
    fast, naive = np.empty((M, N), np.float32), np.empty((M, N), np.float32)
    p = cb._p
    assert cb.lib.sgemm(p(fast), p(a), p(b), p(bias), ta, tb, M, N, K, 1, 0, 0, 0) == 0
    cb.lib.sgemm_naive(p(naive), p(a), p(b), p(bias), ta, tb, M, N, K)
    np.testing.assert_allclose(fast, naive, rtol=1e-4, atol=1e-4 * np.sqrt(K))


def _on_thread_counts(counts, run):
    """[run() on the C kernels at each thread count in `counts`], then the previous count again."""
    from goldbull_np import kernels
    from goldbull_np.kernels import c_backend as cb
    before = cb.load().gb_omp_max_threads()
    try:
        results = []
        for nt in counts:
            kernels.set_num_threads(nt)
            results.append(run())
        return results
    finally:
        kernels.set_num_threads(before)


@pytest.fixture
def two_threads():
    """The C kernels on two threads for the test, then the previous count again."""
    from goldbull_np import kernels
    from goldbull_np.kernels import c_backend as cb
    before = cb.load().gb_omp_max_threads()
    kernels.set_num_threads(2)
    yield
    kernels.set_num_threads(before)


def test_layernorm_matches_naive():
    from goldbull_np.kernels import c_backend as cb
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 130), np.float32) + 3
    w, b = rng.standard_normal(130, np.float32), rng.standard_normal(130, np.float32)
    fast = cb.layer_norm_forward(x, w, b, 1e-5)
    naive = tuple(np.empty_like(a) for a in fast)
    cb.lib.layernorm_forward_naive(*(cb._p(a) for a in naive), cb._p(x), cb._p(w), cb._p(b), 1e-5, 37, 130)
    for f, n in zip(fast, naive):
        np.testing.assert_allclose(f, n, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("isa", ["best"] + c_lower_isas())
@pytest.mark.parametrize("C", [2051, 5000])
def test_norms_with_streaming_stores_match_the_reference(C, isa, two_threads):
    """At >= 2^22 elements (csrc/norm.c NORM_STREAM_MIN_ELEMS) LayerNorm/RMSNorm write out and dx
    row by row with streaming stores when C fits the row buffer (2051: odd, so rows start at every
    alignment and the unaligned heads and tails run); C = 5000 exceeds it and takes the plain path.
    Every ISA tier (the base tier copies the row buffer without streaming stores)."""
    from goldbull_np.kernels import c_backend as cb
    from goldbull_np.kernels import reference as ref
    if isa != "best":
        assert cb.set_isa(isa) == isa
    rng = np.random.default_rng(C)
    N = -(-(1 << 22) // C)
    x = rng.standard_normal((N, C), np.float32) + 2
    w, b, dy = rng.standard_normal(C, np.float32), rng.standard_normal(C, np.float32), rng.standard_normal((N, C), np.float32)
    y, mean, rstd = cb.layer_norm_forward(x, w, b, 1e-5)
    for got, want in zip((y, mean, rstd), ref.layer_norm_forward(x, w, b, 1e-5)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for got, want in zip(cb.layer_norm_backward(dy, x, w, mean, rstd, True),
                         ref.layer_norm_backward(dy, x, w, mean, rstd, True)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(N))
    y, rstd = cb.rms_norm_forward(x, w, 1e-6)
    for got, want in zip((y, rstd), ref.rms_norm_forward(x, w, 1e-6)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for got, want in zip(cb.rms_norm_backward(dy, x, w, rstd), ref.rms_norm_backward(dy, x, w, rstd)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(N))


@pytest.mark.parametrize("M,N,K", [(610, 33, 520), (200, 130, 520), (40, 2100, 400), (61, 300, 800)])
@pytest.mark.parametrize("ta,tb", [(0, 1), (1, 0)])
def test_sgemm_two_threads_both_splits_match_naive(M, N, K, ta, tb, two_threads):
    """Two threads (every shape is above GB_PAR_MIN_MACS): small op(B) takes the per-thread-packing
    path (no barriers), the last shape (K*N above one KCxNC block, N above NC) the shared-packing
    path; both equal the reference. The last is split over N (N >= 4M) with two k-blocks and a short MR
    panel of a transposed A."""
    _check_sgemm_against_naive(M, N, K, ta, tb, seed=M + N + K)


@pytest.mark.skipif(not c_runs_isa("avx2"), reason="the CPU has no AVX2/FMA")
@pytest.mark.parametrize("M,N,K", [(37, 800, 130), (31, 400, 900), (700, 1000, 500), (13, 2100, 50)])
@pytest.mark.parametrize("tb", [0, 1])
@pytest.mark.parametrize("nt", [1, 2])
def test_sgemm_avx2_packed_row_major_a_matches_naive(M, N, K, tb, nt):
    """On the AVX2 tier a row-major A is packed when its block serves many B panels (N >= 768) or rows
    longer than a k-block (N >= 384, K > KC) (csrc/matmul.c pack_rows_of_a): MR tails (M % 6 != 0),
    several k-blocks, the shared-B path (N > NC) and one and two threads equal the reference."""
    from goldbull_np import kernels
    from goldbull_np.kernels import c_backend as cb
    before = cb.load().gb_omp_max_threads()
    assert cb.set_isa("avx2") == "avx2"
    kernels.set_num_threads(nt)
    try:
        _check_sgemm_against_naive(M, N, K, 0, tb, seed=M * 7 + N + K)
    finally:
        kernels.set_num_threads(before)


@pytest.mark.parametrize("M,N,K", [(2000, 300, 384), (1000, 200, 1500), (130, 512, 800), (300, 2100, 900),
                                   (100, 600, 800)])
@pytest.mark.parametrize("ta,tb", [(0, 0), (0, 1), (1, 0)])
def test_sgemm_gives_the_same_bits_at_one_and_two_threads(M, N, K, ta, tb):
    """Row chunks claimed dynamically (one KCxNC block of op(B): the first shape), chunks kept for the
    later blocks by the thread that claimed them in the first (K > KC: the second; the third with M small
    enough for chunks below ROWS_MIN), the shared-B team path (the fourth; the fifth split over N, N >= 4M): each element is one thread's sum, in the one-thread order, so the two-thread
    result has the one-thread result's bits whichever thread took which rows."""
    from goldbull_np.kernels import c_backend as cb
    rng = np.random.default_rng(M + N + K)
    a = rng.standard_normal((K, M) if ta else (M, K), np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N), np.float32)
    outs = _on_thread_counts((1, 2, 2), lambda: cb.matmul(a, b, trans_a=bool(ta), trans_b=bool(tb)).copy())
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2], outs[0])
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
    np.testing.assert_allclose(outs[0], want, rtol=1e-4, atol=1e-4 * np.sqrt(K))


def test_parallel_regions_match_the_reference(two_threads):
    """Shapes above the parallel thresholds (csrc/internal/gb_common.h), so the two-thread splits
    (row blocks, per-thread weight-gradient partials, column-split dbias and embedding gradient,
    head-split attention, in place on a fused qkv too, row-split rotary) run, and agree with the NumPy
    reference."""
    from goldbull_np.kernels import c_backend as cb
    from goldbull_np.kernels import reference as ref
    rng = np.random.default_rng(7)
    f32 = np.float32

    def close(got, want, what, atol=1e-4):
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            if w is not None:
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=atol, err_msg=what)
    x = rng.standard_normal((2100, 130), f32) + 2  # 273,000 elements
    w, b, dy = rng.standard_normal(130, f32), rng.standard_normal(130, f32), rng.standard_normal((2100, 130), f32)
    y, mean, rstd = cb.layer_norm_forward(x, w, b, 1e-5)
    close((y, mean, rstd), ref.layer_norm_forward(x, w, b, 1e-5), "layer_norm_forward")
    close(cb.layer_norm_backward(dy, x, w, mean, rstd, True), ref.layer_norm_backward(dy, x, w, mean, rstd, True),
          "layer_norm_backward", atol=2e-3)
    h = rng.standard_normal(300_000).astype(f32)
    close(cb.gelu_forward(h), ref.gelu_forward(h), "gelu_forward")
    close(cb.gelu_backward(h, h), ref.gelu_backward(h, h), "gelu_backward")
    logits, t = rng.standard_normal((300, 1000), f32), rng.integers(0, 1000, 300)
    losses, lse = cb.cross_entropy_forward(logits, t)
    close((losses, lse), ref.cross_entropy_forward(logits, t), "cross_entropy_forward")
    dl = np.full(300, 1 / 300, f32)
    close(cb.cross_entropy_backward(dl, logits, t, lse), ref.cross_entropy_backward(dl, logits, t, lse),
          "cross_entropy_backward")
    xs, ws, d = rng.standard_normal((2100, 8), f32), rng.standard_normal((520, 8), f32), rng.standard_normal((2100, 520), f32)
    close(cb.linear_backward(d, xs, ws), ref.linear_backward(d, xs, ws), "linear_backward", atol=2e-3)
    q, k, v = (rng.standard_normal((2, 4, 128, 32), f32) for _ in range(3))
    out, lse = cb.attention_forward(q, k, v, 0.2, causal_offset=0)
    close((out, lse), ref.attention_forward(q, k, v, 0.2, causal_offset=0), "attention_forward")
    do = rng.standard_normal(q.shape, f32)
    close(cb.attention_backward(do, q, k, v, out, lse, 0.2, causal_offset=0),
          ref.attention_backward(do, q, k, v, out, lse, 0.2, causal_offset=0), "attention_backward", atol=1e-3)
    ids = rng.integers(0, 50, 2100)  # repeated ids: column-split scatter-add
    close(cb.embedding_backward(d, ids, 50), ref.embedding_backward(d, ids, 50), "embedding_backward", atol=1e-3)
    qkv = rng.standard_normal((2, 128, 4 * 32 + 2 * 2 * 32), f32)  # H=4, Hkv=2, D=32, read in place
    out, lse = cb.attention_qkv_forward(qkv, 4, 2, 0.2)
    close((out, lse), ref.attention_qkv_forward(qkv, 4, 2, 0.2), "attention_qkv_forward")
    dy = rng.standard_normal(out.shape, f32)
    close(cb.attention_qkv_backward(dy, qkv, out, lse, 4, 2, 0.2),
          ref.attention_qkv_backward(dy, qkv, out, lse, 4, 2, 0.2), "attention_qkv_backward", atol=1e-3)
    cos, sin = rng.standard_normal((128, 32), f32), rng.standard_normal((128, 32), f32)  # 65,536 elements
    close(cb.rotary_qkv_forward(qkv, cos, sin, 6), ref.rotary_qkv_forward(qkv, cos, sin, 6), "rotary_qkv_forward")
    close(cb.rotary_qkv_backward(qkv, cos, sin, 6), ref.rotary_qkv_backward(qkv, cos, sin, 6), "rotary_qkv_backward")


@pytest.mark.parametrize("isa", ["best"] + c_lower_isas())
@pytest.mark.parametrize("N,OC", [(769, 65), (1000, 520), (200, 2100), (37, 2100), (5, 3001), (2113, 48)])
def test_linear_dbias_is_the_row_by_row_column_sum_on_one_and_two_threads(N, OC, isa):
    """linear_backward's dbias (csrc/matmul.c dbias_columns) sums each column row by row from row 0
    whatever the blocking (64-column registers over 32-row chunks, 1024-column sections, the thread split in
    16-float lines), so its bits are those of the plain float32 loop on every tier and thread count. The
    shapes cover column tails (65, 3001), sections past 1024 columns, row counts that are not a multiple
    of 32, and the two-thread split (N * OC above the parallel threshold: (1000, 520), and (200, 2100), whose
    1056 columns a thread take a second section)."""
    from goldbull_np.kernels import c_backend as cb
    if isa != "best":
        assert cb.set_isa(isa) == isa
    rng = np.random.default_rng(N + OC)
    dy = rng.standard_normal((N, OC), np.float32)
    x, w = rng.standard_normal((N, 3), np.float32), rng.standard_normal((OC, 3), np.float32)
    want = np.zeros(OC, np.float32)
    for row in dy:
        want += row
    dbs = _on_thread_counts((1, 2), lambda: cb.linear_backward(dy, x, w, need_dx=False, need_dweight=False,
                                                               need_dbias=True)[2])
    for nt, db in zip((1, 2), dbs):
        np.testing.assert_array_equal(db, want, err_msg=f"{nt} thread(s)")


@pytest.mark.parametrize("isa", ["best"] + c_lower_isas())
@pytest.mark.parametrize("N,C,OC", [(769, 3, 65), (1000, 20, 520), (200, 300, 8), (50, 1600, 40), (50, 1600, 500),
                                    (37, 2100, 600)])
def test_linear_dbias_summed_with_the_weight_gradient_has_the_row_by_row_bits(N, C, OC, isa):
    """With the weight gradient, linear_backward sums dbias from the weight gradient's packed dout^T panels
    (csrc/matmul.c sum_packed_rows) instead of a pass over dout, each step added onto the running sums: the bits
    of the dbias-only pass (the plain row-by-row loop, the test above), also when adding into a dbias. The
    shapes take every split: over M (rows claimed per thread), over N (OC = 8 and 40: one thread packs all of
    A, only it sums), and several column blocks of op(B) (C = 1600 on the AVX-512 tier, 2100 on AVX2: A is
    packed again for each block and summed once); 1 and 2 threads, every tier."""
    from goldbull_np.kernels import c_backend as cb
    if isa != "best":
        assert cb.set_isa(isa) == isa
    rng = np.random.default_rng(N + C + OC)
    dy, x = rng.standard_normal((N, OC), np.float32), rng.standard_normal((N, C), np.float32)
    w, before = rng.standard_normal((OC, C), np.float32), rng.standard_normal(OC, np.float32)
    alone = cb.linear_backward(dy, x, w, need_dx=False, need_dweight=False, need_dbias=True)[2]
    added = cb.linear_backward(dy, x, w, need_dx=False, need_dweight=False, dbias_out=before.copy(), accumulate=True)[2]
    def with_weight_gradient():
        fresh = cb.linear_backward(dy, x, w, need_dx=False)
        into = cb.linear_backward(dy, x, w, need_dx=False, dweight_out=np.zeros((OC, C), np.float32),
                                  dbias_out=before.copy(), accumulate=True)
        return fresh[2], into[2], fresh[1]
    for nt, (db, db_added, dw) in zip((1, 2), _on_thread_counts((1, 2), with_weight_gradient)):
        np.testing.assert_array_equal(db, alone, err_msg=f"{nt} thread(s)")
        np.testing.assert_array_equal(db_added, added, err_msg=f"{nt} thread(s), accumulate")
        np.testing.assert_allclose(dw, dy.astype(np.float64).T @ x, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("B,H,Hkv,T", [(3, 3, 3, 70), (7, 2, 1, 64), (1, 5, 5, 130)])
def test_attention_items_spread_over_threads_give_the_one_thread_bits(B, H, Hkv, T):
    """Attention items are claimed dynamically but dealt apart (csrc/attention.c next_item_spread); with item
    counts that do not divide by the team (9, 7, 5 and the forward's query-tile runs) every item still runs
    exactly once, on one thread, in the one-thread order: one and two threads give the same bits, and those
    equal the reference."""
    from goldbull_np.kernels import c_backend as cb
    from goldbull_np.kernels import reference as ref
    rng = np.random.default_rng(B * H + T)
    D = 16
    qkv = rng.standard_normal((B, T, (H + 2 * Hkv) * D), np.float32)
    dy = rng.standard_normal((B, T, H * D), np.float32)
    def forward_backward():
        out, lse = cb.attention_qkv_forward(qkv, H, Hkv, 0.25)
        return out, lse, cb.attention_qkv_backward(dy, qkv, out, lse, H, Hkv, 0.25)
    outs = _on_thread_counts((1, 2), forward_backward)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    want_out, want_lse = ref.attention_qkv_forward(qkv, H, Hkv, 0.25)
    np.testing.assert_allclose(outs[0][0], want_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outs[0][2], ref.attention_qkv_backward(dy, qkv, want_out, want_lse, H, Hkv, 0.25),
                               rtol=1e-4, atol=1e-4)


def test_malloc_keep_freed_is_callable():
    """The mallopt wrapper goldbull_np.runtime.tune_malloc calls (its policy: tests/test_runtime.py)."""
    from goldbull_np.kernels import c_backend as cb
    assert cb.load().gb_malloc_keep_freed(0, 0) in (0, 1)  # zero = leave as is; callable on any libc


def test_thread_team_survives_fork_and_concurrent_callers():
    """The kernels' own thread team (csrc/pool.c): a forked child starts a fresh team, and Python
    threads calling kernels at once (one runs on the team, the others inline) all get right results."""
    code = r'''
import os, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from goldbull_np import kernels
from goldbull_np.kernels import c_backend as cb
kernels.set_num_threads(2)
rng = np.random.default_rng(0)
a, b = rng.standard_normal((600, 200), np.float32), rng.standard_normal((200, 300), np.float32)
want = a.astype(np.float64) @ b
ok = lambda c: np.allclose(c, want, rtol=1e-4, atol=1e-3)
assert ok(cb.matmul(a, b))                      # the parent's team is running
pid = os.fork()
if pid == 0:                                    # the child: no workers until it needs them
    os._exit(0 if all(ok(cb.matmul(a, b)) for _ in range(3)) else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
with ThreadPoolExecutor(4) as ex:
    assert all(ex.map(lambda _: ok(cb.matmul(a, b)), range(40)))
print("OK")
'''
    r = run_script(code, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stderr[-2000:]


@pytest.mark.parametrize("one_cpu", [False, True])
def test_slots_give_the_same_bits_whichever_thread_runs_them(one_cpu):
    """gb_parallel's slots (csrc/pool.c) go to whichever thread claims them first: after an idle gap the
    worker is asleep and the caller may run some slots itself, and with the process confined to one CPU
    (before the team starts, so the worker shares the caller's CPU) the worker rarely gets there first.
    Per-slot partial sums (LayerNorm's weight gradients, reduced by the last slot to finish) must give
    the same bits in every case as with the worker awake on its own CPU, and team jobs (the shared-B
    SGEMM, whose barriers need both threads at once, so on one CPU they take turns) interleaved with them
    must stay right."""
    code = r'''
import os, time
if os.environ["ONE_CPU"] == "1":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before the team starts: workers inherit it
import numpy as np
from goldbull_np import kernels
from goldbull_np.kernels import c_backend as cb
kernels.set_num_threads(2)
rng = np.random.default_rng(0)
x = rng.standard_normal((2048, 256), np.float32); w = rng.standard_normal(256, np.float32)
b = rng.standard_normal(256, np.float32); g = rng.standard_normal((2048, 256), np.float32)
A, B = rng.standard_normal((700, 900), np.float32), rng.standard_normal((900, 2600), np.float32)
_, mean, rstd = cb.layer_norm_forward(x, w, b, 1e-5)
want = [r.copy() for r in cb.layer_norm_backward(g, x, w, mean, rstd, True)]
want_mm = cb.matmul(A, B).copy()
assert np.allclose(want_mm, A.astype(np.float64) @ B, rtol=1e-4, atol=1e-2)
for i in range(40):
    time.sleep((0.0, 0.0005, 0.003)[i % 3])     # awake, spinning, asleep on the futex
    got = cb.layer_norm_backward(g, x, w, mean, rstd, True)
    assert all(np.array_equal(u, v) for u, v in zip(got, want)), i
    if i % 6 == 0:
        assert np.array_equal(cb.matmul(A, B), want_mm), i
print("OK")
'''
    r = run_script(code, env={"ONE_CPU": "1" if one_cpu else "0"}, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stderr[-2000:]


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and at least 2 CPUs")
def test_workers_are_kept_off_the_callers_cpu():
    """The pool's workers run on the process's CPUs minus the one the caller is on (csrc/pool.c): a
    worker woken from its sleep was otherwise placed on the caller's CPU and waited behind it for
    milliseconds. With the caller held to one CPU, after a parallel job every worker's affinity is the
    others, and it follows the caller when the caller moves."""
    code = r'''
import os, threading
import numpy as np
from goldbull_np import kernels
from goldbull_np.kernels import c_backend as cb
kernels.set_num_threads(2)
cpus = sorted(os.sched_getaffinity(0))
main_tid = threading.get_native_id()
a = np.ones((512, 512), np.float32)
cb.matmul(a, a)                                 # the team starts with this thread's CPUs
def workers_masks():
    tids = [int(t) for t in os.listdir("/proc/self/task") if int(t) != main_tid]
    return [os.sched_getaffinity(t) for t in tids]
import time
for cpu in (cpus[0], cpus[-1], cpus[0]):
    os.sched_setaffinity(0, {cpu})              # this thread only
    # a 2-thread job steers the workers that have started; a worker created by the first job may not have
    # run yet (the caller can finish a slots job alone), and is steered at the next job once it has
    for attempt in range(50):
        cb.matmul(a, a)
        masks = workers_masks()
        if set(cpus) - {cpu} in masks:
            break
        time.sleep(0.002)
    assert set(cpus) - {cpu} in masks, (cpu, attempt, masks)
print("OK")
'''
    r = run_script(code, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stderr[-2000:]


@pytest.mark.parametrize("isa", ["best"] + c_lower_isas())
@pytest.mark.parametrize("N,C,OC", [(611, 384, 1536), (400, 200, 1400), (97, 900, 1160)])
def test_linear_over_several_column_blocks_matches_float64_on_one_and_two_threads(N, C, OC, isa):
    """On the AVX-512 tier op(B) goes in blocks of at most 768 columns (csrc/matmul.c nc_block: 1536 in two
    of 768, 1400 in 704 + 696, 1160 in 608 + 552, an odd 35 panels) walked strip by strip (12 rows of A
    against every panel pair, the last single panel and a short strip 6 rows at a time: 611 and 97 rows
    leave 11 and 1); the forward's residual goes onto the last k-block (C = 900: three) and the backward's
    dweight accumulates into a lent array. On that tier the first and last forwards and their dx take the
    shared-B team path (K*N above 384 x 768, or split over N), the rest the per-thread one (split over M);
    on the AVX2 tier (NC = 2048) more take the per-thread one. Two threads give the one-thread bits, and
    both equal float64; every ISA tier."""
    from goldbull_np.kernels import c_backend as cb
    if isa != "best":
        assert cb.set_isa(isa) == isa
    rng = np.random.default_rng(N + C + OC)
    x, w = rng.standard_normal((N, C), np.float32), rng.standard_normal((OC, C), np.float32)
    bias, residual = rng.standard_normal(OC, np.float32), rng.standard_normal((N, OC), np.float32)
    dout, grad_before = rng.standard_normal((N, OC), np.float32), rng.standard_normal((OC, C), np.float32)
    def forward_backward():
        y = cb.linear_forward(x, w, bias, residual=residual)
        dx, dw, _ = cb.linear_backward(dout, x, w, need_dbias=False, dweight_out=grad_before.copy(), accumulate=True)
        return y, dx, dw
    runs = _on_thread_counts((1, 2), forward_backward)
    for one, two, what in zip(*runs, ("out", "dx", "dweight")):
        np.testing.assert_array_equal(two, one, err_msg=what)
    x64, w64, d64 = x.astype(np.float64), w.astype(np.float64), dout.astype(np.float64)
    wants = (residual + x64 @ w64.T + bias, d64 @ w64, grad_before + d64.T @ x64)
    for got, want, k, what in zip(runs[0], wants, (C, OC, N), ("out", "dx", "dweight")):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(k), err_msg=what)


_GUARDED_OPERANDS = r'''
import ctypes, mmap, sys
import numpy as np
from goldbull_np.kernels import c_backend as cb
PAGE = mmap.PAGESIZE

def ending_at_a_guard_page(shape, rng):
    """A float32 C-contiguous array whose last float is the last before a page that may not be read or written."""
    n = int(np.prod(shape))
    data_pages = (n * 4 + PAGE - 1) // PAGE
    buf = mmap.mmap(-1, (data_pages + 1) * PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    assert libc.mprotect(base + data_pages * PAGE, PAGE, 0) == 0, ctypes.get_errno()
    arr = np.frombuffer(buf, np.float32, count=n, offset=data_pages * PAGE - n * 4).reshape(shape)
    arr[...] = rng.standard_normal(shape, np.float32)
    return arr

isa, M, N, K = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
assert cb.set_isa(isa) == isa
rng = np.random.default_rng(M + N + K)
at = ending_at_a_guard_page((K, M), rng)         # op(A) = at.T: the weight gradient's dout^T
a = ending_at_a_guard_page((M, K), rng)          # a row-major A
b = ending_at_a_guard_page((K, N), rng)
bt = ending_at_a_guard_page((N, K), rng)         # op(B) = bt.T: a linear layer's weight
for got, want in ((cb.matmul(at, b, trans_a=True), at.T.astype(np.float64) @ b),
                  (cb.matmul(a, b), a.astype(np.float64) @ b),
                  (cb.matmul(a, bt, trans_b=True), a.astype(np.float64) @ bt.T)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(K))
print("ok")
'''


@pytest.mark.parametrize("isa", [i for i in ("base", "avx2", "avx512") if c_runs_isa(i)])
@pytest.mark.parametrize("M,N,K", [(12, 800, 384), (600, 400, 900), (7, 50, 19)])
def test_sgemm_packing_reads_nothing_past_its_operands(isa, M, N, K):
    """The packers load 8 floats at a time on the AVX2 tier (csrc/gemm_core.c: a row-major A's 6 rows, a
    transposed B's rows): with each operand ending right before a page that may not be touched, a packed row-major
    A (N >= 768 or K > KC on the AVX2 tier) with and without a tail of steps past the last 8 (K % 8), a transposed
    A whose last panel is full (M a multiple of 6) and one with a short panel still give the product and read
    nothing past an operand's end, on every tier the CPU runs. (Writes past the packed buffers are not caught
    here: those live in the kernels' own workspace.)"""
    r = run_script(f"import sys; sys.argv = ['guarded', {isa!r}, '{M}', '{N}', '{K}']\n" + _GUARDED_OPERANDS,
                   timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stdout, r.stderr[-2000:])
