/* GELU over n contiguous elements; approximate_tanh = 0: x * Phi(x), 1: the tanh approximation.
 * Return 0. */
int gelu_forward(float *out, const float *inp, int approximate_tanh, int64_t n);
int gelu_backward(float *dinp, const float *dout, const float *inp, int approximate_tanh, int64_t n);
/* Both at once, from one evaluation of Phi: out = gelu(inp), dinp = dout * gelu'(inp) (dout may be
 * NULL: dinp = gelu'(inp)). */
int gelu_forward_backward(float *out, float *dinp, const float *dout, const float *inp, int approximate_tanh,
                          int64_t n);
