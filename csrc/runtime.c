#include "internal/gb_common.h"
#include "runtime.h"

static int gb_avx2_cached = -1;
static int gb_nthreads = 0;  /* 0 = not set yet: omp_get_max_threads() at first use */

int gb_cpu_has_avx2_fma(void) {
    if (gb_avx2_cached < 0) {
#if GB_X86
        __builtin_cpu_init();
        gb_avx2_cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
        gb_avx2_cached = 0;
#endif
    }
    return gb_avx2_cached;
}

int gb_threads(void) {
    if (gb_nthreads <= 0) {
#ifdef _OPENMP
        gb_nthreads = omp_get_max_threads();
#else
        gb_nthreads = 1;
#endif
    }
    return gb_nthreads;
}

int gb_omp_max_threads(void) { return gb_threads(); }

void gb_set_num_threads(int n) {
#ifdef _OPENMP
    if (n > 0) gb_nthreads = n;
#else
    (void)n;
#endif
}

int gb_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
