/* Shared by the AVX-512 convolution sources (not part of the cffi cdef): conv_avx512.c (micro-kernels,
 * GEMM driver, the forward / backward tasks) and conv_avx512_pack.c (the packing: padded and phase
 * planes, patch panels, transposes). Legend as in conv.h. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "gb_common.h"
#include "conv_args.h"

#if GB_X86
#include <immintrin.h>

#define FMR 8                   /* rows of the register tile */
#define FNR 32                  /* columns: two zmm */
#define FKC 640                 /* reduction block: an 8 x FKC A panel is 20 KB (L1) */
#define CHUNK_BYTES (512 * 1024)

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static inline __mmask16 lanes(int64_t n) { return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1u); }

/* Thread-local scratch, grown on demand and kept: slots 0-3 are the tasks' (each thread's own), slots 4-7
 * the calling thread's outside the parallel regions (packed weights, partial sums, phase outputs). */
float *cvx_buf(int which, size_t nfloats);
/* packing (conv_avx512_pack.c); the GB_TARGET_AVX512 ones only after gb_isa() said AVX-512 */
GB_TARGET_AVX512 void cvx_transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t m, int64_t n);
GB_TARGET_AVX512 void cvx_pack_a_rows(float *Ap, const float *base, int64_t rs, int64_t seg, int64_t ss, int64_t M, int64_t R);
void cvx_pack_a(float *Ap, const float *base, int64_t rs, int64_t cs, int64_t seg, int64_t ss, int64_t M, int64_t R);
void cvx_padded_dims(const conv_args *a, int64_t *Hp, int64_t *Wp);
GB_TARGET_AVX512 void cvx_pad_planes(float *xp, const float *x, int64_t nb, const conv_args *a, int64_t Hp, int64_t Wp);
GB_TARGET_AVX512 void cvx_shift_rows(float *dst, const float *src, int64_t nrows, int64_t wsrc, const int64_t *shift, int64_t nshift);
GB_TARGET_AVX512 void cvx_phase_planes(float *xq, const float *x, int64_t nb, const conv_args *a, int64_t Hq, int64_t Wq);
GB_TARGET_AVX512 void cvx_im2col32(float *Bp, const float *xp, int32_t *idx, const int32_t *kt, int64_t nb, const conv_args *a, int64_t xs, int64_t rs, int64_t cs);
GB_TARGET_AVX512 void cvx_rows32(float *Bp, const float *base, int64_t rs, int64_t ss, int64_t R, int64_t P, int64_t N);
GB_TARGET_AVX512 void cvx_im2colT32(float *Bp, float *xt, const float *x, int64_t nb, const conv_args *a);
GB_TARGET_AVX512 void cvx_im2colT_small(float *Bp, float *col, float *xp, const float *x, int64_t nb, const conv_args *a, int64_t Hp, int64_t Wp);
#endif
