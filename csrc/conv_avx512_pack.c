/* Packing for the AVX-512 convolution (conv_avx512.c): zero-padded and parity-split input planes,
 * the micro-kernel's patch panels (pixels as lanes for the forward, taps as lanes for dweight), 8x8
 * register transposes. */
#include <stdlib.h>
#include "internal/conv_avx512.h"

#if GB_X86

float *cvx_buf(int which, size_t nfloats) {
    static __thread float *buf[8];
    static __thread size_t cap[8];
    if (cap[which] < nfloats) {
        free(buf[which]);
        buf[which] = aligned_alloc(64, ((nfloats * sizeof(float) + 63) / 64) * 64);
        cap[which] = buf[which] ? nfloats : 0;
    }
    return buf[which];
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
GB_TARGET_AVX512 void cvx_transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t m, int64_t n) {
    int64_t m8 = m / 8 * 8, n8 = n / 8 * 8;
    for (int64_t i = 0; i < m8; i += 8)
        for (int64_t j = 0; j < n8; j += 8) tr8x8(dst + j * ldd + i, ldd, src + i * lds + j, lds);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = i < m8 ? n8 : 0; j < n; j++) dst[j * ldd + i] = src[i * lds + j];
}

/* Ap (ceil(M/8), R, 8) <- A (M, R), A(i, r) = base[i*rs + (r/seg)*ss + r%seg]: row-contiguous segments
 * (a batch of images' dout rows), 8x8 blocks transposed in registers */
GB_TARGET_AVX512 void cvx_pack_a_rows(float *Ap, const float *base, int64_t rs, int64_t seg, int64_t ss,
                                         int64_t M, int64_t R) {
    for (int64_t i0 = 0; i0 < M; i0 += FMR) {
        float *dst = Ap + i0 * R;
        int64_t mr = imin(FMR, M - i0);
        for (int64_t r0 = 0; r0 < R; r0 += seg) {
            const float *src = base + i0 * rs + (r0 / seg) * ss;
            if (mr == FMR) {
                cvx_transpose(dst + r0 * FMR, FMR, src, rs, FMR, imin(seg, R - r0));
            } else {
                for (int64_t r = 0; r < imin(seg, R - r0); r++)
                    for (int64_t i = 0; i < FMR; i++) dst[(r0 + r) * FMR + i] = i < mr ? src[i * rs + r] : 0.0f;
            }
        }
    }
}

/* Ap (ceil(M/8), R, 8) <- A (M, R), A(i, r) = base[i*rs + (r/seg)*ss + (r%seg)*cs], rows past M zero */
void cvx_pack_a(float *Ap, const float *base, int64_t rs, int64_t cs, int64_t seg, int64_t ss, int64_t M,
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

/* The padded extent an output grid reads: Hp = (OH-1)*sh + (KH-1)*dh + 1 rows from ih = -pt, and as
 * many columns from iw = -pl; inside it every tap of every output pixel is in bounds. */
void cvx_padded_dims(const conv_args *a, int64_t *Hp, int64_t *Wp) {
    *Hp = (a->OH - 1) * a->sh + (a->KH - 1) * a->dh + 1;
    *Wp = (a->OW - 1) * a->sw + (a->KW - 1) * a->dw + 1;
}

/* dst (nshift, nrows, 8) <- for each column offset shift[s], columns shift[s] .. shift[s]+7 of the source rows
 * (nrows rows of wsrc floats at src; shift[s] + 8 <= wsrc) */
GB_TARGET_AVX512 void cvx_shift_rows(float *dst, const float *src, int64_t nrows, int64_t wsrc, const int64_t *shift,
                                     int64_t nshift) {
    for (int64_t s = 0; s < nshift; s++) {
        const float *sr = src + shift[s];
        float *d = dst + s * nrows * 8;
        for (int64_t r = 0; r < nrows; r++) _mm256_storeu_ps(d + r * 8, _mm256_loadu_ps(sr + r * wsrc));
    }
}

/* xp (nb, Cg, Hp, Wp) <- x (nb images of C*H*W, group offset applied) with zeros outside */
GB_TARGET_AVX512 void cvx_pad_planes(float *xp, const float *x, int64_t nb, const conv_args *a, int64_t Hp,
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
GB_TARGET_AVX512 void cvx_phase_planes(float *xq, const float *x, int64_t nb, const conv_args *a, int64_t Hq,
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
GB_TARGET_AVX512 void cvx_im2col32(float *Bp, const float *xp, int32_t *idx, const int32_t *kt, int64_t nb,
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
GB_TARGET_AVX512 void cvx_rows32(float *Bp, const float *base, int64_t rs, int64_t ss, int64_t R, int64_t P,
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
GB_TARGET_AVX512 void cvx_im2colT32(float *Bp, float *xt, const float *x, int64_t nb, const conv_args *a) {
    int64_t Cg = a->C / a->G, P = a->OH * a->OW, T = a->KH * a->KW, K = Cg * T, R = nb * P, HW = a->H * a->W;
    int64_t img = a->C * HW;
    for (int64_t jb = 0; jb < nb; jb++) {
        cvx_transpose(xt, Cg, x + jb * img, HW, Cg, HW);  /* xt (HW, Cg) <- x (Cg, HW) */
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
GB_TARGET_AVX512 void cvx_im2colT_small(float *Bp, float *col, float *xp, const float *x, int64_t nb,
                                           const conv_args *a, int64_t Hp, int64_t Wp) {
    int64_t Cg = a->C / a->G, P = a->OH * a->OW, OW = a->OW, K = Cg * a->KH * a->KW, R = nb * P;
    int64_t K8 = (K + 7) / 8 * 8, Kp = (K + FNR - 1) / FNR * FNR;
    cvx_pad_planes(xp, x, nb, a, Hp, Wp);
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
        cvx_transpose(Bp + (k0 / FNR) * R * FNR + k0 % FNR, FNR, col + k0 * R, R, 8, R);
    if (Kp > K8)
        for (int64_t r = 0; r < R; r++)
            memset(Bp + (Kp / FNR - 1) * R * FNR + r * FNR + K8 % FNR, 0, (size_t)(Kp - K8) * sizeof(float));
}

#endif
