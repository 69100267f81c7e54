/* Helpers shared by the kernel sources (not part of the cffi cdef: only the top-level csrc headers are declarations).
 *
 * Run-time ISA dispatch: hot loops are written once as `static inline GB_INLINE` functions and
 * instantiated three times with GB_MULTIVERSION: `name_avx512` compiled with
 * target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"), `name_avx2` with target("avx2,fma") and
 * `name_base` for any x86-64 (or other arch). GB_CALL picks one by gb_isa() (runtime.c: the CPU's
 * best tier, capped by gb_set_isa for tests), so the extension is built without -march=native and
 * still runs anywhere. Auto-vectorised loops on the AVX-512 tier keep GCC's default 256-bit vectors but
 * get 32 registers, mask registers and the EVEX forms; the hot kernels written with intrinsics use
 * 512-bit vectors there (the SGEMM's 6x32 tile, exact GELU, the convolutions), which on a CPU with
 * full-width 512-bit FMAs (the EPYC these were measured on: Zen 5) doubles their throughput.
 * Parallel work goes through gb_parallel (internal/gb_pool.h): the exported (untargeted) function
 * packs its arguments, and each thread's task calls the targeted per-chunk function with GB_CALL.
 */
#pragma once
#include <stdint.h>
#include <string.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define GB_INLINE __attribute__((always_inline))

#if defined(__x86_64__) || defined(__i386__)
#define GB_X86 1
#define GB_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define GB_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#else
#define GB_X86 0
#define GB_TARGET_AVX2
#define GB_TARGET_AVX512
#endif

/* ISA tiers, in order; gb_isa() is the tier the kernels use (runtime.c; cached). */
#define GB_ISA_BASE 0
#define GB_ISA_AVX2 1    /* AVX2 + FMA */
#define GB_ISA_AVX512 2  /* AVX-512 F, VL, DQ, BW (+ AVX2, FMA) */
int gb_isa(void);
int gb_cpu_has_avx2_fma(void);  /* gb_isa() >= GB_ISA_AVX2 */

/* Define name_avx512, name_avx2 and name_base, each calling the always-inline body `call`. */
#define GB_MULTIVERSION(name, params, call)                     \
    GB_TARGET_AVX512 static void name##_avx512 params { call; } \
    GB_TARGET_AVX2 static void name##_avx2 params { call; }     \
    static void name##_base params { call; }

#define GB_CALL(name, args)                                     \
    do {                                                        \
        int gb_isa_ = GB_X86 ? gb_isa() : GB_ISA_BASE;          \
        if (gb_isa_ >= GB_ISA_AVX512) name##_avx512 args;       \
        else if (gb_isa_ == GB_ISA_AVX2) name##_avx2 args;      \
        else name##_base args;                                  \
    } while (0)

static inline int gb_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static inline int gb_num_threads(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}
/* Threads a parallel kernel asks gb_parallel for: a process-wide setting (gb_set_num_threads),
 * by default OpenMP's maximum (OMP_NUM_THREADS). runtime.c. */
int gb_threads(void);

/* Parallel regions (gb_parallel, internal/gb_pool.h) only above this much work. With the team's
 * workers awake (kernels back to back) a region costs a few microseconds, so a LayerNorm or GELU on
 * 768x128 and the 768x128x65 LM-head GEMM are still worth two threads; higher thresholds made a
 * small-GPT step slower (benchmarks/results/kernel_choices.md). */
#define GB_PAR_MIN_ELEMS 32768
#define GB_PAR_MIN_MACS (INT64_C(1) << 20)

/* [lo, hi) of n items for thread t of nt (contiguous static split). */
static inline void gb_split(int64_t n, int t, int nt, int64_t *lo, int64_t *hi) {
    int64_t q = n / nt, r = n % nt;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r ? 1 : 0);
}

/* gb_expf's x (clamped) -> n = round(x / ln 2) (the 1.5*2^23 trick: exact for |v| < 2^22, vectorizes on SSE2),
 * r = x - n ln 2 (two-part ln 2) and p = e^r (Cephes polynomial), for a float or a GCC vector x (exp8, gb_vec.h;
 * p0: the leading coefficient in x's type); e^x = p 2^n */
#define GB_EXPF_BODY(x, n, r, p, p0)                               \
    do {                                                           \
        n = ((x) * 1.44269504088896341f + 12582912.0f) - 12582912.0f; \
        r = (x) - n * 0.693359375f;                                \
        r = r - n * -2.12194440e-4f;                               \
        p = (p0);                                                  \
        p = p * r + 1.3981999507e-3f;                              \
        p = p * r + 8.3334519073e-3f;                              \
        p = p * r + 4.1665795894e-2f;                              \
        p = p * r + 1.6666665459e-1f;                              \
        p = p * r + 5.0000001201e-1f;                              \
        p = p * r * r + r + 1.0f;                                  \
    } while (0)

/* expf that the vectorizer can inline: Cephes polynomial, max rel. error ~2 ulp on [-87.3, 88].
 * Below -87.3 returns ~FLT_MIN instead of 0 (callers mask -inf explicitly). */
static inline GB_INLINE float gb_expf(float x) {
    x = x < -87.3365f ? -87.3365f : x;
    x = x > 88.0f ? 88.0f : x;
    float n, r, p;
    GB_EXPF_BODY(x, n, r, p, 1.9875691500e-4f);
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}
