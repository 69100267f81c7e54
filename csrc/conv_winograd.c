/* Stride-1, undilated 3x3 convolutions as Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016), on the AVX2 and base tiers, and on the AVX-512 tier for the large
 * shapes where it beat conv_avx512.c's implicit GEMM (conv.c routes; the GEMMs run the tier's micro-kernel).
 * Each 2x2 output tile is
 *     Y = A^T [ (G g G^T) (.) (B^T d B) ] A
 * for its 4x4 input patch d and each 3x3 filter g, so the channel reduction becomes 16 independent GEMMs
 *     M[xi] (OCg, N) = U[xi] (OCg, Cg) . V[xi] (Cg, N),   xi = the 16 entries of the 4x4 transformed tile,
 * over N = the tiles of a few images side by side: 16*OCg*Cg multiply-adds per tile instead of 36*OCg*Cg
 * (2.25x fewer), plus transforms that only add. The transform matrices hold 0, +-1 and 1/2, so the result
 * differs from the direct sum by rounding only (float32 errors of the direct form's size).
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * An image is copied into a zero-padded plane per channel first, so pads of any size (and the bottom and
 * right pads OH/OW imply) cost no branch in the transform; tiles past an odd OH/OW are computed and
 * dropped. conv.c also runs a stride-1 input gradient through here, as the convolution of dout with the
 * flipped, transposed weights, and the weight gradient (conv_winograd_dweight, below). */
#include <stdlib.h>
#include "internal/gb_common.h"
#include "internal/gb_gemm.h"
#include "internal/conv_args.h"

/* Channels a group, at least (forward: the GEMMs' K and M): with 8 in and out the forward ran 0.75x the
 * direct path's time, with 3-4 inputs 0.99-1.20x; the weight gradient gained from 3 inputs (the stem: 0.70x) */
#define WINO_MIN_C 8
#define WINO_DW_MIN_C 3
#define WINO_COLS 64    /* tiles a GEMM, at least: images are batched until their tiles reach this */
#define WINO_BAND_TILES 256  /* tiles a GEMM, at most about: larger images go in bands of tile rows */

static int winograd_shape(const conv_args *a) {
    return a->KH == 3 && a->KW == 3 && a->sh == 1 && a->sw == 1 && a->dh == 1 && a->dw == 1;
}

int conv_winograd_applies(const conv_args *a) {
    return winograd_shape(a) && a->C / a->G >= WINO_MIN_C && a->OC / a->G >= WINO_MIN_C;
}

int conv_winograd_dweight_applies(const conv_args *a) {
    return winograd_shape(a) && a->C / a->G >= WINO_DW_MIN_C && a->OC / a->G >= WINO_MIN_C;
}

/* The 16 planes of U, V and M sit a plane plus 16 floats apart: at exactly 32 KiB (64 channels x 128 tiles) the
 * transforms' 16 streams would share one L1 set. */
static int64_t plane_stride(int64_t rows, int64_t n) { return rows * n + 16; }

/* ---- weights: U (G, 16, OCg, Cg), planes plane_stride(OCg, Cg) apart, U[g, xi, o, c] = (G w[g*OCg + o, c] G^T)[xi],
 * computed along c */
static inline GB_INLINE void weight_transform_body(float *U, const float *weight, const conv_args *a) {
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, xis = plane_stride(OCg, Cg);
    for (int64_t go = 0; go < a->OC; go++) {  /* g*OCg + o */
        const float *w = weight + go * Cg * 9;
        float *u = U + (go / OCg) * 16 * xis + (go % OCg) * Cg;
        #pragma omp simd
        for (int64_t c = 0; c < Cg; c++) {
            const float *g = w + c * 9;
            float t[4][3];
            for (int j = 0; j < 3; j++) {  /* t (4, 3) = G g */
                float g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                t[0][j] = g0, t[1][j] = 0.5f * (g0 + g1 + g2), t[2][j] = 0.5f * (g0 - g1 + g2), t[3][j] = g2;
            }
            for (int i = 0; i < 4; i++) {  /* u (4, 4) = t G^T */
                float a0 = t[i][0], a1 = t[i][1], a2 = t[i][2];
                u[(4 * i) * xis + c] = a0, u[(4 * i + 1) * xis + c] = 0.5f * (a0 + a1 + a2);
                u[(4 * i + 2) * xis + c] = 0.5f * (a0 - a1 + a2), u[(4 * i + 3) * xis + c] = a2;
            }
        }
    }
}

GB_MULTIVERSION(weight_transform, (float *U, const float *weight, const conv_args *a),
                weight_transform_body(U, weight, a))

float *conv_winograd_weights(const float *weight, const conv_args *a) {
    float *U = conv_alloc((size_t)(a->G * 16 * plane_stride(a->OC / a->G, a->C / a->G)));
    if (U) GB_CALL(weight_transform, (U, weight, a));
    return U;
}

/* ---- the chunks of work: nb whole images a GEMM when an image has fewer than WINO_COLS tiles; one image
 * when it has up to WINO_BAND_TILES; else bands of bt tile rows of one image, which also bounds the scratch
 * of a large image (at 64x64, bands of 256 tiles: 0.84-0.90x the time of whole images; at 32x32, bands of
 * 64: 1.03-1.09x) ---- */
typedef struct {
    int64_t TH, TW, T;  /* tile rows and columns, T = TH*TW (of a band: its rows) */
    int64_t Hp, We;     /* the padded plane: Hp rows, split into even and odd columns of We = TW + 1 each */
    int64_t nb, bt;     /* images a GEMM batch, tile rows a band */
    int64_t ty0;        /* a band's first tile row */
} wino_geom;

static wino_geom geometry(const conv_args *a) {
    wino_geom q;
    q.TH = (a->OH + 1) / 2, q.TW = (a->OW + 1) / 2, q.T = q.TH * q.TW;
    q.Hp = 2 * q.TH + 2, q.We = q.TW + 1, q.ty0 = 0;
    q.nb = (WINO_COLS + q.T - 1) / q.T;
    if (a->G > 1) q.nb = 1;  /* items are (image, group) pairs: one at a time */
    q.bt = q.T > WINO_BAND_TILES ? (WINO_BAND_TILES + q.TW - 1) / q.TW : q.TH;  /* <= TH: T > 256 means TH > 256/TW */
    return q;
}

/* the band of tile rows [ty0, ty0 + bt) (cut at TH) of an image as a geometry of its own */
static wino_geom band(const wino_geom *q, int64_t ty0) {
    wino_geom b = *q;
    b.ty0 = ty0, b.TH = q->TH - ty0 < q->bt ? q->TH - ty0 : q->bt;
    b.T = b.TH * b.TW, b.Hp = 2 * b.TH + 2;
    return b;
}

/* xe, xo (Hp, We): the even and odd columns of one channel's plane zero-padded by (pt, pl), from the band's
 * first row: xe[r][k] = x[r + 2ty0 - pt][2k - pl] and xo[r][k] = x[r + 2ty0 - pt][2k + 1 - pl] (0 outside x) */
static inline GB_INLINE void split_padded_plane(float *xe, float *xo, const float *x, const conv_args *a,
                                                const wino_geom *q) {
    memset(xe, 0, (size_t)(2 * q->Hp * q->We) * sizeof(float));  /* xo follows xe */
    for (int par = 0; par < 2; par++) {
        float *dst = par ? xo : xe;
        int64_t k0 = (a->pl - par + 1) / 2, k1 = (a->W + a->pl - par + 1) / 2;  /* 0 <= 2k + par - pl < W */
        if (k0 < 0) k0 = 0;
        if (k1 > q->We) k1 = q->We;
        for (int64_t r = 0; r < q->Hp; r++) {
            int64_t ih = r + 2 * q->ty0 - a->pt;
            if (ih < 0 || ih >= a->H) continue;
            const float *src = x + ih * a->W;
            float *d = dst + r * q->We;
            for (int64_t k = k0; k < k1; k++) d[k] = src[2 * k + par - a->pl];
        }
    }
}

/* ---- input: V[xi, c, tile] = (B^T d B)[xi] for one image's (Cg, H, W) channels; xe: 2*Hp*We floats.
 * Row i of B^T d combines two rows of the patch (ra +- rb); its column transform reads columns 2tx..2tx+3,
 * i.e. the even and odd planes at tx and tx + 1. */
/* the tile rows of one channel from its split planes xe, xo; TW a compile-time constant where it is a
 * common width (one or two vectors: no loop control or remainder code) */
static inline GB_INLINE void channel_tiles(float *v, int64_t xis, const float *xe, const float *xo, int64_t TH,
                                           int64_t TW, int64_t We) {
    static const int ra[4] = {0, 1, 2, 1}, rb[4] = {2, 2, 1, 3};
    static const float sb[4] = {-1.0f, 1.0f, -1.0f, -1.0f};  /* t_i = d[ra] + sb * d[rb] */
    for (int64_t ty = 0; ty < TH; ty++)
        for (int i = 0; i < 4; i++) {
            const float *ae = xe + (2 * ty + ra[i]) * We, *ao = xo + (2 * ty + ra[i]) * We;
            const float *be = xe + (2 * ty + rb[i]) * We, *bo = xo + (2 * ty + rb[i]) * We;
            float sg = sb[i];
            float *v0 = v + 4 * i * xis + ty * TW, *v1 = v0 + xis, *v2 = v1 + xis, *v3 = v2 + xis;
            #pragma omp simd
            for (int64_t tx = 0; tx < TW; tx++) {
                float e0 = ae[tx] + sg * be[tx], o0 = ao[tx] + sg * bo[tx];             /* columns 2tx, 2tx+1 */
                float e1 = ae[tx + 1] + sg * be[tx + 1], o1 = ao[tx + 1] + sg * bo[tx + 1];  /* 2tx+2, 2tx+3 */
                v0[tx] = e0 - e1, v1[tx] = o0 + e1, v2[tx] = e1 - o0, v3[tx] = o0 - o1;
            }
        }
}

static inline GB_INLINE void input_transform_body(float *V, int64_t ldv, int64_t xis, const float *x,
                                                  const conv_args *a, const wino_geom *q, float *xe) {
    int64_t Cg = a->C / a->G, We = q->We, TH = q->TH, TW = q->TW;
    float *xo = xe + q->Hp * We;
    for (int64_t c = 0; c < Cg; c++) {
        split_padded_plane(xe, xo, x + c * a->H * a->W, a, q);
        float *v = V + c * ldv;
        if (TW == 8) channel_tiles(v, xis, xe, xo, TH, 8, 9);
        else if (TW == 16) channel_tiles(v, xis, xe, xo, TH, 16, 17);
        else if (TW == 4) channel_tiles(v, xis, xe, xo, TH, 4, 5);
        else channel_tiles(v, xis, xe, xo, TH, TW, We);
    }
}

/* ---- output: the 2x2 tiles Y (4, L) = A^T M A of every column of M (16 planes of L = OCg*n floats, xis
 * apart), one long loop over the chunk's channels and tiles; then each image's tiles interleaved into its
 * output rows (+ bias) */
static inline GB_INLINE void output_transform_body(float *Y, const float *M, int64_t xis, int64_t L) {
    #pragma omp simd
    for (int64_t p = 0; p < L; p++) {
        float s[2][4];
        for (int j = 0; j < 4; j++) {  /* s = A^T m */
            float m0 = M[j * xis + p], m1 = M[(4 + j) * xis + p], m2 = M[(8 + j) * xis + p], m3 = M[(12 + j) * xis + p];
            s[0][j] = m0 + m1 + m2, s[1][j] = m1 - m2 - m3;
        }
        Y[p] = s[0][0] + s[0][1] + s[0][2], Y[L + p] = s[0][1] - s[0][2] - s[0][3];
        Y[2 * L + p] = s[1][0] + s[1][1] + s[1][2], Y[3 * L + p] = s[1][1] - s[1][2] - s[1][3];
    }
}

/* out (OCg, OH, OW) of one image from its band's tiles: Y[2i + j][o*ldy + tile] = output (2(ty0 + ty) + i, 2tx + j) */
static inline GB_INLINE void scatter_tiles_body(float *out, const float *Y, int64_t L, int64_t ldy, const float *bias,
                                                const conv_args *a, const wino_geom *q) {
    int64_t OCg = a->OC / a->G, half = a->OW / 2;
    for (int64_t o = 0; o < OCg; o++) {
        float bv = bias ? bias[o] : 0.0f;
        for (int64_t ty = 0; ty < q->TH; ty++)
            for (int i = 0; i < 2 && 2 * (q->ty0 + ty) + i < a->OH; i++) {
                float *row = out + (o * a->OH + 2 * (q->ty0 + ty) + i) * a->OW;
                const float *e = Y + 2 * i * L + o * ldy + ty * q->TW, *f = e + L;
                for (int64_t tx = 0; tx < half; tx++) row[2 * tx] = e[tx] + bv, row[2 * tx + 1] = f[tx] + bv;
                if (a->OW % 2) row[a->OW - 1] = e[half] + bv;
            }
    }
}

GB_MULTIVERSION(input_transform, (float *V, int64_t ldv, int64_t xis, const float *x, const conv_args *a,
                                  const wino_geom *q, float *xe),
                input_transform_body(V, ldv, xis, x, a, q, xe))
GB_MULTIVERSION(output_transform, (float *Y, const float *M, int64_t xis, int64_t L),
                output_transform_body(Y, M, xis, L))
GB_MULTIVERSION(scatter_tiles, (float *out, const float *Y, int64_t L, int64_t ldy, const float *bias,
                                const conv_args *a, const wino_geom *q),
                scatter_tiles_body(out, Y, L, ldy, bias, a, q))

/* V (16, Cg, n) <- the transformed input tiles of band qb of the nb items it.. (one group g), side by side */
static void transform_inputs(float *V, int64_t n, int64_t vs, const conv_args *a, int64_t it, int64_t nb, int64_t g,
                             const wino_geom *qb, float *xe) {
    int64_t Cg = a->C / a->G;
    for (int64_t k = 0; k < nb; k++) {
        int64_t b = (it + k) / a->G;
        GB_CALL(input_transform, (V + k * qb->T, n, vs, a->inp + (b * a->C + g * Cg) * a->H * a->W, a, qb, xe));
    }
}

/* out[it] for the (image, group) items [i0, i1) of a->inp (a->out, a->bias; U from conv_winograd_weights),
 * a few images a GEMM batch. Returns -1 if scratch memory could not be allocated. */
int conv_winograd_items(const conv_args *a, const float *U, int64_t i0, int64_t i1) {
    if (i0 >= i1) return 0;
    wino_geom q = geometry(a);
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, N = q.nb * q.bt * q.TW;
    size_t nv = (size_t)(16 * plane_stride(Cg, N)), nm = (size_t)(16 * plane_stride(OCg, N));
    size_t nx = (size_t)(2 * (2 * q.bt + 2) * q.We), nw = gb_gemm_small_ws(Cg), ny = (size_t)(4 * OCg * N);
    float *buf = conv_alloc(nv + nm + nx + nw + ny);
    if (!buf) return -1;
    float *V = buf, *M = V + nv, *xe = M + nm, *ws = xe + nx, *yb = ws + nw;
    for (int64_t it = i0; it < i1; it += q.nb) {
        int64_t nb = i1 - it < q.nb ? i1 - it : q.nb, g = it % a->G;
        for (int64_t ty0 = 0; ty0 < q.TH; ty0 += q.bt) {
            wino_geom qb = band(&q, ty0);
            int64_t n = nb * qb.T, vs = plane_stride(Cg, n), ms = plane_stride(OCg, n);  /* V (16, Cg, n), M (16, OCg, n) */
            transform_inputs(V, n, vs, a, it, nb, g, &qb, xe);
            for (int xi = 0; xi < 16; xi++)
                gb_gemm_small(M + xi * ms, n, U + (g * 16 + xi) * plane_stride(OCg, Cg), Cg, 1, V + xi * vs, n, NR,
                              OCg, n, Cg, 0, GB_TRI_NONE, 0, ws);
            GB_CALL(output_transform, (yb, M, ms, OCg * n));
            for (int64_t k = 0; k < nb; k++) {
                int64_t b = (it + k) / a->G;
                float *o = a->out + (b * a->OC + g * OCg) * a->OH * a->OW;
                GB_CALL(scatter_tiles, (o, yb + k * qb.T, OCg * n, n, a->bias ? a->bias + g * OCg : NULL, a, &qb));
            }
        }
    }
    free(buf);
    return 0;
}

/* ---- the weight gradient. With Y = A^T [U (.) V] A per tile, dL/dU = (A dY A^T) (.) V and
 * dL/dg = G^T (dL/dU) G, so for each xi
 *     dU[xi] (Cg, OCg) += V[xi] (Cg, n) . Mt[xi] (n, OCg),   Mt[xi, tile, o] = (A dY_tile A^T)[xi],
 * summed over the tiles of every image (tiles past an odd OH/OW see dY = 0), then one back-transform.
 * dy is transposed to (pixel, channel) panels first so that the dY transform runs along the channels. */

/* dyT (ceil(OCg/NR), 2TH * 2TW, NR) for the band's output rows from 2ty0: panels of NR channels,
 * dyT[o/NR][r * 2TW + s][o%NR] = dy[o][2ty0 + r][s] (0 past OH, OW and OCg). An even OW makes the band's
 * pixel grid dy's own rows: one transposing pack (gb_pack_b). */
static void transpose_dy(float *dyT, const float *dy, const conv_args *a, const wino_geom *q) {
    int64_t OCg = a->OC / a->G, W2 = 2 * q->TW, npan = (OCg + NR - 1) / NR, G4 = 4 * q->T, r0 = 2 * q->ty0;
    int64_t rows = a->OH - r0 < 2 * q->TH ? a->OH - r0 : 2 * q->TH, P = rows * a->OW, ldy = a->OH * a->OW;
    const float *src = dy + r0 * a->OW;
    if (W2 == a->OW) {
        gb_pack_b(dyT, src, 1, ldy, 0, 0, OCg, P, 0, npan);  /* panel stride P*NR; moved apart below */
        for (int64_t jp = npan - 1; jp >= 0 && G4 > P; jp--) {  /* an odd OH: a zero row past each panel */
            memmove(dyT + jp * G4 * NR, dyT + jp * P * NR, (size_t)(P * NR) * sizeof(float));
            memset(dyT + jp * G4 * NR + P * NR, 0, (size_t)((G4 - P) * NR) * sizeof(float));
        }
        return;
    }
    memset(dyT, 0, (size_t)(npan * G4 * NR) * sizeof(float));
    for (int64_t o = 0; o < OCg; o++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t s = 0; s < a->OW; s++) dyT[((o / NR) * G4 + r * W2 + s) * NR + o % NR] = src[o * ldy + r * a->OW + s];
}

/* Mt[xi, tile, o] for one image's tiles; xis: Mt's plane stride (its row stride is OCg) */
static inline GB_INLINE void dy_transform_body(float *Mt, int64_t xis, const float *dyT, const conv_args *a,
                                               const wino_geom *q) {
    int64_t OCg = a->OC / a->G, W2 = 2 * q->TW, G4 = 4 * q->T, npan = (OCg + NR - 1) / NR;
    for (int64_t ty = 0; ty < q->TH; ty++)
        for (int64_t tx = 0; tx < q->TW; tx++)
            for (int64_t jp = 0; jp < npan; jp++) {
                const float *p0 = dyT + (jp * G4 + 2 * ty * W2 + 2 * tx) * NR, *p1 = p0 + NR, *p2 = p0 + W2 * NR, *p3 = p2 + NR;
                float *m = Mt + (ty * q->TW + tx) * OCg + jp * NR;
                int64_t nr = OCg - jp * NR < NR ? OCg - jp * NR : NR;
                #pragma omp simd
                for (int64_t o = 0; o < nr; o++) {
                    float d00 = p0[o], d01 = p1[o], d10 = p2[o], d11 = p3[o];
                    float r[4][2] = {{d00, d01}, {d00 + d10, d01 + d11}, {d00 - d10, d01 - d11}, {-d10, -d11}};  /* A dY */
                    for (int i = 0; i < 4; i++) {  /* (A dY) A^T */
                        m[(4 * i) * xis + o] = r[i][0];
                        m[(4 * i + 1) * xis + o] = r[i][0] + r[i][1];
                        m[(4 * i + 2) * xis + o] = r[i][0] - r[i][1];
                        m[(4 * i + 3) * xis + o] = -r[i][1];
                    }
                }
            }
}

GB_MULTIVERSION(dy_transform, (float *Mt, int64_t xis, const float *dyT, const conv_args *a, const wino_geom *q),
                dy_transform_body(Mt, xis, dyT, a, q))

/* dw (OC, Cg*9) += G^T dU G for group g; dU (16, Cg, OCg), zeroed after */
static void add_weight_gradient(float *dw, float *dU, int64_t g, const conv_args *a) {
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, cs = Cg * OCg;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t o = 0; o < OCg; o++) {
            float d[16], t[3][4];
            for (int xi = 0; xi < 16; xi++) d[xi] = dU[xi * cs + c * OCg + o];
            for (int j = 0; j < 4; j++) {  /* t (3, 4) = G^T d */
                float d0 = d[j], d1 = d[4 + j], d2 = d[8 + j], d3 = d[12 + j];
                t[0][j] = d0 + 0.5f * (d1 + d2), t[1][j] = 0.5f * (d1 - d2), t[2][j] = 0.5f * (d1 + d2) + d3;
            }
            float *w = dw + ((g * OCg + o) * Cg + c) * 9;
            for (int i = 0; i < 3; i++) {  /* (t G)[i] */
                w[3 * i] += t[i][0] + 0.5f * (t[i][1] + t[i][2]);
                w[3 * i + 1] += 0.5f * (t[i][1] - t[i][2]);
                w[3 * i + 2] += 0.5f * (t[i][1] + t[i][2]) + t[i][3];
            }
        }
    memset(dU, 0, (size_t)(16 * cs) * sizeof(float));
}

/* dw (OC, Cg*9) += the weight gradient of the items [i0, i1) (a->inp, a->dout). 0, or -1 if out of memory. */
int conv_winograd_dweight(float *dw, const conv_args *a, int64_t i0, int64_t i1) {
    if (i0 >= i1) return 0;
    wino_geom q = geometry(a);
    int64_t Cg = a->C / a->G, OCg = a->OC / a->G, N = q.nb * q.bt * q.TW;
    size_t nv = (size_t)(16 * plane_stride(Cg, N)), nm = (size_t)(16 * plane_stride(N, OCg));
    size_t nu = (size_t)(16 * Cg * OCg), nt = (size_t)(4 * q.bt * q.TW * ((OCg + NR - 1) / NR) * NR);
    size_t nx = (size_t)(2 * (2 * q.bt + 2) * q.We), nw = gb_gemm_small_ws(N);
    float *buf = conv_alloc(nv + nm + nu + nt + nx + nw);
    if (!buf) return -1;
    float *V = buf, *Mt = V + nv, *dU = Mt + nm, *dyT = dU + nu, *xe = dyT + nt, *ws = xe + nx;
    memset(dU, 0, nu * sizeof(float));
    for (int64_t it = i0; it < i1; it += q.nb) {
        int64_t nb = i1 - it < q.nb ? i1 - it : q.nb, g = it % a->G;
        for (int64_t ty0 = 0; ty0 < q.TH; ty0 += q.bt) {
            wino_geom qb = band(&q, ty0);
            int64_t n = nb * qb.T, vs = plane_stride(Cg, n), ms = plane_stride(n, OCg);  /* V (16, Cg, n), Mt (16, n, OCg) */
            transform_inputs(V, n, vs, a, it, nb, g, &qb, xe);
            for (int64_t k = 0; k < nb; k++) {
                int64_t b = (it + k) / a->G;
                transpose_dy(dyT, a->dout + (b * a->OC + g * OCg) * a->OH * a->OW, a, &qb);
                GB_CALL(dy_transform, (Mt + k * qb.T * OCg, ms, dyT, a, &qb));
            }
            for (int xi = 0; xi < 16; xi++)
                gb_gemm_small(dU + xi * Cg * OCg, OCg, V + xi * vs, n, 1, Mt + xi * ms, OCg, NR, Cg, OCg, n, 1,
                              GB_TRI_NONE, 0, ws);
        }
        if (a->G > 1 || it + nb >= i1) add_weight_gradient(dw, dU, g, a);  /* the group changes, or the end */
    }
    free(buf);
    return 0;
}
