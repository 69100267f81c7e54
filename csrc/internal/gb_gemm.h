/* Internal GEMM building blocks (gemm_core.c). Not part of the cffi cdef. */
#pragma once
#include <stdint.h>
#include <stddef.h>

#define MR 6
#define NR 16
#define KC 384  /* a transformer's K = n_embd = 384 in one block: 2-4% over 256 on the mid model's linears */
#define MC 144   /* multiple of MR; an MCxKC A block (216 KiB) stays in L2 */
#define NC 2048  /* multiple of NR; a KCxNC B block (3 MiB) stays in L3 */

/* The MRxNR micro-kernel (portable or AVX2/FMA): C[0:mr, 0:nr] (= or +=) A (mr,kc) . B (kc,NR) [+ bias (nr,)],
 * A(i,p) = a[i*ars + p*acs] (in place, or a packed (kc, MR) panel: ars = 1, acs = MR), B(p,j) = b[p*ldb + j]
 * (NR readable columns); rows i >= mr re-read row mr-1 (in bounds, dropped) */
typedef void (*gb_ukernel_direct_fn)(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b,
                                     int64_t ldb, float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate,
                                     const float *bias);
gb_ukernel_direct_fn gb_ukernel_direct(void);
/* C[0:mr, 0:nr] (= or +=) A (mr,kc) . [B panel 0 | B panel 1] [+ bias (nr,)], 16 < nr <= 2*NR: two NR-wide
 * B panels per call, B(p, j) = b[(j/NR)*bps + p*ldb + j%NR] (packed: ldb = NR, bps = kc*NR; row-major in
 * place: ldb = its row stride, bps = NR; columns past nr are not read); A(i,p) = a[i*ars + p*acs] (a packed
 * A panel: ars = 1, acs = MR). The AVX-512 tier's kernel; NULL below it (use the NR-wide kernels). */
typedef void (*gb_ukernel_wide_fn)(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t ldb,
                                   int64_t bps, float *c, int64_t ldc, int64_t mr, int64_t nr, int accumulate,
                                   const float *bias);
gb_ukernel_wide_fn gb_ukernel_wide(void);
/* The AVX-512 tier's 12-row form of the wide kernel: 2*MR full rows, rows 0-5 at a_lo and 6-11 at a_hi (each
 * A(i,p) = a[i*ars + p*acs], acs = 1 (in place) or MR (packed)); B packed (two (kc, NR) panels bps apart), nr
 * and C as for gb_ukernel_wide_fn. NULL below AVX-512. */
typedef void (*gb_ukernel_tall_fn)(int64_t kc, const float *a_lo, const float *a_hi, int64_t ars, int64_t acs,
                                   const float *b, int64_t bps, float *c, int64_t ldc, int64_t nr, int accumulate,
                                   const float *bias);
gb_ukernel_tall_fn gb_ukernel_tall(void);
/* grown-on-demand thread-local buffer number `which` (0 or 1) of at least nfloats, 64-byte aligned */
float *gb_workspace(int which, size_t nfloats);
/* Ap (ceil(mc/MR), kc, MR) <- A[i0:i0+mc, p0:p0+kc] with A(i, p) = a[i*rs + p*cs], zero padded */
void gb_pack_a(float *Ap, const float *a, int64_t rs, int64_t cs, int64_t i0, int64_t p0, int64_t mc, int64_t kc);
/* panels [jr0,jr1) of Bp (ceil(nc/NR), kc, NR) <- op(B)[p0:p0+kc, j0:j0+nc]; ldb as stored */
void gb_pack_b(float *Bp, const float *b, int trans_b, int64_t ldb, int64_t j0, int64_t p0,
               int64_t nc, int64_t kc, int64_t jr0, int64_t jr1);
/* single-threaded C (M,N) (= or +=) A (M,K) . B (K,N) read in place, no packing:
 * A(i,p) = a[i*ars + p*acs] (any strides); B in panels of NR columns, B(p,j) = b[(j/NR)*bps + p*ldb + j%NR]:
 * a row-major B (row stride ldb) has bps = NR, a pre-packed (ceil(N/NR), K, NR) one has ldb = NR, bps = K*NR.
 * For small products that live in L1/L2 (attention tiles), where packing both operands cost ~45%
 * of a 64x64x64 product. ws holds gb_gemm_small_ws(K) floats (a zero-padded copy of an edge panel of B).
 * On a tile that the causal diagonal crosses (row i may see column/key j only if j <= i + off), `tri`
 * skips the MRxNR blocks the mask zeroes:
 *   GB_TRI_NONE: the whole product;
 *   GB_TRI_N:    only C(i,j) with j <= i + off is needed (scores); the other blocks are set to 0;
 *   GB_TRI_HEAD: A(i,p) = 0 for p > i + off (probabilities times values or keys);
 *   GB_TRI_TAIL: A(i,p) = 0 for p < i - off (transposed probabilities times dout or q). */
enum { GB_TRI_NONE, GB_TRI_N, GB_TRI_HEAD, GB_TRI_TAIL };
size_t gb_gemm_small_ws(int64_t K);
void gb_gemm_small(float *c, int64_t ldc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t ldb,
                   int64_t bps, int64_t M, int64_t N, int64_t K, int accumulate, int tri, int64_t off, float *ws);
