/* Convolution, pooling and batch norm over NCHW float32 arrays (conv.c, conv_avx512.c, conv_pool.c).
 * Legend: B = batch, C = in channels, OC = out channels, G = groups (Cg = C/G, OCg = OC/G),
 * H/W = input size, OH/OW = output size, KH/KW = kernel size, P = OH*OW.
 * Pads: pt = top, pl = left (the bottom/right ones are implied by OH/OW). NULL pointers are skipped.
 * Outputs are written, not accumulated. Return 0, or -1 if scratch memory could not be allocated. */
int conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                   int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW,
                   int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                   int64_t dh, int64_t dw, int64_t G);
int conv2d_backward(float *dinp, float *dweight, float *dbias,
                    const float *dout, const float *inp, const float *weight,
                    int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW,
                    int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                    int64_t dh, int64_t dw, int64_t G);
/* max pooling over N = B*C planes; indices (N, OH, OW) = h*W + w of each window's first maximum */
int max_pool2d_forward(float *out, int64_t *indices, const float *inp, int64_t N, int64_t H, int64_t W,
                       int64_t KH, int64_t KW, int64_t OH, int64_t OW, int64_t sh, int64_t sw,
                       int64_t ph, int64_t pw, int64_t dh, int64_t dw);
int max_pool2d_backward(float *dinp, const float *dout, const int64_t *indices, int64_t N, int64_t H,
                        int64_t W, int64_t OH, int64_t OW);
/* batch norm statistics over N and L per channel: x (N, C, L); mean, rstd (C,) */
int batch_norm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, float eps, int64_t N, int64_t C, int64_t L);
int batch_norm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd,
                        int64_t N, int64_t C, int64_t L);
