/* Flash attention on the CPU (FlashAttention-2 loop order). Scores are computed in BRxBC tiles with
 * the unpacked GEMM micro-kernel (gb_gemm_small, gemm_core.c): each work item first packs its head's
 * keys (and, in backward, values) transposed, once, so every tile product then reads its operands in
 * place; packing both operands of every 64x64x64 tile product had cost ~45% on top of the FMAs.
 * Softmax is online (running max m and sum l per query row), and backward recomputes each tile's
 * probabilities from the saved lse. Memory is O(B*H*T*D) plus per-thread tiles and packed heads:
 * no (T,S) matrix exists.
 * Parallelism: forward over (b, h, run of query tiles) items; backward over (b, kv head) items, each
 * of which owns dk/dv of its kv head and dq of its query heads, so no two threads write one element. */
#include <stdlib.h>
#include "internal/gb_common.h"
#include "internal/gb_gemm.h"
#include "internal/gb_pool.h"
#include "internal/gb_vec.h"
#include "attention.h"

#define BR 64   /* query rows per tile */
#define BC 64   /* keys per tile */
#define KV_FRESH_MAX 1024  /* key blocks whose dk / dv the backward writes without a zeroing pass (S <= 65536) */

typedef struct {
    const float *bias;
    int64_t sb, sh, st, ss;
    const uint8_t *kpm;
    int causal;
    int64_t off;
    float scale;
    int64_t S;
} mask_t;

/* s (br,bc) <- scale * s + bias, masked entries -inf; rows i0.., keys j0.. of head (b,h).
 * Returns 1 if any entry is allowed. */
static inline GB_INLINE int scores_tile(float *s, const mask_t *mk, int64_t b, int64_t h, int64_t i0,
                                        int64_t br, int64_t j0, int64_t bc) {
    int any = 0;
    const uint8_t *kp = mk->kpm ? mk->kpm + b * mk->S + j0 : NULL;
    for (int64_t i = 0; i < br; i++) {
        float *si = s + i * bc;
        /* keys j < jend are causally allowed for this row */
        int64_t jend = bc;
        if (mk->causal) {
            int64_t lim = i0 + i + mk->off - j0 + 1;
            jend = lim < 0 ? 0 : (lim < bc ? lim : bc);
        }
        if (mk->bias) {
            const float *bi = mk->bias + b * mk->sb + h * mk->sh + (i0 + i) * mk->st + j0 * mk->ss;
            int64_t ss = mk->ss;
            #pragma omp simd
            for (int64_t j = 0; j < jend; j++) si[j] = si[j] * mk->scale + bi[j * ss];
        } else {
            #pragma omp simd
            for (int64_t j = 0; j < jend; j++) si[j] *= mk->scale;
        }
        for (int64_t j = jend; j < bc; j++) si[j] = -INFINITY;
        if (kp) {
            for (int64_t j = 0; j < jend; j++) if (!kp[j]) si[j] = -INFINITY;
        }
        for (int64_t j = 0; j < jend && !any; j++) any = si[j] != -INFINITY;
    }
    return any;
}

/* Keys [0, row_end) of tile row i can be allowed: all bc, or up to the causal diagonal (off = the tile's
 * causal offset i0 + causal_offset - j0, as in tri()); the rest are masked, so the softmax loops stop there. */
static inline GB_INLINE int64_t row_end(int causal, int64_t off, int64_t i, int64_t bc) {
    if (!causal) return bc;
    int64_t e = off + i + 1;
    return e < 0 ? 0 : (e < bc ? e : bc);
}

/* Keys [0, vector_end(jend, bc)) of a score row are taken 8 at a time: jend rounded up to whole vectors when
 * that stays inside the row (the keys from jend on are -inf, masked, and come out 0), else rounded down (the
 * rest one by one). */
static inline GB_INLINE int64_t vector_end(int64_t jend, int64_t bc) {
    int64_t up = (jend + 7) / 8 * 8;
    return up <= bc ? up : jend / 8 * 8;
}

/* max(m, the row's scores [0, jend)) */
static inline GB_INLINE float row_max(const float *si, int64_t jend, int64_t jv, float m) {
    gb_v8 vm = splat8(m);
    for (int64_t j = 0; j < jv; j += 8) {
        gb_v8 v = ld8(si + j);
        vm = sel8(v > vm, v, vm);
    }
    float mx = hmax8(vm);
    for (int64_t j = jv; j < jend; j++) mx = si[j] > mx ? si[j] : mx;
    return mx;
}

/* si[j] <- exp(si[j] - c) for j < jend (0 where masked), 0 up to bc; returns the row's sum */
static inline GB_INLINE float row_exp(float *si, int64_t jend, int64_t jv, int64_t bc, float c) {
    gb_v8 vs = splat8(0.0f);
    for (int64_t j = 0; j < jv; j += 8) {
        gb_v8 p = exp8(ld8(si + j) - c);
        memcpy(si + j, &p, sizeof p);
        vs += p;
    }
    float sum = hsum8(vs);
    for (int64_t j = jv; j < jend; j++) {
        float p = si[j] == -INFINITY ? 0.0f : gb_expf(si[j] - c);
        si[j] = p;
        sum += p;
    }
    for (int64_t j = jv > jend ? jv : jend; j < bc; j++) si[j] = 0.0f;
    return sum;
}

/* online softmax update for one tile: s -> p in place; rescales the rows of o (br,D) */
static inline GB_INLINE void softmax_tile(float *s, float *o, float *m, float *l, int64_t br, int64_t bc,
                                          int64_t D, int causal, int64_t off) {
    for (int64_t i = 0; i < br; i++) {
        float *si = s + i * bc;
        int64_t jend = row_end(causal, off, i, bc), jv = vector_end(jend, bc);
        float mx = row_max(si, jend, jv, m[i]);
        if (mx == -INFINITY) {  /* nothing allowed yet in this row */
            for (int64_t j = 0; j < bc; j++) si[j] = 0.0f;
            continue;
        }
        float alpha = m[i] == -INFINITY ? 0.0f : gb_expf(m[i] - mx);
        float sum = row_exp(si, jend, jv, bc, mx);
        l[i] = l[i] * alpha + sum;
        m[i] = mx;
        if (alpha != 1.0f) {
            float *oi = o + i * D;
            #pragma omp simd
            for (int64_t d = 0; d < D; d++) oi[d] *= alpha;
        }
    }
}
GB_MULTIVERSION(attn_softmax_tile, (float *s, float *o, float *m, float *l, int64_t br, int64_t bc, int64_t D,
                                    int causal, int64_t off),
                softmax_tile(s, o, m, l, br, bc, D, causal, off))
GB_MULTIVERSION(attn_scores_tile_v, (int *any, float *s, const mask_t *mk, int64_t b, int64_t h, int64_t i0,
                                     int64_t br, int64_t j0, int64_t bc),
                *any = scores_tile(s, mk, b, h, i0, br, j0, bc))

/* last key index (exclusive) any row in [i0, i0+br) may attend causally */
static int64_t key_end(const mask_t *mk, int64_t i0, int64_t br, int64_t S) {
    if (!mk->causal) return S;
    int64_t e = i0 + br - 1 + mk->off + 1;
    return e < 0 ? 0 : (e < S ? e : S);
}

/* Where the rows of a (B, heads, rows, D) operand live: row (b, h, t) starts at
 * b * sb + h * sh + t * st floats from the base (the D values of a row are contiguous). */
typedef struct { int64_t sb, sh, st; } layout_t;

static inline int64_t row_at(const layout_t *L, int64_t b, int64_t h, int64_t t) {
    return b * L->sb + h * L->sh + t * L->st;
}

/* a contiguous (B, heads, rows, D) array */
static layout_t bhtd(int64_t heads, int64_t rows, int64_t D) {
    return (layout_t){heads * rows * D, rows * D, D};
}

/* The gb_gemm_small mode of a product in tile (i0, j0), whose row i may see key j only if j <= i + off
 * (tile-relative, off = i0 + causal offset - j0): `mode` where the causal diagonal crosses the tile, so
 * the product skips the blocks the mask zeroes; the whole product elsewhere. */
static inline int tri(const mask_t *mk, int64_t off, int64_t bc, int mode) {
    return mk->causal && off < bc - 1 ? mode : GB_TRI_NONE;
}

/* s (br,bc) <- scale * q k^T + bias for query rows i0.. and keys j0.. of head (b,h), masked entries
 * -inf; qt: the tile's first query row (row stride ldq), kp: the head's keys packed by pack_keys
 * (j0 a multiple of NR). Returns 1 if any entry is allowed. */
static int masked_scores(float *s, const float *qt, int64_t ldq, const float *kp, const mask_t *mk, int64_t b,
                         int64_t h, int64_t i0, int64_t br, int64_t j0, int64_t bc, int64_t D, int64_t off,
                         float *ws) {
    gb_gemm_small(s, bc, qt, ldq, 1, kp + j0 * D, NR, D * NR, br, bc, D, 0, tri(mk, off, bc, GB_TRI_N), off,
                  ws);  /* s = q k^T */
    int any;
    GB_CALL(attn_scores_tile_v, (&any, s, mk, b, h, i0, br, j0, bc));
    return any;
}

/* xp (ceil(n/NR), D, NR) <- the first n rows of x (row stride ldx) transposed into panels of NR rows,
 * zero padded: the B operand of q k^T (or dout v^T) as gb_gemm_small reads a packed B. That is the
 * SGEMM's packing of a transposed B (gemm_core.c: 8x8 register transposes for full panels). */
static void pack_keys(float *xp, const float *x, int64_t ldx, int64_t n, int64_t D) {
    if (n > 0) gb_pack_b(xp, x, 1, ldx, 0, 0, n, D, 0, (n + NR - 1) / NR);
}

/* floats of one packed head of S keys */
static size_t packed_head(int64_t S, int64_t D) { return (size_t)((S + NR - 1) / NR * NR) * D; }

static void zero_rows(float *x, int64_t rows, int64_t stride, int64_t D) {
    if (stride == D) memset(x, 0, sizeof(float) * rows * D);
    else for (int64_t r = 0; r < rows; r++) memset(x + r * stride, 0, sizeof(float) * D);
}

typedef struct {
    float *out, *lse, *dq, *dk, *dv;          /* forward writes out/lse; backward dq/dk/dv */
    const float *q, *k, *v, *dout, *out_in, *lse_in;
    layout_t lq, lk, lv, lo;                   /* q (and dq), k (dk), v (dv), out (dout): lse is (B,H,T) */
    const mask_t *mk;
    int64_t B, H, Hkv, T, S, D, nitems, next;  /* next: the dynamic-schedule counter */
    int64_t tiles_per_item;                    /* forward: query tiles per work item */
    size_t per_thread;                         /* floats of scratch per thread */
    int err;
} attn_args;

/* threads for one call: B*H*T*S*D units of work, each a fraction of a GEMM MAC (measured:
 * benchmarks/results/kernel_choices.md), so a team above GB_PAR_MIN_MACS / 4 */
static int attn_threads(const attn_args *a) {
    return a->B * a->H * a->T * a->S * a->D >= GB_PAR_MIN_MACS / 4 ? gb_threads() : 1;
}

/* this thread's scratch: the kernels' grown-on-demand thread-local workspace, kept between calls
 * (a fresh ~100 KiB-1 MiB block per call would be fresh pages, a few microseconds each) */
static float *attn_scratch(attn_args *a) {
    float *scratch = gb_workspace(1, a->per_thread);
    if (!scratch) __atomic_store_n(&a->err, 1, __ATOMIC_RELAXED);
    return scratch;
}

/* The next item of a thread of an nt-thread team, or -1 when none is left. Slots are claimed dynamically,
 * but slot s is item (s % nt) * q + s / nt (q = ceil(nitems / nt)): threads that take consecutive slots work
 * about nitems / nt items apart (other images), so no two write neighbouring heads of one row at once (false
 * sharing of out / dqkv rows: the small GPT's backward ran at 1.2x one thread's speed on two), while a
 * thread's next item is mostly its last one's neighbour (the same image's rows, still cached). */
static int64_t next_item_spread(attn_args *a, int nt) {
    int64_t q = (a->nitems + nt - 1) / nt;
    for (int64_t s = gb_next_item(&a->next); s < q * nt; s = gb_next_item(&a->next)) {
        int64_t it = (s % nt) * q + s / nt;
        if (it < a->nitems) return it;
    }
    return -1;
}

/* items = (b, h, run of tiles_per_item query tiles), claimed dynamically (next_item_spread) */
static void attention_forward_task(void *ctx, int t, int nt) {
    (void)t;
    attn_args *a = ctx;
    const mask_t *mk = a->mk;
    int64_t H = a->H, T = a->T, S = a->S, D = a->D, group = a->H / a->Hkv, ntiles = (T + BR - 1) / BR;
    int64_t runs = (ntiles + a->tiles_per_item - 1) / a->tiles_per_item;
    int64_t ldq = a->lq.st, ldk = a->lk.st, ldv = a->lv.st, ldo = a->lo.st;
    float *scratch = attn_scratch(a);
    if (!scratch) return;
    float *s = scratch, *o = s + BR * BC, *m = o + BR * D, *l = m + BR, *kp = l + BR, *ws = kp + packed_head(S, D);
    for (int64_t it = next_item_spread(a, nt); it >= 0; it = next_item_spread(a, nt)) {
        int64_t bh = it / runs, b = bh / H, h = bh % H;
        int64_t first = (it % runs) * a->tiles_per_item * BR;
        int64_t last = first + a->tiles_per_item * BR < T ? first + a->tiles_per_item * BR : T;
        const float *kh = a->k + row_at(&a->lk, b, h / group, 0), *vh = a->v + row_at(&a->lv, b, h / group, 0);
        pack_keys(kp, kh, ldk, key_end(mk, first, last - first, S), D);  /* the keys these rows see */
        for (int64_t i0 = first; i0 < last; i0 += BR) {
            int64_t br = last - i0 < BR ? last - i0 : BR;
            const float *qt = a->q + row_at(&a->lq, b, h, i0);
            for (int64_t i = 0; i < br; i++) { m[i] = -INFINITY; l[i] = 0.0f; }
            memset(o, 0, sizeof(float) * br * D);
            int64_t jmax = key_end(mk, i0, br, S);
            for (int64_t j0 = 0; j0 < jmax; j0 += BC) {
                int64_t bc = jmax - j0 < BC ? jmax - j0 : BC;
                int64_t off = i0 + mk->off - j0;
                if (!masked_scores(s, qt, ldq, kp, mk, b, h, i0, br, j0, bc, D, off, ws)) continue;
                GB_CALL(attn_softmax_tile, (s, o, m, l, br, bc, D, mk->causal, off));
                gb_gemm_small(o, D, s, bc, 1, vh + j0 * ldv, ldv, NR, br, D, bc, 1, tri(mk, off, bc, GB_TRI_HEAD), off,
                              ws);  /* o += p v */
            }
            float *ot = a->out + row_at(&a->lo, b, h, i0);
            for (int64_t i = 0; i < br; i++) {
                float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
                for (int64_t d = 0; d < D; d++) ot[i * ldo + d] = o[i * D + d] * inv;
                a->lse[bh * T + i0 + i] = l[i] > 0.0f ? m[i] + logf(l[i]) : -INFINITY;
            }
        }
    }
}

/* floats of gb_gemm_small workspace for products whose K is D, BR or BC */
static size_t small_ws(int64_t D) { return gb_gemm_small_ws(D > BC ? (D > BR ? D : BR) : (BC > BR ? BC : BR)); }

static int run_attention_forward(attn_args *a) {
    int64_t D = a->D, ntiles = (a->T + BR - 1) / BR, heads = a->B * a->H;
    int nt = attn_threads(a);
    /* whole heads per item (one key packing each) unless that leaves fewer than 4 items per thread */
    int64_t split = heads >= 4 * nt ? 1 : (4 * nt + heads - 1) / heads;
    a->tiles_per_item = (ntiles + split - 1) / (split < ntiles ? split : ntiles);
    a->nitems = heads * ((ntiles + a->tiles_per_item - 1) / a->tiles_per_item);
    a->per_thread = (size_t)BR * BC + (size_t)BR * D + 2 * BR + packed_head(a->S, D) + small_ws(D) + 16;
    gb_parallel(attention_forward_task, a, nt);
    return a->err ? -1 : 0;
}

int attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                      const float *bias, int64_t bias_sb, int64_t bias_sh, int64_t bias_st, int64_t bias_ss,
                      const uint8_t *kpm, int causal, int64_t causal_offset, float scale,
                      int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t S, int64_t D) {
    mask_t mk = {bias, bias_sb, bias_sh, bias_st, bias_ss, kpm, causal, causal_offset, scale, S};
    attn_args a = {.out = out, .lse = lse, .q = q, .k = k, .v = v, .lq = bhtd(H, T, D), .lk = bhtd(Hkv, S, D),
                   .lv = bhtd(Hkv, S, D), .lo = bhtd(H, T, D), .mk = &mk, .B = B, .H = H, .Hkv = Hkv, .T = T,
                   .S = S, .D = D};
    return run_attention_forward(&a);
}

/* The fused projection's layout: qkv (B, T, (H + 2 Hkv) D) = [q heads | k heads | v heads] per row,
 * out / dout (B, T, H D). */
static void qkv_layouts(attn_args *a, const float *qkv, int64_t H, int64_t Hkv, int64_t T, int64_t D) {
    int64_t W = (H + 2 * Hkv) * D;
    a->lq = a->lk = a->lv = (layout_t){T * W, D, W};
    a->lo = (layout_t){T * H * D, D, H * D};
    a->q = qkv;
    a->k = qkv + H * D;
    a->v = qkv + (H + Hkv) * D;
}

int attention_qkv_forward(float *out, float *lse, const float *qkv, float scale,
                          int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t D) {
    mask_t mk = {NULL, 0, 0, 0, 0, NULL, 1, 0, scale, T};
    attn_args a = {.out = out, .lse = lse, .mk = &mk, .B = B, .H = H, .Hkv = Hkv, .T = T, .S = T, .D = D};
    qkv_layouts(&a, qkv, H, Hkv, T, D);
    return run_attention_forward(&a);
}

/* p (br,bc) <- exp(s - lse) (0 where masked or lse = -inf); ds (br,bc) <- p * (dp - di) * scale */
static inline GB_INLINE void probs_tile(float *s, const float *lse, int64_t br, int64_t bc, int causal,
                                        int64_t off) {
    for (int64_t i = 0; i < br; i++) {
        float *si = s + i * bc, li = lse[i];
        int64_t jend = li == -INFINITY ? 0 : row_end(causal, off, i, bc);
        row_exp(si, jend, vector_end(jend, bc), bc, li);
    }
}
static inline GB_INLINE void dscores_tile(float *dp, const float *p, const float *di, float scale,
                                          int64_t br, int64_t bc, int causal, int64_t off) {
    for (int64_t i = 0; i < br; i++) {
        float *dpi = dp + i * bc;
        const float *pi = p + i * bc;
        float d = di[i];
        int64_t jend = row_end(causal, off, i, bc);
        #pragma omp simd
        for (int64_t j = 0; j < jend; j++) dpi[j] = pi[j] * (dpi[j] - d) * scale;
        for (int64_t j = jend; j < bc; j++) dpi[j] = 0.0f;
    }
}
GB_MULTIVERSION(attn_probs_tile, (float *s, const float *lse, int64_t br, int64_t bc, int causal, int64_t off),
                probs_tile(s, lse, br, bc, causal, off))
GB_MULTIVERSION(attn_dscores_tile, (float *dp, const float *p, const float *di, float scale, int64_t br, int64_t bc,
                                    int causal, int64_t off),
                dscores_tile(dp, p, di, scale, br, bc, causal, off))

/* items = (b, kv head), claimed dynamically (next_item_spread): each owns dk/dv of its kv head and dq of its
 * query heads */
static void attention_backward_task(void *ctx, int t, int nt) {
    (void)t;
    attn_args *a = ctx;
    const mask_t *mk = a->mk;
    int64_t H = a->H, Hkv = a->Hkv, T = a->T, S = a->S, D = a->D, group = a->H / a->Hkv;
    int64_t ldq = a->lq.st, ldk = a->lk.st, ldv = a->lv.st, ldo = a->lo.st;
    float scale = mk->scale;
    float *scratch = attn_scratch(a);
    if (!scratch) return;
    float *p = scratch, *dp = p + BR * BC, *di = dp + BR * BC, *kp = di + BR, *vp = kp + packed_head(S, D),
          *w = vp + packed_head(S, D);
    for (int64_t it = next_item_spread(a, nt); it >= 0; it = next_item_spread(a, nt)) {
        int64_t b = it / Hkv, hk = it % Hkv;
        const float *kh = a->k + row_at(&a->lk, b, hk, 0), *vh = a->v + row_at(&a->lv, b, hk, 0);
        float *dkh = a->dk + row_at(&a->lk, b, hk, 0), *dvh = a->dv + row_at(&a->lv, b, hk, 0);
        /* dk / dv of a key block: written by its first contribution when that covers the whole block (no zeroing
         * pass), else zeroed then added to, and zeroed after if none came; past KV_FRESH_MAX blocks, zeroed first
         * and always added to */
        int64_t nkb = (S + BC - 1) / BC;
        uint8_t kv_fresh[KV_FRESH_MAX];
        int track = nkb <= KV_FRESH_MAX;
        if (track) memset(kv_fresh, 1, (size_t)nkb);
        else {
            zero_rows(dkh, S, ldk, D);
            zero_rows(dvh, S, ldv, D);
        }
        pack_keys(kp, kh, ldk, S, D);
        pack_keys(vp, vh, ldv, S, D);
        for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
            int64_t bh = b * H + h;
            for (int64_t i0 = 0; i0 < T; i0 += BR) {
                int64_t br = T - i0 < BR ? T - i0 : BR;
                const float *qt = a->q + row_at(&a->lq, b, h, i0), *got = a->dout + row_at(&a->lo, b, h, i0);
                const float *ot = a->out_in + row_at(&a->lo, b, h, i0), *lt = a->lse_in + bh * T + i0;
                float *dqt = a->dq + row_at(&a->lq, b, h, i0);
                int dq_fresh = 1;  /* dq's rows: written by the first key block that contributes */
                for (int64_t i = 0; i < br; i++) {  /* di = rowsum(dout * out) */
                    float sacc = 0.0f;
                    #pragma omp simd reduction(+:sacc)
                    for (int64_t d = 0; d < D; d++) sacc += got[i * ldo + d] * ot[i * ldo + d];
                    di[i] = sacc;
                }
                int64_t jmax = key_end(mk, i0, br, S);
                for (int64_t j0 = 0; j0 < jmax; j0 += BC) {
                    int64_t bc = jmax - j0 < BC ? jmax - j0 : BC;
                    int64_t off = i0 + mk->off - j0;
                    if (!masked_scores(p, qt, ldq, kp, mk, b, h, i0, br, j0, bc, D, off, w)) continue;
                    int n = tri(mk, off, bc, GB_TRI_N), head = tri(mk, off, bc, GB_TRI_HEAD),
                        tail = tri(mk, off, bc, GB_TRI_TAIL);
                    int64_t kb = j0 / BC, kb_rows = S - j0 < BC ? S - j0 : BC;
                    if (track && kv_fresh[kb] && bc < kb_rows) {  /* this tile sees only part of the key block */
                        zero_rows(dkh + j0 * ldk, kb_rows, ldk, D);
                        zero_rows(dvh + j0 * ldv, kb_rows, ldv, D);
                        kv_fresh[kb] = 0;
                    }
                    int kv_add = !track || !kv_fresh[kb];
                    GB_CALL(attn_probs_tile, (p, lt, br, bc, mk->causal, off));                          /* p */
                    gb_gemm_small(dvh + j0 * ldv, ldv, p, 1, bc, got, ldo, NR, bc, D, br, kv_add, tail, off, w);  /* dv += p^T do */
                    gb_gemm_small(dp, bc, got, ldo, 1, vp + j0 * D, NR, D * NR, br, bc, D, 0, n, off, w);  /* dp = do v^T */
                    GB_CALL(attn_dscores_tile, (dp, p, di, scale, br, bc, mk->causal, off));              /* ds */
                    gb_gemm_small(dqt, ldq, dp, bc, 1, kh + j0 * ldk, ldk, NR, br, D, bc, !dq_fresh, head, off, w);  /* dq += ds k */
                    gb_gemm_small(dkh + j0 * ldk, ldk, dp, 1, bc, qt, ldq, NR, bc, D, br, kv_add, tail, off, w);  /* dk += ds^T q */
                    dq_fresh = 0;
                    if (track) kv_fresh[kb] = 0;
                }
                if (dq_fresh) zero_rows(dqt, br, ldq, D);  /* no key block contributed */
            }
        }
        for (int64_t kb = 0; track && kb < nkb; kb++) {
            if (!kv_fresh[kb]) continue;
            int64_t rows = S - kb * BC < BC ? S - kb * BC : BC;
            zero_rows(dkh + kb * BC * ldk, rows, ldk, D);
            zero_rows(dvh + kb * BC * ldv, rows, ldv, D);
        }
    }
}

static int run_attention_backward(attn_args *a) {
    int64_t D = a->D;
    a->nitems = a->B * a->Hkv;
    a->per_thread = 2 * (size_t)BR * BC + BR + 2 * packed_head(a->S, D) + small_ws(D) + 16;
    gb_parallel(attention_backward_task, a, attn_threads(a));
    return a->err ? -1 : 0;
}

int attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                       const float *k, const float *v, const float *out, const float *lse,
                       const float *bias, int64_t bias_sb, int64_t bias_sh, int64_t bias_st, int64_t bias_ss,
                       const uint8_t *kpm, int causal, int64_t causal_offset, float scale,
                       int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t S, int64_t D) {
    mask_t mk = {bias, bias_sb, bias_sh, bias_st, bias_ss, kpm, causal, causal_offset, scale, S};
    attn_args a = {.dq = dq, .dk = dk, .dv = dv, .q = q, .k = k, .v = v, .dout = dout, .out_in = out,
                   .lse_in = lse, .lq = bhtd(H, T, D), .lk = bhtd(Hkv, S, D), .lv = bhtd(Hkv, S, D),
                   .lo = bhtd(H, T, D), .mk = &mk, .B = B, .H = H, .Hkv = Hkv, .T = T, .S = S, .D = D};
    return run_attention_backward(&a);
}

int attention_qkv_backward(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                           float scale, int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t D) {
    mask_t mk = {NULL, 0, 0, 0, 0, NULL, 1, 0, scale, T};
    attn_args a = {.dout = dout, .out_in = out, .lse_in = lse, .mk = &mk, .B = B, .H = H, .Hkv = Hkv, .T = T,
                   .S = T, .D = D};
    qkv_layouts(&a, qkv, H, Hkv, T, D);
    a.dq = dqkv;  /* dq, dk, dv share qkv's layout, inside the one (B, T, (H + 2 Hkv) D) gradient */
    a.dk = dqkv + H * D;
    a.dv = dqkv + (H + Hkv) * D;
    return run_attention_backward(&a);
}
