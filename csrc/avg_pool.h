/* Average pooling over N = B*C planes of NCHW float32 (avg_pool.c): each output is the mean of its
 * window's in-bounds taps, divided by KH*KW when count_include_pad (zero padding counted) or by the
 * number of in-bounds taps. Pads: ph = top/bottom, pw = left/right (at most half the kernel). */
int avg_pool2d_forward(float *out, const float *inp, int64_t N, int64_t H, int64_t W, int64_t KH, int64_t KW,
                       int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                       int count_include_pad);
/* dinp (N, H, W) = the transpose of the forward: each dout (N, OH, OW) / divisor spread over its window */
int avg_pool2d_backward(float *dinp, const float *dout, int64_t N, int64_t H, int64_t W, int64_t KH, int64_t KW,
                        int64_t OH, int64_t OW, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                        int count_include_pad);
