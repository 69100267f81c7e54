/* Cross-entropy over (N,V) logits, llm.c style: forward saves lse (N,) that backward reads, so
 * backward is one pass writing dlogits with no (N,V) temporary. Parallel over rows (independent);
 * when there are fewer rows than threads-worth of work the split is still by rows (V is large then). */
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
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

typedef struct {
    float *out, *lse;  /* forward: losses, lse (written); backward: dlogits, NULL */
    const float *dlosses, *logits, *lse_in;
    const int64_t *targets;
    int64_t ignore_index, N, V;
    float ls;
} ce_args;

static void ce_forward_task(void *ctx, int t, int nt) {
    ce_args *a = ctx;
    int64_t r0, r1;
    gb_split(a->N, t, nt, &r0, &r1);
    GB_CALL(ce_fwd, (a->out, a->lse, a->logits, a->targets, a->ignore_index, a->ls, r0, r1, a->V));
}

int crossentropy_forward(float *losses, float *lse, const float *logits, const int64_t *targets,
                         int64_t ignore_index, float label_smoothing, int64_t N, int64_t V) {
    ce_args a = {losses, lse, NULL, logits, NULL, targets, ignore_index, N, V, label_smoothing};
    gb_parallel(ce_forward_task, &a, N * V >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
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

static void ce_backward_task(void *ctx, int t, int nt) {
    ce_args *a = ctx;
    int64_t r0, r1;
    gb_split(a->N, t, nt, &r0, &r1);
    GB_CALL(ce_bwd, (a->out, a->dlosses, a->logits, a->targets, a->lse_in, a->ignore_index, a->ls, r0, r1, a->V));
}

int crossentropy_backward(float *dlogits, const float *dlosses, const float *logits, const int64_t *targets,
                          const float *lse, int64_t ignore_index, float label_smoothing, int64_t N, int64_t V) {
    ce_args a = {dlogits, NULL, dlosses, logits, lse, targets, ignore_index, N, V, label_smoothing};
    gb_parallel(ce_backward_task, &a, N * V >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    return 0;
}
