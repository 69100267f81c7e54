/* conv2d on AVX-512 as implicit GEMMs with an 8x32 register tile (16 zmm accumulators; per
 * reduction step 2 B loads + 8 broadcasts feed 16 FMAs), every operand packed once per chunk of
 * images so the micro-kernel reads both contiguously. The team splits the batch; a chunk is as
 * many images as keep its B panels (<= CHUNK_BYTES) L2-resident, so an 8x8 or 4x4 output still
 * fills 32-wide panels (P = 16 puts two images in one panel).
 *   forward  out[b,g] (OCg, P) = W[g] (OCg, K) . col (K, nb*P)                  A = W packed once
 *   dinp, stride 1: the transposed convolution, itself a forward convolution of dout with the
 *            flipped, transposed weights W'[c, (oc, kh', kw')] = W[oc, c, KH-1-kh', KW-1-kw'] and
 *            pads dh*(KH-1)-pt, dw*(KW-1)-pl (no col2im, no scatter)
 *   dinp, stride > 1: dcol (K, nb*P) = W[g]^T . dout panels, then col2im per image
 *   dweight  dW'[g] (OCg, K') += dout (OCg, nb*P) . colT (nb*P, K') with the taps reordered
 *            k' = (kh*KW + kw)*Cg + c, so a 32-lane B row is 32 channels of one tap, copied from a
 *            channels-last copy of the image; per-thread partials, summed (and put back in
 *            (c, kh, kw) order) after the join in thread order: deterministic for a thread count.
 * Scratch lives in thread-local buffers that grow on demand and are kept (no page faults per call).
 * The portable paths (AVX2 / base, depthwise) are conv.c's. */
#include <stdlib.h>
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "internal/conv_args.h"

#if GB_X86
#include <immintrin.h>

#define FMR 8                   /* rows of the register tile */
#define FNR 32                  /* columns: two zmm */
#define FKC 640                 /* reduction block: an 8 x FKC A panel is 20 KB (L1) */
#define CHUNK_BYTES (512 * 1024)

/* Thread-local scratch, grown on demand and kept: slots 0-3 are the tasks' (each thread's own), slots 4-7
 * the calling thread's outside the parallel regions (packed weights, partial sums, phase outputs). */
static float *tl_buf(int which, size_t nfloats) {
    static __thread float *buf[8];
    static __thread size_t cap[8];
    if (cap[which] < nfloats) {
        free(buf[which]);
        buf[which] = aligned_alloc(64, ((nfloats * sizeof(float) + 63) / 64) * 64);
        cap[which] = buf[which] ? nfloats : 0;
    }
    return buf[which];
}

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static inline __mmask16 lanes(int64_t n) { return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1u); }

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
 * same tap of two 16-pixel runs of the padded input planes: no im2col) */
GB_TARGET_AVX512 static void fk_kernel_ind(int64_t kc, const float *a, const int32_t *koff, const float *b0p,
                                           const float *b1p, int64_t half, float *c0, float *c1, int64_t ldc,
                                           int64_t mr, __mmask16 m1, int acc, const float *bias) {
    /* half > 0: each 16-lane B vector is two 8-wide runs, at ptr and ptr + half (two output rows of 8) */
    __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0;
    __m512 y0 = x0, y1 = x0, y2 = x0, y3 = x0, y4 = x0, y5 = x0, y6 = x0, y7 = x0;
#define FK_ROW(i)                             \
        t = _mm512_set1_ps(a[i]);             \
        x##i = _mm512_fmadd_ps(t, b0, x##i);  \
        y##i = _mm512_fmadd_ps(t, b1, y##i);
#define FK_STEP                                                                        \
        FK_ROW(0) FK_ROW(1) FK_ROW(2) FK_ROW(3) FK_ROW(4) FK_ROW(5) FK_ROW(6) FK_ROW(7)
    if (half) {
        for (int64_t p = 0; p < kc; p++, a += FMR) {
            const float *q0 = b0p + koff[p], *q1 = b1p + koff[p];
            __m512 b0 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(q0)), _mm256_loadu_ps(q0 + half), 1);
            __m512 b1 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(q1)), _mm256_loadu_ps(q1 + half), 1);
            __m512 t;
            FK_STEP
        }
    } else {
        for (int64_t p = 0; p < kc; p++, a += FMR) {
            int64_t o = koff[p];
            __m512 b0 = _mm512_loadu_ps(b0p + o), b1 = _mm512_loadu_ps(b1p + o), t;
            FK_STEP
        }
    }
#undef FK_STEP
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

/* dst[j*ldd + i] = src[i*lds + j] for i, j < 8 (an 8x8 block transposed in registers) */
GB_TARGET_AVX512 static inline void tr8x8(float *dst, int64_t ldd, const float *src, int64_t lds) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds);
    __m256 r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3);
    __m256 t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* dst (n, m) with row stride ldd <- the transpose of src (m, n) with row stride lds */
GB_TARGET_AVX512 static void transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t m, int64_t n) {
    int64_t m8 = m / 8 * 8, n8 = n / 8 * 8;
    for (int64_t i = 0; i < m8; i += 8)
        for (int64_t j = 0; j < n8; j += 8) tr8x8(dst + j * ldd + i, ldd, src + i * lds + j, lds);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = i < m8 ? n8 : 0; j < n; j++) dst[j * ldd + i] = src[i * lds + j];
}

/* Ap (ceil(M/8), R, 8) <- A (M, R), A(i, r) = base[i*rs + (r/seg)*ss + r%seg]: row-contiguous segments
 * (a batch of images' dout rows), 8x8 blocks transposed in registers */
GB_TARGET_AVX512 static void pack_a_rows(float *Ap, const float *base, int64_t rs, int64_t seg, int64_t ss,
                                         int64_t M, int64_t R) {
    for (int64_t i0 = 0; i0 < M; i0 += FMR) {
        float *dst = Ap + i0 * R;
        int64_t mr = imin(FMR, M - i0);
        for (int64_t r0 = 0; r0 < R; r0 += seg) {
            const float *src = base + i0 * rs + (r0 / seg) * ss;
            if (mr == FMR) {
                transpose(dst + r0 * FMR, FMR, src, rs, FMR, imin(seg, R - r0));
            } else {
                for (int64_t r = 0; r < imin(seg, R - r0); r++)
                    for (int64_t i = 0; i < FMR; i++) dst[(r0 + r) * FMR + i] = i < mr ? src[i * rs + r] : 0.0f;
            }
        }
    }
}

/* Ap (ceil(M/8), R, 8) <- A (M, R), A(i, r) = base[i*rs + (r/seg)*ss + (r%seg)*cs], rows past M zero */
static void pack_a(float *Ap, const float *base, int64_t rs, int64_t cs, int64_t seg, int64_t ss, int64_t M,
                   int64_t R) {
    for (int64_t i0 = 0; i0 < M; i0 += FMR) {
        float *dst = Ap + i0 * R;
        int64_t mr = imin(FMR, M - i0);
        for (int64_t r0 = 0; r0 < R; r0 += seg)
            for (int64_t r = r0; r < imin(r0 + seg, R); r++) {
                const float *src = base + i0 * rs + (r0 / seg) * ss + (r - r0) * cs;
                int64_t i = 0;
                for (; i < mr; i++) dst[r * FMR + i] = src[i * rs];
                for (; i < FMR; i++) dst[r * FMR + i] = 0.0f;
            }
    }
}

/* [ow0, ow1): the output columns whose tap reads inside the row (iw = ow*sw + off in [0, W)) */
static void valid_cols(const conv_args *a, int64_t off, int64_t *ow0, int64_t *ow1) {
    int64_t lo = off >= 0 ? 0 : (-off + a->sw - 1) / a->sw;
    int64_t hi = a->W - off <= 0 ? 0 : (a->W - off + a->sw - 1) / a->sw;
    if (hi > a->OW) hi = a->OW;
    if (lo > hi) lo = hi;
    *ow0 = lo;
    *ow1 = hi;
}

/* The padded extent an output grid reads: Hp = (OH-1)*sh + (KH-1)*dh + 1 rows from ih = -pt, and as
 * many columns from iw = -pl; inside it every tap of every output pixel is in bounds. */
static void padded_dims(const conv_args *a, int64_t *Hp, int64_t *Wp) {
    *Hp = (a->OH - 1) * a->sh + (a->KH - 1) * a->dh + 1;
    *Wp = (a->OW - 1) * a->sw + (a->KW - 1) * a->dw + 1;
}

/* xp (nb, Cg, Hp, Wp) <- x (nb images of C*H*W, group offset applied) with zeros outside */
GB_TARGET_AVX512 static void pad_planes(float *xp, const float *x, int64_t nb, const conv_args *a, int64_t Hp,
                                        int64_t Wp) {
    int64_t Cg = a->C / a->G, HW = a->H * a->W;
    int64_t lo = a->pl > 0 ? a->pl : 0, hi = a->pl + a->W < Wp ? a->pl + a->W : Wp;  /* columns from x */
    for (int64_t jb = 0; jb < nb; jb++)
        for (int64_t c = 0; c < Cg; c++) {
            const float *xc = x + jb * a->C * HW + c * HW;
            float *pc = xp + (jb * Cg + c) * Hp * Wp;
            for (int64_t r = 0; r < Hp; r++) {
                int64_t ih = r - a->pt;
                int inside = ih >= 0 && ih < a->H;
                const float *xr = xc + ih * a->W - a->pl;   /* padded column j reads xr[j] */
                float *pr = pc + r * Wp;
                for (int64_t j0 = 0; j0 < Wp; j0 += 16) {
                    int64_t l = lo > j0 ? lo : j0, h = hi < j0 + 16 ? hi : j0 + 16;
                    __mmask16 m = inside && h > l ? (__mmask16)(lanes(h - l) << (l - j0)) : 0;
                    /* a plain load where all 16 lanes lie inside the input array (a masked load of data
                     * not in cache measured ~3x slower here: the prefetchers ignore it), else masked:
                     * the lanes outside x are never read */
                    const float *src = xr + j0;
                    __m512 v = _mm512_setzero_ps();
                    if (m && src >= a->inp && src + 16 <= a->inp + a->B * a->C * HW) {
                        v = _mm512_loadu_ps(src);
                        __asm__("" : "+v"(v));  /* keep GCC from folding it back into a masked load */
                        v = _mm512_maskz_mov_ps(m, v);
                    } else if (m) {
                        v = _mm512_maskz_loadu_ps(m, src);
                    }
                    _mm512_mask_storeu_ps(pr + j0, lanes(Wp - j0), v);
                }
            }
        }
}

/* xq (nb, Cg, 4, Hq, Wq) <- the zero-padded planes of x split by parity for stride 2: phase ry*2 + rx holds
 * padded[2i + ry][2j + rx] (0 outside x). A stride-2 tap then reads its phase at unit stride. */
GB_TARGET_AVX512 static void phase_planes(float *xq, const float *x, int64_t nb, const conv_args *a, int64_t Hq,
                                          int64_t Wq) {
    int64_t Cg = a->C / a->G, HW = a->H * a->W, plane = Hq * Wq;
    const float *end = a->inp + a->B * a->C * HW;
    __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    for (int64_t jb = 0; jb < nb; jb++)
        for (int64_t c = 0; c < Cg; c++) {
            const float *xc = x + jb * a->C * HW + c * HW;
            float *qc = xq + (jb * Cg + c) * 4 * plane;
            for (int64_t r = 0; r < 2 * Hq; r++) {
                int64_t ih = r - a->pt;
                int inside = ih >= 0 && ih < a->H;
                const float *xr = xc + ih * a->W - a->pl;   /* padded column j reads xr[j] */
                float *d0 = qc + ((r & 1) * 2) * plane + (r >> 1) * Wq, *d1 = d0 + plane;
                for (int64_t j0 = 0; j0 < 2 * Wq; j0 += 32) {
                    __m512 v[2];
                    for (int h = 0; h < 2; h++) {
                        int64_t lo = a->pl > j0 + 16 * h ? a->pl : j0 + 16 * h, hi = a->pl + a->W;
                        if (hi > j0 + 16 * h + 16) hi = j0 + 16 * h + 16;
                        __mmask16 m = inside && hi > lo ? (__mmask16)(lanes(hi - lo) << (lo - j0 - 16 * h)) : 0;
                        const float *src = xr + j0 + 16 * h;
                        v[h] = _mm512_setzero_ps();
                        if (m && src >= a->inp && src + 16 <= end) {
                            v[h] = _mm512_loadu_ps(src);
                            __asm__("" : "+v"(v[h]));  /* a plain load (see pad_planes), masked in registers */
                            v[h] = _mm512_maskz_mov_ps(m, v[h]);
                        } else if (m) {
                            v[h] = _mm512_maskz_loadu_ps(m, src);
                        }
                    }
                    __mmask16 st = lanes(Wq - j0 / 2);
                    _mm512_mask_storeu_ps(d0 + j0 / 2, st, _mm512_permutex2var_ps(v[0], ev, v[1]));
                    _mm512_mask_storeu_ps(d1 + j0 / 2, st, _mm512_permutex2var_ps(v[0], od, v[1]));
                }
            }
        }
}

/* Bp (ceil(N/32), K, 32) <- col (K, N), N = nb*P: column jb*P + oh*OW + ow of row k = (c, kh, kw) is
 * x[jb][c, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw] (0 outside), read from the padded planes xp
 * (nb, Cg, Hp, Wp); lanes past N zero. Stride-1 rows of 16k outputs are plain vector copies; other
 * grids gather 16 lanes at a time with one index vector per lane group (the same for every tap). */
GB_TARGET_AVX512 static void im2col32(float *Bp, const float *xp, int32_t *idx, const int32_t *kt, int64_t nb,
                                      const conv_args *a, int64_t xs, int64_t rs, int64_t cs) {
    /* output pixel (oh, ow) of image j, row k, at xp + j*xs + oh*rs + ow*cs + kt[k] (padded planes, phase
     * planes or x itself); idx: ceil(N/16)*16 ints of scratch, each lane's offset */
    int64_t P = a->OH * a->OW, K = (a->C / a->G) * a->KH * a->KW, N = nb * P, OW = a->OW;
    int64_t ng = (N + 15) / 16, npan = (N + FNR - 1) / FNR;
    /* unit-stride rows of 16k outputs, or 2 (4) rows of 8 (4) per 16-lane vector: plain loads; else gathers */
    int mode = cs != 1 ? 3 : OW % 16 == 0 ? 0 : P % 16 ? 3 : OW == 8 ? 1 : OW == 4 ? 2 : 3;
    for (int64_t j = 0; j < ng * 16; j++) {
        int64_t jj = j < N ? j : N - 1, jb = jj / P, p = jj % P;
        idx[j] = (int32_t)(jb * xs + (p / OW) * rs + (p % OW) * cs);
    }
    /* panel by panel, row by row: the stores run sequentially through each (K, 32) panel */
    for (int64_t jp = 0; jp < npan; jp++) {
        float *pan = Bp + jp * K * FNR;
        int64_t q0 = 2 * jp, q1 = 2 * jp + 1;
        int has1 = q1 < ng;
        const int32_t *i0 = idx + q0 * 16, *i1 = idx + (has1 ? q1 : q0) * 16;
        __mmask16 m0 = lanes(N - q0 * 16), m1 = has1 ? lanes(N - q1 * 16) : 0;
        for (int64_t k = 0; k < K; k++, pan += FNR) {
            const float *base = xp + kt[k];
            __m512 v0, v1;
            if (mode == 0) {
                v0 = _mm512_loadu_ps(base + i0[0]);
                v1 = has1 ? _mm512_loadu_ps(base + i1[0]) : _mm512_setzero_ps();
            } else if (mode == 1) {
                const float *s0 = base + i0[0], *s1 = base + i1[0];
                v0 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(s0)), _mm256_loadu_ps(s0 + rs), 1);
                v1 = has1 ? _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(s1)), _mm256_loadu_ps(s1 + rs), 1)
                          : _mm512_setzero_ps();
            } else if (mode == 2) {
                const float *s0 = base + i0[0], *s1 = base + i1[0];
                __m256 l0 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s0)), _mm_loadu_ps(s0 + rs), 1);
                __m256 h0 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s0 + 2 * rs)), _mm_loadu_ps(s0 + 3 * rs), 1);
                v0 = _mm512_insertf32x8(_mm512_castps256_ps512(l0), h0, 1);
                if (has1) {
                    __m256 l1 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s1)), _mm_loadu_ps(s1 + rs), 1);
                    __m256 h1 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s1 + 2 * rs)),
                                                     _mm_loadu_ps(s1 + 3 * rs), 1);
                    v1 = _mm512_insertf32x8(_mm512_castps256_ps512(l1), h1, 1);
                } else {
                    v1 = _mm512_setzero_ps();
                }
            } else {
                v0 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m0, _mm512_loadu_si512(i0), base, 4);
                v1 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m1, _mm512_loadu_si512(i1), base, 4);
            }
            _mm512_storeu_ps(pan, v0);
            _mm512_storeu_ps(pan + 16, v1);
        }
    }
}

/* Bp (ceil(N/32), R, 32) <- B (R, N), B(r, j) = base[(j/P)*ss + r*rs + j%P] (lanes past N zero) */
GB_TARGET_AVX512 static void rows32(float *Bp, const float *base, int64_t rs, int64_t ss, int64_t R, int64_t P,
                                    int64_t N) {
    for (int64_t r = 0; r < R; r++)
        for (int64_t j0 = 0; j0 < N; j0 += 16) {
            float *d = Bp + (j0 / FNR) * R * FNR + r * FNR + j0 % FNR;
            int64_t n = imin(16, N - j0);
            if (P % 16 == 0) {
                _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(lanes(n), base + (j0 / P) * ss + r * rs + j0 % P));
            } else {
                for (int64_t j = 0; j < 16; j++)
                    d[j] = j < n ? base[((j0 + j) / P) * ss + r * rs + (j0 + j) % P] : 0.0f;
            }
        }
    if (N % FNR && N % FNR <= 16)  /* the upper half of the last panel */
        for (int64_t r = 0; r < R; r++) _mm512_storeu_ps(Bp + (N / FNR) * R * FNR + r * FNR + 16, _mm512_setzero_ps());
}

/* Bp (ceil(K'/32), R, 32) <- colT (R, K'), R = nb*P, Cg a multiple of 16, k' = (kh*KW + kw)*Cg + c: row
 * jb*P + p holds the patch of output pixel p of image jb, 16 channels of one tap per vector, read from
 * xt (H*W, Cg), a channels-last copy of the image. Lanes past K' zero. */
GB_TARGET_AVX512 static void im2colT32(float *Bp, float *xt, const float *x, int64_t nb, const conv_args *a) {
    int64_t Cg = a->C / a->G, P = a->OH * a->OW, T = a->KH * a->KW, K = Cg * T, R = nb * P, HW = a->H * a->W;
    int64_t img = a->C * HW;
    for (int64_t jb = 0; jb < nb; jb++) {
        transpose(xt, Cg, x + jb * img, HW, Cg, HW);  /* xt (HW, Cg) <- x (Cg, HW) */
        /* panel by panel (one tap, 32 channels), pixel by pixel: the stores run sequentially (a pixel's
         * panels are R*32 floats apart: written pixel-major they thrashed the L1 sets) */
        for (int64_t k0 = 0; k0 < K; k0 += FNR) {
            int64_t tap = k0 / Cg, c0 = k0 % Cg, kh = tap / a->KW, kw = tap % a->KW;
            int two = k0 + 16 < K;      /* lanes 16..31: the next 16 channels (same tap: Cg % 32 == 0) */
            const float *xc = xt + c0;  /* or of the next tap when Cg % 32 == 16 */
            int64_t tap1 = (k0 + 16) / Cg, c1 = (k0 + 16) % Cg, kh1 = tap1 / a->KW, kw1 = tap1 % a->KW;
            float *pan = Bp + (k0 / FNR) * R * FNR + jb * P * FNR;
            for (int64_t oh = 0; oh < a->OH; oh++) {
                int64_t ih = oh * a->sh - a->pt + kh * a->dh, ih1 = oh * a->sh - a->pt + kh1 * a->dh;
                int rin = ih >= 0 && ih < a->H, rin1 = ih1 >= 0 && ih1 < a->H;
                for (int64_t ow = 0; ow < a->OW; ow++, pan += FNR) {
                    int64_t iw = ow * a->sw - a->pl + kw * a->dw, iw1 = ow * a->sw - a->pl + kw1 * a->dw;
                    __m512 v0 = _mm512_setzero_ps(), v1 = v0;
                    if (rin && iw >= 0 && iw < a->W) v0 = _mm512_loadu_ps(xc + (ih * a->W + iw) * Cg);
                    if (two && rin1 && iw1 >= 0 && iw1 < a->W) v1 = _mm512_loadu_ps(xt + (ih1 * a->W + iw1) * Cg + c1);
                    _mm512_storeu_ps(pan, v0);
                    _mm512_storeu_ps(pan + 16, v1);
                }
            }
        }
    }
}

/* The same panels for few channels (the stem), k in conv order (c, kh, kw): col (K8, R) row-major from
 * the padded planes xp (nb, Cg, Hp, Wp), then 8x8 transposes into the panels (rows K..K8 zero). */
GB_TARGET_AVX512 static void im2colT_small(float *Bp, float *col, float *xp, const float *x, int64_t nb,
                                           const conv_args *a, int64_t Hp, int64_t Wp) {
    int64_t Cg = a->C / a->G, P = a->OH * a->OW, OW = a->OW, K = Cg * a->KH * a->KW, R = nb * P;
    int64_t K8 = (K + 7) / 8 * 8, Kp = (K + FNR - 1) / FNR * FNR;
    pad_planes(xp, x, nb, a, Hp, Wp);
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t kh = 0; kh < a->KH; kh++)
            for (int64_t kw = 0; kw < a->KW; kw++) {
                float *dk = col + ((c * a->KH + kh) * a->KW + kw) * R;
                for (int64_t jb = 0; jb < nb; jb++)
                    for (int64_t oh = 0; oh < a->OH; oh++) {
                        const float *src = xp + ((jb * Cg + c) * Hp + oh * a->sh + kh * a->dh) * Wp + kw * a->dw;
                        float *d = dk + jb * P + oh * OW;
                        if (a->sw == 1) memcpy(d, src, (size_t)OW * sizeof(float));
                        else for (int64_t ow = 0; ow < OW; ow++) d[ow] = src[ow * a->sw];
                    }
            }
    memset(col + K * R, 0, (size_t)((K8 - K) * R) * sizeof(float));
    for (int64_t k0 = 0; k0 < K8; k0 += 8)
        transpose(Bp + (k0 / FNR) * R * FNR + k0 % FNR, FNR, col + k0 * R, R, 8, R);
    if (Kp > K8)
        for (int64_t r = 0; r < R; r++)
            memset(Bp + (Kp / FNR - 1) * R * FNR + r * FNR + K8 % FNR, 0, (size_t)(Kp - K8) * sizeof(float));
}

/* dx (Cg, H, W) = the adjoint of im2col applied to dcol (K, P) with row stride ld (dx zeroed here) */
GB_TARGET_AVX512 static void col2im_ld(float *dx, const float *dcol, int64_t ld, const conv_args *a) {
    int64_t Cg = a->C / a->G, OW = a->OW;
    memset(dx, 0, (size_t)(Cg * a->H * a->W) * sizeof(float));
    for (int64_t c = 0; c < Cg; c++) {
        float *dc = dx + c * a->H * a->W;
        for (int64_t kh = 0; kh < a->KH; kh++)
            for (int64_t kw = 0; kw < a->KW; kw++) {
                const float *row = dcol + ((c * a->KH + kh) * a->KW + kw) * ld;
                int64_t off = kw * a->dw - a->pl, ow0, ow1;
                valid_cols(a, off, &ow0, &ow1);
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
typedef struct {
    const conv_args *a;
    const float *Ap;       /* (G, ceil(OCg/8)*8, K) packed weights */
    float *dw_part;        /* backward: (nt, OC, K') */
    const float *At;       /* backward, stride > 1: (G, ceil(K/8)*8, OCg) packed W^T */
    float *dweight;        /* backward: (OC, Cg, KH, KW) */
    int64_t next;          /* the dynamic schedule's next chunk */
    int err;
} fast_ctx;

static void fail(fast_ctx *f) { __atomic_store_n(&f->err, 1, __ATOMIC_RELAXED); }

/* out (OCg, P) (+ bias) = W (packed Ap) . col of one image's group with B read in place from the planes
 * xp (channel c, row r at xp + c*plane + r*Wp): stride-1 grids whose rows are 16k outputs wide, so
 * each 16-pixel run is one row's contiguous slice, or 8 wide (an even number of rows): two rows' slices.
 * koff (K,) = the taps' offsets. */
GB_TARGET_AVX512 static void fwd_inplace(float *out, const float *Ap, const int32_t *koff, const float *xp,
                                         int64_t rs, const conv_args *a, int64_t OCg, int64_t K,
                                         const float *bias) {
    int64_t P = a->OH * a->OW, nv = P / 16, nkb = (K + FKC - 1) / FKC, kcs = (K + nkb - 1) / nkb;
    for (int64_t k0 = 0; k0 < K; k0 += kcs) {
        int64_t kc = imin(kcs, K - k0);
        const float *bs = k0 + kc == K ? bias : NULL;
        for (int64_t ir = 0; ir < OCg; ir += FMR) {
            int64_t mr = imin(FMR, OCg - ir);
            for (int64_t v = 0; v < nv; v += 2) {
                int64_t p0 = v * 16, p1 = v + 1 < nv ? p0 + 16 : p0;
                const float *b0 = xp + (p0 / a->OW) * rs + p0 % a->OW;
                const float *b1 = xp + (p1 / a->OW) * rs + p1 % a->OW;
                fk_kernel_ind(kc, Ap + ir * K + k0 * FMR, koff + k0, b0, b1, a->OW == 8 ? rs : 0,
                              out + ir * P + p0, out + ir * P + p1,
                              P, mr, v + 1 < nv ? 0xFFFF : 0, k0 > 0, bs ? bs + ir : NULL);
            }
        }
    }
}

static void fwd_task(void *ctx, int t, int nt) {
    fast_ctx *f = ctx;
    const conv_args *a = f->a;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, K = Cg * a->KH * a->KW, P = a->OH * a->OW;
    int64_t Mp = (OCg + FMR - 1) / FMR * FMR;
    (void)t;
    int64_t nb = chunk_dynamic(P * K, a->B, nt), N = nb * P, Hp, Wp, nitems = (a->B + nb - 1) / nb;
    padded_dims(a, &Hp, &Wp);
    /* how the patches are read: an unpadded grid inside the image (1x1) from x itself; stride 2 from the
     * four phase planes (padded[2i + ry][2j + rx]) at unit stride; else from the zero-padded planes */
    int direct = a->pt == 0 && a->pl == 0 && Hp <= a->H && Wp <= a->W;
    int phases = !direct && a->sh == 2 && a->sw == 2;
    int64_t Hq = (Hp + 1) / 2, Wq = (Wp + 1) / 2;
    int64_t plane = phases ? 4 * Hq * Wq : direct ? a->H * a->W : Hp * Wp;    /* per channel */
    int64_t xs = direct ? a->C * a->H * a->W : Cg * plane;                      /* per image */
    int64_t rs = phases ? Wq : direct ? a->sh * a->W : a->sh * Wp, cs = phases ? 1 : a->sw;
    float *Bp = tl_buf(0, (size_t)((N + FNR - 1) / FNR * FNR * K));
    float *xp = direct ? (float *)a->inp : tl_buf(2, (size_t)(nb * Cg * plane));
    int32_t *idx = (int32_t *)tl_buf(3, (size_t)((N + 15) / 16 * 16 + K));  /* lane offsets, then tap offsets */
    if (!Bp || !xp || !idx) {
        fail(f);
        return;
    }
    int32_t *kt = idx + (N + 15) / 16 * 16;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t kh = 0; kh < a->KH; kh++)
            for (int64_t kw = 0; kw < a->KW; kw++) {
                int64_t y = kh * a->dh, x = kw * a->dw;
                kt[(c * a->KH + kh) * a->KW + kw] =
                    (int32_t)(c * plane + (phases ? ((y % 2) * 2 + x % 2) * Hq * Wq + (y / 2) * Wq + x / 2
                                                  : y * (direct ? a->W : Wp) + x));
            }
    if (cs == 1 && (a->OW % 16 == 0 || (a->OW == 8 && a->OH % 2 == 0))) {  /* B in place: no im2col */
        for (int64_t b = gb_next_item(&f->next); b < a->B; b = gb_next_item(&f->next))
            for (int64_t g = 0; g < a->G; g++) {
                const float *xg = a->inp + (b * a->C + g * Cg) * a->H * a->W;
                if (phases) phase_planes(xp, xg, 1, a, Hq, Wq);
                else if (!direct) pad_planes(xp, xg, 1, a, Hp, Wp);
                fwd_inplace(a->out + (b * a->OC + g * OCg) * P, f->Ap + g * Mp * K, kt, direct ? xg : xp, rs, a,
                            OCg, K, a->bias ? a->bias + g * OCg : NULL);
            }
        return;
    }
    for (int64_t it = gb_next_item(&f->next); it < nitems; it = gb_next_item(&f->next)) {
        int64_t bs = it * nb, n = imin(nb, a->B - bs);
        for (int64_t g = 0; g < a->G; g++) {
            const float *xg = a->inp + (bs * a->C + g * Cg) * a->H * a->W;
            if (phases) phase_planes(xp, xg, n, a, Hq, Wq);
            else if (!direct) pad_planes(xp, xg, n, a, Hp, Wp);
            im2col32(Bp, direct ? xg : xp, idx, kt, n, a, xs, rs, cs);
            cmap cm = {a->out + (bs * a->OC + g * OCg) * P, P, P, a->OC * P};
            fk_gemm(&cm, f->Ap + g * Mp * K, Bp, OCg, n * P, K, 0, a->bias ? a->bias + g * OCg : NULL);
        }
    }
}

static int run_forward(const conv_args *a, const float *wrows) {
    /* wrows (G, OCg, K): the weights as A rows (the caller's layout or the flipped copy) */
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, K = Cg * a->KH * a->KW, Mp = (OCg + FMR - 1) / FMR * FMR;
    float *Ap = tl_buf(5, (size_t)(a->G * Mp * K));
    if (!Ap) return -1;
    for (int64_t g = 0; g < a->G; g++) pack_a(Ap + g * Mp * K, wrows + g * OCg * K, K, 1, K, 0, OCg, K);
    fast_ctx f = {a, Ap, NULL, NULL, NULL, 0, 0};
    gb_parallel(fwd_task, &f, fast_threads(a));
    return f.err ? -1 : 1;
}

static int fast_ok(const conv_args *a) {
    if (gb_isa() < GB_ISA_AVX512) return 0;
    if (a->C == a->G && a->OC == a->G) return 0;  /* depthwise: conv.c's direct taps */
    /* lane and tap offsets are int32: the input, and one image's padded planes, must index in 31 bits */
    int64_t Hp, Wp;
    padded_dims(a, &Hp, &Wp);
    return a->B * a->C * a->H * a->W < (INT64_C(1) << 31) && a->C * Hp * Wp < (INT64_C(1) << 30);
}

int conv_fast_forward(const conv_args *a) {
    if (!fast_ok(a)) return 0;
    return run_forward(a, a->weight);
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
    padded_dims(a, &Hp, &Wp);
    float *Bp = tl_buf(0, (size_t)(Kp * R)), *Ap = tl_buf(1, (size_t)(Mp * R));
    /* tap-major: xt (H*W, Cg); else the padded planes and col (K8, R) */
    float *xt = tl_buf(2, (size_t)(tapmajor ? a->H * a->W * Cg : nb * Cg * Hp * Wp));
    float *col = tapmajor ? xt : tl_buf(3, (size_t)((K + 7) / 8 * 8 * R));
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
                if (tapmajor) im2colT32(Bp, xt, xg, n, a);
                else im2colT_small(Bp, col, xt, xg, n, a, Hp, Wp);
                pack_a_rows(Ap, a->dout + (bs * a->OC + g * OCg) * P, P, P, a->OC * P, OCg, n * P);
                cmap cm = {part + g * OCg * K, K, INT64_MAX / 4, 0};
                fk_gemm(&cm, Ap, Bp, OCg, K, n * P, bs > b0, NULL);
            }
        }
    }
    gb_barrier();  /* every thread reaches it, failed or not */
    if (__atomic_load_n(&f->err, __ATOMIC_RELAXED)) return;
    /* dweight[oc, c, tap] = the slices' part[s, oc, k'] summed in slice order (k' = tap*Cg + c when
     * tap-major), each thread its own rows */
    int64_t o0, o1;
    gb_split(a->OC, t, nt, &o0, &o1);
    float *sum = Bp;  /* (K',): the panels are no longer needed */
    for (int64_t oc = o0; oc < o1; oc++) {
        float *d = f->dweight + oc * K;
        if (!tapmajor) sum = d;  /* conv order already: sum in place */
        memcpy(sum, f->dw_part + oc * K, (size_t)K * sizeof(float));
        for (int64_t u = 1; u < ns; u++) {
            const float *pu = f->dw_part + (u * a->OC + oc) * K;
            #pragma omp simd
            for (int64_t k = 0; k < K; k++) sum[k] += pu[k];
        }
        if (tapmajor) transpose(d, T, sum, Cg, T, Cg);  /* (T, Cg) -> (Cg, T) */
    }
}

static void dx_strided_task(void *ctx, int t, int nt) {
    fast_ctx *f = ctx;
    const conv_args *a = f->a;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, K = Cg * a->KH * a->KW, P = a->OH * a->OW;
    int64_t Kr = (K + FMR - 1) / FMR * FMR;
    (void)t;
    int64_t nb = chunk_dynamic(P * (K > OCg ? K : OCg), a->B, nt), N = nb * P, nitems = (a->B + nb - 1) / nb;
    float *Bp = tl_buf(0, (size_t)((N + FNR - 1) / FNR * FNR * OCg)), *dcol = tl_buf(1, (size_t)(K * N));
    if (!Bp || !dcol) {
        fail(f);
        return;
    }
    for (int64_t it = gb_next_item(&f->next); it < nitems; it = gb_next_item(&f->next)) {
        int64_t bs = it * nb, n = imin(nb, a->B - bs);
        for (int64_t g = 0; g < a->G; g++) {
            rows32(Bp, a->dout + (bs * a->OC + g * OCg) * P, P, a->OC * P, OCg, P, n * P);
            cmap cm = {dcol, n * P, n * P, 0};
            fk_gemm(&cm, f->At + g * Kr * OCg, Bp, K, n * P, OCg, 0, NULL);
            for (int64_t jb = 0; jb < n; jb++)
                col2im_ld(a->dinp + ((bs + jb) * a->C + g * Cg) * a->H * a->W, dcol + jb * P, n * P, a);
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
#define MAX_PHASES 64
typedef struct {
    float *dinp;
    const float *out[MAX_PHASES];  /* phase (py, px) at py*sw + px: (B*C, Hph, Wph), NULL: no tap reaches it */
    int64_t BC, H, W, sh, sw;
} phase_args;

static void interleave_task(void *ctx, int t, int nt) {
    phase_args *p = ctx;
    int64_t n0, n1;
    gb_split(p->BC, t, nt, &n0, &n1);
    for (int64_t bc = n0; bc < n1; bc++)
        for (int64_t py = 0; py < p->sh && py < p->H; py++)
            for (int64_t px = 0; px < p->sw && px < p->W; px++) {
                int64_t Hph = (p->H - py + p->sh - 1) / p->sh, Wph = (p->W - px + p->sw - 1) / p->sw;
                const float *o = p->out[py * p->sw + px];
                float *dx = p->dinp + bc * p->H * p->W + py * p->W + px;
                if (o) o += bc * Hph * Wph;
                for (int64_t i = 0; i < Hph; i++)
                    for (int64_t j = 0; j < Wph; j++) dx[i * p->sh * p->W + j * p->sw] = o ? o[i * Wph + j] : 0.0f;
            }
}

static int dx_phases(float *dinp, const conv_args *a) {
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, T = a->KH * a->KW, sh = a->sh, sw = a->sw;
    float *out = tl_buf(7, (size_t)(a->B * a->C * a->H * a->W)), *wph = tl_buf(4, (size_t)(a->C * OCg * T));
    if (!out || !wph) return -1;
    phase_args pa = {dinp, {NULL}, a->B * a->C, a->H, a->W, sh, sw};
    for (int64_t py = 0; py < sh && py < a->H; py++)
        for (int64_t px = 0; px < sw && px < a->W; px++) {
            int64_t Hph = (a->H - py + sh - 1) / sh, Wph = (a->W - px + sw - 1) / sw;
            int64_t rh = (py + a->pt) % sh, rw = (px + a->pl) % sw;
            int64_t Mh = rh < a->KH ? (a->KH - 1 - rh) / sh + 1 : 0, Mw = rw < a->KW ? (a->KW - 1 - rw) / sw + 1 : 0;
            if (Mh == 0 || Mw == 0) continue;  /* no tap reaches these positions: zeros */
            int64_t qh = (py + a->pt - rh) / sh, qw = (px + a->pl - rw) / sw;
            /* wph (G, Cg, OCg, Mh, Mw) = W[g*OCg + oc, c, rh + (Mh-1-m)*sh, rw + (Mw-1-n)*sw] */
            for (int64_t gc = 0; gc < a->C; gc++) {
                int64_t g = gc / Cg, c = gc % Cg;
                for (int64_t oc = 0; oc < OCg; oc++) {
                    const float *w = a->weight + ((g * OCg + oc) * Cg + c) * T;
                    float *d = wph + (gc * OCg + oc) * Mh * Mw;
                    for (int64_t m = 0; m < Mh; m++)
                        for (int64_t n = 0; n < Mw; n++) d[m * Mw + n] = w[(rh + (Mh - 1 - m) * sh) * a->KW + rw + (Mw - 1 - n) * sw];
                }
            }
            conv_args d = *a;
            d.out = out; d.inp = a->dout; d.weight = wph; d.bias = NULL;
            d.C = a->OC; d.H = a->OH; d.W = a->OW; d.OC = a->C; d.KH = Mh; d.KW = Mw; d.OH = Hph; d.OW = Wph;
            d.sh = d.sw = 1; d.pt = Mh - 1 - qh; d.pl = Mw - 1 - qw;
            if (run_forward(&d, wph) < 0) return -1;
            pa.out[py * sw + px] = out;
            out += a->B * a->C * Hph * Wph;
        }
    gb_parallel(interleave_task, &pa, a->B * a->C * a->H * a->W >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    return 1;
}

int conv_fast_backward(float *dinp, float *dweight, float *dbias, const conv_args *a) {
    if (!fast_ok(a)) return 0;
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, T = a->KH * a->KW, K = Cg * T;
    int nt = fast_threads(a);
    if (dbias) {
        conv_args b = *a;
        b.db_part = dbias;
        fast_ctx f = {&b, NULL, NULL, NULL, NULL, 0, 0};
        gb_parallel(db_task, &f, a->OC >= 64 && a->B * a->OC * a->OH * a->OW >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    }
    if (dweight) {
        float *part = tl_buf(6, (size_t)(dw_slots(a) * a->OC * K));
        if (!part) return -1;
        fast_ctx f = {a, NULL, part, NULL, dweight, 0, 0};
        gb_parallel(dw_task, &f, nt);
        if (f.err) return -1;
    }
    if (dinp) {
        int r;
        if (a->sh == 1 && a->sw == 1 && Cg >= 8) {  /* (fewer input channels would waste the tile's rows) */
            /* W' (G, Cg, OCg*T): W'[g, c, (oc, kh', kw')] = W[g*OCg + oc, c, KH-1-kh', KW-1-kw'] */
            float *wt = tl_buf(4, (size_t)(a->C * OCg * T));
            if (!wt) return -1;
            for (int64_t g = 0; g < a->G; g++)
                for (int64_t c = 0; c < Cg; c++)
                    for (int64_t oc = 0; oc < OCg; oc++)
                        for (int64_t tap = 0; tap < T; tap++)
                            wt[((g * Cg + c) * OCg + oc) * T + tap] = a->weight[((g * OCg + oc) * Cg + c) * T + T - 1 - tap];
            conv_args d = *a;
            d.out = dinp; d.inp = a->dout; d.weight = wt; d.bias = NULL;
            d.C = a->OC; d.H = a->OH; d.W = a->OW; d.OC = a->C; d.OH = a->H; d.OW = a->W;
            d.pt = a->dh * (a->KH - 1) - a->pt; d.pl = a->dw * (a->KW - 1) - a->pl;
            r = run_forward(&d, wt);
        } else if (a->dh == 1 && a->dw == 1 && Cg >= 8 && a->sh * a->sw <= MAX_PHASES) {
            r = dx_phases(dinp, a);
        } else {
            int64_t Kr = (K + FMR - 1) / FMR * FMR;
            float *At = tl_buf(4, (size_t)(a->G * Kr * OCg));
            if (!At) return -1;
            for (int64_t g = 0; g < a->G; g++)  /* A(k, oc) = W[g*OCg + oc, k] */
                pack_a(At + g * Kr * OCg, a->weight + g * OCg * K, 1, K, OCg, 0, K, OCg);
            conv_args d = *a;
            d.dinp = dinp;
            fast_ctx f = {&d, NULL, NULL, At, NULL, 0, 0};
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
