/* Helpers shared by the kernel sources (not part of the cffi cdef: only the top-level csrc headers are declarations).
 *
 * Run-time ISA dispatch: hot loops are written once as `static inline GB_INLINE` functions and
 * instantiated twice with GB_MULTIVERSION: `name_avx2` compiled with target("avx2,fma") and
 * `name_base` for any x86-64 (or other arch). GB_CALL picks one with __builtin_cpu_supports, so the
 * extension is built without -march=native and still runs anywhere.
 * OpenMP parallel regions live in the exported (untargeted) functions and call the targeted
 * per-chunk functions: GCC outlines a parallel region before inlining, so a pragma inside an
 * inlined body would not get the AVX2 target.
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
#else
#define GB_X86 0
#define GB_TARGET_AVX2
#endif

int gb_cpu_has_avx2_fma(void);  /* runtime.c; cached */

/* Define name_avx2 and name_base, both calling the always-inline body `call`. */
#define GB_MULTIVERSION(name, params, call)        \
    GB_TARGET_AVX2 static void name##_avx2 params { call; } \
    static void name##_base params { call; }

#define GB_CALL(name, args) \
    do { if (GB_X86 && gb_cpu_has_avx2_fma()) name##_avx2 args; else name##_base args; } while (0)

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
/* Threads every parallel region uses (num_threads(gb_threads())): a process-wide setting, unlike
 * omp_set_num_threads which only sets the calling thread's ICV. runtime.c. */
int gb_threads(void);

/* [lo, hi) of n items for thread t of nt (contiguous static split). */
static inline void gb_split(int64_t n, int t, int nt, int64_t *lo, int64_t *hi) {
    int64_t q = n / nt, r = n % nt;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r ? 1 : 0);
}

/* expf that the vectorizer can inline: Cephes polynomial, max rel. error ~2 ulp on [-87.3, 88].
 * Below -87.3 returns ~FLT_MIN instead of 0 (callers mask -inf explicitly). */
static inline GB_INLINE float gb_expf(float x) {
    x = x < -87.3365f ? -87.3365f : x;
    x = x > 88.0f ? 88.0f : x;
    /* n = round(x / ln2) with the 1.5*2^23 trick (exact for |v| < 2^22, vectorizes on SSE2) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}
