/* Fused AdamW: one streaming pass over param/grad/m/v. Memory-bound, so parallel over contiguous
 * chunks of every segment (each thread streams its own range). Order of operations as torch:
 * p *= 1 - lr*wd; m = lerp(m, g, 1-b1); v = b2*v + (1-b2)*g*g;
 * p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps). */
#include "internal/gb_common.h"
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

int adamw_step(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, const int64_t *segments,
               const double *lrs, const double *weight_decays, int64_t G, int64_t step, float beta1,
               float beta2, float eps) {
    double bc1 = 1.0 - pow((double)beta1, (double)step);
    float bc2_sqrt = (float)sqrt(1.0 - pow((double)beta2, (double)step));
    int64_t total = segments[G] - segments[0];
    #pragma omp parallel num_threads(gb_threads()) if (total >= 65536)
    {
        int t = gb_thread_num(), nt = gb_num_threads();
        for (int64_t s = 0; s < G; s++) {
            int64_t lo, hi;
            gb_split(segments[s + 1] - segments[s], t, nt, &lo, &hi);
            lo += segments[s];
            hi += segments[s];
            float decay = (float)(1.0 - lrs[s] * weight_decays[s]);
            float step_size = (float)(lrs[s] / bc1);
            GB_CALL(adamw_c, (param, grad, exp_avg, exp_avg_sq, lo, hi, decay, beta1, beta2, step_size,
                              bc2_sqrt, eps));
        }
    }
    return 0;
}
