/* Rotary position embeddings (Llama's rotate_half) on a fused projection. Legend: B = batch,
 * T = positions, W = row width (n_heads_total * D), D = head dim (even), h = D / 2, R = rotated_heads
 * (0 <= R <= W / D). x (B,T,W) holds per row W / D heads of D floats; heads [0, R) of position t are
 * rotated by cos, sin (T,D) row t, the others copied:
 *   forward:  out[j] = x[j] cos[j] - x[j+h] sin[j],  out[j+h] = x[j+h] cos[j+h] + x[j] sin[j+h]
 *   backward (the transpose): dx[j] = g[j] cos[j] + g[j+h] sin[j+h],  dx[j+h] = g[j+h] cos[j+h] - g[j] sin[j]
 * for j < h. out / dx (B,T,W) must not overlap the inputs; every element is written. Return 0. */
int rotary_qkv_forward(float *out, const float *qkv, const float *cos, const float *sin,
                       int64_t B, int64_t T, int64_t W, int64_t D, int64_t rotated_heads);
int rotary_qkv_backward(float *dx, const float *g, const float *cos, const float *sin,
                        int64_t B, int64_t T, int64_t W, int64_t D, int64_t rotated_heads);
