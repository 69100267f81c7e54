/* One AdamW step (torch.optim.AdamW semantics) over flat float32 buffers of P parameters, in place.
 * Segment g = [segments[g], segments[g+1]) uses lrs[g] and weight_decays[g]; step >= 1. Return 0. */
int adamw_step(float *param, const float *grad, float *exp_avg, float *exp_avg_sq,
               const int64_t *segments, const double *lrs, const double *weight_decays, int64_t G,
               int64_t step, float beta1, float beta2, float eps);
