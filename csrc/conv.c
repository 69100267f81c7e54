/* conv2d over NCHW as implicit GEMMs, one (image, group) pair at a time: the AVX2 and base tiers, and
 * depthwise convolutions on every tier. On an AVX-512 CPU every other convolution runs conv_avx512.c's
 * path (conv2d_forward/backward try it first), but for the large stride-1 3x3 products that Winograd does
 * faster (winograd_over_avx512, below).
 *
 * The team splits the B*G (image, group) pairs statically (a deterministic sum order for dweight at a
 * given thread count). Each thread writes its pair's patches straight into the micro-kernel's B panels
 * (NR columns wide, zero-padded; a 3x3 over 64 channels at 16x16 is 590 KB, L2-resident) and runs the
 * unpacked register-blocked GEMM (gb_gemm_small) with the other operand read in place: the
 * whole-batch im2col matrix is never materialised and no operand is packed twice.
 *   forward  out[b,g] (OCg,P) = weight[g] (OCg,K) . col (K,P)          B = col panels
 *   dweight  dweight[g] += dout[b,g] (OCg,P) . col^T (P,K)             B = col^T panels; per-thread
 *                                                                      partials summed after the join
 *   dinp     dcol = weight[g]^T (K,OCg) . dout[b,g] (OCg,P)             then col2im (scatter-add)
 * A 1x1, stride-1, unpadded convolution reads the input as B directly (forward) and writes dinp
 * directly; depthwise convolutions (Cg = OCg = 1) run the taps directly. Stride-1 undilated 3x3
 * convolutions run Winograd F(2x2, 3x3) instead (conv_winograd.c), each product where it measured faster:
 * the forward with >= 8 channels in and out a group, dinp with >= 16 in, dweight with >= 3 in and 8 out.
 * Backward recomputes the patches (nothing is saved but x). */
#include <stdlib.h>
#include "internal/gb_common.h"
#include "internal/gb_gemm.h"
#include "internal/gb_pool.h"
#include "internal/conv_args.h"
#include "conv.h"



float *conv_alloc(size_t nfloats) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (nfloats ? nfloats : 1) * sizeof(float))) return NULL;
    return p;
}

static int pointwise(const conv_args *a) {
    return a->KH == 1 && a->KW == 1 && a->sh == 1 && a->sw == 1 && a->pt == 0 && a->pl == 0 &&
           a->OH == a->H && a->OW == a->W;
}

/* [ow0, ow1): the output columns whose tap kw reads inside the row (iw = ow*sw + off in [0, W)) */
void conv_valid_cols(const conv_args *a, int64_t off, int64_t *ow0, int64_t *ow1) {
    int64_t lo = off >= 0 ? 0 : (-off + a->sw - 1) / a->sw;
    int64_t hi = a->W - off <= 0 ? 0 : (a->W - off + a->sw - 1) / a->sw;
    if (hi > a->OW) hi = a->OW;
    if (lo > hi) lo = hi;
    *ow0 = lo;
    *ow1 = hi;
}

/* row (P,) <- tap (kh, kw) of channel c of x (Cg, H, W): row[oh*OW + ow] = x[c, ih, iw] or 0 outside;
 * [ow0, ow1): the tap's valid output columns (conv_valid_cols) */
static void tap_row(float *row, const float *x, const conv_args *a, int64_t c, int64_t kh, int64_t kw,
                    int64_t ow0, int64_t ow1) {
    const float *xc = x + c * a->H * a->W;
    int64_t off = kw * a->dw - a->pl;
    for (int64_t oh = 0; oh < a->OH; oh++) {
        int64_t ih = oh * a->sh - a->pt + kh * a->dh;
        float *r = row + oh * a->OW;
        if (ih < 0 || ih >= a->H) {
            memset(r, 0, (size_t)a->OW * sizeof(float));
            continue;
        }
        const float *xr = xc + ih * a->W + off;
        for (int64_t ow = 0; ow < ow0; ow++) r[ow] = 0.0f;
        if (a->sw == 1) memcpy(r + ow0, xr + ow0, (size_t)(ow1 - ow0) * sizeof(float));
        else for (int64_t ow = ow0; ow < ow1; ow++) r[ow] = xr[ow * a->sw];
        for (int64_t ow = ow1; ow < a->OW; ow++) r[ow] = 0.0f;
    }
}

/* The valid output columns of each kernel column kw, tabulated once a call for up to COLS_TAB_KW of them
 * (computed per tap beyond) */
#define COLS_TAB_KW 32
typedef struct { int64_t lo[COLS_TAB_KW], hi[COLS_TAB_KW]; } tap_cols;

static void tabulate_cols(tap_cols *t, const conv_args *a) {
    for (int64_t kw = 0; kw < a->KW && kw < COLS_TAB_KW; kw++) conv_valid_cols(a, kw * a->dw - a->pl, &t->lo[kw], &t->hi[kw]);
}

static void cols_of(const tap_cols *t, const conv_args *a, int64_t kw, int64_t *ow0, int64_t *ow1) {
    if (kw < COLS_TAB_KW) *ow0 = t->lo[kw], *ow1 = t->hi[kw];
    else conv_valid_cols(a, kw * a->dw - a->pl, ow0, ow1);
}

/* A strided convolution's taps read a zero-padded copy of the channel instead (xp (Hp, Wp), the rows and
 * columns the windows reach): no bounds checks per tap row, which at a 4x4 output were a third of im2col. */
static int strided(const conv_args *a) { return a->sh > 1 || a->sw > 1; }

static void padded_plane_dims(const conv_args *a, int64_t *Hp, int64_t *Wp) {
    *Hp = (a->OH - 1) * a->sh + (a->KH - 1) * a->dh + 1;
    *Wp = (a->OW - 1) * a->sw + (a->KW - 1) * a->dw + 1;
}

/* xp (Hp, Wp) <- channel xc (H, W) shifted by the pads: xp[r][q] = xc[r - pt][q - pl] or 0 outside */
static void pad_channel(float *xp, const float *xc, const conv_args *a, int64_t Hp, int64_t Wp) {
    int64_t q0 = a->pl < Wp ? a->pl : Wp, q1 = a->pl + a->W < Wp ? a->pl + a->W : Wp;
    for (int64_t r = 0; r < Hp; r++) {
        float *d = xp + r * Wp;
        int64_t ih = r - a->pt;
        if (ih < 0 || ih >= a->H || q0 >= q1) {
            memset(d, 0, (size_t)Wp * sizeof(float));
            continue;
        }
        memset(d, 0, (size_t)q0 * sizeof(float));
        memcpy(d + q0, xc + ih * a->W + q0 - a->pl, (size_t)(q1 - q0) * sizeof(float));
        memset(d + q1, 0, (size_t)(Wp - q1) * sizeof(float));
    }
}

/* row (P,) <- tap (kh, kw) read from the padded channel xp (Hp, Wp) */
static void tap_row_padded(float *row, const float *xp, int64_t Wp, const conv_args *a, int64_t kh, int64_t kw) {
    for (int64_t oh = 0; oh < a->OH; oh++) {
        const float *src = xp + (oh * a->sh + kh * a->dh) * Wp + kw * a->dw;
        float *r = row + oh * a->OW;
        if (a->sw == 2)
            for (int64_t ow = 0; ow < a->OW; ow++) r[ow] = src[2 * ow];
        else
            for (int64_t ow = 0; ow < a->OW; ow++) r[ow] = src[ow * a->sw];
    }
}

/* One image's taps, channel by channel: bounds-checked rows of x, or for a strided convolution rows of a
 * zero-padded copy of the current channel (xp; NULL if it could not be allocated) */
typedef struct {
    tap_cols tc;
    float *xp;
    int64_t Hp, Wp;
} tap_reader;

static void tap_reader_init(tap_reader *r, const conv_args *a) {
    tabulate_cols(&r->tc, a);
    padded_plane_dims(a, &r->Hp, &r->Wp);
    r->xp = strided(a) ? conv_alloc((size_t)(r->Hp * r->Wp)) : NULL;
}

static void tap_reader_channel(tap_reader *r, const float *x, int64_t c, const conv_args *a) {
    if (r->xp) pad_channel(r->xp, x + c * a->H * a->W, a, r->Hp, r->Wp);
}

/* row (P,) <- tap (kh, kw) of channel c (the reader's current channel) */
static void read_tap(const tap_reader *r, float *row, const float *x, const conv_args *a, int64_t c, int64_t kh,
                     int64_t kw) {
    if (r->xp) {
        tap_row_padded(row, r->xp, r->Wp, a, kh, kw);
        return;
    }
    int64_t ow0, ow1;
    cols_of(&r->tc, a, kw, &ow0, &ow1);
    tap_row(row, x, a, c, kh, kw, ow0, ow1);
}

/* colp (ceil(P/NR), K, NR) <- the windows of x (Cg, H, W) written straight into the GEMM's B panels
 * (zero-padded past P), row by row through the L1-resident `row` (P floats): forward's B = col */
static void im2col_panels(float *colp, float *row, const float *x, const conv_args *a) {
    int64_t Cg = a->C / a->G, P = a->OH * a->OW, K = Cg * a->KH * a->KW;
    int64_t npan = (P + NR - 1) / NR, tail = P - (npan - 1) * NR;
    tap_reader rd;
    tap_reader_init(&rd, a);
    for (int64_t c = 0; c < Cg; c++) {
        tap_reader_channel(&rd, x, c, a);
        for (int64_t kh = 0; kh < a->KH; kh++)
            for (int64_t kw = 0; kw < a->KW; kw++) {
                int64_t k = (c * a->KH + kh) * a->KW + kw;
                float *dst = npan == 1 ? colp + k * NR : row;  /* one panel: the tap's row straight into it */
                read_tap(&rd, dst, x, a, c, kh, kw);
                if (npan == 1) {
                    for (int64_t j = P; j < NR; j++) dst[j] = 0.0f;
                    continue;
                }
                for (int64_t jp = 0; jp < npan; jp++) {
                    float *pd = colp + (jp * K + k) * NR;
                    int64_t n = jp == npan - 1 ? tail : NR;
                    memcpy(pd, row + jp * NR, (size_t)n * sizeof(float));
                    for (int64_t j = n; j < NR; j++) pd[j] = 0.0f;
                }
            }
    }
    free(rd.xp);
}

/* colT (ceil(K/NR), prow, NR) <- col^T in B panels for dweight = dout . col^T: lane k % NR of panel k / NR
 * holds patch row k in its first P rows (prow >= P: the panels of several images, interleaved by the
 * caller). The lanes past K are zeroed by the caller (rows never write them); a panel (P*NR floats, 16 KB
 * at P = 256) stays in L1 while its NR rows are written. */
static void im2col_tpanels(float *colT, int64_t prow, float *row, const float *x, const conv_args *a) {
    int64_t Cg = a->C / a->G, P = a->OH * a->OW;
    tap_reader rd;
    tap_reader_init(&rd, a);
    for (int64_t c = 0; c < Cg; c++) {
        tap_reader_channel(&rd, x, c, a);
        for (int64_t kh = 0; kh < a->KH; kh++)
            for (int64_t kw = 0; kw < a->KW; kw++) {
                int64_t k = (c * a->KH + kh) * a->KW + kw;
                read_tap(&rd, row, x, a, c, kh, kw);
                float *dst = colT + (k / NR) * prow * NR + k % NR;
                for (int64_t p = 0; p < P; p++) dst[p * NR] = row[p];
            }
    }
    free(rd.xp);
}

/* dx (Cg, H, W) += the adjoint of im2col applied to dcol (Cg*KH*KW, P) with row stride ld */
void conv_col2im(float *dx, const float *dcol, int64_t ld, const conv_args *a) {
    int64_t Cg = a->C / a->G, OW = a->OW;
    for (int64_t c = 0; c < Cg; c++) {
        float *dc = dx + c * a->H * a->W;
        for (int64_t kh = 0; kh < a->KH; kh++)
            for (int64_t kw = 0; kw < a->KW; kw++) {
                const float *row = dcol + ((c * a->KH + kh) * a->KW + kw) * ld;
                int64_t off = kw * a->dw - a->pl, ow0, ow1;
                conv_valid_cols(a, off, &ow0, &ow1);
                for (int64_t oh = 0; oh < a->OH; oh++) {
                    int64_t ih = oh * a->sh - a->pt + kh * a->dh;
                    if (ih < 0 || ih >= a->H) continue;
                    float *dr = dc + ih * a->W + off;
                    const float *r = row + oh * OW;
                    if (a->sw == 1) {
                        #pragma omp simd
                        for (int64_t ow = ow0; ow < ow1; ow++) dr[ow] += r[ow];
                    } else {
                        for (int64_t ow = ow0; ow < ow1; ow++) dr[ow * a->sw] += r[ow];
                    }
                }
            }
    }
}

/* Depthwise (Cg == OCg == 1): a GEMM with K = KH*KW and M = 1 wastes the micro-kernel, so each
 * (image, channel) plane runs the taps directly, vectorised along the output row. */
#define DW_MAX_KW 16  /* the valid column ranges of up to this many taps are tabulated per plane */
/* The depthwise loops' tiers: as GB_MULTIVERSION, with 512-bit vectors on the AVX-512 tier (the plane
 * loops are a few hundred floats long; GCC's default there is 256-bit vectors) */
#if GB_X86
#define DW_MULTIVERSION(name, params, call)                                                                  \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prefer-vector-width=512")))        \
    static void name##_avx512 params { call; }                                                            \
    GB_TARGET_AVX2 static void name##_avx2 params { call; }                                               \
    static void name##_base params { call; }
#else
#define DW_MULTIVERSION GB_MULTIVERSION
#endif
#define DW_BLOCK 16   /* planes per item of the depthwise forward's dynamic schedule */
static int depthwise(const conv_args *a) { return a->C == a->G && a->OC == a->G && a->KW <= DW_MAX_KW; }

static inline GB_INLINE void dw_fwd_body(float *o, const float *x, const float *w, float bias, const conv_args *a) {
    /* o (OH, OW), x (H, W), w (KH, KW) */
    int64_t OW = a->OW, sw = a->sw, lo[DW_MAX_KW], hi[DW_MAX_KW];
    for (int64_t kw = 0; kw < a->KW; kw++) conv_valid_cols(a, kw * a->dw - a->pl, &lo[kw], &hi[kw]);
    for (int64_t oh = 0; oh < a->OH; oh++) {
        float *orow = o + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) orow[ow] = bias;
        for (int64_t kh = 0; kh < a->KH; kh++) {
            int64_t ih = oh * a->sh - a->pt + kh * a->dh;
            if (ih < 0 || ih >= a->H) continue;
            const float *xr = x + ih * a->W - a->pl;
            for (int64_t kw = 0; kw < a->KW; kw++) {
                float wv = w[kh * a->KW + kw];
                const float *xk = xr + kw * a->dw;
                if (sw == 1) {
                    #pragma omp simd
                    for (int64_t ow = lo[kw]; ow < hi[kw]; ow++) orow[ow] += wv * xk[ow];
                } else {
                    for (int64_t ow = lo[kw]; ow < hi[kw]; ow++) orow[ow] += wv * xk[ow * sw];
                }
            }
        }
    }
}
DW_MULTIVERSION(dw_fwd, (float *o, const float *x, const float *w, float bias, const conv_args *a),
                dw_fwd_body(o, x, w, bias, a))

static inline GB_INLINE void dw_bwd_body(float *dx, float *dwt, float *dbt, const float *dy, const float *x,
                                         const float *w, const conv_args *a) {
    /* dx (H, W)|NULL (zeroed here), dwt (KH*KW,)|NULL and dbt (1,)|NULL accumulated; dy (OH, OW) */
    int64_t OW = a->OW, sw = a->sw, lo[DW_MAX_KW], hi[DW_MAX_KW];
    for (int64_t kw = 0; kw < a->KW; kw++) conv_valid_cols(a, kw * a->dw - a->pl, &lo[kw], &hi[kw]);
    if (dx) memset(dx, 0, (size_t)(a->H * a->W) * sizeof(float));
    for (int64_t oh = 0; oh < a->OH; oh++) {
        const float *g = dy + oh * OW;
        if (dbt) {
            float s = 0.0f;
            #pragma omp simd reduction(+:s)
            for (int64_t ow = 0; ow < OW; ow++) s += g[ow];
            dbt[0] += s;
        }
        for (int64_t kh = 0; kh < a->KH; kh++) {
            int64_t ih = oh * a->sh - a->pt + kh * a->dh;
            if (ih < 0 || ih >= a->H) continue;
            for (int64_t kw = 0; kw < a->KW; kw++) {
                int64_t off = kw * a->dw - a->pl, tap = kh * a->KW + kw, ow0 = lo[kw], ow1 = hi[kw];
                if (dwt) {
                    const float *xr = x + ih * a->W + off;
                    float s = 0.0f;
                    if (sw == 1) {
                        #pragma omp simd reduction(+:s)
                        for (int64_t ow = ow0; ow < ow1; ow++) s += g[ow] * xr[ow];
                    } else {
                        for (int64_t ow = ow0; ow < ow1; ow++) s += g[ow] * xr[ow * sw];
                    }
                    dwt[tap] += s;
                }
                if (dx) {
                    float *dr = dx + ih * a->W + off, wv = w[tap];
                    if (sw == 1) {
                        #pragma omp simd
                        for (int64_t ow = ow0; ow < ow1; ow++) dr[ow] += wv * g[ow];
                    } else {
                        for (int64_t ow = ow0; ow < ow1; ow++) dr[ow * sw] += wv * g[ow];
                    }
                }
            }
        }
    }
}
DW_MULTIVERSION(dw_bwd, (float *dx, float *dwt, float *dbt, const float *dy, const float *x, const float *w,
                         const conv_args *a),
                dw_bwd_body(dx, dwt, dbt, dy, x, w, a))

/* Stride-1 depthwise on zero-padded planes: with the output held at the padded row stride Wp, every
 * tap is one flat loop of (OH-1)*Wp + OW multiply-adds over shifted views (no per-row edge tests);
 * the Wp - OW columns past each output row are scratch (discarded, or zero in the gradient plane). */
static int dw_flat(const conv_args *a) { return a->sh == 1 && a->sw == 1; }

static void dw_pad_plane(float *xp, const float *x, const conv_args *a, int64_t Hp, int64_t Wp) {
    memset(xp, 0, (size_t)(Hp * Wp) * sizeof(float));
    for (int64_t ih = 0; ih < a->H; ih++) memcpy(xp + (ih + a->pt) * Wp + a->pl, x + ih * a->W, (size_t)a->W * sizeof(float));
}

static inline GB_INLINE void dw1_fwd_body(float *o, const float *x, const float *w, float bias, float *xp, float *t,
                                          const conv_args *a) {
    /* o (OH, OW), x (H, W), w (KH, KW); scratch xp (Hp, Wp), t (OH, Wp) */
    int64_t Wp = a->OW + a->dw * (a->KW - 1), Hp = a->OH + a->dh * (a->KH - 1), n = (a->OH - 1) * Wp + a->OW;
    dw_pad_plane(xp, x, a, Hp, Wp);
    for (int64_t p = 0; p < n; p++) t[p] = bias;
    for (int64_t kh = 0; kh < a->KH; kh++)
        for (int64_t kw = 0; kw < a->KW; kw++) {
            const float *xs = xp + kh * a->dh * Wp + kw * a->dw;
            float wv = w[kh * a->KW + kw];
            #pragma omp simd
            for (int64_t p = 0; p < n; p++) t[p] += wv * xs[p];
        }
    for (int64_t oh = 0; oh < a->OH; oh++) memcpy(o + oh * a->OW, t + oh * Wp, (size_t)a->OW * sizeof(float));
}
DW_MULTIVERSION(dw1_fwd, (float *o, const float *x, const float *w, float bias, float *xp, float *t,
                          const conv_args *a), dw1_fwd_body(o, x, w, bias, xp, t, a))

static inline GB_INLINE void dw1_bwd_body(float *dx, float *dwt, float *dbt, const float *dy, const float *x,
                                          const float *w, float *xp, float *dxp, float *gp, const conv_args *a) {
    /* dx (H, W)|NULL, dwt (KH*KW,)|NULL and dbt (1,)|NULL accumulated; dy (OH, OW); scratch xp, dxp (Hp, Wp),
     * gp (OH, Wp) = dy at the padded stride with zero columns */
    int64_t Wp = a->OW + a->dw * (a->KW - 1), Hp = a->OH + a->dh * (a->KH - 1), n = (a->OH - 1) * Wp + a->OW;
    for (int64_t oh = 0; oh < a->OH; oh++) {
        memcpy(gp + oh * Wp, dy + oh * a->OW, (size_t)a->OW * sizeof(float));
        if (oh + 1 < a->OH) memset(gp + oh * Wp + a->OW, 0, (size_t)(Wp - a->OW) * sizeof(float));
    }
    if (dbt) {
        float sacc = 0.0f;
        #pragma omp simd reduction(+:sacc)
        for (int64_t p = 0; p < n; p++) sacc += gp[p];
        dbt[0] += sacc;
    }
    if (dwt) dw_pad_plane(xp, x, a, Hp, Wp);
    if (dx) memset(dxp, 0, (size_t)(Hp * Wp) * sizeof(float));
    for (int64_t kh = 0; kh < a->KH; kh++)
        for (int64_t kw = 0; kw < a->KW; kw++) {
            int64_t shift = kh * a->dh * Wp + kw * a->dw, tap = kh * a->KW + kw;
            if (dwt) {
                const float *xs = xp + shift;
                float sacc = 0.0f;
                #pragma omp simd reduction(+:sacc)
                for (int64_t p = 0; p < n; p++) sacc += gp[p] * xs[p];
                dwt[tap] += sacc;
            }
            if (dx) {
                float *ds = dxp + shift, wv = w[tap];
                #pragma omp simd
                for (int64_t p = 0; p < n; p++) ds[p] += wv * gp[p];
            }
        }
    if (dx)
        for (int64_t ih = 0; ih < a->H; ih++)
            memcpy(dx + ih * a->W, dxp + (ih + a->pt) * Wp + a->pl, (size_t)a->W * sizeof(float));
}
DW_MULTIVERSION(dw1_bwd, (float *dx, float *dwt, float *dbt, const float *dy, const float *x, const float *w,
                          float *xp, float *dxp, float *gp, const conv_args *a),
                dw1_bwd_body(dx, dwt, dbt, dy, x, w, xp, dxp, gp, a))

/* ---- the GEMM: C (M,N) (=|+=) A (M,K) . B (K,N), A read in place, B in NR-column panels: gb_gemm_small
 * (gemm_core.c), whose AVX-512 tier runs the SGEMM's 6x32 tile. ws: gb_gemm_small_ws(K) floats. */
static void conv_gemm(float *c, int64_t ldc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t ldb,
                      int64_t bps, int64_t M, int64_t N, int64_t K, int accumulate, float *ws) {
    gb_gemm_small(c, ldc, a, ars, acs, b, ldb, bps, M, N, K, accumulate, GB_TRI_NONE, 0, ws);
}

static void mark_error(conv_args *a) { __atomic_store_n(&a->err, 1, __ATOMIC_RELAXED); }

/* Images a dweight GEMM: with few output pixels an image (a stride-2 3x3 at 4x4 has P = 16) the reduction
 * of dweight[g] (OCg, K) += dy (OCg, P) . col^T (P, K) is P deep, so the C tile (590 KB at 128 channels)
 * would be read and written for every image; the patches of several images are stacked along the
 * reduction instead. Groups keep one (image, group) pair a GEMM. */
#define DW_BATCH_ROWS 64  /* reduction rows (output pixels) a batched dweight GEMM, at least */
static int64_t images_a_dweight_gemm(const conv_args *a) {
    int64_t P = a->OH * a->OW;
    if (a->G > 1 || P >= DW_BATCH_ROWS) return 1;
    return (DW_BATCH_ROWS + P - 1) / P;
}

/* dw (OC, K) += the weight gradient of images [i0, i1) in GEMMs of nbat images (G == 1): A = their dy rows
 * side by side (dycat (OC, nb*P)), B = their colT panels stacked (col (kpan, nb*P, NR) + one row) */
static void dweight_batched(float *dw, const conv_args *a, int64_t i0, int64_t i1, int64_t nbat, float *col,
                            float *dycat, float *ws) {
    int64_t P = a->OH * a->OW, K = a->C * a->KH * a->KW, kpan = (K + NR - 1) / NR;
    for (int64_t b0 = i0; b0 < i1; b0 += nbat) {
        int64_t nb = i1 - b0 < nbat ? i1 - b0 : nbat, rows = nb * P;
        if (K % NR)  /* the lanes past K of the last panel: zero, never written by a row */
            for (int64_t p = 0; p < rows; p++)
                memset(col + ((kpan - 1) * rows + p) * NR + K % NR, 0, (size_t)(NR - K % NR) * sizeof(float));
        for (int64_t k = 0; k < nb; k++) {
            im2col_tpanels(col + k * P * NR, rows, col + kpan * nbat * P * NR, a->inp + (b0 + k) * a->C * a->H * a->W, a);
            for (int64_t oc = 0; oc < a->OC; oc++)
                memcpy(dycat + oc * rows + k * P, a->dout + ((b0 + k) * a->OC + oc) * P, (size_t)P * sizeof(float));
        }
        conv_gemm(dw, K, dycat, rows, 1, col, NR, rows * NR, a->OC, K, rows, 1, ws);
    }
}

static void conv_fwd_task(void *ctx, int t, int nt) {
    conv_args *a = ctx;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, K = Cg * a->KH * a->KW, P = a->OH * a->OW;
    int64_t i0, i1;
    /* depthwise: the B*C planes in blocks of DW_BLOCK, scheduled dynamically (a thread that starts
     * late or shares its core takes fewer; every plane is one thread's, so the result is the same) */
    int64_t nblk = (a->B * a->G + DW_BLOCK - 1) / DW_BLOCK;
    if (depthwise(a) && dw_flat(a)) {
        int64_t Wp = a->OW + a->dw * (a->KW - 1), Hp = a->OH + a->dh * (a->KH - 1);
        float *xp = conv_alloc((size_t)(Hp * Wp)), *t = conv_alloc((size_t)(a->OH * Wp));
        if (!xp || !t) {
            mark_error(a);
        } else {
            for (int64_t blk = gb_next_item(&a->next); blk < nblk; blk = gb_next_item(&a->next))
                for (int64_t it = blk * DW_BLOCK; it < a->B * a->G && it < (blk + 1) * DW_BLOCK; it++)
                    GB_CALL(dw1_fwd, (a->out + it * P, a->inp + it * a->H * a->W, a->weight + (it % a->G) * K,
                                      a->bias ? a->bias[it % a->G] : 0.0f, xp, t, a));
        }
        free(xp);
        free(t);
        return;
    }
    if (depthwise(a)) {
        for (int64_t blk = gb_next_item(&a->next); blk < nblk; blk = gb_next_item(&a->next))
            for (int64_t it = blk * DW_BLOCK; it < a->B * a->G && it < (blk + 1) * DW_BLOCK; it++)  /* b*C + c */
                GB_CALL(dw_fwd, (a->out + it * P, a->inp + it * a->H * a->W, a->weight + (it % a->G) * K,
                                 a->bias ? a->bias[it % a->G] : 0.0f, a));
        return;
    }
    gb_split(a->B * a->G, t, nt, &i0, &i1);
    if (i0 >= i1) return;
    if (a->wino_u) {  /* a stride-1 3x3: Winograd F(2x2, 3x3) (conv_winograd.c) */
        if (conv_winograd_items(a, a->wino_u, i0, i1)) mark_error(a);
        return;
    }
    int direct = pointwise(a);
    int64_t npan = (P + NR - 1) / NR;
    float *colp = direct ? NULL : conv_alloc((size_t)npan * K * NR + (size_t)P);  /* panels + one row */
    float *ws = conv_alloc(gb_gemm_small_ws(K));
    if ((!direct && !colp) || !ws) {
        mark_error(a);
        free(colp);
        free(ws);
        return;
    }
    for (int64_t it = i0; it < i1; it++) {
        int64_t b = it / a->G, g = it % a->G;
        const float *x = a->inp + (b * a->C + g * Cg) * a->H * a->W;     /* (Cg, H, W) */
        float *o = a->out + (b * a->OC + g * OCg) * P;                    /* (OCg, P) */
        const float *wg = a->weight + g * OCg * K;                        /* (OCg, K) */
        if (direct) {  /* B = x (K, P) row-major */
            conv_gemm(o, P, wg, K, 1, x, P, NR, OCg, P, K, 0, ws);
        } else {       /* B = the packed patch panels (npan, K, NR) */
            im2col_panels(colp, colp + npan * K * NR, x, a);
            conv_gemm(o, P, wg, K, 1, colp, NR, K * NR, OCg, P, K, 0, ws);
        }
        if (a->bias)
            for (int64_t oc = 0; oc < OCg; oc++) {
                float bv = a->bias[g * OCg + oc], *orow = o + oc * P;
                #pragma omp simd
                for (int64_t p = 0; p < P; p++) orow[p] += bv;
            }
    }
    free(colp);
    free(ws);
}

static int conv_threads(const conv_args *a) {
    int64_t macs = a->B * a->OC * (a->C / a->G) * a->KH * a->KW * a->OH * a->OW;
    int nt = macs >= GB_PAR_MIN_MACS ? gb_threads() : 1;
    if (nt > a->B * a->G) nt = (int)(a->B * a->G);
    return nt < 1 ? 1 : nt;
}

/* On the AVX-512 tier conv_avx512.c's implicit GEMM runs every convolution but depthwise ones, except the
 * stride-1 3x3 products where Winograd (on the AVX-512 micro-kernel) measured faster (a 2-vCPU Xeon VM with
 * AVX-512 FP16, 2 threads, batch 32, in-process A/B): images of 16+ tiles (8x8) and 256+ tiles a batch, and
 *   forward, dx: 64+ channels in and out, 0.70-0.90x the implicit GEMM's time (64 at 8x8 0.87, 64 at 16x16
 *                0.78, 128 at 16x16 0.70); 32 channels at 16x16 took 1.03-1.13x.
 *   dweight:     32+ channels in and out and 64K+ multiply-adds a transformed element per image
 *                (Cg*OCg*tiles): 0.64-0.88x (32 at 16x16 0.80, 32 at 32x32 0.69); 32 at 8x8 1.03x.
 * Elsewhere Winograd took 1.0-1.7x: 16 channels, 4x4 images (dweight 1.4-1.5x), batches of 8 (1.1-1.2x). */
#define WINO512_MIN_C 64
#define WINO512_DW_MIN_C 32
#define WINO512_DW_MIN_WORK (INT64_C(1) << 16)
static int dx_by_convolution(const conv_args *a);
static int winograd_over_avx512(const conv_args *a, int dweight) {
    if (gb_isa() < GB_ISA_AVX512 || !conv_winograd_applies(a) || !dx_by_convolution(a)) return 0;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, mc = Cg < OCg ? Cg : OCg;
    int64_t tiles = ((a->OH + 1) / 2) * ((a->OW + 1) / 2);
    if (tiles < 16 || a->B * tiles < 256) return 0;
    return dweight ? mc >= WINO512_DW_MIN_C && Cg * OCg * tiles >= WINO512_DW_MIN_WORK : mc >= WINO512_MIN_C;
}

int conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                   int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW,
                   int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                   int64_t dh, int64_t dw, int64_t G) {
    /* out (B,OC,OH,OW), inp (B,C,H,W), weight (OC,C/G,KH,KW), bias (OC,)|NULL */
    conv_args a = {out, NULL, NULL, NULL, inp, weight, bias, NULL,
                   B, C, H, W, OC, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw, G, 0};
    int fast = winograd_over_avx512(&a, 0) ? 0 : conv_fast_forward(&a);
    if (fast) return fast < 0 ? -1 : 0;
    float *U = NULL;
    if (conv_winograd_applies(&a) && !(a.wino_u = U = conv_winograd_weights(weight, &a))) return -1;
    gb_parallel(conv_fwd_task, &a, conv_threads(&a));
    free(U);
    return a.err ? -1 : 0;
}

/* A stride-1 input gradient is the convolution of dy with the weights flipped in space and transposed
 * in channels (wflip), padded by d*(k-1) - p: im2col panels of dy and one GEMM with a KT = OCg*KH*KW
 * reduction, instead of a GEMM with an OCg-step reduction into a (K, P) column buffer that col2im reads
 * back (more than an L2 per image at 64->64 16x16). Padding larger than d*(k-1) keeps col2im, and so do
 * few input channels (the GEMM's M): at 3 (a stem) the col2im form was 2.3x faster. */
#define DX_CONV_MIN_C 16
static int dx_by_convolution(const conv_args *a) {
    return !depthwise(a) && !pointwise(a) && a->sh == 1 && a->sw == 1 && a->dh * (a->KH - 1) >= a->pt && a->dw * (a->KW - 1) >= a->pl &&
           a->C / a->G >= DX_CONV_MIN_C;
}

static conv_args transposed_args(const conv_args *a) {
    conv_args t = *a;
    t.C = a->OC, t.H = a->OH, t.W = a->OW, t.OC = a->C, t.OH = a->H, t.OW = a->W;
    t.pt = a->dh * (a->KH - 1) - a->pt, t.pl = a->dw * (a->KW - 1) - a->pl;
    return t;
}

/* dx as that transposed convolution by Winograd (conv_winograd.c); with fewer than DX_CONV_MIN_C input
 * channels (its M) col2im stays faster here too: 8 inputs and 32 outputs took 1.14x col2im's time */
static int dx_by_winograd(const conv_args *a) {
    conv_args t = transposed_args(a);
    return dx_by_convolution(a) && conv_winograd_applies(&t);
}

/* dx (Cg, H*W) of one image and group = wflip_g (Cg, KT) . the panels of dy's (OCg, OH, OW) windows under
 * the transposed arguments t; tcol: the panels and one row. Kept out of conv_bwd_task (its stride-2 dx ran
 * 8-10% slower with this inlined there). */
static __attribute__((noinline)) void dx_image_by_convolution(float *dx, const float *dy, const float *wflip_g,
                                                              const conv_args *t, float *tcol, float *ws) {
    int64_t KT = t->C / t->G * t->KH * t->KW, PT = t->OH * t->OW, tpan = (PT + NR - 1) / NR;
    im2col_panels(tcol, tcol + tpan * KT * NR, dy, t);
    conv_gemm(dx, PT, wflip_g, KT, 1, tcol, NR, KT * NR, t->OC / t->G, PT, KT, 0, ws);
}

/* wflip (G, Cg, OCg*KH*KW): wflip[g, c, (o*KH + kh)*KW + kw] = weight[g*OCg + o, c, KH-1-kh, KW-1-kw] */
static float *flip_weights(const conv_args *a) {
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, KK = a->KH * a->KW;
    float *wf = conv_alloc((size_t)(a->G * Cg * OCg * KK));
    if (!wf) return NULL;
    for (int64_t g = 0; g < a->G; g++)
        for (int64_t o = 0; o < OCg; o++)
            for (int64_t c = 0; c < Cg; c++) {
                const float *src = a->weight + ((g * OCg + o) * Cg + c) * KK;
                float *dst = wf + (g * Cg + c) * OCg * KK + o * KK;
                for (int64_t k = 0; k < KK; k++) dst[k] = src[KK - 1 - k];
            }
    return wf;
}

static void conv_bwd_task(void *ctx, int t, int nt) {
    conv_args *a = ctx;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, K = Cg * a->KH * a->KW, P = a->OH * a->OW;
    int64_t i0, i1;
    int direct = pointwise(a);
    /* depthwise: images scheduled dynamically (an image's C planes are contiguous), each summing its weight
     * and bias gradients into its own partial (dw_part (B, OC, K), db_part (B, OC)), which the caller adds
     * in image order: the result does not depend on the schedule or the thread count */
    if (depthwise(a) && dw_flat(a)) {
        int64_t Wp = a->OW + a->dw * (a->KW - 1), Hp = a->OH + a->dh * (a->KH - 1);
        float *xp = conv_alloc((size_t)(Hp * Wp)), *dxp = conv_alloc((size_t)(Hp * Wp));
        float *gp = conv_alloc((size_t)(a->OH * Wp));
        if (!xp || !dxp || !gp) {
            mark_error(a);
        } else {
            for (int64_t b = gb_next_item(&a->next); b < a->B; b = gb_next_item(&a->next)) {
                float *dwb = a->dw_part ? a->dw_part + b * a->OC * K : NULL, *dbb = a->db_part ? a->db_part + b * a->OC : NULL;
                for (int64_t c = 0; c < a->G; c++) {
                    int64_t it = b * a->G + c;
                    GB_CALL(dw1_bwd, (a->dinp ? a->dinp + it * a->H * a->W : NULL, dwb ? dwb + c * K : NULL,
                                      dbb ? dbb + c : NULL, a->dout + it * P, a->inp + it * a->H * a->W,
                                      a->weight + c * K, xp, dxp, gp, a));
                }
            }
        }
        free(xp);
        free(dxp);
        free(gp);
        return;
    }
    if (depthwise(a)) {
        for (int64_t b = gb_next_item(&a->next); b < a->B; b = gb_next_item(&a->next)) {
            float *dwb = a->dw_part ? a->dw_part + b * a->OC * K : NULL, *dbb = a->db_part ? a->db_part + b * a->OC : NULL;
            for (int64_t c = 0; c < a->G; c++) {
                int64_t it = b * a->G + c;
                GB_CALL(dw_bwd, (a->dinp ? a->dinp + it * a->H * a->W : NULL, dwb ? dwb + c * K : NULL,
                                 dbb ? dbb + c : NULL, a->dout + it * P, a->inp + it * a->H * a->W,
                                 a->weight + c * K, a));
            }
        }
        return;
    }
    float *dw_t = a->dw_part ? a->dw_part + (int64_t)t * a->OC * K : NULL;   /* (OC, K), zeroed */
    float *db_t = a->db_part ? a->db_part + (int64_t)t * a->OC : NULL;       /* (OC,), zeroed */
    gb_split(a->B * a->G, t, nt, &i0, &i1);
    if (i0 >= i1) return;
    int64_t nbat = images_a_dweight_gemm(a);  /* > 1: dweight in batched GEMMs before the loop */
    size_t w1 = gb_gemm_small_ws(nbat * P), w2 = gb_gemm_small_ws(OCg);
    int64_t kpan = (K + NR - 1) / NR;
    conv_args ta = transposed_args(a);  /* dx as the convolution of dy (with a->wflip or a->wino_u) */
    ta.inp = a->dout, ta.out = a->dinp, ta.bias = NULL;
    int64_t KT = OCg * a->KH * a->KW, tpan = (a->H * a->W + NR - 1) / NR;
    int wino_dw = dw_t && conv_winograd_dweight_applies(a);  /* dweight by Winograd F(2x2, 3x3), after the loop */
    float *col = dw_t && !wino_dw ? conv_alloc((size_t)(kpan * nbat * P * NR + P)) : NULL;  /* colT panels + one row */
    float *dycat = col && nbat > 1 ? conv_alloc((size_t)(OCg * nbat * P)) : NULL;
    int by_col2im = !direct && a->dinp && !a->wflip && !a->wino_u;
    float *dcol = by_col2im ? conv_alloc((size_t)K * P) : NULL;
    float *tcol = a->wflip ? conv_alloc((size_t)tpan * KT * NR + (size_t)(a->H * a->W)) : NULL;  /* + one row */
    float *ws = conv_alloc(w1 > w2 ? w1 : w2);
    if ((dw_t && !wino_dw && !col) || (col && nbat > 1 && !dycat) || (by_col2im && !dcol) || (a->wflip && !tcol) || !ws) {
        mark_error(a);
        free(col);
        free(dycat);
        free(dcol);
        free(tcol);
        free(ws);
        return;
    }
    if (dycat) {
        dweight_batched(dw_t, a, i0, i1, nbat, col, dycat, ws);
        free(col);
        free(dycat);
        col = dycat = NULL;
    }
    if (col && K % NR)  /* the lanes past K of the last colT panel: zero, never written by a row */
        for (int64_t p = 0; p < P; p++)
            memset(col + (kpan - 1) * P * NR + p * NR + K % NR, 0, (size_t)(NR - K % NR) * sizeof(float));
    for (int64_t it = i0; it < i1; it++) {
        int64_t b = it / a->G, g = it % a->G;
        const float *x = a->inp + (b * a->C + g * Cg) * a->H * a->W;     /* (Cg, H, W) */
        const float *dy = a->dout + (b * a->OC + g * OCg) * P;            /* (OCg, P) */
        const float *wg = a->weight + g * OCg * K;                        /* (OCg, K) */
        if (col) {  /* dweight[g] (OCg, K) += dy (OCg, P) . col^T (P, K), B = the colT panels */
            im2col_tpanels(col, P, col + kpan * P * NR, x, a);
            conv_gemm(dw_t + g * OCg * K, K, dy, P, 1, col, NR, P * NR, OCg, K, P, 1, ws);
        }
        if (db_t)
            for (int64_t oc = 0; oc < OCg; oc++) {
                const float *r = dy + oc * P;
                float s = 0.0f;
                #pragma omp simd reduction(+:s)
                for (int64_t p = 0; p < P; p++) s += r[p];
                db_t[g * OCg + oc] += s;
            }
        if (a->dinp && !a->wino_u) {
            float *dx = a->dinp + (b * a->C + g * Cg) * a->H * a->W;       /* (Cg, H, W) */
            /* A = weight[g]^T read in place: A(i, o) = wg[o*K + i]; B = dy (OCg, P) row-major */
            if (direct) {
                conv_gemm(dx, P, wg, 1, K, dy, P, NR, K, P, OCg, 0, ws);
            } else if (a->wflip) {
                dx_image_by_convolution(dx, dy, a->wflip + g * Cg * KT, &ta, tcol, ws);
            } else {
                conv_gemm(dcol, P, wg, 1, K, dy, P, NR, K, P, OCg, 0, ws);
                memset(dx, 0, (size_t)(Cg * a->H * a->W) * sizeof(float));
                conv_col2im(dx, dcol, a->OH * a->OW, a);
            }
        }
    }
    free(col);
    free(dcol);
    free(tcol);
    free(ws);
    if (wino_dw && conv_winograd_dweight(dw_t, a, i0, i1)) mark_error(a);
    if (a->dinp && a->wino_u && conv_winograd_items(&ta, a->wino_u, i0, i1)) mark_error(a);  /* dx by Winograd */
}

int conv2d_backward(float *dinp, float *dweight, float *dbias,
                    const float *dout, const float *inp, const float *weight,
                    int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW,
                    int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                    int64_t dh, int64_t dw, int64_t G) {
    /* dinp (B,C,H,W)|NULL, dweight (OC,C/G,KH,KW)|NULL, dbias (OC,)|NULL; dout (B,OC,OH,OW) */
    conv_args a = {NULL, dinp, NULL, NULL, inp, weight, NULL, dout,
                   B, C, H, W, OC, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw, G, 0};
    /* the AVX-512 path first, for the products Winograd does not take over; conv.c then does the rest */
    int wdx = dinp && winograd_over_avx512(&a, 0), wdw = dweight && winograd_over_avx512(&a, 1);
    int fast = wdx && wdw ? 0 : conv_fast_backward(wdx ? NULL : dinp, wdw ? NULL : dweight, dbias, &a);
    if (fast < 0) return -1;
    if (fast) {
        if (!wdx && !wdw) return 0;
        a.dinp = dinp = wdx ? dinp : NULL;
        dweight = wdw ? dweight : NULL;
        dbias = NULL;
    }
    int nt = conv_threads(&a);
    int64_t K = (C / G) * KH * KW, ns = depthwise(&a) ? B : nt;  /* partial slots: per image / per thread */
    if (dweight) {
        a.dw_part = calloc((size_t)ns * OC * K, sizeof(float));
        if (!a.dw_part) return -1;
    }
    if (dbias) {
        a.db_part = calloc((size_t)ns * OC, sizeof(float));
        if (!a.db_part) {
            free(a.dw_part);
            return -1;
        }
    }
    float *wflip = NULL;
    if (dinp && dx_by_convolution(&a)) {
        /* the flipped weights, or their Winograd transform (out of memory: the flipped weights) */
        conv_args ta = transposed_args(&a);
        wflip = flip_weights(&a);
        float *U = wflip && dx_by_winograd(&a) ? conv_winograd_weights(wflip, &ta) : NULL;
        if (U) {
            free(wflip);
            wflip = NULL;
        }
        a.wflip = wflip, a.wino_u = U;
    }
    gb_parallel(conv_bwd_task, &a, nt);
    free(wflip);
    free((void *)a.wino_u);
    /* sum the partials in slot order (deterministic for a thread count; depthwise: for any) */
    if (dweight && !a.err) {
        memcpy(dweight, a.dw_part, (size_t)(OC * K) * sizeof(float));
        for (int64_t t = 1; t < ns; t++) {
            const float *p = a.dw_part + t * OC * K;
            for (int64_t i = 0; i < OC * K; i++) dweight[i] += p[i];
        }
    }
    if (dbias && !a.err) {
        memcpy(dbias, a.db_part, (size_t)OC * sizeof(float));
        for (int64_t t = 1; t < ns; t++)
            for (int64_t i = 0; i < OC; i++) dbias[i] += a.db_part[t * OC + i];
    }
    free(a.dw_part);
    free(a.db_part);
    return a.err ? -1 : 0;
}
