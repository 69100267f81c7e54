/* SGEMM, BLIS style: pack a KCxNC block of op(B) into NR-wide panels (shared by the team), pack an
 * MCxKC block of op(A) into MR-tall panels (per thread), and sweep an MRxNR register-blocked
 * micro-kernel over them. The AVX2/FMA micro-kernel (6x16: 12 ymm accumulators) is chosen at run
 * time; the portable one is plain C. Transposed operands are handled by the packing routines, so
 * NN/NT/TN/TT never materialise a transpose. */
#include <stdlib.h>
#include "internal/gb_common.h"
#include "matmul.h"
#include "internal/gb_gemm.h"
#include "internal/gb_pool.h"
#include "internal/gb_vec.h"

/* ---- driver ------------------------------------------------------------------------------ */

#define OWNERS_MAX 1024
#define BLOCKS_CLAIMED 64  /* blocks of op(B) whose rows the shared-B product claims dynamically */
/* From this many rows the AVX2 tier packs a single block of op(B) once for the team (sgemm_one): a mid GPT's
 * (M = 2048) linears 0.98-0.99x the time, its training step 0.993x (in-process A/B, Zen 5, 2026-12-04) */
#define SHARED_B_MIN_ROWS 1024
typedef struct {
    float *c;
    const float *a, *b, *bias;
    const float *addend;  /* C = addend (M,N) + the product (a residual stream), or NULL */
    int trans_a, trans_b, split_m;
    int accumulate;  /* C += the product (C's values are read by the first k-block's epilogue) */
    int64_t M, N, K;
    float *rowsum;  /* a transposed A's product: += the sums of op(A)'s rows (linear_backward's dbias), or NULL */
    float *Bp;  /* sgemm_one: the team's shared packed B block */
    int64_t next_row;  /* the private-B product's next unclaimed row (one block) */
    int64_t next_chunk;  /* ... its next unclaimed chunk of rows (more blocks), and who took each */
    int64_t next_in_block[BLOCKS_CLAIMED];  /* the shared-B product's next unclaimed row of each block */
    uint8_t owner[OWNERS_MAX];
    int err;
} gemm_args;

static inline int64_t imin64(int64_t x, int64_t y) { return x < y ? x : y; }
static void mark_error(gemm_args *g) { __atomic_store_n(&g->err, 1, __ATOMIC_RELAXED); }

/* Whether the AVX2 tier packs a row-major A block rather than reading it in place: when the block
 * serves many B panels (nc columns), or fewer but with rows longer than a k-block (K > KC, whose
 * in-place row streams stride wider). Measured on Zen 3 (benchmarks/results/kernel_choices.md): +2-6%
 * on a mid transformer's linears and 1536^3, -5..-10% on a small one's (N = 128-512, K <= 512). The
 * AVX-512 tier reads A in place always (packing was 0-9% slower on Intel). */
static int pack_rows_of_a(int64_t nc, int64_t K) { return nc >= 768 || (nc >= 384 && K > KC); }

/* C's finished (rows, nr) tile (row stride ldc) += the addend's, while the tile is in L1: the addend is read once,
 * where a separate add read it and all of C again and wrote a third array. The bits of residual + (the product). */
static inline GB_INLINE void add_tile_rows(float *c, const float *d, int64_t ldc, int64_t rows, int64_t nr) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < nr; j++) c[i * ldc + j] = d[i * ldc + j] + c[i * ldc + j];
}
GB_MULTIVERSION(add_tile, (float *c, const float *d, int64_t ldc, int64_t rows, int64_t nr),
                add_tile_rows(c, d, ldc, rows, nr))

#define SUM_CHAINS 8
/* rs[0:mc] += the sums over p of the packed A block Ap (ceil(mc/MR), kc, MR), added one step at a time onto
 * rs's running values: the bits of dbias_columns' row-by-row column sums (k-blocks come in order). A step is one
 * 8-float add (its 6 floats, and 2 of the next step's that are dropped; the panel's last step one by one),
 * SUM_CHAINS panels at a time so that many dependent add chains overlap (with 4 it took as long as the pass it
 * replaced). Read while the block is in L1, where a separate pass over dout read all of it again. */
static inline GB_INLINE void sum_packed_rows(float *rs, const float *Ap, int64_t mc, int64_t kc) {
    int64_t panels = (mc + MR - 1) / MR;
    for (int64_t q0 = 0; q0 < panels; q0 += SUM_CHAINS) {
        int64_t nq = panels - q0 < SUM_CHAINS ? panels - q0 : SUM_CHAINS, rows[SUM_CHAINS];
        float run[SUM_CHAINS][8] = {{0}};
        const float *pan[SUM_CHAINS];
        for (int64_t u = 0; u < SUM_CHAINS; u++) {
            int64_t r0 = (q0 + u) * MR;
            rows[u] = u >= nq ? 0 : mc - r0 < MR ? mc - r0 : MR;
            pan[u] = Ap + (u < nq ? r0 : q0 * MR) * kc;  /* past nq: the first panel again, dropped */
            if (u < nq) memcpy(run[u], rs + r0, (size_t)rows[u] * sizeof(float));
        }
        gb_v8 acc[SUM_CHAINS];
        for (int u = 0; u < SUM_CHAINS; u++) acc[u] = ld8(run[u]);
        for (int64_t p = 0; p + 1 < kc; p++)
            for (int u = 0; u < SUM_CHAINS; u++) acc[u] += ld8(pan[u] + p * MR);
        for (int64_t u = 0; u < nq; u++) {
            memcpy(run[u], &acc[u], sizeof acc[u]);
            for (int64_t i = 0; i < rows[u]; i++) rs[(q0 + u) * MR + i] = run[u][i] + pan[u][(kc - 1) * MR + i];
        }
    }
}
GB_MULTIVERSION(sum_packed_rows_f, (float *rs, const float *Ap, int64_t mc, int64_t kc), sum_packed_rows(rs, Ap, mc, kc))

/* One k-block's view of the product, shared by the tiles of a gemm_block call. */
typedef struct {
    const float *a_blk, *Bp;     /* A rows ic.. (in place, row stride ars, or packed panels), the packed B block */
    int64_t ars, acs, kc, ic, jc, nc;
    int packa, add;              /* add: C += (a later k-block, or accumulate); else C = */
    const float *bias, *addend;  /* the first k-block's bias, the last one's residual (else NULL) */
    gb_ukernel_wide_fn ukw;
    gb_ukernel_direct_fn ukd;
    gb_ukernel_tall_fn ukt;
} kblock_t;

/* C rows ic+ir.. (rows: 2*MR for the 12x32 tile, else mr <= MR), columns jc+jr.. (one B panel, two when wide;
 * fewer columns at the block's end): one micro-kernel call, then the residual added to the finished tile. */
static void gemm_tile(const gemm_args *g, const kblock_t *kb, int64_t ir, int64_t jr, int64_t mr, int wide,
                      int tall) {
    int64_t N = g->N, kc = kb->kc, panel_cols = (wide ? 2 : 1) * NR;
    int64_t nr = kb->nc - jr < panel_cols ? kb->nc - jr : panel_cols;
    const float *a_ir = kb->packa ? kb->a_blk + ir * kc : kb->a_blk + ir * kb->ars;
    const float *bias_j = kb->bias ? kb->bias + kb->jc + jr : NULL, *bp = kb->Bp + jr * kc;
    float *c_ij = g->c + (kb->ic + ir) * N + kb->jc + jr;
    const float *d_ij = kb->addend ? kb->addend + (kb->ic + ir) * N + kb->jc + jr : NULL;
    int64_t rows = tall ? 2 * MR : mr;
    for (int64_t i = 0; d_ij && i < rows; i++) {  /* in flight while the FMAs run */
        __builtin_prefetch(d_ij + i * N);
        __builtin_prefetch(d_ij + i * N + nr - 1);
    }
    if (tall)
        kb->ukt(kc, a_ir, kb->packa ? a_ir + MR * kc : a_ir + MR * kb->ars, kb->ars, kb->acs, bp, NR * kc, c_ij, N, nr,
                kb->add, bias_j);
    else if (wide) kb->ukw(kc, a_ir, kb->ars, kb->acs, bp, NR, NR * kc, c_ij, N, mr, nr, kb->add, bias_j);
    else kb->ukd(kc, a_ir, kb->ars, kb->acs, bp, NR, c_ij, N, mr, nr, kb->add, bias_j);
    if (d_ij) GB_CALL(add_tile, (c_ij, d_ij, N, rows, nr));
}

/* C[ic.., jc + panels jp0..jp1) for rows [m0, m1) of one packed (kc, nc) block of op(B).
 * A row-major A is read in place by the direct micro-kernel (six row streams, no packing pass: 5-10%
 * faster on a small transformer's linears, K = 128, and even at K = 384) unless pack_rows_of_a says
 * otherwise on the AVX2 tier; a transposed A is packed.
 * The AVX-512 tier walks the block strip by strip: for each 12 rows of A (the 12x32 kernel, gb_ukernel_tall:
 * each B vector serves 12 rows, 0.92-0.97x the 6x32 kernel's time), every pair of B panels (the last rows of a
 * block through the 6x32 one, gb_ukernel_wide). The strip (12 x kc, 18 KiB) stays in L1 while the B block
 * (nc_block: at most 768 columns, 1.1 MiB) streams from L2; panel by panel, the pair of B panels (48 KiB at
 * kc = 384) filled all of L1 and both operands came from L2 (strip order, on a Xeon: 0.89-0.95x the time at 1
 * thread and 0.95-0.99x at 2 on the mid GPT's linears; neutral on Zen 4; benchmarks/results/kernel_choices.md).
 * The AVX2 tier goes panel by panel (its 6x16 kernel's panel, 24 KiB, fits L1; strip order was 1.00-1.06x its
 * time). */
static void gemm_block(gemm_args *g, float *Ap, const float *Bp, int64_t m0, int64_t m1,
                       int64_t jc, int64_t nc, int64_t jp0, int64_t jp1, int64_t pc, int64_t kc) {
    int64_t lda = g->trans_a ? g->M : g->K;
    kblock_t kb = {.Bp = Bp, .kc = kc, .jc = jc, .nc = nc, .add = pc > 0 || g->accumulate,
                   .bias = pc == 0 ? g->bias : NULL, .addend = pc + kc >= g->K ? g->addend : NULL,
                   .ukw = gb_ukernel_wide(), .ukd = gb_ukernel_direct(), .ukt = gb_ukernel_tall()};
    kb.packa = g->trans_a || (!kb.ukw && pack_rows_of_a((jp1 - jp0) * NR, g->K));
    kb.ars = kb.packa ? 1 : lda;
    kb.acs = kb.packa ? MR : 1;
    for (int64_t ic = m0; ic < m1; ic += MC) {
        int64_t mc = m1 - ic < MC ? m1 - ic : MC;
        if (kb.packa) gb_pack_a(Ap, g->a, g->trans_a ? 1 : lda, g->trans_a ? lda : 1, ic, pc, mc, kc);
        if (g->rowsum && kb.packa && jc == 0 && jp0 == 0)  /* once per A element: its first column block, and in an
                                                           * N split the thread whose panels start at 0 */
            GB_CALL(sum_packed_rows_f, (g->rowsum + ic, Ap, mc, kc));
        kb.ic = ic;
        kb.a_blk = kb.packa ? Ap : g->a + ic * lda + pc;  /* A rows ic..: packed panels, or in place */
        if (kb.ukt) {  /* strip by strip */
            for (int64_t ir = 0; ir < mc; ir += MR) {
                int64_t mr = mc - ir < MR ? mc - ir : MR;
                int twelve = ir + 2 * MR <= mc;  /* a full 12-row strip */
                for (int64_t jp = jp0; jp < jp1;) {
                    int wide = jp + 1 < jp1;
                    if (twelve && wide) gemm_tile(g, &kb, ir, jp * NR, MR, 1, 1);
                    else {  /* the last, single panel (or a short strip): six rows at a time */
                        gemm_tile(g, &kb, ir, jp * NR, mr, wide, 0);
                        if (twelve) gemm_tile(g, &kb, ir + MR, jp * NR, MR, wide, 0);
                    }
                    jp += wide ? 2 : 1;
                }
                ir += twelve ? MR : 0;
            }
            continue;
        }
        for (int64_t jp = jp0; jp < jp1;) {  /* panel by panel */
            int wide = kb.ukw && jp + 1 < jp1;
            for (int64_t ir = 0; ir < mc; ir += MR)
                gemm_tile(g, &kb, ir, jp * NR, mc - ir < MR ? mc - ir : MR, wide, 0);
            jp += wide ? 2 : 1;
        }
    }
}

/* Columns of one packed block of op(B): NC, or on the AVX-512 tier (strip order, gemm_block) N split evenly
 * into blocks of at most NC_STRIPS columns (whole panel pairs), so the (kc, nc) block stays in L2 while the
 * strips stream it: N = 1536 in two blocks of 768, 1152 in two of 576. */
#define NC_STRIPS 768
static int64_t nc_block(int64_t N) {
    if (!gb_ukernel_tall()) return NC;
    int64_t blocks = (N + NC_STRIPS - 1) / NC_STRIPS, cols = (N + blocks - 1) / blocks;
    return (cols + 2 * NR - 1) / (2 * NR) * (2 * NR);
}

/* rows [m0, m1) of thread t's M split (whole MR panels) */
static void m_split(const gemm_args *g, int t, int nt, int64_t *m0, int64_t *m1) {
    int64_t p0, p1;
    gb_split((g->M + MR - 1) / MR, t, nt, &p0, &p1);
    *m0 = p0 * MR;
    *m1 = p1 * MR < g->M ? p1 * MR : g->M;
}

/* Rows [*r0, *r0 + n) of an M-row product, claimed from *next: chunks shrink from MC toward
 * ROWS_MIN rows as the rows run out (guided), so the threads finish together even when one of them
 * runs slower (a busy neighbour on a shared VM: the static split left one thread idle 6-10% of a call). */
#define ROWS_MIN (8 * MR)
/* ... below the AVX-512 tier: 12 rows, so the last chunks (and the thread that finishes first's wait for the other) are
 * shorter: the mid GPT's AVX2 step 0.978-0.996x (three in-process A/Bs against 48; 24 rows 0.994x, 6 rows
 * 1.003x), the small one's 0.994x. The AVX-512 tier keeps 48 (12 rows: its step 1.015x). */
#define ROWS_MIN_AVX2 (2 * MR)
/* The least rows of a chunk: ROWS_MIN (ROWS_MIN_AVX2), or fewer when M gives fewer than four chunks a thread
 * (M = 128: 48-row chunks split 80/48 between two threads) */
static int64_t rows_floor(int64_t M, int nt) {
    int64_t quarter = ((M + 4 * nt - 1) / (4 * nt) + MR - 1) / MR * MR;
    int64_t least = gb_ukernel_tall() ? ROWS_MIN : ROWS_MIN_AVX2;
    return quarter < least ? quarter : least;
}

static int64_t claim_rows(int64_t *next, int64_t M, int nt, int64_t *r0) {
    int64_t cur = __atomic_load_n(next, __ATOMIC_RELAXED);
    for (;;) {
        if (cur >= M) return 0;
        int64_t n = (M - cur) / (2 * nt), least = rows_floor(M, nt);
        n = n < least ? least : n > MC ? MC : (n + MR - 1) / MR * MR;
        int64_t end = cur + n < M ? cur + n : M;
        if (__atomic_compare_exchange_n(next, &cur, end, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *r0 = cur;
            return end - cur;
        }
    }
}

/* The M-split product with op(B) packed per thread (no barriers; see sgemm_one). One KCxNC block (a
 * transformer's K = n_embd): row chunks claimed dynamically. More blocks: a row's sums must meet the
 * blocks in order in one thread, so the chunks claimed in the first block stay with their thread
 * (going through every block per chunk instead re-read op(B) from L3: 2-6% slower at K = 1536). */
static void sgemm_private_b_task(void *ctx, int t, int nt) {
    gemm_args *g = ctx;
    int64_t ldb = g->trans_b ? g->K : g->N, N = g->N, K = g->K;
    int64_t ncmax = N < NC ? N : NC, kcmax = K < KC ? K : KC, ncb = nc_block(N);
    float *Bp = gb_workspace(0, (size_t)((ncmax + NR - 1) / NR * NR) * kcmax);  /* this thread's */
    float *Ap = gb_workspace(1, (size_t)MC * kcmax);
    if (!Ap || !Bp) {
        mark_error(g);
        return;
    }
    if (K <= KC && N <= NC) {
        int64_t npanels = (N + NR - 1) / NR, r0, n;
        gb_pack_b(Bp, g->b, g->trans_b, ldb, 0, 0, N, K, 0, npanels);
        while ((n = claim_rows(&g->next_row, g->M, nt, &r0)) > 0) gemm_block(g, Ap, Bp, r0, r0 + n, 0, N, 0, npanels, 0, K);
        return;
    }
    /* More blocks: chunks of rows claimed in the first block and kept by their thread for the others,
     * so a thread that runs slower takes fewer from the start. About 8 chunks per thread, of rows_floor to MC
     * rows, or larger when more than OWNERS_MAX would be needed (gemm_block walks a chunk MC rows at a
     * time either way). */
    int64_t rows = (g->M + 8 * nt - 1) / (8 * nt), least = (g->M + OWNERS_MAX - 1) / OWNERS_MAX, q;
    int64_t floor_rows = rows_floor(g->M, nt);
    rows = rows < floor_rows ? floor_rows : rows > MC ? MC : rows;
    rows = ((rows > least ? rows : least) + MR - 1) / MR * MR;
    int64_t nchunks = (g->M + rows - 1) / rows;
    for (int64_t jc = 0; jc < N; jc += ncb) {
        int64_t nc = N - jc < ncb ? N - jc : ncb, npanels = (nc + NR - 1) / NR;
        for (int64_t pc = 0; pc < K; pc += KC) {
            int64_t kc = K - pc < KC ? K - pc : KC;
            gb_pack_b(Bp, g->b, g->trans_b, ldb, jc, pc, nc, kc, 0, npanels);
            if (jc == 0 && pc == 0) {
                while ((q = __atomic_fetch_add(&g->next_chunk, 1, __ATOMIC_RELAXED)) < nchunks) {
                    g->owner[q] = (uint8_t)t;
                    gemm_block(g, Ap, Bp, q * rows, imin64(g->M, (q + 1) * rows), jc, nc, 0, npanels, pc, kc);
                }
                continue;
            }
            for (q = 0; q < nchunks; q++)  /* the chunks this thread took in the first block (its own writes) */
                if (g->owner[q] == t)
                    gemm_block(g, Ap, Bp, q * rows, imin64(g->M, (q + 1) * rows), jc, nc, 0, npanels, pc, kc);
        }
    }
}

/* The shared-B product: the team packs each KCxNC block of op(B) together, then splits M (or N). The M split
 * claims chunks of rows as the private-B product does (claim_rows), block by block (a counter each), so a
 * thread slowed by a busy neighbour takes fewer; any thread may take any block's rows, which does not change a
 * sum (each C element meets the k-blocks in order, a barrier apart). Past BLOCKS_CLAIMED blocks the rows are
 * split evenly. */
static void sgemm_shared_b_task(void *ctx, int t, int nt) {
    gemm_args *g = ctx;
    int64_t ldb = g->trans_b ? g->K : g->N, N = g->N, K = g->K, kcmax = K < KC ? K : KC, ncb = nc_block(N);
    float *Ap = gb_workspace(1, (size_t)MC * kcmax);
    if (!Ap) mark_error(g);  /* keep meeting the barriers; compute nothing */
    for (int64_t jc = 0; jc < N; jc += ncb) {
        int64_t nc = N - jc < ncb ? N - jc : ncb, npanels = (nc + NR - 1) / NR;
        for (int64_t pc = 0; pc < K; pc += KC) {
            int64_t kc = K - pc < KC ? K - pc : KC;
            int64_t q0, q1;
            gb_split(npanels, t, nt, &q0, &q1);  /* B packing is shared work */
            gb_pack_b(g->Bp, g->b, g->trans_b, ldb, jc, pc, nc, kc, q0, q1);
            gb_barrier();
            int64_t blk = (jc / ncb) * ((K + KC - 1) / KC) + pc / KC, r0, n;
            if (g->split_m && blk < BLOCKS_CLAIMED) {  /* rows claimed as in the private-B product */
                while ((n = claim_rows(&g->next_in_block[blk], g->M, nt, &r0)) > 0)
                    if (Ap) gemm_block(g, Ap, g->Bp, r0, r0 + n, jc, nc, 0, npanels, pc, kc);
            } else {
                int64_t m0 = 0, m1 = g->M, jp0 = 0, jp1 = npanels;
                if (g->split_m) m_split(g, t, nt, &m0, &m1);
                else gb_split(npanels, t, nt, &jp0, &jp1);
                if (Ap) gemm_block(g, Ap, g->Bp, m0, m1, jc, nc, jp0, jp1, pc, kc);
            }
            gb_barrier();  /* Bp is overwritten by the next block */
        }
    }
}

static int sgemm_one(float *c, const float *a, const float *b, const float *bias, const float *addend, int trans_a,
                     int trans_b, int accumulate, int64_t M, int64_t N, int64_t K, float *rowsum, int nt) {
    /* Split threads over M when there are enough MR-row panels, else over N (NR-column panels). Also over N
     * when N >= 4M (a weight gradient's fc-down or lm shapes: 128x512 or 128x1536): the M split packs all of
     * op(B) in every thread, the N split only each thread's columns (0.80-0.91x the time at M = 64-128). */
    int split_m = ((M + MR - 1) / MR >= 2 * nt && N < 4 * M) || N <= NR * nt;
    gemm_args g = {c, a, b, bias, addend, trans_a, trans_b, split_m, accumulate, M, N, K, trans_a ? rowsum : NULL,
                   NULL, 0, 0, {0}, {0}, 0};
    /* Small op(B) (at most one KCxNC block's worth; KCxNC_STRIPS on the AVX-512 tier, whose larger B went
     * through the private path 0.90x as fast as through the shared one) with the M split: each thread packs all
     * of it itself, so the team never meets at a barrier: for a transformer's small linears a barrier
     * cost more than packing B twice (benchmarks/results/kernel_choices.md). Not on the AVX2 tier from
     * SHARED_B_MIN_ROWS rows, where packing B once for the team saves more than the barrier costs. */
    if (nt > 1 && split_m && K * N <= (int64_t)KC * (gb_ukernel_tall() ? NC_STRIPS : NC) &&
        (M < SHARED_B_MIN_ROWS || gb_ukernel_tall())) {
        gb_parallel(sgemm_private_b_task, &g, nt);
        return g.err ? -1 : 0;
    }
    int64_t ncmax = N < NC ? N : NC, kcmax = K < KC ? K : KC;
    g.Bp = gb_workspace(0, (size_t)((ncmax + NR - 1) / NR * NR) * kcmax);  /* the caller's, shared */
    if (!g.Bp) return -1;
    gb_parallel_team(sgemm_shared_b_task, &g, nt);  /* its barriers need the whole team */
    return g.err ? -1 : 0;
}

/* C (M,N) (= or +=) op(A) op(B) [+ bias] [+ addend (M,N)]: one product, the linear layer's entry (accumulate: a
 * weight gradient added into the parameter's .grad in the epilogue instead of a separate pass; addend: a residual
 * stream added the same way, not with accumulate). K = 0 leaves C as it was. rowsum (a transposed A only, else
 * NULL): += the sums of op(A)'s rows, from the packed panels (sum_packed_rows). */
static int sgemm_acc(float *c, const float *a, const float *b, const float *bias, const float *addend, int trans_a,
                     int trans_b, int accumulate, int64_t M, int64_t N, int64_t K, float *rowsum) {
    /* Small products are not worth waking the thread team (gb_common.h). */
    int nt = (M * N * K >= GB_PAR_MIN_MACS) ? gb_threads() : 1;
    return sgemm_one(c, a, b, bias, addend, trans_a, trans_b, accumulate, M, N, K, rowsum, nt);
}

int sgemm(float *c, const float *a, const float *b, const float *bias, int trans_a, int trans_b,
          int64_t M, int64_t N, int64_t K, int64_t batch, int64_t stride_a, int64_t stride_b,
          int64_t stride_c) {
    for (int64_t i = 0; i < batch; i++) {
        int rc = sgemm_acc(c + i * stride_c, a + i * stride_a, b + i * stride_b, bias, NULL, trans_a, trans_b, 0,
                           M, N, K, NULL);
        if (rc) return rc;
    }
    return 0;
}

/* naive reference: a test oracle only (matmul.h), never a dispatch path */
void sgemm_naive(float *c, const float *a, const float *b, const float *bias, int trans_a, int trans_b,
                 int64_t M, int64_t N, int64_t K) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = bias ? bias[j] : 0.0f;
            for (int64_t p = 0; p < K; p++)
                s += (trans_a ? a[p * M + i] : a[i * K + p]) * (trans_b ? b[j * K + p] : b[p * N + j]);
            c[i * N + j] = s;
        }
}

/* ---- linear ------------------------------------------------------------------------------ */

/* ---- few rows (batch-1 decoding): one dot per output, weights streamed once -------------------- */

/* out[n, o] for o in [o0, o1): dots of the few input rows with weight rows, four weight rows per pass so each
 * input load serves four accumulators (the SGEMM's packing costs far more than the arithmetic at N = 1). */
static inline GB_INLINE void gemv_rows(float *out, const float *x, const float *w, const float *bias,
                                       int64_t N, int64_t C, int64_t OC, int64_t o0, int64_t o1) {
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        int64_t o = o0;
        for (; o + 4 <= o1; o += 4) {
            const float *w0 = w + o * C, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            #pragma omp simd reduction(+:a0, a1, a2, a3)
            for (int64_t k = 0; k < C; k++) {
                float v = xr[k];
                a0 += v * w0[k]; a1 += v * w1[k]; a2 += v * w2[k]; a3 += v * w3[k];
            }
            float *r = out + n * OC + o;
            r[0] = bias ? a0 + bias[o] : a0;
            r[1] = bias ? a1 + bias[o + 1] : a1;
            r[2] = bias ? a2 + bias[o + 2] : a2;
            r[3] = bias ? a3 + bias[o + 3] : a3;
        }
        for (; o < o1; o++) {
            const float *wr = w + o * C;
            float a = 0.0f;
            #pragma omp simd reduction(+:a)
            for (int64_t k = 0; k < C; k++) a += xr[k] * wr[k];
            out[n * OC + o] = bias ? a + bias[o] : a;
        }
    }
}

GB_MULTIVERSION(gemv_f, (float *out, const float *x, const float *w, const float *bias, int64_t N, int64_t C,
                         int64_t OC, int64_t o0, int64_t o1), gemv_rows(out, x, w, bias, N, C, OC, o0, o1))

typedef struct { float *out; const float *x, *w, *bias; int64_t N, C, OC; } gemv_args;

static void gemv_task(void *ctx, int t, int nt) {
    gemv_args *g = ctx;
    int64_t o0, o1;
    gb_split(g->OC, t, nt, &o0, &o1);
    GB_CALL(gemv_f, (g->out, g->x, g->w, g->bias, g->N, g->C, g->OC, o0, o1));
}

#define GEMV_MAX_ROWS 4  /* below this many input rows the dot-per-output path beats packing for SGEMM */

int linear_forward(float *out, const float *inp, const float *weight, const float *bias, const float *residual,
                   int64_t N, int64_t C, int64_t OC) {
    /* out (N,OC) = [residual (N,OC) +] inp (N,C) @ weight (OC,C)^T + bias (OC,) */
    if (N < GEMV_MAX_ROWS) {
        gemv_args g = {out, inp, weight, bias, N, C, OC};
        gb_parallel(gemv_task, &g, N * C * OC >= GB_PAR_MIN_MACS && OC >= 16 ? gb_threads() : 1);
        if (residual) for (int64_t i = 0; i < N * OC; i++) out[i] = residual[i] + out[i];
        return 0;
    }
    /* NT sgemm with the bias and residual epilogue */
    return sgemm_acc(out, inp, weight, bias, residual, 0, 1, 0, N, OC, C, NULL);
}

/* dbias[c0:c1] = column sums of dout (N, OC), each column summed row by row from row 0 (the bits do
 * not depend on the blocking or the thread count). A section of up to DBIAS_SECTION columns is summed in a
 * private buffer, 64 columns at a time in eight 8-wide registers over DBIAS_ROWS rows, then written to
 * dbias once: the threads had added into dbias row by row, and the cache line holding their split point
 * went back and forth between them at every row (two threads 57 us at (768, 512) against one's 38). */
#define DBIAS_SECTION 1024
#define DBIAS_ROWS 32
static inline GB_INLINE void dbias_columns(float *dbias, const float *dout, int64_t N, int64_t OC,
                                           int64_t c0, int64_t c1, int accumulate) {
    float acc[DBIAS_SECTION];
    for (int64_t s0 = c0; s0 < c1; s0 += DBIAS_SECTION) {
        int64_t w = c1 - s0 < DBIAS_SECTION ? c1 - s0 : DBIAS_SECTION, wv = w / 64 * 64;
        memset(acc, 0, (size_t)w * sizeof(float));
        for (int64_t r0 = 0; r0 < N; r0 += DBIAS_ROWS) {
            int64_t r1 = r0 + DBIAS_ROWS < N ? r0 + DBIAS_ROWS : N;
            for (int64_t o = 0; o < wv; o += 64) {
                gb_v8 v[8];
                memcpy(v, acc + o, sizeof v);
                for (int64_t r = r0; r < r1; r++) {
                    const float *g = dout + r * OC + s0 + o;
                    for (int k = 0; k < 8; k++) v[k] += ld8(g + 8 * k);
                }
                memcpy(acc + o, v, sizeof v);
            }
            for (int64_t r = r0; r < r1; r++) {
                const float *g = dout + r * OC + s0;
                for (int64_t o = wv; o < w; o++) acc[o] += g[o];
            }
        }
        if (accumulate) for (int64_t o = 0; o < w; o++) dbias[s0 + o] += acc[o];
        else memcpy(dbias + s0, acc, (size_t)w * sizeof(float));
    }
}
GB_MULTIVERSION(dbias_f, (float *dbias, const float *dout, int64_t N, int64_t OC, int64_t c0, int64_t c1,
                          int accumulate), dbias_columns(dbias, dout, N, OC, c0, c1, accumulate))

typedef struct { float *dbias; const float *dout; int64_t N, OC; int accumulate; } dbias_args;

/* dbias (OC,) = column sums of dout (N,OC); columns split over threads in whole 16-float lines */
static void dbias_task(void *ctx, int t, int nt) {
    dbias_args *d = ctx;
    int64_t l0, l1, lines = (d->OC + 15) / 16;
    gb_split(lines, t, nt, &l0, &l1);
    int64_t c0 = l0 * 16, c1 = l1 * 16 < d->OC ? l1 * 16 : d->OC;
    if (c0 < c1) GB_CALL(dbias_f, (d->dbias, d->dout, d->N, d->OC, c0, c1, d->accumulate));
}

int linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                    const float *weight, int64_t N, int64_t C, int64_t OC, int accumulate) {
    int rc = 0;
    if (dinp) rc = sgemm_acc(dinp, dout, weight, NULL, NULL, 0, 0, 0, N, C, OC, NULL);       /* (N,OC)@(OC,C) */
    /* With the weight gradient, dbias is summed from its packed dout^T panels (sum_packed_rows): straight into a
     * zeroed dbias, or, when adding to one, into a zeroed temporary added once (the dbias-only pass's bits). */
    float *colsum = NULL;
    if (dweight && dbias) {
        colsum = accumulate ? calloc((size_t)OC, sizeof(float)) : memset(dbias, 0, (size_t)OC * sizeof(float));
    }
    if (!rc && dweight)
        rc = sgemm_acc(dweight, dout, inp, NULL, NULL, 1, 0, accumulate, OC, C, N, colsum);  /* (OC,N)@(N,C) */
    if (colsum) {
        if (colsum != dbias) {
            if (!rc) for (int64_t o = 0; o < OC; o++) dbias[o] += colsum[o];
            free(colsum);
        }
        return rc;
    }
    if (!rc && dbias) {
        /* one add per element, so 4x the elementwise threshold */
        dbias_args d = {dbias, dout, N, OC, accumulate};
        gb_parallel(dbias_task, &d, N * OC >= 4 * GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    }
    return rc;
}
