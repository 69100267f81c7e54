#include "internal/gb_common.h"
#include "runtime.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static int gb_cpu_isa_cached = -1;
static int gb_isa_cap = GB_ISA_AVX512;  /* gb_set_isa lowers it (tests run every tier) */
static int gb_nthreads = 0;  /* 0 = not set yet: omp_get_max_threads() at first use */

/* libgcc's __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 registers. */
int gb_cpu_isa(void) {
    if (gb_cpu_isa_cached < 0) {
        int isa = GB_ISA_BASE;
#if GB_X86
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            isa = GB_ISA_AVX2;
            if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
                isa = GB_ISA_AVX512;
        }
#endif
        gb_cpu_isa_cached = isa;
    }
    return gb_cpu_isa_cached;
}

int gb_isa(void) {
    int best = gb_cpu_isa();
    return best < gb_isa_cap ? best : gb_isa_cap;
}

int gb_set_isa(int cap) {
    gb_isa_cap = cap < GB_ISA_BASE ? GB_ISA_BASE : (cap > GB_ISA_AVX512 ? GB_ISA_AVX512 : cap);
    return gb_isa();
}

int gb_cpu_has_avx2_fma(void) { return gb_isa() >= GB_ISA_AVX2; }

int gb_threads(void) {
    if (gb_nthreads <= 0) {
#ifdef _OPENMP
        gb_nthreads = omp_get_max_threads();  /* honours OMP_NUM_THREADS */
#else
        gb_nthreads = 1;
#endif
    }
    return gb_nthreads;
}

int gb_omp_max_threads(void) { return gb_threads(); }

void gb_set_num_threads(int n) {
    if (n > 0) gb_nthreads = n;
}

int gb_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Keep freed blocks mapped so the next step's temporaries reuse them. By default glibc serves blocks
 * above M_MMAP_THRESHOLD (128 KiB, growing dynamically) with fresh mmaps and trims the heap top
 * above M_TRIM_THRESHOLD, so every activation/gradient array of a training step came back as new
 * zero pages whose first-touch faults cost more than the arithmetic on them. Raising both (the
 * mmap threshold is capped by glibc at 32 MiB on 64-bit) fixes that; peak RSS is unchanged: freed
 * memory stays resident up to the peak it already reached. Called once by goldbull_np.runtime
 * (opt-out, reported); figures in benchmarks/results/kernel_choices.md. */
int gb_malloc_keep_freed(int64_t mmap_threshold, int64_t trim_threshold) {
#if defined(__GLIBC__)
    int ok = 1;
    if (mmap_threshold > 0) ok &= mallopt(M_MMAP_THRESHOLD, (int)(mmap_threshold > 33554432 ? 33554432 : mmap_threshold));
    if (trim_threshold > 0) ok &= mallopt(M_TRIM_THRESHOLD, (int)(trim_threshold > 2147483647 ? 2147483647 : trim_threshold));
    return ok ? 1 : 0;
#else
    (void)mmap_threshold; (void)trim_threshold;
    return 0;
#endif
}
