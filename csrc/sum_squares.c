/* Sum of squares in double (the 2-norm of clip_grad_norm_), for float32 and float64 arrays.
 * Memory-bound: each thread streams its contiguous chunk (gb_split) into SS_LANES independent double
 * accumulators, so the adds/FMAs of consecutive vectors do not wait on each other; float32 lanes are
 * converted to double before squaring, so squares of float32 values up to FLT_MAX stay finite.
 * Lanes are summed in order, then the per-thread partials in thread order: the result depends only on
 * n, the thread count and the ISA tier (FMA contraction), never on scheduling. */
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "sum_squares.h"

#define SS_LANES 16         /* 4 AVX2 double vectors in flight: enough to hide the add latency */
#define SS_MAX_THREADS 256  /* the team's cap (pool.c MAX_TEAM): partials live on the stack */

/* Sum of squares of x[i0, i1) in double. The fixed-size inner loop is unrolled and vectorised by
 * GCC without -ffast-math: each lane is its own accumulator, so no reassociation is needed. */
#define SS_CHUNK_BODY(T)                                                          \
    static inline GB_INLINE double ss_chunk_##T(const T *x, int64_t i0, int64_t i1) { \
        double acc[SS_LANES] = {0};                                               \
        int64_t i = i0;                                                           \
        for (; i + SS_LANES <= i1; i += SS_LANES)                                 \
            for (int j = 0; j < SS_LANES; j++) {                                  \
                double v = (double)x[i + j];                                      \
                acc[j] += v * v;                                                  \
            }                                                                     \
        for (int j = 0; i < i1; i++, j++) {                                       \
            double v = (double)x[i];                                              \
            acc[j] += v * v;                                                      \
        }                                                                         \
        double s = 0.0;                                                           \
        for (int j = 0; j < SS_LANES; j++) s += acc[j];                           \
        return s;                                                                 \
    }
SS_CHUNK_BODY(float)
SS_CHUNK_BODY(double)

GB_MULTIVERSION(ss_f32, (const float *x, int64_t i0, int64_t i1, double *out), *out = ss_chunk_float(x, i0, i1))
GB_MULTIVERSION(ss_f64, (const double *x, int64_t i0, int64_t i1, double *out), *out = ss_chunk_double(x, i0, i1))

typedef struct {
    const float *x32;   /* read when !is_f64 */
    const double *x64;  /* read when is_f64 */
    int is_f64;
    int64_t n;
    double *partial;    /* (nt,): thread t writes partial[t] only */
} ss_args;

static void ss_task(void *ctx, int t, int nt) {
    ss_args *a = ctx;
    int64_t lo, hi;
    gb_split(a->n, t, nt, &lo, &hi);
    if (!a->is_f64) GB_CALL(ss_f32, (a->x32, lo, hi, &a->partial[t]));
    else GB_CALL(ss_f64, (a->x64, lo, hi, &a->partial[t]));
}

static int sum_squares(const float *x32, const double *x64, int is_f64, int64_t n, double *out) {
    int nt = n >= GB_PAR_MIN_ELEMS ? gb_threads() : 1;
    if (nt > SS_MAX_THREADS) nt = SS_MAX_THREADS;
    /* zeroed: a team that runs inline (or smaller than asked) writes only its first entries */
    double partial[SS_MAX_THREADS];
    for (int t = 0; t < nt; t++) partial[t] = 0.0;
    ss_args a = {x32, x64, is_f64, n, partial};
    gb_parallel(ss_task, &a, nt);
    double s = 0.0;
    for (int t = 0; t < nt; t++) s += partial[t];
    *out = s;
    return 0;
}

int sum_squares_f32(const float *x, int64_t n, double *out) { return sum_squares(x, NULL, 0, n, out); }

int sum_squares_f64(const double *x, int64_t n, double *out) { return sum_squares(NULL, x, 1, n, out); }
