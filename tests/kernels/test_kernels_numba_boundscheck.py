"""The numba kernels run clean with NUMBA_BOUNDSCHECK=1 (an out-of-bounds index raises IndexError).

Runs in a subprocess with a private NUMBA_CACHE_DIR so the kernels are compiled with bounds checks
instead of being loaded from the (unchecked) on-disk cache.
"""
import json

from kernels_helpers import run_script

SCRIPT = r'''
import json, numba
import numpy as np
from goldbull_np.kernels import numba_backend as nb, reference as ref
assert numba.config.BOUNDSCHECK, "NUMBA_BOUNDSCHECK not honoured"
rng = np.random.default_rng(0)
r = lambda *s: rng.standard_normal(s).astype(np.float32)
err = {}
def check(name, got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    err[name] = max(float(np.max(np.abs(np.nan_to_num(g - w, posinf=0, neginf=0)))) for g, w in zip(got, want)
                    if g is not None)
a, b = r(5, 7), r(7, 3)
check("matmul", nb.matmul(a, b), ref.matmul(a, b))
check("matmul_tn", nb.matmul(a.T.copy(), b, trans_a=True), ref.matmul(a.T.copy(), b, trans_a=True))
x, w, bias, dout = r(6, 7), r(3, 7), r(3), r(6, 3)
check("linear_forward", nb.linear_forward(x, w, bias), ref.linear_forward(x, w, bias))
check("linear_backward", nb.linear_backward(dout, x, w), ref.linear_backward(dout, x, w))
lw, lb, ld = r(7), r(7), r(6, 7)
o = nb.layer_norm_forward(x, lw, lb, 1e-5)
check("layer_norm_forward", o, ref.layer_norm_forward(x, lw, lb, 1e-5))
check("layer_norm_backward", nb.layer_norm_backward(ld, x, lw, o[1], o[2], True),
      ref.layer_norm_backward(ld, x, lw, o[1], o[2], True))
o = nb.rms_norm_forward(x, lw, 1e-6)
check("rms_norm", nb.rms_norm_backward(ld, x, lw, o[1]), ref.rms_norm_backward(ld, x, lw, o[1]))
q, k, v = r(2, 4, 5, 3), r(2, 2, 6, 3), r(2, 2, 6, 3)
kpm = rng.random((2, 6)) > 0.3
kw = dict(causal_offset=1, attn_bias=r(1, 4, 5, 6), key_padding_mask=kpm)
o = nb.attention_forward(q, k, v, 0.5, **kw)
check("attention_forward", o, ref.attention_forward(q, k, v, 0.5, **kw))
do = r(2, 4, 5, 3)
check("attention_backward", nb.attention_backward(do, q, k, v, o[0], o[1], 0.5, **kw),
      ref.attention_backward(do, q, k, v, o[0], o[1], 0.5, **kw))
logits, t = r(5, 9), np.array([0, 8, -100, 3, 4])
o = nb.cross_entropy_forward(logits, t, -100, 0.1)
check("cross_entropy_forward", o, ref.cross_entropy_forward(logits, t, -100, 0.1))
dl = r(5)
check("cross_entropy_backward", nb.cross_entropy_backward(dl, logits, t, o[1], -100, 0.1),
      ref.cross_entropy_backward(dl, logits, t, o[1], -100, 0.1))
g = r(11)
check("gelu", nb.gelu_backward(g, g, "tanh"), ref.gelu_backward(g, g, "tanh"))
p1, p2 = r(10), None
p2 = p1.copy()
m1, v1, m2, v2 = (np.zeros(10, np.float32) for _ in range(4))
seg, lrs, wds = np.array([0, 3, 10]), np.array([1e-2, 1e-3]), np.array([0.1, 0.0])
nb.adamw_step(p1, g[:10], m1, v1, 1, lrs, wds, seg)
ref.adamw_step(p2, g[:10], m2, v2, 1, lrs, wds, seg)
check("adamw", p1, p2)
ids = np.array([2, 0, 2, 2, 3, 0])
check("embedding_backward", nb.embedding_backward(x, ids, 5), ref.embedding_backward(x, ids, 5))
big = r(40000)  # above the parallel threshold: one chunk per thread
check("sum_squares", (nb.sum_squares(x), nb.sum_squares(big[::3]), nb.sum_squares(big.astype(np.float64))),
      (ref.sum_squares(x), ref.sum_squares(big[::3]), ref.sum_squares(big.astype(np.float64))))
qkv, cos, sin = r(2, 3, 4 * 6), r(3, 6), r(3, 6)   # 4 heads of D = 6, 3 of them rotated
check("rotary_qkv_forward", nb.rotary_qkv_forward(qkv, cos, sin, 3), ref.rotary_qkv_forward(qkv, cos, sin, 3))
check("rotary_qkv_backward", nb.rotary_qkv_backward(qkv, cos, sin, 3), ref.rotary_qkv_backward(qkv, cos, sin, 3))
print(json.dumps(err))
'''


def test_numba_kernels_with_boundscheck(tmp_path):
    r = run_script(SCRIPT, env={"NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    err = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(err) == 17
    bad = {k: v for k, v in err.items() if not v < 1e-4}
    assert not bad, bad
