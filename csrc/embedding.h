/* Embedding backward (scatter-add of rows). Legend: N = ids (B*T), C = channels, V = table rows.
 * dweight (V,C)[v] = sum of dout (N,C)[n] over the n with ids[n] == v; rows never hit are 0.
 * Every id must be in [0, V) (the caller checks). dweight must arrive zero-filled (the rows are
 * added onto it): np.zeros gives lazily zeroed pages, so for a large vocabulary only the rows hit are
 * ever touched. Deterministic: each column is summed by one thread over the rows in order, whatever
 * the thread count. Return 0. */
int embedding_backward(float *dweight, const float *dout, const int64_t *ids,
                       int64_t N, int64_t C, int64_t V);
