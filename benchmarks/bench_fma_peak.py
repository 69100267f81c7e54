"""The machine's float32 FMA peak per ISA tier, and our SGEMM as a fraction of it.

The question: how far is the C kernels' SGEMM (and hence a GPT step, whose time is mostly linears) from what
the cores can do at all? bench_train reports a step's GFLOP/s against the same run's SGEMM; this script puts
that SGEMM against the hardware: a loop of independent FMAs (14 accumulators on the AVX2 tier's 16 ymm
registers, 28 on AVX-512's 32 zmm; no loads, so only FMA throughput and the clock under that load bound it),
compiled here through cffi with gcc, run on 1 and 2 threads (OpenMP), beside our SGEMM and NumPy's at the
mid GPT's MLP shape on the same tier.

    python3 benchmarks/bench_fma_peak.py [--threads 2] [--shape 2048,384,1536]

Prints a table and writes benchmarks/results/bench_fma_peak.json (with the CPU, its ISA and thread count).
A VM's clock under sustained load differs from machine to machine: the peak is measured, not computed from a
nominal frequency. Needs gcc (the same compiler that builds the extension).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import median_time, print_table, write_json  # noqa: E402

_CDEF = "double fma_peak_avx2(long iters, int threads); double fma_peak_avx512(long iters, int threads);"

# Each thread runs `iters` rounds of ACC independent FMAs; returns the team's FLOP/s (2 FLOPs per lane).
_SOURCE = r"""
#include <immintrin.h>
#include <omp.h>
#define PEAK_LOOP(NAME, TARGET, VEC, SET1, FMA, CVT, LANES, ACC)                            \
__attribute__((target(TARGET))) double NAME(long iters, int threads) {                  \
    double t0 = 0, t1 = 0; float sink = 0;                                              \
    _Pragma("omp parallel num_threads(threads) reduction(+:sink)")                       \
    {                                                                                   \
        VEC acc[ACC], x = SET1(0.999999f), y = SET1(1e-7f);                             \
        for (int i = 0; i < ACC; i++) acc[i] = SET1(1.0f + i * 1e-6f);                  \
        _Pragma("omp barrier")                                                          \
        _Pragma("omp master") t0 = omp_get_wtime();                                     \
        for (long k = 0; k < iters; k++) {                                              \
            _Pragma("GCC unroll 32")                                                    \
            for (int i = 0; i < ACC; i++) acc[i] = FMA(acc[i], x, y);                   \
        }                                                                               \
        _Pragma("omp barrier")                                                          \
        _Pragma("omp master") t1 = omp_get_wtime();                                     \
        for (int i = 0; i < ACC; i++) sink += CVT(acc[i]);                              \
    }                                                                                   \
    return sink == 12345.0f ? 0.0 : (double)iters * ACC * LANES * 2 * threads / (t1 - t0); \
}
PEAK_LOOP(fma_peak_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32, 8, 14)
PEAK_LOOP(fma_peak_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32, 16, 28)
"""


def build():
    """Compile the peak loops (cffi, gcc -O2 -fopenmp) into a temporary directory; returns the lib."""
    import cffi  # noqa: PLC0415 - a core dependency of the package
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    ffi.set_source("_fma_peak", _SOURCE, extra_compile_args=["-O2", "-fopenmp"], extra_link_args=["-fopenmp"])
    tmp = tempfile.mkdtemp(prefix="fma_peak_")
    so = ffi.compile(tmpdir=tmp, verbose=False)
    sys.path.insert(0, os.path.dirname(so))
    import _fma_peak  # noqa: PLC0415 - just built
    return _fma_peak.lib


def peak_gflops(fn, threads, seconds=0.5):
    """GFLOP/s: the best of five runs of `seconds`/4 to `seconds` each, after calibration runs (the clock ramps
    up in them)."""
    iters = 1_000_000
    while True:
        t0 = time.perf_counter()
        fn(iters, threads)
        if time.perf_counter() - t0 >= seconds / 4:
            break
        iters *= 4
    return max(fn(iters, threads) for _ in range(5)) / 1e9


def sgemm_gflops(tier, m, k, n, threads):
    """Our C SGEMM capped to `tier`, at (m,k)x(k,n), on `threads` threads: GFLOP/s."""
    from goldbull_np import kernels  # noqa: PLC0415
    from goldbull_np.kernels import c_backend  # noqa: PLC0415
    kernels.set_num_threads(threads)
    before = c_backend.isa()
    c_backend.set_isa(tier)
    try:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        t, _ = median_time(lambda: c_backend.matmul(a, b), repeat=15, warmup=3)
        return 2.0 * m * k * n / t / 1e9
    finally:
        c_backend.set_isa(before)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", default="2048,384,1536", help="m,k,n of the SGEMM to set against the peak")
    args = ap.parse_args()
    m, k, n = (int(v) for v in args.shape.split(","))
    from goldbull_np.kernels import c_backend  # noqa: PLC0415
    cpu_tier = c_backend.cpu_isa()
    tiers = [t for t in ("avx2", "avx512") if c_backend.ISAS.index(t) <= c_backend.ISAS.index(cpu_tier)]
    if not tiers:
        sys.exit(f"bench_fma_peak: this CPU's best tier is {cpu_tier!r}; the peak loops need AVX2+FMA")
    lib = build()
    loops = {"avx2": lib.fma_peak_avx2, "avx512": lib.fma_peak_avx512}
    rows = []
    for tier in tiers:
        row = {"tier": tier, "peak_1t": peak_gflops(loops[tier], 1)}
        if args.threads > 1:
            row["peak_nt"] = peak_gflops(loops[tier], args.threads)
        row["sgemm"] = sgemm_gflops(tier, m, k, n, args.threads)
        peak = row.get("peak_nt", row["peak_1t"])
        row["sgemm_vs_peak"] = row["sgemm"] / peak
        rows.append(row)
    # NumPy's BLAS picks its own kernels (no tier cap): one figure, set against each tier's peak
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    t, _ = median_time(lambda: np.matmul(a, b), repeat=15, warmup=3)
    numpy_gf = 2.0 * m * k * n / t / 1e9
    print_table(rows, [("tier", "tier", "{}"), ("peak_1t", "FMA peak 1t GFLOP/s", "{:.1f}"),
                       ("peak_nt", f"FMA peak {args.threads}t", "{:.1f}"),
                       ("sgemm", f"goldbull sgemm {args.threads}t", "{:.1f}"), ("sgemm_vs_peak", "/peak", "{:.2f}")],
                title=f"bench_fma_peak: SGEMM ({m},{k})x({k},{n}) against the FMA peak, {args.threads} threads")
    print(f"numpy (its BLAS's own choice of kernel) {numpy_gf:.1f} GFLOP/s: " + ", ".join(
        f"{numpy_gf / r.get('peak_nt', r['peak_1t']):.2f} of the {r['tier']} peak" for r in rows))
    path = write_json("bench_fma_peak", {"threads": args.threads, "shape": [m, k, n], "rows": rows,
                                         "numpy_sgemm_gflops": numpy_gf})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
