/* Embedding backward: repeated ids make a row-parallel scatter race, so the threads split the
 * columns instead (in whole 64-byte lines, no false sharing) and each walks every id in order: the
 * sums are the same, bit for bit, at any thread count and equal np.add.at's sequential order.
 * The caller zero-fills dweight (np.zeros: untouched rows of a 50k-row table then cost nothing). */
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "embedding.h"

#define EMB_COLS 16  /* columns per split unit: one 64-byte cache line of floats */

static inline GB_INLINE void emb_backward_cols(
    float *dweight,                                  /* (V,C), zero-filled */
    const float *dout, const int64_t *ids,           /* (N,C), (N,) */
    int64_t N, int64_t C, int64_t c0, int64_t c1) {
    for (int64_t n = 0; n < N; n++) {
        float *dst = dweight + ids[n] * C;
        const float *src = dout + n * C;
        #pragma omp simd
        for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
    }
}
GB_MULTIVERSION(emb_bwd, (float *dweight, const float *dout, const int64_t *ids,
                          int64_t N, int64_t C, int64_t c0, int64_t c1),
                emb_backward_cols(dweight, dout, ids, N, C, c0, c1))

typedef struct { float *dweight; const float *dout; const int64_t *ids; int64_t N, C; } emb_args;

static void emb_backward_task(void *ctx, int t, int nt) {
    emb_args *a = ctx;
    int64_t b0, b1;
    gb_split((a->C + EMB_COLS - 1) / EMB_COLS, t, nt, &b0, &b1);
    int64_t c0 = b0 * EMB_COLS, c1 = b1 * EMB_COLS < a->C ? b1 * EMB_COLS : a->C;
    if (c0 < c1) GB_CALL(emb_bwd, (a->dweight, a->dout, a->ids, a->N, a->C, c0, c1));
}

int embedding_backward(float *dweight, const float *dout, const int64_t *ids,
                       int64_t N, int64_t C, int64_t V) {
    (void)V;
    emb_args a = {dweight, dout, ids, N, C};
    gb_parallel(emb_backward_task, &a, N * C >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    return 0;
}
