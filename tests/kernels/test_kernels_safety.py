"""Every C wrapper rejects bad inputs with ValueError/TypeError before a pointer reaches C.

All cases run in one subprocess, so a segfault fails the test instead of killing pytest.
"""
import json

import pytest

from kernels_helpers import c_available, run_script

needs_c = pytest.mark.skipif(not c_available(), reason="C extension not built")

SCRIPT = r'''
import json
import numpy as np
from goldbull_np.kernels import c_backend as cb

f32 = lambda *s: np.ones(s, np.float32)
ro = lambda a: (a.setflags(write=False), a)[1]
nc = lambda *s: np.ones(s[:-1] + (2 * s[-1],), np.float32)[..., ::2]   # non-contiguous view
i64 = lambda *v: np.array(v, np.int64)
q, k = f32(1, 2, 4, 8), f32(1, 2, 5, 8)
lse = f32(1, 2, 4)
logits, tg = f32(3, 5), i64(0, 1, 2)
P = 10
seg, lrs, wds = i64(0, 4, P), np.ones(2) * 1e-3, np.zeros(2)

CASES = {
    # matmul
    "matmul a float64": lambda: cb.matmul(np.ones((3, 4)), f32(4, 5)),
    "matmul a 1-D": lambda: cb.matmul(f32(4), f32(4, 5)),
    "matmul a 4-D": lambda: cb.matmul(f32(1, 1, 3, 4), f32(4, 5)),
    "matmul inner mismatch": lambda: cb.matmul(f32(3, 4), f32(5, 5)),
    "matmul trans mismatch": lambda: cb.matmul(f32(3, 4), f32(4, 5), trans_a=True),
    "matmul batch mismatch": lambda: cb.matmul(f32(2, 3, 4), f32(3, 4, 5)),
    "matmul a non-contiguous": lambda: cb.matmul(nc(3, 4), f32(4, 5)),
    "matmul a list": lambda: cb.matmul([[1.0]], f32(1, 1)),
    "matmul zero M": lambda: cb.matmul(f32(0, 4), f32(4, 5)),
    "matmul zero K": lambda: cb.matmul(f32(3, 0), f32(0, 5)),
    "matmul out read-only": lambda: cb.matmul(f32(3, 4), f32(4, 5), out=ro(f32(3, 5))),
    "matmul out wrong shape": lambda: cb.matmul(f32(3, 4), f32(4, 5), out=f32(5, 3)),
    "matmul out wrong dtype": lambda: cb.matmul(f32(3, 4), f32(4, 5), out=np.ones((3, 5))),
    "matmul out non-contiguous": lambda: cb.matmul(f32(3, 4), f32(4, 5), out=nc(3, 5)),
    "matmul out aliases a": (lambda a: lambda: cb.matmul(a, f32(4, 4), out=a))(f32(4, 4)),
    # linear
    "linear_forward C mismatch": lambda: cb.linear_forward(f32(3, 4), f32(5, 6)),
    "linear_forward bias shape": lambda: cb.linear_forward(f32(3, 4), f32(5, 4), f32(4)),
    "linear_forward bias float64": lambda: cb.linear_forward(f32(3, 4), f32(5, 4), np.ones(5)),
    "linear_forward x non-contiguous": lambda: cb.linear_forward(nc(3, 4), f32(5, 4)),
    "linear_forward out read-only": lambda: cb.linear_forward(f32(3, 4), f32(5, 4), out=ro(f32(3, 5))),
    "linear_forward zero N": lambda: cb.linear_forward(f32(0, 4), f32(5, 4)),
    "linear_forward residual shape": lambda: cb.linear_forward(f32(3, 4), f32(5, 4), residual=f32(5, 3)),
    "linear_forward residual float64": lambda: cb.linear_forward(f32(3, 4), f32(5, 4), residual=np.ones((3, 5))),
    "linear_forward residual is out": (lambda o: lambda: cb.linear_forward(f32(3, 4), f32(5, 4), out=o, residual=o))(
        f32(3, 5)),
    "linear_backward dout shape": lambda: cb.linear_backward(f32(3, 4), f32(3, 4), f32(5, 4)),
    "linear_backward x int": lambda: cb.linear_backward(f32(3, 5), np.ones((3, 4), np.int32), f32(5, 4)),
    "linear_backward zero OC": lambda: cb.linear_backward(f32(3, 0), f32(3, 4), f32(0, 4)),
    "linear_backward dweight_out shape": lambda: cb.linear_backward(f32(3, 5), f32(3, 4), f32(5, 4),
                                                                    dweight_out=f32(4, 5)),
    "linear_backward dbias_out float64": lambda: cb.linear_backward(f32(3, 5), f32(3, 4), f32(5, 4),
                                                                    dbias_out=np.ones(5)),
    "linear_backward dweight_out read-only": lambda: cb.linear_backward(f32(3, 5), f32(3, 4), f32(5, 4),
                                                                        dweight_out=ro(f32(5, 4))),
    "linear_backward dweight_out aliases weight": (lambda w: lambda: cb.linear_backward(
        f32(3, 5), f32(3, 4), w, dweight_out=w, accumulate=True))(f32(5, 4)),
    # norms
    "layer_norm_backward accumulate without dx_out": lambda: cb.layer_norm_backward(
        f32(3, 4), f32(3, 4), None, f32(3), f32(3), False, accumulate=True),
    "layer_norm_backward dx_out shape": lambda: cb.layer_norm_backward(
        f32(3, 4), f32(3, 4), None, f32(3), f32(3), False, dx_out=f32(4, 3), accumulate=True),
    "rms_norm_backward dx_out aliases dout": (lambda d: lambda: cb.rms_norm_backward(
        d, f32(3, 4), None, f32(3), dx_out=d, accumulate=True))(f32(3, 4)),
    "layer_norm_forward x 3-D": lambda: cb.layer_norm_forward(f32(2, 3, 4), None, None, 1e-5),
    "layer_norm_forward weight shape": lambda: cb.layer_norm_forward(f32(3, 4), f32(5), None, 1e-5),
    "layer_norm_forward x float64": lambda: cb.layer_norm_forward(np.ones((3, 4)), None, None, 1e-5),
    "layer_norm_forward x non-contiguous": lambda: cb.layer_norm_forward(nc(3, 4), None, None, 1e-5),
    "layer_norm_forward zero C": lambda: cb.layer_norm_forward(f32(3, 0), None, None, 1e-5),
    "layer_norm_backward mean shape": lambda: cb.layer_norm_backward(f32(3, 4), f32(3, 4), None, f32(4), f32(3), True),
    "layer_norm_backward rstd float64": lambda: cb.layer_norm_backward(f32(3, 4), f32(3, 4), None, f32(3), np.ones(3), True),
    "layer_norm_backward dout shape": lambda: cb.layer_norm_backward(f32(4, 4), f32(3, 4), None, f32(3), f32(3), True),
    "rms_norm_forward weight float64": lambda: cb.rms_norm_forward(f32(3, 4), np.ones(4), 1e-6),
    "rms_norm_forward zero N": lambda: cb.rms_norm_forward(f32(0, 4), None, 1e-6),
    "rms_norm_backward rstd shape": lambda: cb.rms_norm_backward(f32(3, 4), f32(3, 4), None, f32(4)),
    "rms_norm_backward dout non-contiguous": lambda: cb.rms_norm_backward(nc(3, 4), f32(3, 4), None, f32(3)),
    # attention
    "attention q 3-D": lambda: cb.attention_forward(f32(2, 4, 8), k, k, 1.0),
    "attention D mismatch": lambda: cb.attention_forward(q, f32(1, 2, 5, 7), f32(1, 2, 5, 7), 1.0),
    "attention k/v mismatch": lambda: cb.attention_forward(q, k, f32(1, 2, 6, 8), 1.0),
    "attention H % Hkv": lambda: cb.attention_forward(f32(1, 3, 4, 8), k, k, 1.0),
    "attention batch mismatch": lambda: cb.attention_forward(f32(2, 2, 4, 8), k, k, 1.0),
    "attention q float64": lambda: cb.attention_forward(np.ones((1, 2, 4, 8)), k, k, 1.0),
    "attention q non-contiguous": lambda: cb.attention_forward(nc(1, 2, 4, 8), k, k, 1.0),
    "attention zero T": lambda: cb.attention_forward(f32(1, 2, 0, 8), k, k, 1.0),
    "attention zero D": lambda: cb.attention_forward(f32(1, 2, 4, 0), f32(1, 2, 5, 0), f32(1, 2, 5, 0), 1.0),
    "attention bias bad shape": lambda: cb.attention_forward(q, k, k, 1.0, attn_bias=f32(1, 2, 4, 4)),
    "attention bias 5-D": lambda: cb.attention_forward(q, k, k, 1.0, attn_bias=f32(1, 1, 2, 4, 5)),
    "attention bias float64": lambda: cb.attention_forward(q, k, k, 1.0, attn_bias=np.ones((4, 5))),
    "attention bias bool": lambda: cb.attention_forward(q, k, k, 1.0, attn_bias=np.ones((4, 5), bool)),
    "attention kpm int": lambda: cb.attention_forward(q, k, k, 1.0, key_padding_mask=np.ones((1, 5), np.int32)),
    "attention kpm shape": lambda: cb.attention_forward(q, k, k, 1.0, key_padding_mask=np.ones((1, 4), bool)),
    "attention causal float": lambda: cb.attention_forward(q, k, k, 1.0, causal_offset=0.5),
    "attention_backward lse shape": lambda: cb.attention_backward(q, q, k, k, q, f32(1, 2, 5), 1.0),
    "attention_backward out shape": lambda: cb.attention_backward(q, q, k, k, f32(1, 2, 4, 7), lse, 1.0),
    "attention_backward dout float64": lambda: cb.attention_backward(np.ones(q.shape), q, k, k, q, lse, 1.0),
    "attention_qkv qkv 2-D": lambda: cb.attention_qkv_forward(f32(4, 24), 2, 1, 1.0),
    "attention_qkv width": lambda: cb.attention_qkv_forward(f32(1, 4, 25), 2, 1, 1.0),
    "attention_qkv H % Hkv": lambda: cb.attention_qkv_forward(f32(1, 4, 28), 3, 2, 1.0),
    "attention_qkv zero heads": lambda: cb.attention_qkv_forward(f32(1, 4, 24), 0, 1, 1.0),
    "attention_qkv float64": lambda: cb.attention_qkv_forward(np.ones((1, 4, 24)), 2, 1, 1.0),
    "attention_qkv non-contiguous": lambda: cb.attention_qkv_forward(f32(1, 4, 48)[:, :, ::2], 2, 1, 1.0),
    "attention_qkv zero T": lambda: cb.attention_qkv_forward(f32(1, 0, 24), 2, 1, 1.0),
    "attention_qkv_backward dout shape": lambda: cb.attention_qkv_backward(f32(1, 4, 8), f32(1, 4, 24), f32(1, 4, 12),
                                                                           f32(1, 2, 4), 2, 1, 1.0),
    "attention_qkv_backward lse shape": lambda: cb.attention_qkv_backward(f32(1, 4, 12), f32(1, 4, 24), f32(1, 4, 12),
                                                                          f32(1, 4, 2), 2, 1, 1.0),
    # rotary (qkv (1, 4, 24) = 3 heads of D = 8; tables (4, 8))
    "rotary qkv float64": lambda: cb.rotary_qkv_forward(np.ones((1, 4, 24)), f32(4, 8), f32(4, 8), 2),
    "rotary cos float64": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), np.ones((4, 8)), f32(4, 8), 2),
    "rotary sin float16": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 8), np.ones((4, 8), np.float16), 2),
    "rotary qkv list": lambda: cb.rotary_qkv_forward([[[1.0, 1.0]]], f32(1, 2), f32(1, 2), 1),
    "rotary qkv non-contiguous": lambda: cb.rotary_qkv_forward(nc(1, 4, 24), f32(4, 8), f32(4, 8), 2),
    "rotary cos non-contiguous": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), nc(4, 8), f32(4, 8), 2),
    "rotary qkv 2-D": lambda: cb.rotary_qkv_forward(f32(4, 24), f32(4, 8), f32(4, 8), 2),
    "rotary W % D": lambda: cb.rotary_qkv_forward(f32(1, 4, 20), f32(4, 8), f32(4, 8), 2),
    "rotary odd D": lambda: cb.rotary_qkv_forward(f32(1, 4, 21), f32(4, 7), f32(4, 7), 2),
    "rotary cos T": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(5, 8), f32(5, 8), 2),
    "rotary cos 1-D": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(8), f32(8), 2),
    "rotary sin shape": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 8), f32(4, 6), 2),
    "rotary rotated_heads > heads": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 8), f32(4, 8), 4),
    "rotary rotated_heads negative": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 8), f32(4, 8), -1),
    "rotary rotated_heads float": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 8), f32(4, 8), 2.0),
    "rotary rotated_heads bool": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 8), f32(4, 8), True),
    "rotary zero T": lambda: cb.rotary_qkv_forward(f32(1, 0, 24), f32(0, 8), f32(0, 8), 2),
    "rotary zero W": lambda: cb.rotary_qkv_forward(f32(1, 4, 0), f32(4, 8), f32(4, 8), 0),
    "rotary zero D": lambda: cb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 0), f32(4, 0), 0),
    "rotary_backward g float64": lambda: cb.rotary_qkv_backward(np.ones((1, 4, 24)), f32(4, 8), f32(4, 8), 2),
    "rotary_backward g non-contiguous": lambda: cb.rotary_qkv_backward(nc(1, 4, 24), f32(4, 8), f32(4, 8), 2),
    "rotary_backward W % D": lambda: cb.rotary_qkv_backward(f32(1, 4, 20), f32(4, 8), f32(4, 8), 2),
    "rotary_backward cos T": lambda: cb.rotary_qkv_backward(f32(1, 4, 24), f32(3, 8), f32(3, 8), 2),
    "rotary_backward rotated_heads > heads": lambda: cb.rotary_qkv_backward(f32(1, 4, 24), f32(4, 8), f32(4, 8), 4),
    # cross-entropy
    "ce target >= V": lambda: cb.cross_entropy_forward(logits, i64(0, 5, 1)),
    "ce target huge": lambda: cb.cross_entropy_forward(logits, i64(0, 2**40, 1)),
    "ce negative target": lambda: cb.cross_entropy_forward(logits, i64(0, -1, 1)),
    "ce targets float": lambda: cb.cross_entropy_forward(logits, np.zeros(3)),
    "ce targets shape": lambda: cb.cross_entropy_forward(logits, i64(0, 1)),
    "ce logits 1-D": lambda: cb.cross_entropy_forward(f32(5), i64(0)),
    "ce logits float64": lambda: cb.cross_entropy_forward(np.ones((3, 5)), tg),
    "ce label_smoothing 2": lambda: cb.cross_entropy_forward(logits, tg, label_smoothing=2.0),
    "ce zero N": lambda: cb.cross_entropy_forward(f32(0, 5), i64()),
    "ce zero V": lambda: cb.cross_entropy_forward(f32(3, 0), i64(-100, -100, -100)),
    "ce_backward out read-only": lambda: cb.cross_entropy_backward(f32(3), logits, tg, f32(3), out=ro(f32(3, 5))),
    "ce_backward out shape": lambda: cb.cross_entropy_backward(f32(3), logits, tg, f32(3), out=f32(3, 4)),
    "ce_backward out aliases dlosses": (lambda b: lambda: cb.cross_entropy_backward(b[:3], logits, tg, f32(3), out=b.reshape(3, 5)))(f32(15)),
    "ce_backward lse shape": lambda: cb.cross_entropy_backward(f32(3), logits, tg, f32(4)),
    "ce_backward target >= V": lambda: cb.cross_entropy_backward(f32(3), logits, i64(0, 9, 1), f32(3)),
    # embedding
    "embedding dout float64": lambda: cb.embedding_backward(np.ones((3, 4)), tg, 5),
    "embedding dout float16": lambda: cb.embedding_backward(np.ones((3, 4), np.float16), tg, 5),
    "embedding dout 1-D": lambda: cb.embedding_backward(f32(3), tg, 5),
    "embedding dout 3-D": lambda: cb.embedding_backward(f32(1, 3, 4), tg, 5),
    "embedding dout non-contiguous": lambda: cb.embedding_backward(nc(3, 4), tg, 5),
    "embedding id >= V": lambda: cb.embedding_backward(f32(3, 4), i64(0, 5, 1), 5),
    "embedding negative id": lambda: cb.embedding_backward(f32(3, 4), i64(0, -1, 1), 5),
    "embedding id huge": lambda: cb.embedding_backward(f32(3, 4), i64(0, 2**40, 1), 5),
    "embedding id uint64 > int64": lambda: cb.embedding_backward(f32(3, 4), np.array([0, 2**63, 1], np.uint64), 5),
    "embedding ids float": lambda: cb.embedding_backward(f32(3, 4), np.zeros(3), 5),
    "embedding ids list": lambda: cb.embedding_backward(f32(3, 4), [0, 1, 2], 5),
    "embedding ids shape": lambda: cb.embedding_backward(f32(3, 4), i64(0, 1), 5),
    "embedding ids 2-D": lambda: cb.embedding_backward(f32(3, 4), tg.reshape(3, 1), 5),
    "embedding num_embeddings 0": lambda: cb.embedding_backward(f32(3, 4), tg, 0),
    "embedding num_embeddings float": lambda: cb.embedding_backward(f32(3, 4), tg, 5.0),
    "embedding num_embeddings negative": lambda: cb.embedding_backward(f32(3, 4), tg, -5),
    "embedding zero N": lambda: cb.embedding_backward(f32(0, 4), i64(), 5),
    "embedding zero C": lambda: cb.embedding_backward(f32(3, 0), tg, 5),
    # gelu
    "gelu x float64": lambda: cb.gelu_forward(np.ones(4)),
    "gelu x non-contiguous": lambda: cb.gelu_forward(nc(3, 4)),
    "gelu approximate": lambda: cb.gelu_forward(f32(4), "erf"),
    "gelu zero size": lambda: cb.gelu_forward(f32(0)),
    "gelu_backward dout shape": lambda: cb.gelu_backward(f32(5), f32(4)),
    "gelu_backward dout float16": lambda: cb.gelu_backward(np.ones(4, np.float16), f32(4)),
    "gelu_forward_backward dout shape": lambda: cb.gelu_forward_backward(f32(5), f32(4)),
    "gelu_forward_backward dout float64": lambda: cb.gelu_forward_backward(np.ones(4), f32(4)),
    "gelu_forward_backward dout non-contiguous": lambda: cb.gelu_forward_backward(nc(3, 4), f32(3, 4)),
    "gelu_forward_backward x float64": lambda: cb.gelu_forward_backward(None, np.ones(4)),
    "gelu_forward_backward approximate": lambda: cb.gelu_forward_backward(None, f32(4), "erf"),
    # adamw
    "adamw param read-only": lambda: cb.adamw_step(ro(f32(P)), f32(P), f32(P), f32(P), 1, lrs, wds, seg),
    "adamw grad shape": lambda: cb.adamw_step(f32(P), f32(P + 1), f32(P), f32(P), 1, lrs, wds, seg),
    "adamw segments past end": lambda: cb.adamw_step(f32(P), f32(P), f32(P), f32(P), 1, lrs, wds, i64(0, 4, P + 1)),
    "adamw segments negative": lambda: cb.adamw_step(f32(P), f32(P), f32(P), f32(P), 1, lrs, wds, i64(-1, 4, P)),
    "adamw segments decreasing": lambda: cb.adamw_step(f32(P), f32(P), f32(P), f32(P), 1, lrs, wds, i64(0, 8, 4)),
    "adamw segments int32": lambda: cb.adamw_step(f32(P), f32(P), f32(P), f32(P), 1, lrs, wds, seg.astype(np.int32)),
    "adamw lrs length": lambda: cb.adamw_step(f32(P), f32(P), f32(P), f32(P), 1, np.ones(3), wds, seg),
    "adamw lrs float32": lambda: cb.adamw_step(f32(P), f32(P), f32(P), f32(P), 1, lrs.astype(np.float32), wds, seg),
    "adamw step 0": lambda: cb.adamw_step(f32(P), f32(P), f32(P), f32(P), 0, lrs, wds, seg),
    "adamw overlapping": (lambda p: lambda: cb.adamw_step(p, f32(P), p, f32(P), 1, lrs, wds, seg))(f32(P)),
    "adamw param non-contiguous": lambda: cb.adamw_step(nc(P), f32(P), f32(P), f32(P), 1, lrs, wds, seg),
    "adamw zero P": lambda: cb.adamw_step(f32(0), f32(0), f32(0), f32(0), 1, lrs, wds, i64(0, 0, 0)),
    # sum of squares (float32 and float64, any shape; zero size is the empty sum, checked below)
    "sum_squares int32": lambda: cb.sum_squares(np.ones(4, np.int32)),
    "sum_squares float16": lambda: cb.sum_squares(np.ones(4, np.float16)),
    "sum_squares bool": lambda: cb.sum_squares(np.ones(4, bool)),
    "sum_squares list": lambda: cb.sum_squares([1.0, 2.0]),
    "sum_squares non-contiguous": lambda: cb.sum_squares(nc(3, 4)),
    "sum_squares float64 non-contiguous": lambda: cb.sum_squares(np.ones((3, 8))[:, ::2]),
    "sum_squares transposed": lambda: cb.sum_squares(f32(3, 4).T),
}
results = {}
for name, fn in CASES.items():
    try:
        fn()
        results[name] = "no error"
    except (ValueError, TypeError) as exc:
        results[name] = "ok"
    except Exception as exc:  # noqa: BLE001
        results[name] = f"{type(exc).__name__}: {exc}"
# the wrappers still work after all of that
out, _, _ = cb.layer_norm_forward(np.arange(8, dtype=np.float32).reshape(2, 4), None, None, 1e-5)
results["still works"] = "ok" if abs(float(out.sum())) < 1e-5 else "broken"
dw = cb.embedding_backward(f32(3, 4)[:, ::-1].copy(), np.array([4, 0, 4], np.int32)[::-1], 5)  # ids: any layout
results["embedding ids int32 view"] = "ok" if dw.sum(axis=1).tolist() == [4, 0, 0, 0, 8] else "broken"
# sum_squares: the empty sum, a read-only input, squares that overflow float32 ((2**70)**2), float64
ss = [cb.sum_squares(f32(0, 3)), cb.sum_squares(ro(f32(2, 3))), cb.sum_squares(np.full((2, 2, 2), 2.0**70, np.float32)),
      cb.sum_squares(np.full(5, 2.0))]
results["sum_squares valid inputs"] = "ok" if ss == [0.0, 6.0, 2.0**143, 20.0] else f"broken: {ss}"
# rotary: read-only inputs are fine, and every head rotated or none
ro_qkv, ro_tab = ro(f32(1, 4, 24)), ro(np.full((4, 8), 0.5, np.float32))
rq = [cb.rotary_qkv_forward(ro_qkv, ro_tab, ro_tab, 3), cb.rotary_qkv_backward(ro_qkv, ro_tab, ro_tab, 0)]
results["rotary valid inputs"] = "ok" if [float(a.sum()) for a in rq] == [48.0, 96.0] else f"broken: {rq}"
print(json.dumps(results))
'''


@needs_c
def test_c_wrappers_reject_bad_inputs():
    r = run_script(SCRIPT)
    assert r.returncode == 0, f"subprocess died (rc={r.returncode}): {r.stderr[-2000:]}"
    results = json.loads(r.stdout)
    bad = {k: v for k, v in results.items() if v != "ok"}
    assert not bad, bad
    assert len(results) > 80


NUMBA_SCRIPT = r'''
import json
import numpy as np
from goldbull_np.kernels import numba_backend as nb
f32 = lambda *s: np.ones(s, np.float32)
i64 = lambda *v: np.array(v, np.int64)
q, k = f32(1, 2, 4, 8), f32(1, 2, 5, 8)
CASES = {
    "linear weight C": lambda: nb.linear_forward(f32(3, 4), f32(5, 6)),
    "linear bias": lambda: nb.linear_forward(f32(3, 4), f32(5, 4), f32(4)),
    "linear residual": lambda: nb.linear_forward(f32(3, 4), f32(5, 4), residual=f32(3, 4)),
    "linear_backward dout": lambda: nb.linear_backward(f32(3, 4), f32(3, 4), f32(5, 4)),
    "linear_backward dweight_out": lambda: nb.linear_backward(f32(3, 5), f32(3, 4), f32(5, 4), dweight_out=f32(4, 5)),
    "layer_norm weight": lambda: nb.layer_norm_forward(f32(3, 4), f32(3), None, 1e-5),
    "layer_norm_backward rstd": lambda: nb.layer_norm_backward(f32(3, 4), f32(3, 4), None, f32(3), f32(2), True),
    "rms_norm_backward dout": lambda: nb.rms_norm_backward(f32(2, 4), f32(3, 4), None, f32(3)),
    "attention lse": lambda: nb.attention_backward(q, q, k, k, q, f32(1, 2, 3), 1.0),
    "attention kpm": lambda: nb.attention_forward(q, k, k, 1.0, key_padding_mask=np.ones((1, 4), bool)),
    "ce target": lambda: nb.cross_entropy_forward(f32(3, 5), i64(0, 5, 1)),
    "ce_backward lse": lambda: nb.cross_entropy_backward(f32(3), f32(3, 5), i64(0, 1, 2), f32(2)),
    "gelu_backward dout": lambda: nb.gelu_backward(f32(5), f32(4)),
    "gelu_forward_backward dout": lambda: nb.gelu_forward_backward(f32(5), f32(4)),
    "adamw grad": lambda: nb.adamw_step(f32(10), f32(9), f32(10), f32(10), 1, np.ones(1), np.zeros(1), i64(0, 10)),
    "adamw segments": lambda: nb.adamw_step(f32(10), f32(10), f32(10), f32(10), 1, np.ones(1), np.zeros(1), i64(0, 11)),
    "embedding id >= V": lambda: nb.embedding_backward(f32(3, 4), i64(0, 5, 1), 5),
    "embedding negative id": lambda: nb.embedding_backward(f32(3, 4), i64(0, -1, 1), 5),
    "embedding ids shape": lambda: nb.embedding_backward(f32(3, 4), i64(0, 1, 2, 3), 5),
    "embedding dout 1-D": lambda: nb.embedding_backward(f32(3), i64(0, 1, 2), 5),
    "sum_squares float16": lambda: nb.sum_squares(np.ones(4, np.float16)),
    "sum_squares int32": lambda: nb.sum_squares(np.ones(4, np.int32)),
    "sum_squares list": lambda: nb.sum_squares([1.0, 2.0]),
    "rotary W % D": lambda: nb.rotary_qkv_forward(f32(1, 4, 20), f32(4, 8), f32(4, 8), 2),
    "rotary odd D": lambda: nb.rotary_qkv_forward(f32(1, 4, 21), f32(4, 7), f32(4, 7), 2),
    "rotary cos T": lambda: nb.rotary_qkv_forward(f32(1, 4, 24), f32(5, 8), f32(5, 8), 2),
    "rotary sin shape": lambda: nb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 8), f32(4, 6), 2),
    "rotary qkv 2-D": lambda: nb.rotary_qkv_forward(f32(4, 24), f32(4, 8), f32(4, 8), 2),
    "rotary rotated_heads > heads": lambda: nb.rotary_qkv_forward(f32(1, 4, 24), f32(4, 8), f32(4, 8), 4),
    "rotary rotated_heads negative": lambda: nb.rotary_qkv_backward(f32(1, 4, 24), f32(4, 8), f32(4, 8), -1),
    "rotary_backward cos T": lambda: nb.rotary_qkv_backward(f32(1, 4, 24), f32(3, 8), f32(3, 8), 2),
}
res = {}
for name, fn in CASES.items():
    try:
        fn()
        res[name] = "no error"
    except (ValueError, TypeError):
        res[name] = "ok"
    except Exception as exc:  # noqa: BLE001
        res[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(res))
'''


def test_numba_wrappers_reject_bad_shapes():
    """numba indexes without bounds checks: its wrappers must check shapes before the loops."""
    r = run_script(NUMBA_SCRIPT)
    assert r.returncode == 0, f"subprocess died (rc={r.returncode}): {r.stderr[-2000:]}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert {k: v for k, v in res.items() if v != "ok"} == {}
