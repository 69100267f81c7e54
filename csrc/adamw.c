/* Fused AdamW: one streaming pass over param/grad/m/v. Memory-bound, so parallel over contiguous
 * chunks of every segment (each thread streams its own range). Order of operations as torch:
 * p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2*v + (1-b2)*g*g;
 * p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps). */
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "adamw.h"

static inline GB_INLINE void adamw_chunk(float *p, const float *g, float *m, float *v, int64_t i0, int64_t i1,
                                         float decay, float b1, float b2, float step_size, float bc2_sqrt,
                                         float eps) {
    float omb1 = 1.0f - b1, omb2 = 1.0f - b2;
    #pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        float gi = g[i];
        float mi = m[i] + omb1 * (gi - m[i]);
        float vi = v[i] * b2 + omb2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = p[i] * decay - step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}
GB_MULTIVERSION(adamw_c, (float *p, const float *g, float *m, float *v, int64_t i0, int64_t i1, float decay,
                          float b1, float b2, float step_size, float bc2_sqrt, float eps),
                adamw_chunk(p, g, m, v, i0, i1, decay, b1, b2, step_size, bc2_sqrt, eps))

typedef struct {
    float *param, *exp_avg, *exp_avg_sq;
    const float *grad;
    const int64_t *segments;
    const double *lrs, *weight_decays;
    int64_t G;
    double bc1;
    float beta1, beta2, eps, bc2_sqrt;
} adamw_args;

static void adamw_task(void *ctx, int t, int nt) {
    adamw_args *a = ctx;
    for (int64_t s = 0; s < a->G; s++) {
        int64_t lo, hi;
        gb_split(a->segments[s + 1] - a->segments[s], t, nt, &lo, &hi);
        lo += a->segments[s];
        hi += a->segments[s];
        float decay = (float)(1.0 - a->lrs[s] * a->weight_decays[s]);
        float step_size = (float)(a->lrs[s] / a->bc1);
        GB_CALL(adamw_c, (a->param, a->grad, a->exp_avg, a->exp_avg_sq, lo, hi, decay, a->beta1, a->beta2,
                          step_size, a->bc2_sqrt, a->eps));
    }
}

int adamw_step(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, const int64_t *segments,
               const double *lrs, const double *weight_decays, int64_t G, int64_t step, float beta1,
               float beta2, float eps) {
    adamw_args a = {param, exp_avg, exp_avg_sq, grad, segments, lrs, weight_decays, G,
                    1.0 - pow((double)beta1, (double)step), beta1, beta2, eps,
                    (float)sqrt(1.0 - pow((double)beta2, (double)step))};
    int64_t total = segments[G] - segments[0];
    gb_parallel(adamw_task, &a, total >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    return 0;
}
