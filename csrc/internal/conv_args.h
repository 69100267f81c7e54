/* The convolution's argument block, shared by conv.c (the portable paths) and conv_avx512.c (the
 * AVX-512 implicit-GEMM path). Not part of the cffi cdef. Legend as in conv.h. */
#pragma once
#include <stdint.h>

typedef struct {
    float *out, *dinp, *dw_part, *db_part;       /* dw_part (nt, OC, K), db_part (nt, OC) */
    const float *inp, *weight, *bias, *dout;
    int64_t B, C, H, W, OC, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw, G;
    int err;
    int64_t next;                                /* a dynamic schedule's next item (start at 0) */
    const float *wflip;                          /* conv.c's dx as a convolution: (G, Cg, OCg*KH*KW) or NULL */
    const float *wino_u;                         /* Winograd-transformed weights (conv_winograd.c) or NULL */
} conv_args;

/* a 64-byte aligned buffer of nfloats floats (at least one), or NULL (conv.c) */
float *conv_alloc(size_t nfloats);
/* [ow0, ow1): the output columns whose tap with column offset off reads inside the row (conv.c) */
void conv_valid_cols(const conv_args *a, int64_t off, int64_t *ow0, int64_t *ow1);
/* dx (Cg, H, W) += the adjoint of im2col applied to dcol (Cg*KH*KW rows, row stride ld) (conv.c) */
void conv_col2im(float *dx, const float *dcol, int64_t ld, const conv_args *a);

/* The AVX-512 path (conv_avx512.c): 1 if it ran (0 if the CPU or the shape is not for it), -1 if
 * scratch memory could not be allocated. conv_fast_backward writes every non-NULL gradient. */
int conv_fast_forward(const conv_args *a);
int conv_fast_backward(float *dinp, float *dweight, float *dbias, const conv_args *a);

/* Winograd F(2x2, 3x3) for stride-1 undilated 3x3 convolutions (conv_winograd.c): whether it runs for a,
 * the transformed weights U (G, 16, OCg, Cg) of a (OC, Cg, 3, 3) weight (malloc'd; NULL if out of memory),
 * and a->out for the (image, group) items [i0, i1) of a->inp (0, or -1 if out of memory). */
int conv_winograd_applies(const conv_args *a);
int conv_winograd_dweight_applies(const conv_args *a);  /* the weight gradient's (fewer input channels) */
float *conv_winograd_weights(const float *weight, const conv_args *a);
int conv_winograd_items(const conv_args *a, const float *U, int64_t i0, int64_t i1);
/* dw (OC, Cg*9) += the weight gradient of the items [i0, i1) of a->inp and a->dout (0, or -1 if out of memory) */
int conv_winograd_dweight(float *dw, const conv_args *a, int64_t i0, int64_t i1);
