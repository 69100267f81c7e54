/* Softmax cross-entropy fused with the loss. Legend: N = rows (B*T), V = vocab.
 * loss = (1-ls) * (lse - logit[t]) + ls * (lse - mean(logits)); rows with t == ignore_index give 0.
 * Return 0. */
int crossentropy_forward(float *losses, float *lse,
                         const float *logits, const int64_t *targets,
                         int64_t ignore_index, float label_smoothing, int64_t N, int64_t V);
/* dlogits (N,V) = dlosses[n] * (softmax - ((1-ls) * onehot + ls/V)); 0 rows where ignored.
 * dlogits may be logits itself (every element is read before it is written). */
int crossentropy_backward(float *dlogits,
                          const float *dlosses, const float *logits, const int64_t *targets,
                          const float *lse, int64_t ignore_index, float label_smoothing,
                          int64_t N, int64_t V);
