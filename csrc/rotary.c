/* Rotary position embeddings on a fused qkv projection, forward and transpose. Memory-bound: one
 * read and one write of each row. The NumPy version worked on a (B,T,heads,D) view whose innermost
 * runs are only h = D/2 floats, so every ufunc call looped over tiny strided pieces; here each head
 * is two contiguous h-float loops that vectorize, and the unrotated (v) heads are one memcpy per row.
 * Parallel over contiguous ranges of the B*T rows (row r is position r % T). */
#include "internal/gb_common.h"
#include "internal/gb_pool.h"
#include "rotary.h"

/* The R rotated heads of one row: x, out (R*D,) with position tables c, s (D,). The forward and the
 * transpose differ only in which half of s pairs with which half of x, and in the sign:
 *   forward   out[j] = a c[j] - b s[j],     out[j+h] = b c[j+h] + a s[j+h]
 *   transpose out[j] = a c[j] + b s[j+h],   out[j+h] = b c[j+h] - a s[j]     (a = x[j], b = x[j+h]) */
static inline GB_INLINE void rope_heads(float *out, const float *x, const float *c, const float *s,
                                        int64_t R, int64_t D, int transpose) {
    int64_t h = D / 2;
    const float *s_lo = transpose ? s + h : s;  /* multiplies b into out[j] */
    const float *s_hi = transpose ? s : s + h;  /* multiplies a into out[j+h] */
    float sign = transpose ? -1.0f : 1.0f;      /* exact: only flips the product's sign */
    for (int64_t hd = 0; hd < R; hd++) {
        const float *xa = x + hd * D, *xb = xa + h;
        float *oa = out + hd * D, *ob = oa + h;
        #pragma omp simd
        for (int64_t j = 0; j < h; j++) {
            float a = xa[j], b = xb[j];
            oa[j] = a * c[j] - sign * (b * s_lo[j]);
            ob[j] = b * c[j + h] + sign * (a * s_hi[j]);
        }
    }
}

/* Rows [r0, r1) of x (N,W) into out (N,W): heads [0, R) rotated by the tables of position r % T,
 * the rest copied. */
static inline GB_INLINE void rope_rows(float *out, const float *x, const float *cos, const float *sin,
                                       int64_t T, int64_t W, int64_t D, int64_t R, int transpose,
                                       int64_t r0, int64_t r1) {
    int64_t rot = R * D;
    for (int64_t r = r0; r < r1; r++) {
        int64_t t = r % T;
        const float *xr = x + r * W;
        float *orow = out + r * W;
        rope_heads(orow, xr, cos + t * D, sin + t * D, R, D, transpose);
        if (rot < W) memcpy(orow + rot, xr + rot, (size_t)(W - rot) * sizeof(float));
    }
}
GB_MULTIVERSION(rope_r, (float *out, const float *x, const float *cos, const float *sin, int64_t T, int64_t W,
                         int64_t D, int64_t R, int transpose, int64_t r0, int64_t r1),
                rope_rows(out, x, cos, sin, T, W, D, R, transpose, r0, r1))

typedef struct {
    float *out;
    const float *x, *cos, *sin;
    int64_t N, T, W, D, R;
    int transpose;
} rope_args;

static void rope_task(void *ctx, int t, int nt) {
    rope_args *a = ctx;
    int64_t r0, r1;
    gb_split(a->N, t, nt, &r0, &r1);
    if (r0 < r1) GB_CALL(rope_r, (a->out, a->x, a->cos, a->sin, a->T, a->W, a->D, a->R, a->transpose, r0, r1));
}

static int rope_run(float *out, const float *x, const float *cos, const float *sin, int64_t B, int64_t T,
                    int64_t W, int64_t D, int64_t R, int transpose) {
    rope_args a = {out, x, cos, sin, B * T, T, W, D, R, transpose};
    gb_parallel(rope_task, &a, B * T * W >= GB_PAR_MIN_ELEMS ? gb_threads() : 1);
    return 0;
}

int rotary_qkv_forward(float *out, const float *qkv, const float *cos, const float *sin,
                       int64_t B, int64_t T, int64_t W, int64_t D, int64_t rotated_heads) {
    return rope_run(out, qkv, cos, sin, B, T, W, D, rotated_heads, 0);
}

int rotary_qkv_backward(float *dx, const float *g, const float *cos, const float *sin,
                        int64_t B, int64_t T, int64_t W, int64_t D, int64_t rotated_heads) {
    return rope_run(dx, g, cos, sin, B, T, W, D, rotated_heads, 1);
}
