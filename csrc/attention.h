/* Flash-style scaled dot-product attention. Legend: B = batch, H = query heads, Hkv = kv heads
 * (H % Hkv == 0; query head h reads kv head h / (H / Hkv)), T = queries, S = keys, D = head dim.
 * Query t may attend key s iff (!causal || s <= t + causal_offset) && (!kpm || kpm[b*S + s]).
 * scores = scale * q.k + bias[b*bias_sb + h*bias_sh + t*bias_st + s*bias_ss] (bias may be NULL;
 * broadcast dims have stride 0). A fully masked row gives out = 0, lse = -inf and zero gradients.
 * Return 0, or -1 if scratch memory could not be allocated. */
int attention_forward(float *out, float *lse,
                      const float *q, const float *k, const float *v,
                      const float *bias, int64_t bias_sb, int64_t bias_sh, int64_t bias_st, int64_t bias_ss,
                      const uint8_t *kpm, int causal, int64_t causal_offset, float scale,
                      int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t S, int64_t D);
int attention_backward(float *dq, float *dk, float *dv,
                       const float *dout, const float *q, const float *k, const float *v,
                       const float *out, const float *lse,
                       const float *bias, int64_t bias_sb, int64_t bias_sh, int64_t bias_st, int64_t bias_ss,
                       const uint8_t *kpm, int causal, int64_t causal_offset, float scale,
                       int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t S, int64_t D);
/* Causal self-attention (causal_offset 0, no bias or padding mask) straight from a fused projection:
 * qkv (B,T,(H+2*Hkv)*D) holds per row [H query heads | Hkv key heads | Hkv value heads] of D floats;
 * out / dout (B,T,H*D); lse (B,H,T); dqkv like qkv (every element written). Same results as
 * attention_forward / attention_backward on the split, head-major copies, without making them. */
int attention_qkv_forward(float *out, float *lse, const float *qkv, float scale,
                          int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t D);
int attention_qkv_backward(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                           float scale, int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t D);
