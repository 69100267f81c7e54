/* LayerNorm / RMSNorm, llm.c style. Forward saves mean/rstd (N,) that backward reads.
 * Parallel over rows: rows are independent; the (C,) weight gradients are accumulated per thread
 * in private scratch rows and summed over threads afterwards (one pass over the (N,C) data). */
#include <stdlib.h>
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "internal/gb_vec.h"
#include "norm.h"

/* Two threads only from this many elements up (the shared GB_PAR_MIN_ELEMS is 32768). A norm pass
 * is a few flops per element streamed once: at (768,128) one thread took 25.6/33.3 us (forward/
 * backward) and two 23.4/29.4 us with the worker already spinning, but 67/75 us when the worker had
 * to be woken or shared its core with another process (the public-API call pattern: Python between
 * kernels), so the team pays off only where the halved pass is long: (2048,384) 235 -> 131 us. */
#define NORM_PAR_MIN_ELEMS (INT64_C(1) << 18)
/* The forwards from fewer: inside a training step the worker is awake (the kernels run back to back), and
 * at (768,128) a small-GPT step's 17 LayerNorm forwards took 37.5 -> 28.6 us each with two threads, the step
 * 26.8 -> 26.2 ms (AVX2 tier, three alternated runs of each build). The backward gained nothing there
 * (55 us either way) and keeps the threshold above, so its weight-gradient sums keep their one-thread bits. */
#define NORM_FWD_PAR_MIN_ELEMS (INT64_C(1) << 16)

/* Outputs (out, dinp) of at least this many floats are written with streaming (non-temporal) stores:
 * they are larger than half a 32 MiB L3, so they would leave the cache before they are read again,
 * and a streaming store skips reading each line before overwriting it (a third less traffic for the
 * forward's read-x-write-out pass). Each row is computed into an L1 buffer, then streamed out. */
#define NORM_STREAM_MIN_ELEMS (INT64_C(1) << 22)
#define NORM_STREAM_MAX_C 4096  /* the row buffer, on the stack */

#if GB_X86
#include <immintrin.h>
GB_TARGET_AVX2 static void stream_row_avx2(float *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 31); i++) dst[i] = src[i];
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i < n; i++) dst[i] = src[i];
}
#endif

/* dst[0:n] = src[0:n] with streaming stores where the CPU has AVX2 */
static void stream_row(float *dst, const float *src, int64_t n) {
#if GB_X86
    if (gb_isa() >= GB_ISA_AVX2) { stream_row_avx2(dst, src, n); return; }
#endif
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* make this thread's streaming stores visible before the team's join publishes the result */
static void stream_fence(void) {
#if GB_X86
    _mm_sfence();
#endif
}

/* Row reductions with four 8-wide partial sums (gb_v8, internal/gb_vec.h, so every tier compiles them): with
 * one accumulator (omp simd reduction) a row's sum was a chain of C/8 dependent adds, and the norms
 * ran at ~1 cycle per element at C = 384, latency-bound. */
/* sum(x[0:C]) */
static inline GB_INLINE float row_sum(const float *x, int64_t C) {
    gb_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int64_t i = 0;
    for (; i + 32 <= C; i += 32) {
        a0 += ld8(x + i); a1 += ld8(x + i + 8); a2 += ld8(x + i + 16); a3 += ld8(x + i + 24);
    }
    for (; i + 8 <= C; i += 8) a0 += ld8(x + i);
    float s = hsum8((a0 + a1) + (a2 + a3));
    for (; i < C; i++) s += x[i];
    return s;
}

/* sum((x[0:C] - m)^2) */
static inline GB_INLINE float row_sumsq(const float *x, float m, int64_t C) {
    gb_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, vm = {m, m, m, m, m, m, m, m};
    int64_t i = 0;
    for (; i + 32 <= C; i += 32) {
        gb_v8 d0 = ld8(x + i) - vm, d1 = ld8(x + i + 8) - vm, d2 = ld8(x + i + 16) - vm, d3 = ld8(x + i + 24) - vm;
        a0 += d0 * d0; a1 += d1 * d1; a2 += d2 * d2; a3 += d3 * d3;
    }
    for (; i + 8 <= C; i += 8) { gb_v8 d = ld8(x + i) - vm; a0 += d * d; }
    float s = hsum8((a0 + a1) + (a2 + a3));
    for (; i < C; i++) { float d = x[i] - m; s += d * d; }
    return s;
}

/* ---- forward ----------------------------------------------------------------------------- */

static inline GB_INLINE void layernorm_forward_rows(
    float *out, float *mean, float *rstd,            /* (N,C), (N,), (N,) */
    const float *inp, const float *weight, const float *bias,  /* (N,C), (C,)|NULL, (C,)|NULL */
    float eps, int64_t r0, int64_t r1, int64_t C) {
    for (int64_t r = r0; r < r1; r++) {
        const float *x = inp + r * C;
        float *o = out + r * C;
        float m = row_sum(x, C) / (float)C;
        float v = row_sumsq(x, m, C);
        float rs = 1.0f / sqrtf(v / (float)C + eps);
        if (weight && bias) {
            #pragma omp simd
            for (int64_t i = 0; i < C; i++) o[i] = (x[i] - m) * rs * weight[i] + bias[i];
        } else if (weight) {
            #pragma omp simd
            for (int64_t i = 0; i < C; i++) o[i] = (x[i] - m) * rs * weight[i];
        } else if (bias) {
            #pragma omp simd
            for (int64_t i = 0; i < C; i++) o[i] = (x[i] - m) * rs + bias[i];
        } else {
            #pragma omp simd
            for (int64_t i = 0; i < C; i++) o[i] = (x[i] - m) * rs;
        }
        mean[r] = m;
        rstd[r] = rs;
    }
}
GB_MULTIVERSION(ln_fwd, (float *out, float *mean, float *rstd, const float *inp, const float *weight,
                         const float *bias, float eps, int64_t r0, int64_t r1, int64_t C),
                layernorm_forward_rows(out, mean, rstd, inp, weight, bias, eps, r0, r1, C))

/* naive reference: a test oracle only (norm.h), never a dispatch path */
void layernorm_forward_naive(float *out, float *mean, float *rstd, const float *inp,
                             const float *weight, const float *bias, float eps, int64_t N, int64_t C) {
    for (int64_t r = 0; r < N; r++) {
        const float *x = inp + r * C;
        double m = 0, v = 0;
        for (int64_t i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int64_t i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        float rs = (float)(1.0 / sqrt(v / C + eps));
        for (int64_t i = 0; i < C; i++)
            out[r * C + i] = (float)((x[i] - m) * rs) * (weight ? weight[i] : 1.0f) + (bias ? bias[i] : 0.0f);
        mean[r] = (float)m;
        rstd[r] = rs;
    }
}

typedef struct {
    float *out, *mean, *rstd;
    const float *inp, *weight, *bias;
    float eps;
    int64_t N, C;
} norm_fwd_args;

static int norm_streams(int64_t N, int64_t C) {
    return N * C >= NORM_STREAM_MIN_ELEMS && C <= NORM_STREAM_MAX_C;
}

static void layernorm_forward_task(void *ctx, int t, int nt) {
    norm_fwd_args *a = ctx;
    int64_t r0, r1, C = a->C;
    gb_split(a->N, t, nt, &r0, &r1);
    if (!norm_streams(a->N, C)) {
        GB_CALL(ln_fwd, (a->out, a->mean, a->rstd, a->inp, a->weight, a->bias, a->eps, r0, r1, C));
        return;
    }
    float row[NORM_STREAM_MAX_C];
    for (int64_t r = r0; r < r1; r++) {  /* the row into L1 (mean/rstd straight to theirs), then out */
        GB_CALL(ln_fwd, (row, a->mean + r, a->rstd + r, a->inp + r * C, a->weight, a->bias, a->eps, 0, 1, C));
        stream_row(a->out + r * C, row, C);
    }
    stream_fence();
}

int layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                      const float *bias, float eps, int64_t N, int64_t C) {
    norm_fwd_args a = {out, mean, rstd, inp, weight, bias, eps, N, C};
    gb_parallel(layernorm_forward_task, &a, N * C >= NORM_FWD_PAR_MIN_ELEMS ? gb_threads() : 1);
    return 0;
}

static inline GB_INLINE void rmsnorm_forward_rows(
    float *out, float *rstd,                         /* (N,C), (N,) */
    const float *inp, const float *weight,           /* (N,C), (C,)|NULL */
    float eps, int64_t r0, int64_t r1, int64_t C) {
    for (int64_t r = r0; r < r1; r++) {
        const float *x = inp + r * C;
        float *o = out + r * C;
        float v = row_sumsq(x, 0.0f, C);
        float rs = 1.0f / sqrtf(v / (float)C + eps);
        if (weight) {
            #pragma omp simd
            for (int64_t i = 0; i < C; i++) o[i] = x[i] * rs * weight[i];
        } else {
            #pragma omp simd
            for (int64_t i = 0; i < C; i++) o[i] = x[i] * rs;
        }
        rstd[r] = rs;
    }
}
GB_MULTIVERSION(rms_fwd, (float *out, float *rstd, const float *inp, const float *weight, float eps,
                          int64_t r0, int64_t r1, int64_t C),
                rmsnorm_forward_rows(out, rstd, inp, weight, eps, r0, r1, C))

static void rmsnorm_forward_task(void *ctx, int t, int nt) {
    norm_fwd_args *a = ctx;
    int64_t r0, r1, C = a->C;
    gb_split(a->N, t, nt, &r0, &r1);
    if (!norm_streams(a->N, C)) {
        GB_CALL(rms_fwd, (a->out, a->rstd, a->inp, a->weight, a->eps, r0, r1, C));
        return;
    }
    float row[NORM_STREAM_MAX_C];
    for (int64_t r = r0; r < r1; r++) {
        GB_CALL(rms_fwd, (row, a->rstd + r, a->inp + r * C, a->weight, a->eps, 0, 1, C));
        stream_row(a->out + r * C, row, C);
    }
    stream_fence();
}

int rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, float eps,
                    int64_t N, int64_t C) {
    norm_fwd_args a = {out, NULL, rstd, inp, weight, NULL, eps, N, C};
    gb_parallel(rmsnorm_forward_task, &a, N * C >= NORM_FWD_PAR_MIN_ELEMS ? gb_threads() : 1);
    return 0;
}

/* ---- backward ---------------------------------------------------------------------------- */

/* one row: dx written (add non-NULL: dx = add + the gradient, a pending gradient summed in the same pass);
 * dw/db (C,) accumulated in the same pass as the row sums (the flags are constants at each call,
 * norm_backward_rows, so every combination is its own vectorised loop) */
static inline GB_INLINE void norm_backward_row(
    float *dx, const float *add, float *dw, float *db,  /* (C,), (C,)|NULL, (C,)|NULL, (C,)|NULL */
    const float *g, const float *x, const float *weight,  /* (C,), (C,), (C,)|NULL */
    float m, float rs, int rms, int64_t C, const int HAS_W, const int HAS_DW, const int HAS_DB) {
    /* sum(dxhat), sum(dxhat * xhat), two 8-wide partial sums each (row_sum's reason) */
    gb_v8 s1a = {0}, s1b = {0}, s2a = {0}, s2b = {0}, vm = {m, m, m, m, m, m, m, m}, vr = {rs, rs, rs, rs, rs, rs, rs, rs};
    int64_t i = 0;
#define NORM_BWD_STATS8(j, s1v, s2v)                                                              \
    do {                                                                                         \
        gb_v8 gv = ld8(g + (j)), xh = (ld8(x + (j)) - vm) * vr;                                  \
        gb_v8 dxh = HAS_W ? gv * ld8(weight + (j)) : gv;                                         \
        s1v += dxh;                                                                              \
        s2v += dxh * xh;                                                                         \
        if (HAS_DW) { gb_v8 t = ld8(dw + (j)) + gv * xh; memcpy(dw + (j), &t, sizeof t); }      \
        if (HAS_DB) { gb_v8 t = ld8(db + (j)) + gv; memcpy(db + (j), &t, sizeof t); }           \
    } while (0)
    for (; i + 16 <= C; i += 16) {
        NORM_BWD_STATS8(i, s1a, s2a);
        NORM_BWD_STATS8(i + 8, s1b, s2b);
    }
    for (; i + 8 <= C; i += 8) NORM_BWD_STATS8(i, s1a, s2a);
#undef NORM_BWD_STATS8
    float s1 = hsum8(s1a + s1b), s2 = hsum8(s2a + s2b);
    for (; i < C; i++) {
        float xh = (x[i] - m) * rs, dxh = HAS_W ? g[i] * weight[i] : g[i];
        s1 += dxh;
        s2 += dxh * xh;
        if (HAS_DW) dw[i] += g[i] * xh;
        if (HAS_DB) db[i] += g[i];
    }
    float c1 = rms ? 0.0f : s1 / (float)C, c2 = s2 / (float)C;
#define NORM_BWD_DX(i) ((((HAS_W ? g[i] * weight[i] : g[i]) - c1 - ((x[i] - m) * rs) * c2)) * rs)
    if (add) {  /* through a small buffer, so the add is not fused into the last multiply: the bits of add + dx */
        float t[256];
        for (int64_t i0 = 0; i0 < C; i0 += 256) {
            int64_t n = C - i0 < 256 ? C - i0 : 256;
            #pragma omp simd
            for (int64_t i = i0; i < i0 + n; i++) t[i - i0] = NORM_BWD_DX(i);
            #pragma omp simd
            for (int64_t i = 0; i < n; i++) dx[i0 + i] = add[i0 + i] + t[i];
        }
    } else {
        #pragma omp simd
        for (int64_t i = 0; i < C; i++) dx[i] = NORM_BWD_DX(i);
    }
#undef NORM_BWD_DX
}

/* rows [r0,r1): dinp written (add non-NULL: dinp = add (N,C) + the gradient; add may be dinp itself);
 * dw/db (C,) private accumulators of this thread (may be NULL). rms = 1 drops the mean terms (RMSNorm). */
static inline GB_INLINE void norm_backward_rows(
    float *dinp, const float *add, float *dw, float *db,  /* (N,C), (N,C)|NULL, (C,)|NULL, (C,)|NULL */
    const float *dout, const float *inp, const float *weight,  /* (N,C), (N,C), (C,)|NULL */
    const float *mean, const float *rstd,            /* (N,)|NULL for rms, (N,) */
    int rms, int64_t r0, int64_t r1, int64_t C) {
    for (int64_t r = r0; r < r1; r++) {
        const float *x = inp + r * C, *g = dout + r * C, *a = add ? add + r * C : NULL;
        float *dx = dinp + r * C;
        float m = rms ? 0.0f : mean[r], rs = rstd[r];
#define NORM_ROW(w_, dw_, db_) norm_backward_row(dx, a, dw, db, g, x, weight, m, rs, rms, C, w_, dw_, db_)
        if (weight) {
            if (dw && db) NORM_ROW(1, 1, 1);
            else if (dw) NORM_ROW(1, 1, 0);
            else if (db) NORM_ROW(1, 0, 1);
            else NORM_ROW(1, 0, 0);
        } else {
            if (dw && db) NORM_ROW(0, 1, 1);
            else if (dw) NORM_ROW(0, 1, 0);
            else if (db) NORM_ROW(0, 0, 1);
            else NORM_ROW(0, 0, 0);
        }
#undef NORM_ROW
    }
}
GB_MULTIVERSION(norm_bwd, (float *dinp, const float *add, float *dw, float *db, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int rms,
                           int64_t r0, int64_t r1, int64_t C),
                norm_backward_rows(dinp, add, dw, db, dout, inp, weight, mean, rstd, rms, r0, r1, C))

typedef struct {
    float *dinp, *dweight, *dbias, *scratch;  /* scratch (nt, nbuf, C): per-thread weight-gradient sums */
    const float *dout, *inp, *weight, *mean, *rstd;
    int rms, nbuf, accumulate;  /* accumulate: dinp += the input gradient */
    int64_t N, C;
    int slots_done;  /* slots whose partials are written; the last one reduces them */
} norm_bwd_args;

static void norm_backward_task(void *ctx, int t, int nt) {
    norm_bwd_args *a = ctx;
    int64_t r0, r1, C = a->C, nbuf = a->nbuf;
    gb_split(a->N, t, nt, &r0, &r1);
    float *dw = a->dweight ? a->scratch + (int64_t)t * nbuf * C : NULL;
    float *db = a->dbias ? a->scratch + (int64_t)t * nbuf * C + (a->dweight ? C : 0) : NULL;
    if (!norm_streams(a->N, C)) {
        GB_CALL(norm_bwd, (a->dinp, a->accumulate ? a->dinp : NULL, dw, db, a->dout, a->inp, a->weight, a->mean,
                           a->rstd, a->rms, r0, r1, C));
    } else {
        float row[NORM_STREAM_MAX_C];
        for (int64_t r = r0; r < r1; r++) {
            GB_CALL(norm_bwd, (row, a->accumulate ? a->dinp + r * C : NULL, dw, db, a->dout + r * C, a->inp + r * C,
                               a->weight, a->mean ? a->mean + r : NULL, a->rstd + r, a->rms, 0, 1, C));
            stream_row(a->dinp + r * C, row, C);
        }
        stream_fence();
    }
    /* the last slot to finish sums the per-slot partials (in slot order: the same sums whichever
     * thread ran which slot); no barrier, so a late worker holds nobody up */
    if (__atomic_add_fetch(&a->slots_done, 1, __ATOMIC_ACQ_REL) != nt) return;
    for (int64_t c = 0; c < C; c++) {
        float sw = 0.0f, sb = 0.0f;
        for (int u = 0; u < nt; u++) {
            const float *base = a->scratch + (int64_t)u * nbuf * C;
            if (a->dweight) sw += base[c];
            if (a->dbias) sb += base[(a->dweight ? C : 0) + c];
        }
        if (a->dweight) a->dweight[c] = sw;
        if (a->dbias) a->dbias[c] = sb;
    }
}

static int norm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, const float *mean,
                         const float *rstd, int rms, int accumulate, int64_t N, int64_t C) {
    int nt = (N * C >= NORM_PAR_MIN_ELEMS) ? gb_threads() : 1;
    int nbuf = (dweight != NULL) + (dbias != NULL);
    float *scratch = NULL;  /* (nt, nbuf, C); a team that runs inline uses row 0 only */
    if (nbuf) {
        scratch = (float *)calloc((size_t)nt * nbuf * C, sizeof(float));
        if (!scratch) return -1;
    }
    norm_bwd_args a = {dinp, dweight, dbias, scratch, dout, inp, weight, mean, rstd, rms, nbuf, accumulate, N, C, 0};
    gb_parallel(norm_backward_task, &a, nt);
    free(scratch);
    return 0;
}

int layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                       const float *inp, const float *weight, const float *mean,
                       const float *rstd, int64_t N, int64_t C, int accumulate) {
    return norm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, 0, accumulate, N, C);
}

int rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                     const float *weight, const float *rstd, int64_t N, int64_t C, int accumulate) {
    return norm_backward(dinp, dweight, NULL, dout, inp, weight, NULL, rstd, 1, accumulate, N, C);
}
