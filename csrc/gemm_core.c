/* GEMM building blocks shared by sgemm (matmul.c), the attention tiles (attention.c) and the portable
 * convolution (conv.c): packing, the MRxNR micro-kernels (portable, AVX2/FMA and the AVX-512 6x32 tile,
 * chosen at run time) and gb_gemm_small, the unpacked product used inside already-parallel regions. */
#include <stdlib.h>
#include "internal/gb_common.h"
#include "internal/gb_gemm.h"
#if GB_X86
#include <immintrin.h>
#endif


/* ---- workspace: grown on demand and kept (thread-local, so concurrent callers don't share) -- */

float *gb_workspace(int which, size_t nfloats) {
    static __thread float *buf[2];
    static __thread size_t cap[2];
    if (cap[which] < nfloats) {
        free(buf[which]);
        size_t bytes = ((nfloats * sizeof(float) + 63) / 64) * 64;
        buf[which] = (float *)aligned_alloc(64, bytes);
        cap[which] = buf[which] ? nfloats : 0;
    }
    return buf[which];
}

/* ---- packing ----------------------------------------------------------------------------- */

#if GB_X86
/* The rows a0..a7 (8 floats each) transposed in registers: on return a[q] holds column q. */
GB_TARGET_AVX2 static inline GB_INLINE void transpose8x8(__m256 a[8]) {
    __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
    __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
    __m256 t4 = _mm256_unpacklo_ps(a[4], a[5]), t5 = _mm256_unpackhi_ps(a[4], a[5]);
    __m256 t6 = _mm256_unpacklo_ps(a[6], a[7]), t7 = _mm256_unpackhi_ps(a[6], a[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    a[0] = _mm256_permute2f128_ps(u0, u4, 0x20); a[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    a[2] = _mm256_permute2f128_ps(u2, u6, 0x20); a[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    a[4] = _mm256_permute2f128_ps(u0, u4, 0x31); a[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    a[6] = _mm256_permute2f128_ps(u2, u6, 0x31); a[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* dst (kc, NR) <- the transpose of NR rows of b (row stride ldb, contiguous along p):
 * dst[p*NR + j] = b[j*ldb + p], as two 8-row groups of 8x8 register transposes. */
GB_TARGET_AVX2 static void pack_b_trans_avx2(float *dst, const float *b, int64_t ldb, int64_t kc) {
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        for (int half = 0; half < NR / 8; half++) {
            __m256 a[8];
            const float *rows = b + half * 8 * ldb + p;
            for (int j = 0; j < 8; j++) a[j] = _mm256_loadu_ps(rows + j * ldb);
            transpose8x8(a);
            for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (p + q) * NR + half * 8, a[q]);
        }
    }
    for (; p < kc; p++)
        for (int j = 0; j < NR; j++) dst[p * NR + j] = b[j * ldb + p];
}
#endif

#if GB_X86 && MR == 6
/* One 6-float step of a packed A panel, stored 8 floats wide: the 2 floats past the step land on the next step's
 * slot and are overwritten when that step is stored, so only a panel's last step needs the masked store. */
GB_TARGET_AVX2 static inline GB_INLINE void store_step_avx2(float *dst, __m256 v, int last) {
    if (last) _mm256_maskstore_ps(dst, _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0), v);
    else _mm256_storeu_ps(dst, v);
}

/* dst (kc, MR) <- MR rows of a row-major A (row stride lda): dst[p*MR + i] = a[i*lda + p], 8 steps at a time
 * as a 6x8 block transposed in registers; each load stays inside its row's kc floats. The scalar gather it
 * replaces was ~2% of a mid GPT step's samples on the AVX2 tier; the packed products ran 1.01-1.03x as fast
 * (benchmarks/results/kernel_choices.md). */
GB_TARGET_AVX2 static void pack_a_rows_avx2(float *dst, const float *a, int64_t lda, int64_t kc) {
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int i = 0; i < MR; i++) r[i] = _mm256_loadu_ps(a + i * lda + p);
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8x8(r);  /* r[q]: step p + q's MR floats, then two zeros */
        for (int q = 0; q < 8; q++) store_step_avx2(dst + (p + q) * MR, r[q], p + q + 1 == kc);
    }
    for (; p < kc; p++)
        for (int i = 0; i < MR; i++) dst[p * MR + i] = a[i * lda + p];
}
#endif

/* Ap (ceil(mc/MR), kc, MR) <- A[i0:i0+mc, p0:p0+kc], A(i, p) = a[i*rs + p*cs]: MR floats per p, zero padded.
 * A transposed A (K, M) is rs = 1, cs = lda; a row-major one (AVX2 tier, matmul.c pack_rows_of_a) rs = lda,
 * cs = 1 (elsewhere the micro-kernels read a row-major A in place). */
void gb_pack_a(float *Ap, const float *a, int64_t rs, int64_t cs, int64_t i0, int64_t p0, int64_t mc, int64_t kc) {
    if (rs == 1) {  /* a transposed A (dweight = dout^T x): step p's mc floats are contiguous, so each row is read
                     * once, MR floats to each panel (panel by panel re-read each row's lines: 0.90-0.93x the time
                     * of the weight gradients of a small GPT, both tiers); 8-float loads and stores per 6-float
                     * step measured no faster than this copy */
        int64_t full = mc / MR * MR;
        for (int64_t p = 0; p < kc; p++) {
            const float *src = a + i0 + (p0 + p) * cs;
            float *dst = Ap + p * MR;
            for (int64_t ir = 0; ir < full; ir += MR, src += MR, dst += MR * kc) memcpy(dst, src, MR * sizeof(float));
        }
        if (full == mc) return;
        Ap += full * kc, i0 += full, mc -= full;  /* the last, short panel below */
    }
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int64_t mr = mc - ir < MR ? mc - ir : MR;
        float *dst = Ap + ir * kc;
        const float *src = a + (i0 + ir) * rs + p0 * cs;
#if GB_X86 && MR == 6
        if (mr == MR && cs == 1 && gb_cpu_has_avx2_fma()) {
            pack_a_rows_avx2(dst, src, rs, kc);
            continue;
        }
#endif
        for (int64_t p = 0; p < kc; p++, src += cs, dst += MR) {
            for (int64_t i = 0; i < mr; i++) dst[i] = src[i * rs];
            for (int64_t i = mr; i < MR; i++) dst[i] = 0.0f;
        }
    }
}

/* panels [jr0, jr1) of Bp (ceil(nc/NR), kc, NR) <- op(B)[p0:p0+kc, j0:j0+nc], zero padded. */
void gb_pack_b(float *Bp, const float *b, int trans_b, int64_t ldb, int64_t j0, int64_t p0,
               int64_t nc, int64_t kc, int64_t jr0, int64_t jr1) {
#if GB_X86
    int vec = gb_cpu_has_avx2_fma();
#else
    int vec = 0;
#endif
    for (int64_t jp = jr0; jp < jr1; jp++) {
        int64_t jr = jp * NR, nr = nc - jr < NR ? nc - jr : NR;
        float *dst = Bp + jr * kc;
        if (!trans_b) {  /* op(B)[p,j] = b[p*ldb + j]: NR contiguous floats per p */
            const float *src = b + p0 * ldb + j0 + jr;
            if (nr == NR) {
                for (int64_t p = 0; p < kc; p++, src += ldb, dst += NR) memcpy(dst, src, NR * sizeof(float));
            } else {
                for (int64_t p = 0; p < kc; p++, src += ldb, dst += NR) {
                    for (int64_t j = 0; j < nr; j++) dst[j] = src[j];
                    for (int64_t j = nr; j < NR; j++) dst[j] = 0.0f;
                }
            }
        } else {         /* op(B)[p,j] = b[j*ldb + p]: read NR rows of b, KC-contiguous each */
#if GB_X86
            if (vec && nr == NR) {
                pack_b_trans_avx2(dst, b + (j0 + jr) * ldb + p0, ldb, kc);
                continue;
            }
#endif
            for (int64_t j = 0; j < nr; j++) {
                const float *src = b + (j0 + jr + j) * ldb + p0;
                float *d = dst + j;
                for (int64_t p = 0; p < kc; p++, d += NR) *d = src[p];
            }
            for (int64_t j = nr; j < NR; j++)
                for (int64_t p = 0; p < kc; p++) dst[p * NR + j] = 0.0f;
        }
    }
    (void)vec;
}

/* ---- micro-kernels: C[0:mr, 0:nr] (=|+=) Ap (kc,MR) . Bp (kc,NR) [+ bias] ------------------ */

/* C[0:mr, 0:nr] (=|+=) an MRxNR accumulator tile */
static inline GB_INLINE void store_tile(float acc[MR][NR], float *c, int64_t ldc, int64_t mr, int64_t nr,
                                        int accumulate) {
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#if GB_X86
/* C[0:mr, 0:nr] (=|+=) the 6x16 AVX2 accumulators: vector stores for a full tile, else spill and copy */
GB_TARGET_AVX2 static inline GB_INLINE void store_acc_avx2(__m256 acc[MR][2], float *c, int64_t ldc, int64_t mr,
                                                           int64_t nr, int accumulate) {
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
                acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, acc[i][0]);
            _mm256_storeu_ps(ci + 8, acc[i][1]);
        }
        return;
    }
    float tile[MR][NR];
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(tile[i], acc[i][0]);
        _mm256_storeu_ps(tile[i] + 8, acc[i][1]);
    }
    store_tile(tile, c, ldc, mr, nr, accumulate);
}
#endif

#if GB_X86
/* acc[i] += bias[0:nr] (zero beyond nr) for every row of the 6x16 accumulators. A full tile loads the bias
 * straight from memory: copying it through a zeroed buffer on every tile cost 4% of a (768,128)->512 linear. */
GB_TARGET_AVX2 static inline GB_INLINE void add_bias_avx2(__m256 acc[MR][2], const float *bias, int64_t nr) {
    __m256 bv0, bv1;
    if (nr == NR) {
        bv0 = _mm256_loadu_ps(bias);
        bv1 = _mm256_loadu_ps(bias + 8);
    } else {
        float bb[NR] = {0};
        for (int64_t j = 0; j < nr; j++) bb[j] = bias[j];
        bv0 = _mm256_loadu_ps(bb);
        bv1 = _mm256_loadu_ps(bb + 8);
    }
    for (int i = 0; i < MR; i++) {
        acc[i][0] = _mm256_add_ps(acc[i][0], bv0);
        acc[i][1] = _mm256_add_ps(acc[i][1], bv1);
    }
}
#endif


/* ---- unpacked small products (gb_gemm_small) ------------------------------------------------ */

/* C[0:mr, 0:nr] (=|+=) A (mr,kc) . B (kc,NR) [+ bias (nr,)]: A(i,p) = a[i*ars + p*acs], B(p,j) = b[p*ldb + j].
 * Rows i >= mr read row mr-1 (in bounds, results dropped); B must hold NR readable columns. */
static void ukernel_direct_base(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b,
                                int64_t ldb, float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate,
                                const float *bias) {
    float acc[MR][NR] = {{0}};
    for (int64_t p = 0; p < kc; p++)
        for (int i = 0; i < MR; i++) {
            float ai = a[(i < mr ? i : mr - 1) * ars + p * acs];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * b[p * ldb + j];
        }
    if (bias)
        for (int i = 0; i < MR; i++)
            for (int64_t j = 0; j < nr; j++) acc[i][j] += bias[j];
    store_tile(acc, c, ldc, mr, nr, accumulate);
}

#if GB_X86
GB_TARGET_AVX2 static void ukernel_direct_avx2(int64_t kc, const float *a, int64_t ars, int64_t acs,
                                               const float *b, int64_t ldb, float *c, int64_t ldc, int64_t mr,
                                               int64_t nr, int accumulate, const float *bias) {
    const float *a0 = a, *a1 = a + (mr > 1) * ars, *a2 = a + (mr > 2 ? 2 : mr - 1) * ars,
                *a3 = a + (mr > 3 ? 3 : mr - 1) * ars, *a4 = a + (mr > 4 ? 4 : mr - 1) * ars,
                *a5 = a + (mr > 5 ? 5 : mr - 1) * ars;
    for (int64_t i = 0; i < mr; i++) {  /* the C tile's lines, fetched while the FMAs run */
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + nr - 1), _MM_HINT_T0);
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define DIRECT_B __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
#define DIRECT_ROW(r) x = _mm256_broadcast_ss(a##r + o); c##r##0 = _mm256_fmadd_ps(x, b0, c##r##0); \
                      c##r##1 = _mm256_fmadd_ps(x, b1, c##r##1);
    if (mr <= 4) {  /* a short last block (an attention tile's 64 rows are 10 x 6 + 4): only 4 rows' FMAs (rows past
                     * mr are dropped either way; the attention backward 0.96-0.98x its time, the same bits) */
        for (int64_t p = 0, o = 0; p < kc; p++, o += acs, b += ldb) {
            DIRECT_B DIRECT_ROW(0) DIRECT_ROW(1) DIRECT_ROW(2) DIRECT_ROW(3)
        }
    } else {
        for (int64_t p = 0, o = 0; p < kc; p++, o += acs, b += ldb) {
            DIRECT_B DIRECT_ROW(0) DIRECT_ROW(1) DIRECT_ROW(2) DIRECT_ROW(3) DIRECT_ROW(4) DIRECT_ROW(5)
        }
    }
#undef DIRECT_ROW
#undef DIRECT_B
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (bias) add_bias_avx2(acc, bias, nr);
    store_acc_avx2(acc, c, ldc, mr, nr, accumulate);
}
#endif

#if GB_X86
/* C[0:rows, 0:nr] (=|+=) the (rows, 2) zmm accumulators [+ bias (nr,)]: the AVX-512 kernels' epilogue */
GB_TARGET_AVX512 static inline GB_INLINE void store_acc_avx512(__m512 acc[][2], int64_t rows, float *c, int64_t ldc,
                                                               int64_t nr, int accumulate, const float *bias) {
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    __m512 bv0 = _mm512_setzero_ps(), bv1 = bv0;
    if (bias) {
        bv0 = _mm512_maskz_loadu_ps(m0, bias);
        bv1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    for (int64_t i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        __m512 v0 = _mm512_add_ps(acc[i][0], bv0), v1 = _mm512_add_ps(acc[i][1], bv1);
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ci));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}
#endif

#if GB_X86
/* The AVX-512 tier's 6x32 tile: two NR-wide B panels per call, 12 zmm accumulators, one FMA instruction
 * per 16 MACs (half the AVX2 kernel's instructions per FLOP; Zen 4 issues 512-bit FMAs double-pumped, so
 * the gain is front-end room, not peak). A(i,p) = a[i*ars + p*acs]: packed (ars 1, acs MR, zero rows
 * past mr) or in place (rows past mr re-read row mr-1). B panel q at b + q*bps, (kc, NR) each. */
GB_TARGET_AVX512 static void ukernel_wide_avx512(int64_t kc, const float *a, int64_t ars, int64_t acs,
                                                 const float *b, int64_t ldb, int64_t bps, float *c, int64_t ldc,
                                                 int64_t mr, int64_t nr, int accumulate, const float *bias) {
    const float *a0 = a, *a1 = a + (mr > 1 ? 1 : 0) * ars, *a2 = a + (mr > 2 ? 2 : mr - 1) * ars,
                *a3 = a + (mr > 3 ? 3 : mr - 1) * ars, *a4 = a + (mr > 4 ? 4 : mr - 1) * ars,
                *a5 = a + (mr > 5 ? 5 : mr - 1) * ars;
    const float *b0p = b, *b1p = b + bps;
    /* a narrow second panel is read with a mask: an in-place B may end right after its nr columns */
    __mmask16 mb1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;  /* as the epilogue's m1 */
    /* fetch the C tile's lines while the FMAs run: a C larger than L2 otherwise stalls the epilogue */
    for (int64_t i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + nr - 1), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t p = 0, o = 0; p < kc; p++, o += acs, b0p += ldb, b1p += ldb) {
        __m512 b0 = _mm512_loadu_ps(b0p), b1 = _mm512_maskz_loadu_ps(mb1, b1p), x;
        x = _mm512_set1_ps(a0[o]); c00 = _mm512_fmadd_ps(x, b0, c00); c01 = _mm512_fmadd_ps(x, b1, c01);
        x = _mm512_set1_ps(a1[o]); c10 = _mm512_fmadd_ps(x, b0, c10); c11 = _mm512_fmadd_ps(x, b1, c11);
        x = _mm512_set1_ps(a2[o]); c20 = _mm512_fmadd_ps(x, b0, c20); c21 = _mm512_fmadd_ps(x, b1, c21);
        x = _mm512_set1_ps(a3[o]); c30 = _mm512_fmadd_ps(x, b0, c30); c31 = _mm512_fmadd_ps(x, b1, c31);
        x = _mm512_set1_ps(a4[o]); c40 = _mm512_fmadd_ps(x, b0, c40); c41 = _mm512_fmadd_ps(x, b1, c41);
        x = _mm512_set1_ps(a5[o]); c50 = _mm512_fmadd_ps(x, b0, c50); c51 = _mm512_fmadd_ps(x, b1, c51);
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    store_acc_avx512(acc, mr, c, ldc, nr, accumulate, bias);
}
#endif

#if GB_X86
/* The AVX-512 tier's 12x32 tile for full 12-row blocks: rows 0-5 from a_lo, 6-11 from a_hi (each as A(i,p) =
 * a[i*ars + p*acs]; A read in place, acs = 1, or a packed panel pair, acs = MR), B packed (ldb = NR), 24 zmm
 * accumulators: each B vector serves 12 FMAs instead of 6 (half the B traffic a FLOP of the 6x32 tile). The rows
 * are four bases plus 0/1/2 row strides and constant step offsets, two steps an iteration, so the loop's scalar
 * work (which competes with the FMAs for ports on Intel) is a few pointer bumps per 48 FMAs: with one pointer
 * per row and a runtime step the loop had ~8 scalar uops per 24 FMAs (0.93-0.98x the time that way). */
#define T12_ROW(r, base, rowoff, u, S) x = _mm512_set1_ps(*(const float *)((base) + (rowoff) + (u) * (S) * 4)); \
    c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0); c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1);
#define T12_STEP(u, S) { \
    __m512 b0 = _mm512_loadu_ps((const float *)(bq + (u) * NR * 4)), \
           b1 = _mm512_maskz_loadu_ps(mb1, (const float *)(bq + bs + (u) * NR * 4)), x; \
    T12_ROW(0, A0, 0, u, S) T12_ROW(1, A0, rs, u, S) T12_ROW(2, A0, 2 * rs, u, S) \
    T12_ROW(3, A3, 0, u, S) T12_ROW(4, A3, rs, u, S) T12_ROW(5, A3, 2 * rs, u, S) \
    T12_ROW(6, A6, 0, u, S) T12_ROW(7, A6, rs, u, S) T12_ROW(8, A6, 2 * rs, u, S) \
    T12_ROW(9, A9, 0, u, S) T12_ROW(a, A9, rs, u, S) T12_ROW(b, A9, 2 * rs, u, S) }
#define T12_LOOP(S) \
    for (; p + 2 <= kc; p += 2) { \
        T12_STEP(0, S) T12_STEP(1, S) \
        A0 += 2 * (S) * 4; A3 += 2 * (S) * 4; A6 += 2 * (S) * 4; A9 += 2 * (S) * 4; bq += 2 * NR * 4; \
    } \
    if (p < kc) T12_STEP(0, S)
GB_TARGET_AVX512 static void ukernel_tall_avx512(int64_t kc, const float *a_lo, const float *a_hi, int64_t ars,
                                                 int64_t acs, const float *b, int64_t bps, float *c, int64_t ldc,
                                                 int64_t nr, int accumulate, const float *bias) {
    const char *A0 = (const char *)a_lo, *A3 = (const char *)(a_lo + 3 * ars), *A6 = (const char *)a_hi,
               *A9 = (const char *)(a_hi + 3 * ars), *bq = (const char *)b;
    const int64_t rs = ars * (int64_t)sizeof(float), bs = bps * (int64_t)sizeof(float);
    __mmask16 mb1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;  /* as the epilogue's m1 */
    for (int64_t i = 0; i < 2 * MR; i++) _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
           c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00,
           c80 = c00, c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    int64_t p = 0;
    if (acs == 1) { T12_LOOP(1) } else { T12_LOOP(MR) }
    __m512 acc[2 * MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                             {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
    store_acc_avx512(acc, 2 * MR, c, ldc, nr, accumulate, bias);
}
#undef T12_LOOP
#undef T12_STEP
#undef T12_ROW
#endif

gb_ukernel_tall_fn gb_ukernel_tall(void) {
#if GB_X86
    if (gb_isa() >= GB_ISA_AVX512) return ukernel_tall_avx512;
#endif
    return NULL;
}

gb_ukernel_wide_fn gb_ukernel_wide(void) {
#if GB_X86
    if (gb_isa() >= GB_ISA_AVX512) return ukernel_wide_avx512;
#endif
    return NULL;
}

gb_ukernel_direct_fn gb_ukernel_direct(void) {
#if GB_X86
    if (gb_cpu_has_avx2_fma()) return ukernel_direct_avx2;
#endif
    return ukernel_direct_base;
}

size_t gb_gemm_small_ws(int64_t K) { return (size_t)K * NR; }

void gb_gemm_small(float *c, int64_t ldc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t ldb,
                   int64_t bps, int64_t M, int64_t N, int64_t K, int accumulate, int tri, int64_t off, float *ws) {
    if (M <= 0 || N <= 0) return;
    gb_ukernel_direct_fn uk = gb_ukernel_direct();
    gb_ukernel_wide_fn ukw = gb_ukernel_wide();
    for (int64_t jr = 0; jr < N;) {
        if (ukw && jr + NR < N) {  /* AVX-512: two panels (up to 2*NR columns) per call */
            int64_t nr = N - jr < 2 * NR ? N - jr : 2 * NR;
            const float *bp = b + jr / NR * bps;
            for (int64_t ir = 0; ir < M; ir += MR) {
                int64_t mr = M - ir < MR ? M - ir : MR, k0 = 0, k1 = K;
                if (tri == GB_TRI_N && jr > ir + mr - 1 + off) k1 = 0;
                if (tri == GB_TRI_HEAD && ir + mr + off < k1) k1 = ir + mr + off;
                if (tri == GB_TRI_TAIL && ir - off > 0) k0 = ir - off;
                float *cb = c + ir * ldc + jr;
                if (k1 <= k0) {
                    if (!accumulate) for (int64_t i = 0; i < mr; i++) memset(cb + i * ldc, 0, sizeof(float) * nr);
                    continue;
                }
                ukw(k1 - k0, a + ir * ars + k0 * acs, ars, acs, bp + k0 * ldb, ldb, bps, cb, ldc, mr, nr, accumulate,
                    NULL);
            }
            jr += 2 * NR;
            continue;
        }
        int64_t nr = N - jr < NR ? N - jr : NR;
        const float *bp = b + jr / NR * bps;
        int64_t ldbp = ldb;
        if (nr < NR && bps == NR) {  /* the last, narrow panel of a row-major B: a zero-padded (K, NR) copy,
                                      * so full-width loads stay in bounds (a packed B is padded already) */
            for (int64_t p = 0; p < K; p++) {
                for (int64_t j = 0; j < nr; j++) ws[p * NR + j] = bp[p * ldb + j];
                for (int64_t j = nr; j < NR; j++) ws[p * NR + j] = 0.0f;
            }
            bp = ws;
            ldbp = NR;
        }
        for (int64_t ir = 0; ir < M; ir += MR) {
            int64_t mr = M - ir < MR ? M - ir : MR, k0 = 0, k1 = K;
            if (tri == GB_TRI_N && jr > ir + mr - 1 + off) k1 = 0;    /* the whole block is masked */
            if (tri == GB_TRI_HEAD && ir + mr + off < k1) k1 = ir + mr + off;
            if (tri == GB_TRI_TAIL && ir - off > 0) k0 = ir - off;
            float *cb = c + ir * ldc + jr;
            if (k1 <= k0) {  /* empty sum: C = 0 (or unchanged) */
                if (!accumulate) for (int64_t i = 0; i < mr; i++) memset(cb + i * ldc, 0, sizeof(float) * nr);
                continue;
            }
            uk(k1 - k0, a + ir * ars + k0 * acs, ars, acs, bp + k0 * ldbp, ldbp, cb, ldc, mr, nr, accumulate, NULL);
        }
        jr += NR;
    }
}
