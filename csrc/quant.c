/* int8 linear: quantise each activation row, then int8 x int8 dots summed in int32.
 * The AVX2 tier widens 16 int8 to int16 (vpmovsxbw) and multiply-adds pairs into int32 (vpmaddwd), the
 * AVX-512BW tier 32 at a time, four weight rows per pass so each activation load serves four dots; the
 * base tier is the same arithmetic in scalar C. Threads split the output rows (weights are read once per call). */
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "quant.h"
#if GB_X86
#include <immintrin.h>
#endif

static inline GB_INLINE void quantize_row(int8_t *q, float *scale, const float *x, int64_t K) {
    float m = 0.0f;
    for (int64_t k = 0; k < K; k++) {
        float a = x[k] < 0 ? -x[k] : x[k];
        m = a > m ? a : m;
    }
    float s = m > 0.0f ? m / 127.0f : 1.0f, inv = 1.0f / s;
    for (int64_t k = 0; k < K; k++) {
        float v = x[k] * inv;
        long r = lrintf(v);
        q[k] = (int8_t)(r > 127 ? 127 : (r < -127 ? -127 : r));
    }
    *scale = s;
}

static inline GB_INLINE int32_t dot_scalar(const int8_t *a, const int8_t *b, int64_t K) {
    int32_t acc = 0;
    for (int64_t k = 0; k < K; k++) acc += (int32_t)a[k] * (int32_t)b[k];
    return acc;
}

/* rows [o0, o1) of out for every activation row */
static void rows_base(float *out, const int8_t *xq, const float *xs, const int8_t *w, const float *ws,
                      const float *bias, int64_t N, int64_t K, int64_t OC, int64_t o0, int64_t o1) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = o0; o < o1; o++) {
            float v = (float)dot_scalar(xq + n * K, w + o * K, K) * xs[n] * ws[o];
            out[n * OC + o] = bias ? v + bias[o] : v;
        }
}

#if GB_X86
GB_TARGET_AVX2 static inline int32_t hsum_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

GB_TARGET_AVX2 static inline __m256i widen(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

GB_TARGET_AVX2 static void rows_avx2(float *out, const int8_t *xq, const float *xs, const int8_t *w,
                                     const float *ws, const float *bias, int64_t N, int64_t K, int64_t OC,
                                     int64_t o0, int64_t o1) {
    int64_t K16 = K & ~INT64_C(15);
    for (int64_t n = 0; n < N; n++) {
        const int8_t *a = xq + n * K;
        int64_t o = o0;
        for (; o + 4 <= o1; o += 4) {
            const int8_t *b0 = w + o * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
            __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;
            for (int64_t k = 0; k < K16; k += 16) {
                __m256i va = widen(a + k);
                c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(va, widen(b0 + k)));
                c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(va, widen(b1 + k)));
                c2 = _mm256_add_epi32(c2, _mm256_madd_epi16(va, widen(b2 + k)));
                c3 = _mm256_add_epi32(c3, _mm256_madd_epi16(va, widen(b3 + k)));
            }
            int32_t d[4] = {hsum_avx2(c0), hsum_avx2(c1), hsum_avx2(c2), hsum_avx2(c3)};
            const int8_t *bs[4] = {b0, b1, b2, b3};
            for (int j = 0; j < 4; j++) {
                d[j] += dot_scalar(a + K16, bs[j] + K16, K - K16);
                float v = (float)d[j] * xs[n] * ws[o + j];
                out[n * OC + o + j] = bias ? v + bias[o + j] : v;
            }
        }
        for (; o < o1; o++) {
            __m256i c = _mm256_setzero_si256();
            const int8_t *b = w + o * K;
            for (int64_t k = 0; k < K16; k += 16) c = _mm256_add_epi32(c, _mm256_madd_epi16(widen(a + k), widen(b + k)));
            float v = (float)(hsum_avx2(c) + dot_scalar(a + K16, b + K16, K - K16)) * xs[n] * ws[o];
            out[n * OC + o] = bias ? v + bias[o] : v;
        }
    }
}

GB_TARGET_AVX512 static inline int32_t hsum_avx512(__m512i v) { return _mm512_reduce_add_epi32(v); }

GB_TARGET_AVX512 static inline __m512i widen32(const int8_t *p) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)p));
}

/* AVX-512BW: 32 int8 per step (vpmovsxbw zmm + vpmaddwd zmm), four weight rows per pass */
GB_TARGET_AVX512 static void rows_avx512(float *out, const int8_t *xq, const float *xs, const int8_t *w,
                                         const float *ws, const float *bias, int64_t N, int64_t K, int64_t OC,
                                         int64_t o0, int64_t o1) {
    int64_t K32 = K & ~INT64_C(31);
    for (int64_t n = 0; n < N; n++) {
        const int8_t *a = xq + n * K;
        int64_t o = o0;
        for (; o + 4 <= o1; o += 4) {
            const int8_t *b0 = w + o * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
            __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
            for (int64_t k = 0; k < K32; k += 32) {
                __m512i va = widen32(a + k);
                c0 = _mm512_add_epi32(c0, _mm512_madd_epi16(va, widen32(b0 + k)));
                c1 = _mm512_add_epi32(c1, _mm512_madd_epi16(va, widen32(b1 + k)));
                c2 = _mm512_add_epi32(c2, _mm512_madd_epi16(va, widen32(b2 + k)));
                c3 = _mm512_add_epi32(c3, _mm512_madd_epi16(va, widen32(b3 + k)));
            }
            int32_t d[4] = {hsum_avx512(c0), hsum_avx512(c1), hsum_avx512(c2), hsum_avx512(c3)};
            const int8_t *bs[4] = {b0, b1, b2, b3};
            for (int j = 0; j < 4; j++) {
                d[j] += dot_scalar(a + K32, bs[j] + K32, K - K32);
                float v = (float)d[j] * xs[n] * ws[o + j];
                out[n * OC + o + j] = bias ? v + bias[o + j] : v;
            }
        }
        for (; o < o1; o++) {
            const int8_t *b = w + o * K;
            __m512i c = _mm512_setzero_si512();
            for (int64_t k = 0; k < K32; k += 32) c = _mm512_add_epi32(c, _mm512_madd_epi16(widen32(a + k), widen32(b + k)));
            float v = (float)(hsum_avx512(c) + dot_scalar(a + K32, b + K32, K - K32)) * xs[n] * ws[o];
            out[n * OC + o] = bias ? v + bias[o] : v;
        }
    }
}
#endif

typedef struct {
    float *out;
    const int8_t *xq, *w;
    const float *xs, *ws, *bias;
    int64_t N, K, OC;
} int8_args;

static void int8_task(void *ctx, int t, int nt) {
    int8_args *a = (int8_args *)ctx;
    int64_t lo, hi;
    gb_split(a->OC, t, nt, &lo, &hi);
#if GB_X86
    if (gb_isa() >= GB_ISA_AVX512) {
        rows_avx512(a->out, a->xq, a->xs, a->w, a->ws, a->bias, a->N, a->K, a->OC, lo, hi);
        return;
    }
    if (gb_isa() >= GB_ISA_AVX2) {
        rows_avx2(a->out, a->xq, a->xs, a->w, a->ws, a->bias, a->N, a->K, a->OC, lo, hi);
        return;
    }
#endif
    rows_base(a->out, a->xq, a->xs, a->w, a->ws, a->bias, a->N, a->K, a->OC, lo, hi);
}

int int8_linear_forward(float *out, int8_t *xq, float *xs, const float *x, const int8_t *qweight,
                        const float *wscale, const float *bias, int64_t N, int64_t K, int64_t OC) {
    for (int64_t n = 0; n < N; n++) quantize_row(xq + n * K, xs + n, x + n * K, K);
    int8_args args = {out, xq, qweight, xs, wscale, bias, N, K, OC};
    int nt = (N * K * OC >= GB_PAR_MIN_MACS && OC >= 8) ? gb_threads() : 1;
    if (nt > 1) gb_parallel(int8_task, &args, nt);
    else int8_task(&args, 0, 1);
    return 0;
}
