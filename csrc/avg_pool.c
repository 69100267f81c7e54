/* Average pooling, forward and backward, parallel over the B*C planes (independent). A window's
 * in-bounds rows and columns are clipped once per output, so the inner loop has no bounds tests. */
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "avg_pool.h"

typedef struct {
    float *out;
    const float *in;
    int64_t N, H, W, KH, KW, OH, OW, sh, sw, ph, pw;
    int count_include_pad;
} avg_args;

/* The window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1); its divisor. */
static inline void window(const avg_args *a, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0,
                          int64_t *w1, float *div) {
    int64_t hs = oh * a->sh - a->ph, ws = ow * a->sw - a->pw;
    *h0 = hs < 0 ? 0 : hs;
    *h1 = hs + a->KH > a->H ? a->H : hs + a->KH;
    *w0 = ws < 0 ? 0 : ws;
    *w1 = ws + a->KW > a->W ? a->W : ws + a->KW;
    *div = a->count_include_pad ? (float)(a->KH * a->KW) : (float)((*h1 - *h0) * (*w1 - *w0));
}

static void avg_fwd_task(void *ctx, int t, int nt) {
    avg_args *a = ctx;
    int64_t n0, n1;
    gb_split(a->N, t, nt, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        const float *x = a->in + n * a->H * a->W;  /* (H, W) */
        float *o = a->out + n * a->OH * a->OW;     /* (OH, OW) */
        for (int64_t oh = 0; oh < a->OH; oh++)
            for (int64_t ow = 0; ow < a->OW; ow++) {
                int64_t h0, h1, w0, w1;
                float div, s = 0.0f;
                window(a, oh, ow, &h0, &h1, &w0, &w1, &div);
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) s += x[h * a->W + w];
                o[oh * a->OW + ow] = s / div;
            }
    }
}

static void avg_bwd_task(void *ctx, int t, int nt) {
    avg_args *a = ctx;
    int64_t n0, n1;
    gb_split(a->N, t, nt, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        float *dx = a->out + n * a->H * a->W;      /* (H, W) */
        const float *g = a->in + n * a->OH * a->OW; /* (OH, OW) */
        memset(dx, 0, (size_t)(a->H * a->W) * sizeof(float));
        for (int64_t oh = 0; oh < a->OH; oh++)
            for (int64_t ow = 0; ow < a->OW; ow++) {
                int64_t h0, h1, w0, w1;
                float div;
                window(a, oh, ow, &h0, &h1, &w0, &w1, &div);
                float v = g[oh * a->OW + ow] / div;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) dx[h * a->W + w] += v;
            }
    }
}

static int run(gb_task_fn task, float *out, const float *in, int64_t N, int64_t H, int64_t W, int64_t KH,
               int64_t KW, int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int cip) {
    avg_args a = {out, in, N, H, W, KH, KW, OH, OW, sh, sw, ph, pw, cip};
    int64_t work = N * OH * OW * KH * KW;
    gb_parallel(task, &a, work >= GB_PAR_MIN_ELEMS && N > 1 ? gb_threads() : 1);
    return 0;
}

int avg_pool2d_forward(float *out, const float *inp, int64_t N, int64_t H, int64_t W, int64_t KH, int64_t KW,
                       int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                       int count_include_pad) {
    return run(avg_fwd_task, out, inp, N, H, W, KH, KW, OH, OW, sh, sw, ph, pw, count_include_pad);
}

int avg_pool2d_backward(float *dinp, const float *dout, int64_t N, int64_t H, int64_t W, int64_t KH, int64_t KW,
                        int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                        int count_include_pad) {
    return run(avg_bwd_task, dinp, dout, N, H, W, KH, KW, OH, OW, sh, sw, ph, pw, count_include_pad);
}
