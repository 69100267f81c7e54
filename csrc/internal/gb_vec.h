/* 8-float vectors as GCC vector types (not intrinsics), so one loop body compiles on every tier of a
 * GB_MULTIVERSION function: SSE2 pairs on the base tier, one ymm on AVX2 and AVX-512. Not part of the
 * cffi cdef. ld8/hsum8 are always inlined, so no 32-byte vector crosses a call in the base tier either. */
#pragma once
#include <string.h>
#include "gb_common.h"

#pragma GCC diagnostic ignored "-Wpsabi"
typedef float gb_v8 __attribute__((vector_size(32)));

/* the 8 floats at p (any alignment) */
static inline GB_INLINE gb_v8 ld8(const float *p) { gb_v8 v; memcpy(&v, p, sizeof v); return v; }

/* v's lanes summed pairwise */
static inline GB_INLINE float hsum8(gb_v8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

typedef int32_t gb_i8 __attribute__((vector_size(32)));

/* f in every lane */
static inline GB_INLINE gb_v8 splat8(float f) { return (gb_v8){f, f, f, f, f, f, f, f}; }

/* the lanes of v where m is all ones, else w (m: a lane comparison's result) */
static inline GB_INLINE gb_v8 sel8(gb_i8 m, gb_v8 v, gb_v8 w) { return (gb_v8)(((gb_i8)v & m) | ((gb_i8)w & ~m)); }

/* v's largest lane */
static inline GB_INLINE float hmax8(gb_v8 v) {
    float a = v[0] > v[4] ? v[0] : v[4], b = v[1] > v[5] ? v[1] : v[5];
    float c = v[2] > v[6] ? v[2] : v[6], d = v[3] > v[7] ? v[3] : v[7];
    a = a > b ? a : b;
    c = c > d ? c : d;
    return a > c ? a : c;
}

/* gb_expf of 8 lanes x <= 88 (a softmax's scores less their max or log-sum-exp: the same lower clamp, reduction
 * and polynomial), with exp(-inf) = 0 exactly (masked scores). GCC's vectorisation of a loop over the scalar
 * form ran its remainder (a causal row's last < 8 keys) one float at a time through the scalar exp. */
static inline GB_INLINE gb_v8 exp8(gb_v8 x) {
    gb_i8 masked = x == -INFINITY;
    x = sel8(x < -87.3365f, splat8(-87.3365f), x);
    gb_v8 n, r, p;
    GB_EXPF_BODY(x, n, r, p, splat8(1.9875691500e-4f));
    gb_i8 e = (__builtin_convertvector(n, gb_i8) + 127) << 23;
    return sel8(masked, splat8(0.0f), p * (gb_v8)e);
}
