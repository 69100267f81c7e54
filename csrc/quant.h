/* int8 linear layer with dynamic per-row activation quantisation (inference).
 *   xq[n, k] = round(x[n, k] / xs[n]),  xs[n] = max_k |x[n, k]| / 127      (written by the kernel)
 *   out[n, o] = xs[n] * wscale[o] * sum_k xq[n, k] * qweight[o, k] + bias[o]
 * x (N, K) float32; qweight (OC, K) int8 (symmetric, per output row); wscale (OC,); bias (OC,) or NULL;
 * xq (N, K) int8 and xs (N,) float32 scratch; out (N, OC). The products are summed in int32 after
 * widening to int16 (no int16 saturation, unlike u8 x s8 vpmaddubsw), so the integer dot is exact.
 * Return 0. */
int int8_linear_forward(float *out, int8_t *xq, float *xs, const float *x, const int8_t *qweight,
                        const float *wscale, const float *bias, int64_t N, int64_t K, int64_t OC);
