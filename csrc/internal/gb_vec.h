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
