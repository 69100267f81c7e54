/* sum(x[i]^2) over n contiguous elements, accumulated in double, into *out (n >= 0). Deterministic for
 * a given thread count and ISA tier. Return 0. */
int sum_squares_f32(const float *x, int64_t n, double *out);
int sum_squares_f64(const double *x, int64_t n, double *out);
