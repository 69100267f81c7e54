/* GELU, elementwise. Phi(x) = 0.5 * erfc(|x| / sqrt 2) mirrored, with
 *     erfc(z) = t * Q(t) * exp(-z^2),  t = 1 / (1 + z/2),  z >= 0,
 * Q a degree-8 polynomial fitted to erfc(z) exp(z^2) / t over z in [0, 11.3] (t in [0.15, 1]; beyond,
 * Phi underflows float32) with relative error < 5e-8 (float32 evaluation ~2e-7), so the negative
 * tail stays accurate in relative terms, as with the Numerical Recipes erfc used before (which needed
 * exp(-z^2 + P9(t))). Writing it as a product lets the derivative's density phi(x) = exp(-z^2) /
 * sqrt(2 pi) reuse the same exp: backward costs one exp per element instead of two.
 * Parallel over contiguous chunks.
 *
 * The exact (erf) loops have hand-written AVX2 bodies and, for the AVX-512 tier, the same in 512-bit
 * vectors (16 lanes; on Zen 4 twice the 256-bit body's speed: 0.036 -> 0.017 ms per 64K floats on one
 * core, in cache). GCC's vectorisation of the scalar formula kept its constants in
 * spilled registers and ran one long dependent chain per 8 lanes (4.3 ms forward / 5.8 ms backward
 * over 3.1M floats on one Zen 4 core at the AVX2 tier, twice the AVX-512 tier's time). The bodies
 * interleave two vectors, fold the constant factors into the coefficients and use a 13-operation exp.
 * The tanh form has the same two bodies (from one exp(-2|u|)); GCC's vectorisation of its scalar loop ran
 * 4x slower than the erf bodies on the Xeon VM (public-API F.gelu tanh, (2048,1536) fwd+bwd, AVX2 tier:
 * 19.7 ms vs 4.3 ms for the exact form). The base tier keeps the scalar loops.
 *
 * gelu_forward_backward evaluates erfc once for both gelu(x) and dout * gelu'(x): the backward of
 * a fused gelu + linear (GeluLinear), which needs gelu(h) again for the weight gradient. */
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "gelu.h"

#define GELU_K 0.7978845608028654f      /* sqrt(2/pi) */
#define GELU_C 0.044715f
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

/* erfc(z) = t Q(t) exp(-z^2), t = 1 / (1 + z/2), z >= 0 (header comment) */
#define ERFC_Q0 2.820847631e-01f
#define ERFC_Q1 2.824042737e-01f
#define ERFC_Q2 2.428924590e-01f
#define ERFC_Q3 2.035246640e-01f
#define ERFC_Q4 -2.860908210e-02f
#define ERFC_Q5 2.809504271e-01f
#define ERFC_Q6 -4.897232950e-01f
#define ERFC_Q7 2.857950628e-01f
#define ERFC_Q8 -5.931930616e-02f

/* Phi(x); *dens = exp(-x^2 / 2) for the density */
static inline GB_INLINE float gb_cdf(float x, float *dens) {
    float z = (x < 0.0f ? -x : x) * INV_SQRT2;
    float t = 1.0f / (1.0f + 0.5f * z);
    float q = ERFC_Q0 + t * (ERFC_Q1 + t * (ERFC_Q2 + t * (ERFC_Q3 + t * (ERFC_Q4 + t * (ERFC_Q5 +
              t * (ERFC_Q6 + t * (ERFC_Q7 + t * ERFC_Q8)))))));
    float e = gb_expf(-0.5f * x * x);  /* -z^2 with one rounding (-0.5x is exact) */
    float hy = 0.5f * t * q * e;  /* 0.5 erfc(|x|/sqrt2): Phi(x) for x <= 0, 1 - Phi(x) for x > 0 */
    *dens = e;
    return x <= 0.0f ? hy : 1.0f - hy;
}

/* ---- the scalar formula (every tier's tanh form, the base tier's erf form, the vector tails) ---- */

/* out[i] = gelu(x) (if WANT_OUT), dinp[i] = (HAS_DOUT ? dout[i] : 1) * gelu'(x) (if WANT_D); the flags
 * are constants at every call (gelu_dispatch), so each combination is its own vectorised loop */
static inline GB_INLINE void gelu_scalar_loop(float *out, float *dinp, const float *dout, const float *inp,
                                              int tanh_approx, int64_t i0, int64_t i1,
                                              const int WANT_OUT, const int WANT_D, const int HAS_DOUT) {
    if (tanh_approx) {
        #pragma omp simd
        for (int64_t i = i0; i < i1; i++) {
            float x = inp[i], u = GELU_K * (x + GELU_C * x * x * x);
            /* with e = exp(-2u), s = 1/(1+e): 0.5(1+tanh u) = s and 1 - tanh^2 u = 4 s (e s), which
             * avoids the cancellation of 1 - th*th for large |u| */
            float e = gb_expf(-2.0f * u), sg = 1.0f / (1.0f + e);
            if (WANT_OUT) out[i] = x * sg;  /* 0.5 x (1 + tanh u) = x * sigmoid(2u) */
            if (WANT_D) {
                float g = sg + 2.0f * x * sg * (e * sg) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
                dinp[i] = HAS_DOUT ? dout[i] * g : g;
            }
        }
    } else {
        #pragma omp simd
        for (int64_t i = i0; i < i1; i++) {
            float x = inp[i], e;
            float cdf = gb_cdf(x, &e);
            if (WANT_OUT) out[i] = x * cdf;
            if (WANT_D) {
                float g = cdf + x * INV_SQRT_2PI * e;
                dinp[i] = HAS_DOUT ? dout[i] * g : g;
            }
        }
    }
}

/* `loop`(..., WANT_OUT, WANT_D, HAS_DOUT) with the flags as constants */
#define GELU_DISPATCH(loop, out, dinp, dout, ...)                                     \
    do {                                                                              \
        if (!(dinp)) loop(out, dinp, dout, __VA_ARGS__, 1, 0, 0);                     \
        else if (!(out)) loop(out, dinp, dout, __VA_ARGS__, 0, 1, 1);                 \
        else if (dout) loop(out, dinp, dout, __VA_ARGS__, 1, 1, 1);                   \
        else loop(out, dinp, dout, __VA_ARGS__, 1, 1, 0);                             \
    } while (0)

static inline GB_INLINE void gelu_scalar_chunk(float *out, float *dinp, const float *dout, const float *inp,
                                               int tanh_approx, int64_t i0, int64_t i1) {
    GELU_DISPATCH(gelu_scalar_loop, out, dinp, dout, inp, tanh_approx, i0, i1);
}

/* ---- the exact form in AVX2 intrinsics -------------------------------------------------------- */
#if GB_X86
#include <immintrin.h>

/* exp(a) for a <= ~0: n = round(a / ln 2), r = a - n ln 2 (two-part ln 2), e^r by a degree-5 fit on
 * |r| <= ln2/2 (rel. err 9e-8), times 2^n added into the exponent bits. a is clamped at -87 so that
 * 2^n e^r stays a normal float (exp(-87) ~ 1.6e-38 stands in for anything smaller). 13 operations;
 * the exp was ~45% of the erf loop's time with gb_expf's 17. */
GB_TARGET_AVX2 static inline GB_INLINE __m256 v_exp_nonpos(__m256 a) {
    a = _mm256_max_ps(a, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(8.290247992e-03f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.189785197e-02f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666763723e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.999915063e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.999997020e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

/* Phi(x) of 8 lanes (gb_cdf); *dens = exp(-x^2 / 2) */
GB_TARGET_AVX2 static inline GB_INLINE __m256 v_cdf(__m256 x, __m256 *dens) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f * INV_SQRT2), ax, one));  /* 1/(1 + z/2) */
    /* Q(t) / 2 by Horner (the loop is throughput-bound: Estrin's extra multiplies cost more) */
    __m256 q = _mm256_set1_ps(0.5f * ERFC_Q8);
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * ERFC_Q7));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * ERFC_Q6));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * ERFC_Q5));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * ERFC_Q4));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * ERFC_Q3));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * ERFC_Q2));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * ERFC_Q1));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(0.5f * ERFC_Q0));
    __m256 e = v_exp_nonpos(_mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(-0.5f)), x));  /* one rounding */
    __m256 hy = _mm256_mul_ps(_mm256_mul_ps(t, q), e);  /* 0.5 erfc(|x|/sqrt2) */
    *dens = e;
    /* 0.5 erfc(|x|/sqrt2) is Phi(x) for x <= 0 and 1 - Phi(x) for x > 0 */
    return _mm256_blendv_ps(_mm256_sub_ps(one, hy), hy, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LE_OQ));
}

/* gelu and/or (dout *) gelu' of the 8 lanes at inp + i (flags as in gelu_scalar_loop) */
GB_TARGET_AVX2 static inline GB_INLINE void v_gelu8(float *out, float *dinp, const float *dout, const float *inp,
                                                    int64_t i, const int WANT_OUT, const int WANT_D,
                                                    const int HAS_DOUT) {
    __m256 x = _mm256_loadu_ps(inp + i), e;
    __m256 cdf = v_cdf(x, &e);
    if (WANT_OUT) _mm256_storeu_ps(out + i, _mm256_mul_ps(x, cdf));
    if (WANT_D) {
        __m256 g = _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps(INV_SQRT_2PI)), e, cdf);  /* Phi + x phi */
        _mm256_storeu_ps(dinp + i, HAS_DOUT ? _mm256_mul_ps(_mm256_loadu_ps(dout + i), g) : g);
    }
}

/* The tanh form: 0.5 (1 + tanh u) = sigmoid(2u), u = K x (1 + C x^2), from e = exp(-2|u|) <= 1 (no overflow):
 * sp = sigmoid(2|u|) = 1 / (1 + e), sigmoid(-2|u|) = e sp, and 1 - tanh^2 u = 4 sp (e sp) for either sign.
 * gelu' = sigmoid(2u) + x (e sp^2) 2K (1 + 3 C x^2). */
GB_TARGET_AVX2 static inline GB_INLINE void v_gelu_tanh8(float *out, float *dinp, const float *dout, const float *inp,
                                                         int64_t i, const int WANT_OUT, const int WANT_D,
                                                         const int HAS_DOUT) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 x = _mm256_loadu_ps(inp + i), x2 = _mm256_mul_ps(x, x);
    __m256 u = _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(GELU_K)), _mm256_fmadd_ps(x2, _mm256_set1_ps(GELU_C), one));
    __m256 au = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), u);
    __m256 e = v_exp_nonpos(_mm256_mul_ps(au, _mm256_set1_ps(-2.0f)));
    __m256 sp = _mm256_div_ps(one, _mm256_add_ps(one, e)), sn = _mm256_mul_ps(e, sp);
    __m256 sg = _mm256_blendv_ps(sp, sn, _mm256_cmp_ps(u, _mm256_setzero_ps(), _CMP_LT_OQ));  /* sigmoid(2u) */
    if (WANT_OUT) _mm256_storeu_ps(out + i, _mm256_mul_ps(x, sg));
    if (WANT_D) {
        __m256 slope = _mm256_fmadd_ps(x2, _mm256_set1_ps(6.0f * GELU_C * GELU_K), _mm256_set1_ps(2.0f * GELU_K));
        __m256 g = _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_mul_ps(sp, sn)), slope, sg);
        _mm256_storeu_ps(dinp + i, HAS_DOUT ? _mm256_mul_ps(_mm256_loadu_ps(dout + i), g) : g);
    }
}

/* 8 lanes of either form (the choice is per chunk, so the branch always goes the same way) */
GB_TARGET_AVX2 static inline GB_INLINE void v_gelu8_form(float *out, float *dinp, const float *dout, const float *inp,
                                                         int tanh_approx, int64_t i, const int WANT_OUT,
                                                         const int WANT_D, const int HAS_DOUT) {
    if (tanh_approx) v_gelu_tanh8(out, dinp, dout, inp, i, WANT_OUT, WANT_D, HAS_DOUT);
    else v_gelu8(out, dinp, dout, inp, i, WANT_OUT, WANT_D, HAS_DOUT);
}

/* two vectors per iteration: independent chains for the out-of-order core to overlap */
GB_TARGET_AVX2 static inline GB_INLINE void gelu_simd_loop(float *out, float *dinp, const float *dout,
                                                           const float *inp, int tanh_approx, int64_t i0, int64_t i1,
                                                           const int WANT_OUT, const int WANT_D, const int HAS_DOUT) {
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        v_gelu8_form(out, dinp, dout, inp, tanh_approx, i, WANT_OUT, WANT_D, HAS_DOUT);
        v_gelu8_form(out, dinp, dout, inp, tanh_approx, i + 8, WANT_OUT, WANT_D, HAS_DOUT);
    }
    for (; i + 8 <= i1; i += 8) v_gelu8_form(out, dinp, dout, inp, tanh_approx, i, WANT_OUT, WANT_D, HAS_DOUT);
    gelu_scalar_loop(out, dinp, dout, inp, tanh_approx, i, i1, WANT_OUT, WANT_D, HAS_DOUT);
}

GB_TARGET_AVX2 static inline GB_INLINE void gelu_simd_chunk(float *out, float *dinp, const float *dout,
                                                            const float *inp, int tanh_approx, int64_t i0, int64_t i1) {
    GELU_DISPATCH(gelu_simd_loop, out, dinp, dout, inp, tanh_approx, i0, i1);
}

/* ---- the same in 512-bit vectors for the AVX-512 tier (16 lanes, the sign select by mask) ---- */
GB_TARGET_AVX512 static inline GB_INLINE __m512 v16_exp_nonpos(__m512 a) {
    a = _mm512_max_ps(a, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), a);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(8.290247992e-03f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.189785197e-02f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666763723e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999915063e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.999997020e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), e));
}

GB_TARGET_AVX512 static inline GB_INLINE __m512 v16_cdf(__m512 x, __m512 *dens) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f * INV_SQRT2), ax, one));
    __m512 q = _mm512_set1_ps(0.5f * ERFC_Q8);
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * ERFC_Q7));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * ERFC_Q6));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * ERFC_Q5));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * ERFC_Q4));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * ERFC_Q3));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * ERFC_Q2));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * ERFC_Q1));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.5f * ERFC_Q0));
    __m512 e = v16_exp_nonpos(_mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(-0.5f)), x));
    __m512 hy = _mm512_mul_ps(_mm512_mul_ps(t, q), e);
    *dens = e;
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LE_OQ);
    return _mm512_mask_blend_ps(neg, _mm512_sub_ps(one, hy), hy);
}

GB_TARGET_AVX512 static inline GB_INLINE void v_gelu16(float *out, float *dinp, const float *dout, const float *inp,
                                                       int64_t i, const int WANT_OUT, const int WANT_D,
                                                       const int HAS_DOUT) {
    __m512 x = _mm512_loadu_ps(inp + i), e;
    __m512 cdf = v16_cdf(x, &e);
    if (WANT_OUT) _mm512_storeu_ps(out + i, _mm512_mul_ps(x, cdf));
    if (WANT_D) {
        __m512 g = _mm512_fmadd_ps(_mm512_mul_ps(x, _mm512_set1_ps(INV_SQRT_2PI)), e, cdf);
        _mm512_storeu_ps(dinp + i, HAS_DOUT ? _mm512_mul_ps(_mm512_loadu_ps(dout + i), g) : g);
    }
}

GB_TARGET_AVX512 static inline GB_INLINE void v_gelu_tanh16(float *out, float *dinp, const float *dout,
                                                            const float *inp, int64_t i, const int WANT_OUT,
                                                            const int WANT_D, const int HAS_DOUT) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 x = _mm512_loadu_ps(inp + i), x2 = _mm512_mul_ps(x, x);
    __m512 u = _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(GELU_K)), _mm512_fmadd_ps(x2, _mm512_set1_ps(GELU_C), one));
    __m512 e = v16_exp_nonpos(_mm512_mul_ps(_mm512_abs_ps(u), _mm512_set1_ps(-2.0f)));
    __m512 sp = _mm512_div_ps(one, _mm512_add_ps(one, e)), sn = _mm512_mul_ps(e, sp);
    __m512 sg = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_LT_OQ), sp, sn);
    if (WANT_OUT) _mm512_storeu_ps(out + i, _mm512_mul_ps(x, sg));
    if (WANT_D) {
        __m512 slope = _mm512_fmadd_ps(x2, _mm512_set1_ps(6.0f * GELU_C * GELU_K), _mm512_set1_ps(2.0f * GELU_K));
        __m512 g = _mm512_fmadd_ps(_mm512_mul_ps(x, _mm512_mul_ps(sp, sn)), slope, sg);
        _mm512_storeu_ps(dinp + i, HAS_DOUT ? _mm512_mul_ps(_mm512_loadu_ps(dout + i), g) : g);
    }
}

GB_TARGET_AVX512 static inline GB_INLINE void gelu_simd16_loop(float *out, float *dinp, const float *dout,
                                                               const float *inp, int tanh_approx, int64_t i0,
                                                               int64_t i1, const int WANT_OUT, const int WANT_D,
                                                               const int HAS_DOUT) {
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        if (tanh_approx) v_gelu_tanh16(out, dinp, dout, inp, i, WANT_OUT, WANT_D, HAS_DOUT);
        else v_gelu16(out, dinp, dout, inp, i, WANT_OUT, WANT_D, HAS_DOUT);
    }
    gelu_simd_loop(out, dinp, dout, inp, tanh_approx, i, i1, WANT_OUT, WANT_D, HAS_DOUT);  /* < 16 left */
}

GB_TARGET_AVX512 static void gelu_chunk_avx512(float *out, float *dinp, const float *dout, const float *inp,
                                               int tanh_approx, int64_t i0, int64_t i1) {
    GELU_DISPATCH(gelu_simd16_loop, out, dinp, dout, inp, tanh_approx, i0, i1);
}
GB_TARGET_AVX2 static void gelu_chunk_avx2(float *out, float *dinp, const float *dout, const float *inp,
                                           int tanh_approx, int64_t i0, int64_t i1) {
    gelu_simd_chunk(out, dinp, dout, inp, tanh_approx, i0, i1);
}
#endif

static void gelu_chunk_base(float *out, float *dinp, const float *dout, const float *inp, int tanh_approx,
                            int64_t i0, int64_t i1) {
    gelu_scalar_chunk(out, dinp, dout, inp, tanh_approx, i0, i1);
}

#if !GB_X86
#define gelu_chunk_avx512 gelu_chunk_base
#define gelu_chunk_avx2 gelu_chunk_base
#endif

typedef struct { float *out, *dinp; const float *dout, *inp; int tanh_approx; int64_t n; } gelu_args;

static void gelu_task(void *ctx, int t, int nt) {
    gelu_args *a = ctx;
    int64_t i0, i1;
    gb_split(a->n, t, nt, &i0, &i1);
    GB_CALL(gelu_chunk, (a->out, a->dinp, a->dout, a->inp, a->tanh_approx, i0, i1));
}

static int gelu_run(float *out, float *dinp, const float *dout, const float *inp, int approximate_tanh, int64_t n) {
    gelu_args a = {out, dinp, dout, inp, approximate_tanh, n};
    gb_parallel(gelu_task, &a, n >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    return 0;
}

int gelu_forward(float *out, const float *inp, int approximate_tanh, int64_t n) {
    return gelu_run(out, NULL, NULL, inp, approximate_tanh, n);
}

int gelu_backward(float *dinp, const float *dout, const float *inp, int approximate_tanh, int64_t n) {
    return gelu_run(NULL, dinp, dout, inp, approximate_tanh, n);
}

int gelu_forward_backward(float *out, float *dinp, const float *dout, const float *inp, int approximate_tanh,
                          int64_t n) {
    return gelu_run(out, dinp, dout, inp, approximate_tanh, n);
}
