/* conv2d on AVX-512 as implicit GEMMs with an 8x32 register tile (16 zmm accumulators; per
 * reduction step 2 B loads + 8 broadcasts feed 16 FMAs), the operands packed (conv_avx512_pack.c) so
 * the micro-kernel reads both contiguously, or B read in place from the padded input planes.
 *   forward  out[b,g] (OCg, P) = W[g] (OCg, K) . col (K, P)                  A = W packed once per call
 *            stride-1 grids whose rows are 16k outputs wide: B read in place through a table of
 *            tap offsets (no im2col); 8 wide: the same from shifted copies of the rows, 8 columns
 *            each; stride 2: from parity-split planes at unit stride; otherwise patch panels for a
 *            chunk of images (as many as keep the panels <= CHUNK_BYTES, so an 8x8 or 4x4 output
 *            still fills 32-wide panels)
 *   dinp, stride 1: the transposed convolution, itself a forward convolution of dout with the
 *            flipped, transposed weights W'[c, (oc, kh', kw')] = W[oc, c, KH-1-kh', KW-1-kw'] and
 *            pads dh*(KH-1)-pt, dw*(KW-1)-pl (no col2im, no scatter)
 *   dinp, stride > 1 (undilated): one stride-1 forward convolution of dout per output phase, interleaved;
 *            few input channels or dilation: dcol (K, nb*P) = W[g]^T . dout panels, then col2im
 *   dweight  dW'[g] (OCg, K') += dout (OCg, nb*P) . colT (nb*P, K') with the taps reordered
 *            k' = (kh*KW + kw)*Cg + c when Cg % 16 == 0, so a 16-lane B vector is 16 channels of one
 *            tap copied from a channels-last copy of the image; partials per fixed slice of the batch,
 *            summed in slice order: the same bits at any thread count.
 * The forward and dinp schedule chunks of images dynamically (a thread that starts late or shares its
 * core does fewer); every output is one thread's. Scratch lives in thread-local buffers that grow on
 * demand and are kept (no page faults per call). The portable paths (AVX2 / base, depthwise) are conv.c's. */
#include <sched.h>
#include <stdlib.h>
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "internal/conv_avx512.h"

#if GB_X86

/* C rows 0..mr-1, columns [0,16) at c0 and [16,32) at c1 (each masked) (=|+=) A panel (kc, 8) .
 * B panel (kc, 32) [+ bias (mr,)] */
GB_TARGET_AVX512 static void fk_kernel(int64_t kc, const float *a, const float *b, float *c0, float *c1, int64_t ldc,
                                       int64_t mr, __mmask16 m0, __mmask16 m1, int acc, const float *bias) {
    __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0;
    __m512 y0 = x0, y1 = x0, y2 = x0, y3 = x0, y4 = x0, y5 = x0, y6 = x0, y7 = x0;
    for (int64_t p = 0; p < kc; p++, a += FMR, b += FNR) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), t;
#define FK_ROW(i)                             \
        t = _mm512_set1_ps(a[i]);             \
        x##i = _mm512_fmadd_ps(t, b0, x##i);  \
        y##i = _mm512_fmadd_ps(t, b1, y##i);
        FK_ROW(0) FK_ROW(1) FK_ROW(2) FK_ROW(3) FK_ROW(4) FK_ROW(5) FK_ROW(6) FK_ROW(7)
#undef FK_ROW
    }
    __m512 X[FMR] = {x0, x1, x2, x3, x4, x5, x6, x7}, Y[FMR] = {y0, y1, y2, y3, y4, y5, y6, y7};
    for (int64_t i = 0; i < mr; i++) {
        __m512 u = X[i], v = Y[i];
        if (bias) {
            __m512 bb = _mm512_set1_ps(bias[i]);
            u = _mm512_add_ps(u, bb);
            v = _mm512_add_ps(v, bb);
        }
        float *r0 = c0 + i * ldc;
        if (acc) u = _mm512_add_ps(u, _mm512_maskz_loadu_ps(m0, r0));
        _mm512_mask_storeu_ps(r0, m0, u);
        if (m1) {
            float *r1 = c1 + i * ldc;
            if (acc) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m1, r1));
            _mm512_mask_storeu_ps(r1, m1, v);
        }
    }
}

/* fk_kernel with B read in place: step p's two 16-lane B vectors at b0 + koff[p] and b1 + koff[p] (the
 * same tap of two 16-pixel runs of the padded input planes, or of their shifted copies: no im2col) */
GB_TARGET_AVX512 static void fk_kernel_ind(int64_t kc, const float *a, const int32_t *koff, const float *b0p,
                                           const float *b1p, float *c0, float *c1, int64_t ldc, int64_t mr,
                                           __mmask16 m1, int acc, const float *bias) {
    __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0;
    __m512 y0 = x0, y1 = x0, y2 = x0, y3 = x0, y4 = x0, y5 = x0, y6 = x0, y7 = x0;
#define FK_ROW(i)                             \
        t = _mm512_set1_ps(a[i]);             \
        x##i = _mm512_fmadd_ps(t, b0, x##i);  \
        y##i = _mm512_fmadd_ps(t, b1, y##i);
    for (int64_t p = 0; p < kc; p++, a += FMR) {
        int64_t o = koff[p];
        __m512 b0 = _mm512_loadu_ps(b0p + o), b1 = _mm512_loadu_ps(b1p + o), t;
        FK_ROW(0) FK_ROW(1) FK_ROW(2) FK_ROW(3) FK_ROW(4) FK_ROW(5) FK_ROW(6) FK_ROW(7)
    }
#undef FK_ROW
    __m512 X[FMR] = {x0, x1, x2, x3, x4, x5, x6, x7}, Y[FMR] = {y0, y1, y2, y3, y4, y5, y6, y7};
    for (int64_t i = 0; i < mr; i++) {
        __m512 u = X[i], v = Y[i];
        if (bias) {
            __m512 bb = _mm512_set1_ps(bias[i]);
            u = _mm512_add_ps(u, bb);
            v = _mm512_add_ps(v, bb);
        }
        float *r0 = c0 + i * ldc;
        if (acc) u = _mm512_add_ps(u, _mm512_loadu_ps(r0));
        _mm512_storeu_ps(r0, u);
        if (m1) {
            float *r1 = c1 + i * ldc;
            if (acc) v = _mm512_add_ps(v, _mm512_loadu_ps(r1));
            _mm512_storeu_ps(r1, v);
        }
    }
}

/* Where C(i, j) lives: c + i*ldc + (j/seg)*sstride + j%seg (columns in segments of seg, one per image) */
typedef struct {
    float *c;
    int64_t ldc, seg, sstride;
} cmap;
static inline float *cm_at(const cmap *m, int64_t i, int64_t j) {
    return m->c + i * m->ldc + (j / m->seg) * m->sstride + j % m->seg;
}

/* C (M, N) (=|+=) A (M, K) . B (K, N) [+ bias (M,) per row]; Ap (ceil(M/8), K, 8) and Bp (ceil(N/32), K, 32)
 * zero-padded. A 16-column vector that crosses a segment goes through a tile (any P works). */
GB_TARGET_AVX512 static void fk_gemm(const cmap *cm, const float *Ap, const float *Bp, int64_t M, int64_t N,
                                     int64_t K, int accumulate, const float *bias) {
    int64_t nkb = (K + FKC - 1) / FKC, kcs = (K + nkb - 1) / nkb;
    float tile[FMR * FNR] __attribute__((aligned(64)));
    for (int64_t k0 = 0; k0 < K; k0 += kcs) {
        int64_t kc = imin(kcs, K - k0);
        int acc = accumulate || k0 > 0;
        const float *bs = k0 + kc == K ? bias : NULL;
        for (int64_t ir = 0; ir < M; ir += FMR) {
            int64_t mr = imin(FMR, M - ir);
            const float *ap = Ap + ir * K + k0 * FMR, *bsr = bs ? bs + ir : NULL;
            for (int64_t jr = 0; jr < N; jr += FNR) {
                int64_t nr = imin(FNR, N - jr), n0 = imin(nr, 16), n1 = nr - n0;
                const float *bp = Bp + jr * K + k0 * FNR;
                if (jr % cm->seg + n0 <= cm->seg && (n1 <= 0 || (jr + 16) % cm->seg + n1 <= cm->seg)) {
                    fk_kernel(kc, ap, bp, cm_at(cm, ir, jr), n1 > 0 ? cm_at(cm, ir, jr + 16) : NULL, cm->ldc, mr,
                              lanes(n0), lanes(n1), acc, bsr);
                } else {
                    fk_kernel(kc, ap, bp, tile, tile + 16, FNR, mr, 0xFFFF, 0xFFFF, 0, bsr);
                    for (int64_t i = 0; i < mr; i++)
                        for (int64_t j = 0; j < nr; j++) {
                            float *d = cm_at(cm, ir + i, jr + j);
                            *d = (acc ? *d : 0.0f) + tile[i * FNR + j];
                        }
                }
            }
        }
    }
}

/* images per chunk: B panels of about CHUNK_BYTES (at least one image) */
static int64_t chunk_images(int64_t per_image_floats, int64_t nimg) {
    int64_t n = CHUNK_BYTES / (per_image_floats * (int64_t)sizeof(float) + 1);
    return n < 1 ? 1 : n > nimg ? nimg : n;
}

/* images per chunk of a dynamic schedule over nt threads: as chunk_images, and at least 2 chunks per thread
 * where the batch allows (a thread that starts late, or shares its core, then does less of the work) */
static int64_t chunk_dynamic(int64_t per_image_floats, int64_t B, int nt) {
    int64_t n = chunk_images(per_image_floats, B), m = B / (2 * (int64_t)nt);
    return nt > 1 && m >= 1 && m < n ? m : n;
}

static int fast_threads(const conv_args *a) {
    int64_t macs = a->B * a->OC * (a->C / a->G) * a->KH * a->KW * a->OH * a->OW;
    int nt = macs >= GB_PAR_MIN_MACS ? gb_threads() : 1;
    if (nt > a->B) nt = (int)a->B;
    return nt < 1 ? 1 : nt;
}

/* ---- forward (also the stride-1 input gradient) ------------------------------------------- */
/* The forward's weights as A (G, OCg, K) rows: the layer's own (w (G*OCg, K), t = 0), or (t = 1) the view a
 * transposed convolution takes of a layer's weights w (OC', C', KH', KW'): row c, column (oc, m, n) =
 * w[g*OCg' + oc, c, rh + (Mh-1-m)*sh, rw + (Mw-1-n)*sw] (Mh x Mw = the forward's KH x KW; stride 1:
 * rh = rw = 0, sh = sw = 1 flips the kernel; a phase of a strided one picks every sh-th tap). */
typedef struct {
    const float *w;
    int t;
    int64_t KH, KW, rh, rw, sh, sw;  /* t = 1: the layer's kernel size and the phase */
} wview;

typedef struct {
    const conv_args *a;
    float *Ap;             /* (G, ceil(OCg/8)*8, K) packed weights (packed by the forward's team) */
    wview wv;
    float *dw_part;        /* backward: (nt, OC, K') */
    const float *At;       /* backward, stride > 1: (G, ceil(K/8)*8, OCg) packed W^T */
    float *dweight;        /* backward: (OC, Cg, KH, KW) */
    int64_t next;          /* the dynamic schedule's next chunk */
    int64_t next2, done;   /* the weight packing's (dweight's reduction's) next block; blocks (slices) done */
    int err;
} fast_ctx;

static void fail(fast_ctx *f) { __atomic_store_n(&f->err, 1, __ATOMIC_RELAXED); }

/* Wait until *cnt reaches target (or an error): not a barrier, so a thread that is not running (the other
 * vCPU busy elsewhere) holds nobody up unless it holds unfinished work. */
static void wait_count(const int64_t *cnt, int64_t target, const int *err) {
    for (int spins = 0; __atomic_load_n(cnt, __ATOMIC_ACQUIRE) < target && !__atomic_load_n(err, __ATOMIC_RELAXED);
         spins++) {
        if (spins < 4096) _mm_pause();
        else sched_yield();
    }
}

/* out (OCg, P) (+ bias) = W (packed Ap) . col of one image's group with B read in place from the planes
 * xp (output row r's taps at xp + r*rs + koff): grids whose rows are 16k outputs wide, so each 16-pixel
 * run is one row's contiguous slice, or 8 wide (an even number of rows) read from shifted copies with
 * rows of 8 (rs = 8), so two rows' slices are one contiguous run. koff (K,) = the taps' offsets.
 * The shifted copies share no lines between a row's taps, so there a reduction block of a pair of B
 * vectors (kc x 128 bytes) is kept to FKC_SHIFTED steps and stays in L1 while the A panels stream past
 * it (1/4 of the bytes per step); elsewhere neighbouring taps share lines and the A panel is the one
 * kept (2-3% on 8-wide outputs, in-process A/B on the Xeon VM; 4-6% slower on 16-wide ones). */
#define FKC_SHIFTED 256
GB_TARGET_AVX512 static void fwd_inplace(float *out, const float *Ap, const int32_t *koff, const float *xp,
                                         int64_t rs, const conv_args *a, int64_t OCg, int64_t K,
                                         const float *bias) {
    int shifted = rs == 8;
    int64_t P = a->OH * a->OW, nv = P / 16, kmax = shifted ? FKC_SHIFTED : FKC;
    int64_t nkb = (K + kmax - 1) / kmax, kcs = (K + nkb - 1) / nkb;
    int64_t nir = (OCg + FMR - 1) / FMR, nvp = (nv + 1) / 2;  /* row panels, pairs of B vectors */
    for (int64_t k0 = 0; k0 < K; k0 += kcs) {
        int64_t kc = imin(kcs, K - k0);
        const float *bs = k0 + kc == K ? bias : NULL;
        for (int64_t q = 0; q < nir * nvp; q++) {
            int64_t ir = (shifted ? q % nir : q / nvp) * FMR, v = (shifted ? q / nir : q % nvp) * 2;
            int64_t mr = imin(FMR, OCg - ir), p0 = v * 16, p1 = v + 1 < nv ? p0 + 16 : p0;
            const float *b0 = xp + (p0 / a->OW) * rs + p0 % a->OW;
            const float *b1 = xp + (p1 / a->OW) * rs + p1 % a->OW;
            fk_kernel_ind(kc, Ap + ir * K + k0 * FMR, koff + k0, b0, b1, out + ir * P + p0, out + ir * P + p1,
                          P, mr, v + 1 < nv ? 0xFFFF : 0, k0 > 0, bs ? bs + ir : NULL);
        }
    }
}

/* Ap rows [i0, i0+8) of group g (one (K, 8) block, zero past OCg) <- the weight view */
GB_TARGET_AVX512 static void pack_wblock(float *Ap, const wview *v, const conv_args *a, int64_t g, int64_t i0) {
    int64_t OCg = a->OC / a->G, K = (a->C / a->G) * a->KH * a->KW, mr = imin(FMR, OCg - i0);
    if (!v->t) {
        const float *src = v->w + (g * OCg + i0) * K;
        if (mr == FMR) {
            cvx_transpose(Ap, FMR, src, K, FMR, K);
        } else {
            for (int64_t r = 0; r < K; r++)
                for (int64_t i = 0; i < FMR; i++) Ap[r * FMR + i] = i < mr ? src[i * K + r] : 0.0f;
        }
        return;
    }
    /* the forward's C = the layer's OC, its OC = the layer's C */
    int64_t Lc = OCg, Loc = a->C / a->G, T = v->KH * v->KW, Mh = a->KH, Mw = a->KW;
    for (int64_t oc = 0; oc < Loc; oc++)
        for (int64_t m = 0; m < Mh; m++)
            for (int64_t n = 0; n < Mw; n++) {
                const float *src = v->w + ((g * Loc + oc) * Lc + i0) * T + (v->rh + (Mh - 1 - m) * v->sh) * v->KW +
                                   v->rw + (Mw - 1 - n) * v->sw;
                float *d = Ap + ((oc * Mh + m) * Mw + n) * FMR;
                for (int64_t i = 0; i < FMR; i++) d[i] = i < mr ? src[i * T] : 0.0f;
            }
}

/* One thread's plan for a forward convolution a over nt threads: how the patches are read (an unpadded grid
 * inside the image (1x1) from x itself; stride 2 from the four parity planes padded[2i + ry][2j + rx] at unit
 * stride; else from the zero-padded planes), the items (images read in place, or chunks of nb images
 * through patch panels), this thread's scratch and the tap offsets. Outputs 8 wide read in place go through
 * shifted copies of the source rows (sh): one per distinct column offset of a tap, 8 columns each, so a
 * 16-lane B vector (two output rows) is one load, not two halves joined by a port-5 shuffle. */
#define MAX_SHIFTS 8
typedef struct {
    int64_t nb, N, Hp, Wp, Hq, Wq, plane, xs, rs, cs, nitems;
    int direct, parity, inplace;
    int64_t wsrc, nrows, nshift, shift[MAX_SHIFTS];  /* the shifted copies: source row width, rows, offsets */
    float *Bp, *xp, *sh;
    int32_t *idx, *kt;
} fplan;

static void fwd_geometry(fplan *pl, const conv_args *a, int nt) {
    int64_t Cg = a->C / a->G, K = Cg * a->KH * a->KW, P = a->OH * a->OW;
    cvx_padded_dims(a, &pl->Hp, &pl->Wp);
    pl->direct = a->pt == 0 && a->pl == 0 && pl->Hp <= a->H && pl->Wp <= a->W;
    pl->parity = !pl->direct && a->sh == 2 && a->sw == 2;
    pl->Hq = (pl->Hp + 1) / 2;
    pl->Wq = (pl->Wp + 1) / 2;
    pl->plane = pl->parity ? 4 * pl->Hq * pl->Wq : pl->direct ? a->H * a->W : pl->Hp * pl->Wp;  /* per channel */
    pl->xs = pl->direct ? a->C * a->H * a->W : Cg * pl->plane;                                 /* per image */
    pl->rs = pl->parity ? pl->Wq : pl->direct ? a->sh * a->W : a->sh * pl->Wp;
    pl->cs = pl->parity ? 1 : a->sw;
    pl->wsrc = pl->parity ? pl->Wq : pl->direct ? a->W : pl->Wp;
    pl->nrows = Cg * pl->plane / pl->wsrc;
    pl->nshift = 0;
    int too_many = 0;
    for (int64_t kw = 0; kw < a->KW; kw++) {  /* the taps' distinct column offsets */
        int64_t x = pl->parity ? kw * a->dw / 2 : kw * a->dw, s = 0;
        while (s < pl->nshift && pl->shift[s] != x) s++;
        if (s < pl->nshift) continue;
        if (s == MAX_SHIFTS) too_many = 1;
        else pl->shift[pl->nshift++] = x;
    }
    int shiftable = a->OW == 8 && a->OH % 2 == 0 && pl->rs == pl->wsrc && !too_many &&
                    pl->nshift * pl->nrows * 8 < (INT64_C(1) << 31);  /* int32 tap offsets */
    pl->inplace = pl->cs == 1 && (a->OW % 16 == 0 || shiftable);
    if (!pl->inplace || a->OW % 16 == 0) pl->nshift = 0;
    pl->nb = pl->inplace ? 1 : chunk_dynamic(P * K, a->B, nt);
    pl->N = pl->nb * P;
    pl->nitems = (a->B + pl->nb - 1) / pl->nb;
}

static int fwd_scratch(fplan *pl, const conv_args *a) {
    int64_t Cg = a->C / a->G, K = Cg * a->KH * a->KW;
    pl->Bp = pl->inplace ? NULL : cvx_buf(0, (size_t)((pl->N + FNR - 1) / FNR * FNR * K));
    pl->sh = pl->nshift ? cvx_buf(1, (size_t)(pl->nshift * pl->nrows * 8)) : NULL;
    pl->xp = pl->direct ? (float *)a->inp : cvx_buf(2, (size_t)(pl->nb * Cg * pl->plane));
    pl->idx = (int32_t *)cvx_buf(3, (size_t)((pl->N + 15) / 16 * 16 + K));  /* lane offsets, then tap offsets */
    if ((!pl->inplace && !pl->Bp) || (pl->nshift && !pl->sh) || !pl->xp || !pl->idx) return 0;
    pl->kt = pl->idx + (pl->N + 15) / 16 * 16;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t kh = 0; kh < a->KH; kh++)
            for (int64_t kw = 0; kw < a->KW; kw++) {
                int64_t y = kh * a->dh, x = kw * a->dw;
                pl->kt[(c * a->KH + kh) * a->KW + kw] = (int32_t)(
                    c * pl->plane + (pl->parity ? ((y % 2) * 2 + x % 2) * pl->Hq * pl->Wq + (y / 2) * pl->Wq + x / 2
                                                : y * (pl->direct ? a->W : pl->Wp) + x));
            }
    for (int64_t k = 0; k < K && pl->nshift; k++) {  /* offsets into the shifted copies instead */
        int64_t row = pl->kt[k] / pl->wsrc, x = pl->kt[k] % pl->wsrc, s = 0;
        while (pl->shift[s] != x) s++;
        pl->kt[k] = (int32_t)((s * pl->nrows + row) * 8);
    }
    return 1;
}

/* item it of the plan: images [it*nb, it*nb + n) of a->out (+ bias) */
static void fwd_item(const fplan *pl, const conv_args *a, const float *Ap, int64_t it) {
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, K = Cg * a->KH * a->KW, P = a->OH * a->OW;
    int64_t Mp = (OCg + FMR - 1) / FMR * FMR, bs = it * pl->nb, n = imin(pl->nb, a->B - bs);
    for (int64_t g = 0; g < a->G; g++) {
        const float *xg = a->inp + (bs * a->C + g * Cg) * a->H * a->W;
        const float *src = pl->direct ? xg : pl->xp, *bias = a->bias ? a->bias + g * OCg : NULL;
        if (pl->parity) cvx_phase_planes(pl->xp, xg, n, a, pl->Hq, pl->Wq);
        else if (!pl->direct) cvx_pad_planes(pl->xp, xg, n, a, pl->Hp, pl->Wp);
        if (pl->nshift) cvx_shift_rows(pl->sh, src, pl->nrows, pl->wsrc, pl->shift, pl->nshift);
        if (pl->inplace) {  /* B in place: no im2col */
            fwd_inplace(a->out + (bs * a->OC + g * OCg) * P, Ap + g * Mp * K, pl->kt, pl->nshift ? pl->sh : src,
                        pl->nshift ? 8 : pl->rs, a, OCg, K, bias);
        } else {
            cvx_im2col32(pl->Bp, src, pl->idx, pl->kt, n, a, pl->xs, pl->rs, pl->cs);
            cmap cm = {a->out + (bs * a->OC + g * OCg) * P, P, P, a->OC * P};
            fk_gemm(&cm, Ap + g * Mp * K, pl->Bp, OCg, n * P, K, 0, bias);
        }
    }
}

/* the team packs the weights: row blocks claimed dynamically, all done before any is read */
static void pack_weights(fast_ctx *f) {
    const conv_args *a = f->a;
    int64_t OCg = a->OC / a->G, K = (a->C / a->G) * a->KH * a->KW, Mp = (OCg + FMR - 1) / FMR * FMR;
    int64_t nq = a->G * (Mp / FMR);
    for (int64_t q = gb_next_item(&f->next2); q < nq; q = gb_next_item(&f->next2)) {
        int64_t g = q / (Mp / FMR), i0 = (q % (Mp / FMR)) * FMR;
        pack_wblock(f->Ap + g * Mp * K + i0 * K, &f->wv, a, g, i0);
        __atomic_add_fetch(&f->done, 1, __ATOMIC_RELEASE);
    }
    wait_count(&f->done, nq, &f->err);
}

static void fwd_task(void *ctx, int t, int nt) {
    fast_ctx *f = ctx;
    const conv_args *a = f->a;
    fplan pl;
    (void)t;
    pack_weights(f);
    fwd_geometry(&pl, a, nt);
    if (!fwd_scratch(&pl, a)) {
        fail(f);
        return;
    }
    for (int64_t it = gb_next_item(&f->next); it < pl.nitems; it = gb_next_item(&f->next)) fwd_item(&pl, a, f->Ap, it);
}

static int run_forward(const conv_args *a, wview wv) {
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, K = Cg * a->KH * a->KW, Mp = (OCg + FMR - 1) / FMR * FMR;
    float *Ap = cvx_buf(5, (size_t)(a->G * Mp * K));
    if (!Ap) return -1;
    fast_ctx f = {a, Ap, wv, NULL, NULL, NULL, 0, 0, 0, 0};
    gb_parallel(fwd_task, &f, fast_threads(a));
    return f.err ? -1 : 1;
}

static int fast_ok(const conv_args *a) {
    if (gb_isa() < GB_ISA_AVX512) return 0;
    if (a->C == a->G && a->OC == a->G) return 0;  /* depthwise: conv.c's direct taps */
    /* lane and tap offsets are int32: the input, and one image's padded planes, must index in 31 bits */
    int64_t Hp, Wp;
    cvx_padded_dims(a, &Hp, &Wp);
    return a->B * a->C * a->H * a->W < (INT64_C(1) << 31) && a->C * Hp * Wp < (INT64_C(1) << 30);
}

int conv_fast_forward(const conv_args *a) {
    if (!fast_ok(a)) return 0;
    wview wv = {a->weight, 0, 0, 0, 0, 0, 0, 0};
    return run_forward(a, wv);
}

/* ---- backward -------------------------------------------------------------------------------- */
/* dweight: the batch in DW_SLOTS fixed slices, taken dynamically, each summed into its own partial; the
 * partials are added in slice order after the barrier. The sums' order depends on neither the thread
 * count nor the schedule (deterministic), and a thread that starts late or shares its core does fewer
 * slices. */
#define DW_SLOTS 4
static int64_t dw_slots(const conv_args *a) { return a->B < DW_SLOTS ? a->B : DW_SLOTS; }

GB_TARGET_AVX512 static void dw_task(void *ctx, int t, int nt) {
    fast_ctx *f = ctx;
    const conv_args *a = f->a;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, T = a->KH * a->KW, K = Cg * T, P = a->OH * a->OW;
    int64_t Kp = (K + FNR - 1) / FNR * FNR, Mp = (OCg + FMR - 1) / FMR * FMR, ns = dw_slots(a);
    int64_t nb = chunk_images(P * Kp, (a->B + ns - 1) / ns), R = nb * P, Hp, Wp;
    int tapmajor = Cg % 16 == 0;
    cvx_padded_dims(a, &Hp, &Wp);
    float *Bp = cvx_buf(0, (size_t)(Kp * R)), *Ap = cvx_buf(1, (size_t)(Mp * R));
    /* tap-major: xt (H*W, Cg); else the padded planes and col (K8, R) */
    float *xt = cvx_buf(2, (size_t)(tapmajor ? a->H * a->W * Cg : nb * Cg * Hp * Wp));
    float *col = tapmajor ? xt : cvx_buf(3, (size_t)((K + 7) / 8 * 8 * R));
    if (!Bp || !Ap || !xt || !col) fail(f);
    for (int64_t sl = gb_next_item(&f->next); sl < ns && !__atomic_load_n(&f->err, __ATOMIC_RELAXED);
         sl = gb_next_item(&f->next)) {
        int64_t b0, b1;
        float *part = f->dw_part + sl * a->OC * K;   /* (OC, K'), written by the slice's first chunk */
        gb_split(a->B, (int)sl, (int)ns, &b0, &b1);
        for (int64_t bs = b0; bs < b1; bs += nb) {
            int64_t n = imin(nb, b1 - bs);
            for (int64_t g = 0; g < a->G; g++) {
                const float *xg = a->inp + (bs * a->C + g * Cg) * a->H * a->W;
                if (tapmajor) cvx_im2colT32(Bp, xt, xg, n, a);
                else cvx_im2colT_small(Bp, col, xt, xg, n, a, Hp, Wp);
                cvx_pack_a_rows(Ap, a->dout + (bs * a->OC + g * OCg) * P, P, P, a->OC * P, OCg, n * P);
                cmap cm = {part + g * OCg * K, K, INT64_MAX / 4, 0};
                fk_gemm(&cm, Ap, Bp, OCg, K, n * P, bs > b0, NULL);
            }
        }
        __atomic_add_fetch(&f->done, 1, __ATOMIC_RELEASE);
    }
    wait_count(&f->done, ns, &f->err);  /* every slice summed (not a barrier: see wait_count) */
    if (__atomic_load_n(&f->err, __ATOMIC_RELAXED)) return;
    /* dweight[oc, c, tap] = the slices' part[s, oc, k'] summed in slice order (k' = tap*Cg + c when
     * tap-major), blocks of 8 rows claimed dynamically */
    (void)t;
    (void)nt;
    float *sum = Bp;  /* (K',): the panels are no longer needed */
    for (int64_t ob = gb_next_item(&f->next2); ob * 8 < a->OC; ob = gb_next_item(&f->next2))
        for (int64_t oc = ob * 8; oc < imin(a->OC, ob * 8 + 8); oc++) {
            float *d = f->dweight + oc * K;
            if (!tapmajor) sum = d;  /* conv order already: sum in place */
            memcpy(sum, f->dw_part + oc * K, (size_t)K * sizeof(float));
            for (int64_t u = 1; u < ns; u++) {
                const float *pu = f->dw_part + (u * a->OC + oc) * K;
                #pragma omp simd
                for (int64_t k = 0; k < K; k++) sum[k] += pu[k];
            }
            if (tapmajor) cvx_transpose(d, T, sum, Cg, T, Cg);  /* (T, Cg) -> (Cg, T) */
        }
}

static void dx_strided_task(void *ctx, int t, int nt) {
    fast_ctx *f = ctx;
    const conv_args *a = f->a;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, K = Cg * a->KH * a->KW, P = a->OH * a->OW;
    int64_t Kr = (K + FMR - 1) / FMR * FMR;
    (void)t;
    int64_t nb = chunk_dynamic(P * (K > OCg ? K : OCg), a->B, nt), N = nb * P, nitems = (a->B + nb - 1) / nb;
    float *Bp = cvx_buf(0, (size_t)((N + FNR - 1) / FNR * FNR * OCg)), *dcol = cvx_buf(1, (size_t)(K * N));
    if (!Bp || !dcol) {
        fail(f);
        return;
    }
    for (int64_t it = gb_next_item(&f->next); it < nitems; it = gb_next_item(&f->next)) {
        int64_t bs = it * nb, n = imin(nb, a->B - bs);
        for (int64_t g = 0; g < a->G; g++) {
            cvx_rows32(Bp, a->dout + (bs * a->OC + g * OCg) * P, P, a->OC * P, OCg, P, n * P);
            cmap cm = {dcol, n * P, n * P, 0};
            fk_gemm(&cm, f->At + g * Kr * OCg, Bp, K, n * P, OCg, 0, NULL);
            for (int64_t jb = 0; jb < n; jb++) {
                float *dx = a->dinp + ((bs + jb) * a->C + g * Cg) * a->H * a->W;  /* (Cg, H, W) */
                memset(dx, 0, (size_t)(Cg * a->H * a->W) * sizeof(float));
                conv_col2im(dx, dcol + jb * P, n * P, a);
            }
        }
    }
}

static void db_task(void *ctx, int t, int nt) {
    fast_ctx *f = ctx;
    const conv_args *a = f->a;
    int64_t P = a->OH * a->OW, o0, o1;
    gb_split(a->OC, t, nt, &o0, &o1);
    for (int64_t oc = o0; oc < o1; oc++) {
        double s = 0.0;
        for (int64_t b = 0; b < a->B; b++) {
            const float *r = a->dout + (b * a->OC + oc) * P;
            float sb = 0.0f;
            #pragma omp simd reduction(+:sb)
            for (int64_t p = 0; p < P; p++) sb += r[p];
            s += sb;
        }
        a->db_part[oc] = (float)s;
    }
}

/* dinp of a strided, undilated convolution by phases: the rows ih = sh*i + py (columns likewise) receive
 * only the taps kh = rh + m*sh, rh = (py + pt) % sh, from dout rows oh = i + qh - m, qh = (py + pt - rh)/sh:
 * a stride-1 forward convolution of dout with Mh x Mw taps (flipped) and pads Mh-1-qh, Mw-1-qw. The
 * phases are written to scratch, then interleaved into dx in parallel (no col2im, no scatter-add). */
#define MAX_PHASES 16
/* All the phases in one parallel region: the team packs every phase's weights, then takes items
 * (phase, chunk of images) dynamically; an item runs its phase's forward on its images into scratch and
 * interleaves them into dx at once (cache-hot). A phase no tap reaches is zeroed, 8 images an item. */
typedef struct {
    const conv_args *a;             /* the layer */
    float *dinp;
    int nph;
    conv_args d[MAX_PHASES];        /* each phase's forward (d.KH == 0: no tap reaches it); d.out: scratch */
    wview wv[MAX_PHASES];
    float *Ap[MAX_PHASES];
    int64_t py[MAX_PHASES], px[MAX_PHASES];
    int64_t next, next2, done;
    int err;
} phases_ctx;

static int64_t phase_wblocks(const conv_args *d) {
    return d->KH ? d->G * ((d->OC / d->G + FMR - 1) / FMR) : 0;
}

static void phases_task(void *ctx, int t, int nt) {
    phases_ctx *f = ctx;
    const conv_args *a = f->a;
    int64_t q0[MAX_PHASES + 1], i0[MAX_PHASES + 1];  /* prefix sums of weight blocks and items (from nt) */
    fplan pl;
    (void)t;
    q0[0] = i0[0] = 0;
    for (int p = 0; p < f->nph; p++) {
        q0[p + 1] = q0[p] + phase_wblocks(&f->d[p]);
        if (f->d[p].KH) fwd_geometry(&pl, &f->d[p], nt);
        i0[p + 1] = i0[p] + (f->d[p].KH ? pl.nitems : (a->B + 7) / 8);
    }
    for (int64_t q = gb_next_item(&f->next2); q < q0[f->nph]; q = gb_next_item(&f->next2)) {
        int p = 0;
        while (q >= q0[p + 1]) p++;
        const conv_args *d = &f->d[p];
        int64_t nbk = (d->OC / d->G + FMR - 1) / FMR, K = (d->C / d->G) * d->KH * d->KW, g = (q - q0[p]) / nbk;
        int64_t r0 = ((q - q0[p]) % nbk) * FMR;
        pack_wblock(f->Ap[p] + (g * nbk * FMR + r0) * K, &f->wv[p], d, g, r0);
        __atomic_add_fetch(&f->done, 1, __ATOMIC_RELEASE);
    }
    wait_count(&f->done, q0[f->nph], &f->err);
    int cur = -1;
    for (int64_t it = gb_next_item(&f->next); it < i0[f->nph] && !__atomic_load_n(&f->err, __ATOMIC_RELAXED);
         it = gb_next_item(&f->next)) {
        int p = 0;
        while (it >= i0[p + 1]) p++;
        const conv_args *d = &f->d[p];
        int64_t py = f->py[p], px = f->px[p], sh = a->sh, sw = a->sw, bs, n;
        int64_t Hph = (a->H - py + sh - 1) / sh, Wph = (a->W - px + sw - 1) / sw;
        if (d->KH) {
            if (p != cur) {
                fwd_geometry(&pl, d, nt);
                if (!fwd_scratch(&pl, d)) {
                    __atomic_store_n(&f->err, 1, __ATOMIC_RELAXED);
                    return;
                }
                cur = p;
            }
            fwd_item(&pl, d, f->Ap[p], it - i0[p]);
            bs = (it - i0[p]) * pl.nb;
            n = imin(pl.nb, a->B - bs);
        } else {
            bs = (it - i0[p]) * 8;
            n = imin(8, a->B - bs);
        }
        for (int64_t bc = bs * a->C; bc < (bs + n) * a->C; bc++) {  /* interleave (or zero) these images */
            const float *o = d->KH ? d->out + bc * Hph * Wph : NULL;
            float *dx = f->dinp + bc * a->H * a->W + py * a->W + px;
            for (int64_t i = 0; i < Hph; i++)
                for (int64_t j = 0; j < Wph; j++) dx[i * sh * a->W + j * sw] = o ? o[i * Wph + j] : 0.0f;
        }
    }
}

static int dx_phases(float *dinp, const conv_args *a) {
    int64_t sh = a->sh, sw = a->sw, nA = 0;
    phases_ctx f;
    memset(&f, 0, sizeof f);
    f.a = a;
    f.dinp = dinp;
    float *out = cvx_buf(7, (size_t)(a->B * a->C * a->H * a->W));
    if (!out) return -1;
    for (int64_t py = 0; py < sh && py < a->H; py++)
        for (int64_t px = 0; px < sw && px < a->W; px++) {
            int p = f.nph++;
            int64_t Hph = (a->H - py + sh - 1) / sh, Wph = (a->W - px + sw - 1) / sw;
            int64_t rh = (py + a->pt) % sh, rw = (px + a->pl) % sw;
            int64_t Mh = rh < a->KH ? (a->KH - 1 - rh) / sh + 1 : 0, Mw = rw < a->KW ? (a->KW - 1 - rw) / sw + 1 : 0;
            int64_t qh = (py + a->pt - rh) / sh, qw = (px + a->pl - rw) / sw;
            conv_args *d = &f.d[p];
            *d = *a;
            f.py[p] = py;
            f.px[p] = px;
            if (Mh == 0 || Mw == 0) {  /* no tap reaches these positions: zeros */
                d->KH = d->KW = 0;
                continue;
            }
            d->out = out; d->inp = a->dout; d->weight = NULL; d->bias = NULL;
            d->C = a->OC; d->H = a->OH; d->W = a->OW; d->OC = a->C; d->KH = Mh; d->KW = Mw; d->OH = Hph; d->OW = Wph;
            d->sh = d->sw = 1; d->pt = Mh - 1 - qh; d->pl = Mw - 1 - qw;
            wview wv = {a->weight, 1, a->KH, a->KW, rh, rw, sh, sw};  /* the taps rh + m*sh, rw + n*sw */
            f.wv[p] = wv;
            out += a->B * a->C * Hph * Wph;
            nA += phase_wblocks(d) * FMR * (d->C / d->G) * Mh * Mw;
        }
    float *Ap = cvx_buf(5, (size_t)(nA > 0 ? nA : 1));
    if (!Ap) return -1;
    for (int p = 0; p < f.nph; p++) {
        f.Ap[p] = Ap;
        Ap += phase_wblocks(&f.d[p]) * FMR * (f.d[p].C / f.d[p].G) * f.d[p].KH * f.d[p].KW;
    }
    gb_parallel(phases_task, &f, fast_threads(a));
    return f.err ? -1 : 1;
}

int conv_fast_backward(float *dinp, float *dweight, float *dbias, const conv_args *a) {
    if (!fast_ok(a)) return 0;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, T = a->KH * a->KW, K = Cg * T;
    int nt = fast_threads(a);
    if (dbias) {
        conv_args b = *a;
        b.db_part = dbias;
        fast_ctx f = {&b, NULL, {NULL, 0, 0, 0, 0, 0, 0, 0}, NULL, NULL, NULL, 0, 0, 0, 0};
        gb_parallel(db_task, &f, a->OC >= 64 && a->B * a->OC * a->OH * a->OW >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    }
    if (dweight) {
        float *part = cvx_buf(6, (size_t)(dw_slots(a) * a->OC * K));
        if (!part) return -1;
        fast_ctx f = {a, NULL, {NULL, 0, 0, 0, 0, 0, 0, 0}, part, NULL, dweight, 0, 0, 0, 0};
        gb_parallel(dw_task, &f, nt);
        if (f.err) return -1;
    }
    if (dinp) {
        int r;
        if (a->sh == 1 && a->sw == 1 && Cg >= 8) {  /* (fewer input channels would waste the tile's rows) */
            /* A = W'[g, c, (oc, kh', kw')] = W[g*OCg + oc, c, KH-1-kh', KW-1-kw'] (packed from W directly) */
            conv_args d = *a;
            d.out = dinp; d.inp = a->dout; d.weight = NULL; d.bias = NULL;
            d.C = a->OC; d.H = a->OH; d.W = a->OW; d.OC = a->C; d.OH = a->H; d.OW = a->W;
            d.pt = a->dh * (a->KH - 1) - a->pt; d.pl = a->dw * (a->KW - 1) - a->pl;
            wview wv = {a->weight, 1, a->KH, a->KW, 0, 0, 1, 1};
            r = run_forward(&d, wv);
        } else if (a->dh == 1 && a->dw == 1 && Cg >= 8 && a->sh * a->sw <= MAX_PHASES) {
            r = dx_phases(dinp, a);
        } else {
            int64_t Kr = (K + FMR - 1) / FMR * FMR;
            float *At = cvx_buf(4, (size_t)(a->G * Kr * OCg));
            if (!At) return -1;
            for (int64_t g = 0; g < a->G; g++)  /* A(k, oc) = W[g*OCg + oc, k] */
                cvx_pack_a(At + g * Kr * OCg, a->weight + g * OCg * K, 1, K, OCg, 0, K, OCg);
            conv_args d = *a;
            d.dinp = dinp;
            fast_ctx f = {&d, NULL, {NULL, 0, 0, 0, 0, 0, 0, 0}, NULL, At, NULL, 0, 0, 0, 0};
            gb_parallel(dx_strided_task, &f, nt);
            r = f.err ? -1 : 1;
        }
        if (r < 0) return -1;
    }
    return 1;
}

#else
int conv_fast_forward(const conv_args *a) { (void)a; return 0; }
int conv_fast_backward(float *dinp, float *dweight, float *dbias, const conv_args *a) {
    (void)dinp; (void)dweight; (void)dbias; (void)a;
    return 0;
}
#endif
