/* Internal GEMM building blocks (gemm_core.c). Not part of the cffi cdef. */
#pragma once
#include <stdint.h>
#include <stddef.h>

#define MR 6
#define NR 16
#define KC 384  /* a transformer's K = n_embd = 384 in one block: 2-4% over 256 on the mid model's linears */
#define MC 144   /* multiple of MR; an MCxKC A block (216 KiB) stays in L2 */
#define NC 2048  /* multiple of NR; a KCxNC B block (3 MiB) stays in L3 */

/* C[0:mr, 0:nr] (= or +=) Ap (kc,MR) . Bp (kc,NR) [+ bias (nr,)]; ldc = row stride of C */
typedef void (*gb_ukernel_fn)(int64_t kc, const float *Ap, const float *Bp, float *c, int64_t ldc,
                              int64_t mr, int64_t nr, int accumulate, const float *bias);
gb_ukernel_fn gb_ukernel(void);
/* grown-on-demand thread-local buffer number `which` (0 or 1) of at least nfloats, 64-byte aligned */
float *gb_workspace(int which, size_t nfloats);
/* Ap (ceil(mc/MR), kc, MR) <- op(A)[i0:i0+mc, p0:p0+kc]; lda = row stride of A as stored */
void gb_pack_a(float *Ap, const float *a, int trans_a, int64_t lda, int64_t i0, int64_t p0,
               int64_t mc, int64_t kc);
/* panels [jr0,jr1) of Bp (ceil(nc/NR), kc, NR) <- op(B)[p0:p0+kc, j0:j0+nc]; ldb as stored */
void gb_pack_b(float *Bp, const float *b, int trans_b, int64_t ldb, int64_t j0, int64_t p0,
               int64_t nc, int64_t kc, int64_t jr0, int64_t jr1);
/* single-threaded C (M,N) (= or +=) op(A) (M,K) @ op(B) (K,N); ws holds gb_gemm_tile_ws floats */
size_t gb_gemm_tile_ws(int64_t M, int64_t N, int64_t K);
void gb_gemm_tile(float *c, int64_t ldc, const float *a, int64_t lda, int trans_a, const float *b,
                  int64_t ldb, int trans_b, int64_t M, int64_t N, int64_t K, int accumulate, float *ws);
