/* Max pooling and batch-norm statistics over NCHW, llm.c style: forward saves what backward reads
 * (the argmax indices; the per-channel mean and rstd). Max pooling is parallel over the B*C planes
 * (independent); batch norm over channels (each channel's N*L values reduce on one thread, in a
 * fixed order, with double accumulators across rows). */
#include <stdlib.h>
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "conv.h"

typedef struct {
    float *out, *dinp;
    int64_t *indices;
    const float *inp, *dout;
    const int64_t *cindices;
    int64_t N, H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw;
} pool_args;

static void maxpool_fwd_task(void *ctx, int t, int nt) {
    pool_args *a = ctx;
    int64_t n0, n1;
    gb_split(a->N, t, nt, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        const float *x = a->inp + n * a->H * a->W;          /* (H, W) */
        float *o = a->out + n * a->OH * a->OW;              /* (OH, OW) */
        int64_t *ix = a->indices + n * a->OH * a->OW;
        for (int64_t oh = 0; oh < a->OH; oh++)
            for (int64_t ow = 0; ow < a->OW; ow++) {
                float best = 0.0f;
                int64_t bi = -1;
                for (int64_t kh = 0; kh < a->KH; kh++) {
                    int64_t ih = oh * a->sh - a->ph + kh * a->dh;
                    if (ih < 0 || ih >= a->H) continue;
                    for (int64_t kw = 0; kw < a->KW; kw++) {
                        int64_t iw = ow * a->sw - a->pw + kw * a->dw;
                        if (iw < 0 || iw >= a->W) continue;
                        float v = x[ih * a->W + iw];
                        /* the first maximum; a NaN wins and stays (as NumPy's argmax) */
                        if (bi < 0 || (best == best && (v > best || v != v))) {
                            best = v;
                            bi = ih * a->W + iw;
                        }
                    }
                }
                o[oh * a->OW + ow] = best;
                ix[oh * a->OW + ow] = bi;
            }
    }
}

int max_pool2d_forward(float *out, int64_t *indices, const float *inp, int64_t N, int64_t H, int64_t W,
                       int64_t KH, int64_t KW, int64_t OH, int64_t OW, int64_t sh, int64_t sw,
                       int64_t ph, int64_t pw, int64_t dh, int64_t dw) {
    /* out, indices (N, OH, OW); inp (N, H, W) with N = B*C */
    pool_args a = {out, NULL, indices, inp, NULL, NULL, N, H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw};
    int64_t work = N * OH * OW * KH * KW;
    gb_parallel(maxpool_fwd_task, &a, work >= GB_PAR_MIN_ELEMS && N > 1 ? gb_threads() : 1);
    return 0;
}

static void maxpool_bwd_task(void *ctx, int t, int nt) {
    pool_args *a = ctx;
    int64_t n0, n1;
    gb_split(a->N, t, nt, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        float *dx = a->dinp + n * a->H * a->W;
        const float *g = a->dout + n * a->OH * a->OW;
        const int64_t *ix = a->cindices + n * a->OH * a->OW;
        memset(dx, 0, (size_t)(a->H * a->W) * sizeof(float));
        for (int64_t i = 0; i < a->OH * a->OW; i++) dx[ix[i]] += g[i];
    }
}

int max_pool2d_backward(float *dinp, const float *dout, const int64_t *indices, int64_t N, int64_t H,
                        int64_t W, int64_t OH, int64_t OW) {
    /* dinp (N, H, W); dout, indices (N, OH, OW); every index in [0, H*W) (checked by the wrapper) */
    pool_args a = {NULL, dinp, NULL, NULL, dout, indices, N, H, W, 0, 0, OH, OW, 0, 0, 0, 0, 0, 0};
    gb_parallel(maxpool_bwd_task, &a, N * H * W >= GB_PAR_MIN_ELEMS && N > 1 ? gb_threads() : 1);
    return 0;
}

/* ---- batch norm ------------------------------------------------------------------------- */

typedef struct {
    float *out, *dinp, *dweight, *dbias, *mean, *rstd;
    const float *inp, *dout, *weight, *bias, *cmean, *crstd;
    float eps;
    int64_t N, C, L;
} bn_args;

static void bn_fwd_task(void *ctx, int t, int nt) {
    bn_args *a = ctx;
    int64_t c0, c1, N = a->N, C = a->C, L = a->L;
    gb_split(C, t, nt, &c0, &c1);
    for (int64_t c = c0; c < c1; c++) {
        double s = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const float *x = a->inp + (n * C + c) * L;
            float r = 0.0f;
            #pragma omp simd reduction(+:r)
            for (int64_t l = 0; l < L; l++) r += x[l];
            s += r;
        }
        float m = (float)(s / (double)(N * L));
        double v = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const float *x = a->inp + (n * C + c) * L;
            float r = 0.0f;
            #pragma omp simd reduction(+:r)
            for (int64_t l = 0; l < L; l++) { float d = x[l] - m; r += d * d; }
            v += r;
        }
        float rs = (float)(1.0 / sqrt(v / (double)(N * L) + (double)a->eps));
        float w = a->weight ? a->weight[c] : 1.0f, b = a->bias ? a->bias[c] : 0.0f;
        float scale = rs * w, shift = b - m * rs * w;
        for (int64_t n = 0; n < N; n++) {
            const float *x = a->inp + (n * C + c) * L;
            float *o = a->out + (n * C + c) * L;
            #pragma omp simd
            for (int64_t l = 0; l < L; l++) o[l] = x[l] * scale + shift;
        }
        a->mean[c] = m;
        a->rstd[c] = rs;
    }
}

int batch_norm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, float eps, int64_t N, int64_t C, int64_t L) {
    /* out (N,C,L), mean/rstd (C,), inp (N,C,L), weight/bias (C,)|NULL */
    bn_args a = {out, NULL, NULL, NULL, mean, rstd, inp, NULL, weight, bias, NULL, NULL, eps, N, C, L};
    gb_parallel(bn_fwd_task, &a, N * C * L >= GB_PAR_MIN_ELEMS && C > 1 ? gb_threads() : 1);
    return 0;
}

static void bn_bwd_task(void *ctx, int t, int nt) {
    bn_args *a = ctx;
    int64_t c0, c1, N = a->N, C = a->C, L = a->L;
    gb_split(C, t, nt, &c0, &c1);
    for (int64_t c = c0; c < c1; c++) {
        float m = a->cmean[c], rs = a->crstd[c], w = a->weight ? a->weight[c] : 1.0f;
        double sg = 0.0, sgx = 0.0;  /* sum dout, sum dout * xhat */
        for (int64_t n = 0; n < N; n++) {
            const float *x = a->inp + (n * C + c) * L, *g = a->dout + (n * C + c) * L;
            float r1 = 0.0f, r2 = 0.0f;
            #pragma omp simd reduction(+:r1, r2)
            for (int64_t l = 0; l < L; l++) { r1 += g[l]; r2 += g[l] * (x[l] - m) * rs; }
            sg += r1;
            sgx += r2;
        }
        if (a->dbias) a->dbias[c] = (float)sg;
        if (a->dweight) a->dweight[c] = (float)sgx;
        /* dxhat = dout * w: c1 = mean(dxhat) = w*sg/M, c2 = mean(dxhat*xhat) = w*sgx/M */
        float c1v = (float)(w * sg / (double)(N * L)), c2v = (float)(w * sgx / (double)(N * L));
        for (int64_t n = 0; n < N; n++) {
            const float *x = a->inp + (n * C + c) * L, *g = a->dout + (n * C + c) * L;
            float *dx = a->dinp + (n * C + c) * L;
            #pragma omp simd
            for (int64_t l = 0; l < L; l++) dx[l] = (g[l] * w - c1v - (x[l] - m) * rs * c2v) * rs;
        }
    }
}

int batch_norm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd,
                        int64_t N, int64_t C, int64_t L) {
    /* dinp (N,C,L), dweight/dbias (C,)|NULL; dout, inp (N,C,L); weight (C,)|NULL; mean, rstd (C,) */
    bn_args a = {NULL, dinp, dweight, dbias, NULL, NULL, inp, dout, weight, NULL, mean, rstd, 0.0f, N, C, L};
    gb_parallel(bn_bwd_task, &a, N * C * L >= GB_PAR_MIN_ELEMS && C > 1 ? gb_threads() : 1);
    return 0;
}
