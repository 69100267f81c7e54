/* LayerNorm and RMSNorm over the last axis. Legend: N = rows (B*T), C = channels.
 * weight/bias may be NULL (no affine / no bias). Outputs are written, not accumulated, except the backwards'
 * dinp with accumulate = 1: dinp += the input gradient (a pending gradient of the input, summed in the pass).
 * Return 0, or -1 if scratch memory could not be allocated. */
int layernorm_forward(float *out, float *mean, float *rstd,
                      const float *inp, const float *weight, const float *bias,
                      float eps, int64_t N, int64_t C);
int layernorm_backward(float *dinp, float *dweight, float *dbias,
                       const float *dout, const float *inp, const float *weight,
                       const float *mean, const float *rstd, int64_t N, int64_t C, int accumulate);
/* Test oracle, not a kernel: the naive reference (double accumulation) layernorm_forward is checked
 * against (tests/kernels/test_kernels_c_naive.py). No Python wrapper, never registered with the dispatch. */
void layernorm_forward_naive(float *out, float *mean, float *rstd,
                             const float *inp, const float *weight, const float *bias,
                             float eps, int64_t N, int64_t C);
int rmsnorm_forward(float *out, float *rstd,
                    const float *inp, const float *weight, float eps, int64_t N, int64_t C);
int rmsnorm_backward(float *dinp, float *dweight,
                     const float *dout, const float *inp, const float *weight,
                     const float *rstd, int64_t N, int64_t C, int accumulate);
