/* SGEMM and the linear layer. Row-major, contiguous operands.
 * sgemm: c (batch,M,N) = op(a) (batch,M,K) @ op(b) (batch,K,N) [+ bias (N,)]
 *   op(a) = a^T when trans_a (a stored (K,M)); op(b) = b^T when trans_b (b stored (N,K)).
 *   stride_a/b/c: elements between consecutive matrices of the batch (0 = the same matrix).
 * Return 0, or -1 if the packing workspace could not be allocated. */
int sgemm(float *c, const float *a, const float *b, const float *bias, int trans_a, int trans_b,
          int64_t M, int64_t N, int64_t K, int64_t batch,
          int64_t stride_a, int64_t stride_b, int64_t stride_c);
/* Test oracle, not a kernel: the naive triple loop sgemm is checked against
 * (tests/kernels/test_kernels_c_naive.py). No Python wrapper, never registered with the dispatch. */
void sgemm_naive(float *c, const float *a, const float *b, const float *bias, int trans_a, int trans_b,
                 int64_t M, int64_t N, int64_t K);
/* Legend: N = rows (B*T), C = in channels, OC = out channels. Pointers that are NULL are skipped. */
/* residual (N, OC) or NULL: out = residual + inp @ weight^T + bias (a transformer block's x + proj(y)), added in
 * the GEMM's epilogue; it must not overlap out. */
int linear_forward(float *out, const float *inp, const float *weight, const float *bias, const float *residual,
                   int64_t N, int64_t C, int64_t OC);
/* accumulate: dweight and dbias += their gradients (a parameter's .grad, added in the GEMM's epilogue and the
 * column sums' store) instead of =; dinp is always overwritten. */
int linear_backward(float *dinp, float *dweight, float *dbias,
                    const float *dout, const float *inp, const float *weight,
                    int64_t N, int64_t C, int64_t OC, int accumulate);
