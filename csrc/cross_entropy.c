/* Cross-entropy over (N,V) logits, llm.c style: forward saves lse (N,) that backward reads, so
 * backward is one pass writing dlogits with no (N,V) temporary. Parallel over rows (independent);
 * when there are fewer rows than threads-worth of work the split is still by rows (V is large then). */
#include "internal/gb_common.h"
#include "cross_entropy.h"

static inline GB_INLINE void ce_forward_rows(
    float *losses, float *lse,                       /* (N,), (N,) */
    const float *logits, const int64_t *targets,     /* (N,V), (N,) */
    int64_t ignore_index, float ls, int64_t r0, int64_t r1, int64_t V) {
    for (int64_t r = r0; r < r1; r++) {
        const float *x = logits + r * V;
        float mx = -INFINITY;
        #pragma omp simd reduction(max:mx)
        for (int64_t i = 0; i < V; i++) mx = x[i] > mx ? x[i] : mx;
        float sum = 0.0f, tot = 0.0f;
        #pragma omp simd reduction(+:sum, tot)
        for (int64_t i = 0; i < V; i++) { sum += gb_expf(x[i] - mx); tot += x[i]; }
        float l = mx + logf(sum);
        lse[r] = l;
        int64_t t = targets[r];
        if (t == ignore_index) { losses[r] = 0.0f; continue; }
        float nll = l - x[t];
        losses[r] = ls > 0.0f ? (1.0f - ls) * nll + ls * (l - tot / (float)V) : nll;
    }
}
GB_MULTIVERSION(ce_fwd, (float *losses, float *lse, const float *logits, const int64_t *targets,
                         int64_t ignore_index, float ls, int64_t r0, int64_t r1, int64_t V),
                ce_forward_rows(losses, lse, logits, targets, ignore_index, ls, r0, r1, V))

int crossentropy_forward(float *losses, float *lse, const float *logits, const int64_t *targets,
                         int64_t ignore_index, float label_smoothing, int64_t N, int64_t V) {
    #pragma omp parallel num_threads(gb_threads()) if (N * V >= GB_PAR_MIN_ELEMS)
    {
        int64_t r0, r1;
        gb_split(N, gb_thread_num(), gb_num_threads(), &r0, &r1);
        GB_CALL(ce_fwd, (losses, lse, logits, targets, ignore_index, label_smoothing, r0, r1, V));
    }
    return 0;
}

static inline GB_INLINE void ce_backward_rows(
    float *dlogits,                                  /* (N,V), may alias logits */
    const float *dlosses, const float *logits, const int64_t *targets, const float *lse,
    int64_t ignore_index, float ls, int64_t r0, int64_t r1, int64_t V) {
    float smooth = ls / (float)V;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = logits + r * V;
        float *g = dlogits + r * V;
        int64_t t = targets[r];
        if (t == ignore_index) {
            for (int64_t i = 0; i < V; i++) g[i] = 0.0f;
            continue;
        }
        float dl = dlosses[r], l = lse[r];
        #pragma omp simd
        for (int64_t i = 0; i < V; i++) g[i] = dl * (gb_expf(x[i] - l) - smooth);
        g[t] -= dl * (1.0f - ls);
    }
}
GB_MULTIVERSION(ce_bwd, (float *dlogits, const float *dlosses, const float *logits, const int64_t *targets,
                         const float *lse, int64_t ignore_index, float ls, int64_t r0, int64_t r1, int64_t V),
                ce_backward_rows(dlogits, dlosses, logits, targets, lse, ignore_index, ls, r0, r1, V))

int crossentropy_backward(float *dlogits, const float *dlosses, const float *logits, const int64_t *targets,
                          const float *lse, int64_t ignore_index, float label_smoothing, int64_t N, int64_t V) {
    #pragma omp parallel num_threads(gb_threads()) if (N * V >= GB_PAR_MIN_ELEMS)
    {
        int64_t r0, r1;
        gb_split(N, gb_thread_num(), gb_num_threads(), &r0, &r1);
        GB_CALL(ce_bwd, (dlogits, dlosses, logits, targets, lse, ignore_index, label_smoothing, r0, r1, V));
    }
    return 0;
}
