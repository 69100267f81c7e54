"""Dispatch: selection by env var / set_backend / use(), per-dtype routing, fallback warnings, info()."""
import json
import textwrap

import numpy as np
import pytest

import goldbull_np.kernels as K
from kernels_helpers import c_available, run_script

needs_c = pytest.mark.skipif(not c_available(), reason="C extension not built")


@pytest.fixture(autouse=True)
def _restore_selection():
    prev = K.get_backend()
    yield
    K.set_backend(prev)


def test_import_is_lazy():
    r = run_script("import sys, goldbull_np.kernels as K; print('numba' in sys.modules, 'goldbull_np._C' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("env,want", [("numpy", "numpy"), ("numba", "numba"), ("NUMBA", "numba")])
def test_env_var_selects_backend(env, want):
    code = ("import goldbull_np.kernels as K; "
            "print(K.get_backend(), K.resolve_backend('layer_norm_forward'), K.resolve_backend('matmul'))")
    r = run_script(code, env={"GOLDBULL_BACKEND": env})
    assert r.returncode == 0, r.stderr
    sel, ln, mm = r.stdout.split()
    assert sel == want and ln == want
    assert mm == "numpy"  # numba does not register matmul: `auto` never picks it (NumPy is faster)


@needs_c
def test_env_var_c_and_auto_table():
    code = ("import goldbull_np.kernels as K, sys; "
            "print(K.resolve_backend('layer_norm_forward'), K.resolve_backend('matmul'), 'numba' in sys.modules)")
    r = run_script(code, env={"GOLDBULL_BACKEND": "c"})
    assert r.stdout.split() == ["c", "c", "False"], r.stderr
    r = run_script(code, env={"GOLDBULL_BACKEND": "auto"})
    want = [K.AUTO_TABLE["layer_norm_forward"][0], K.AUTO_TABLE["matmul"][0]]
    assert r.stdout.split()[:2] == want, r.stderr


def test_bad_env_value_warns_and_uses_auto():
    r = run_script("import warnings, goldbull_np.kernels as K; warnings.simplefilter('always'); print(K.get_backend())",
                   env={"GOLDBULL_BACKEND": "cuda"})
    assert r.stdout.strip() == "auto" and "GOLDBULL_BACKEND" in r.stderr


def test_use_restores_even_on_error():
    K.set_backend("auto")
    with K.use("numpy"):
        assert K.get_backend() == "numpy"
        assert K.resolve_backend("attention_forward") == "numpy"
        assert K.get("attention_forward") is K.reference.attention_forward
    assert K.get_backend() == "auto"
    with pytest.raises(RuntimeError):
        with K.use("numba"):
            assert K.resolve_backend("gelu_forward") == "numba"
            raise RuntimeError("boom")
    assert K.get_backend() == "auto"


def test_get_is_cached_and_invalidated():
    K.set_backend("numba")
    f = K.get("gelu_forward", np.float32)
    assert K.get("gelu_forward", np.float32) is f
    assert K._cache[("gelu_forward", np.float32)] is f
    K.set_backend("numpy")
    assert K.get("gelu_forward", np.float32) is K.reference.gelu_forward


def test_bad_names():
    with pytest.raises(ValueError):
        K.set_backend("gpu")
    with pytest.raises(KeyError):
        K.get("conv2d")
    with pytest.raises(TypeError):
        K.get("adamw_step", np.float64)  # no backend has a float64 AdamW


@pytest.mark.parametrize("sel", ["auto", "c", "numba"])
def test_float64_routes_to_a_capable_backend(sel):
    K.set_backend(sel)
    assert K.resolve_backend("layer_norm_forward", np.float64) in ("numba", "numpy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 9))
    out, mean, rstd = K.get("layer_norm_forward", np.float64)(x, None, None, 1e-5)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, K.reference.layer_norm_forward(x, None, None, 1e-5)[0], rtol=1e-12)


_FALLBACK = textwrap.dedent("""
    import sys, json, warnings
    import numpy as np
    sys.modules['goldbull_np._C'] = None          # as if the C extension had not been built
    {extra}
    import goldbull_np.kernels as K
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        fns = [K.get(n) for n in K.KERNEL_NAMES] + [K.get(n) for n in K.KERNEL_NAMES]
        info = K.info()
    x = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    got = K.get('layer_norm_forward')(x, None, None, 1e-5)[0]
    want = K.reference.layer_norm_forward(x, None, None, 1e-5)[0]
    print(json.dumps(dict(warnings=[str(m.message) for m in w], ln=K.resolve_backend('layer_norm_forward'),
                          err=float(np.abs(got - want).max()), c=info['c_extension'])))
""")


@pytest.mark.parametrize("sel", ["c", "auto"])
def test_c_missing_falls_back_with_one_warning(sel):
    r = run_script(_FALLBACK.format(extra=""), env={"GOLDBULL_BACKEND": sel})
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert len(res["warnings"]) == 1 and "c backend unavailable" in res["warnings"][0]
    assert res["ln"] == "numba" and res["err"] < 1e-5
    assert res["c"]["loaded"] is False and "goldbull_np._C" in res["c"]["reason"]


def test_c_and_numba_missing_fall_back_to_numpy():
    r = run_script(_FALLBACK.format(extra="sys.modules['numba'] = None"), env={"GOLDBULL_BACKEND": "c"})
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert len(res["warnings"]) == 2, res["warnings"]   # one line per backend that failed to load
    assert res["ln"] == "numpy" and res["err"] == 0.0


def test_info_lists_every_kernel():
    K.set_backend("numba")
    info = K.info()
    assert info["selection"] == "numba"
    assert set(info["kernels"]) == set(K.KERNEL_NAMES)
    nb = K._load("numba")
    for name, row in info["kernels"].items():
        assert row["float32"] == ("numba" if name in nb.KERNELS else "numpy"), name
    assert info["numba"]["available"] and info["numba"]["version"]
    assert info["cffi_version"]
    assert set(info["threads"]) >= {"openblas", "openmp", "numba"}
    assert info["c_extension"]["loaded"] == c_available()


@needs_c
def test_set_num_threads_reaches_openmp_and_openblas():
    before = K.info()["threads"]
    try:
        K.set_num_threads(1)
        t = K.info()["threads"]
        assert t["openmp"] == 1
        assert t["openblas"] in (1, None)
    finally:
        K.set_num_threads(before["openmp"] or 2)
    assert K.info()["threads"]["openmp"] == (before["openmp"] or 2)


# ---- the one call path: zero-size inputs and float16 are decided by get()'s callables ----------

def _empty_calls():
    """(kernel, args, kwargs) with a zero-size input for each kind of argument list."""
    f32 = np.float32
    x0, w = np.zeros((0, 4), f32), np.ones((3, 4), f32)
    q0, kv = np.zeros((1, 2, 0, 4), f32), np.ones((1, 2, 5, 4), f32)
    return [
        ("linear_forward", (x0, w, None), {}),
        ("linear_forward", (np.ones((2, 4), f32), np.zeros((0, 4), f32), None), {}),  # OC = 0
        ("matmul", (np.ones((2, 0), f32), np.ones((0, 3), f32)), {}),                 # K = 0
        ("layer_norm_forward", (x0, None, None, 1e-5), {}),
        ("gelu_forward", (np.zeros(0, f32),), {"approximate": "tanh"}),
        ("attention_forward", (q0, kv, kv), {"scale": 0.5, "causal_offset": 0}),
        ("attention_forward", (np.ones((1, 2, 3, 4), f32), kv[:, :, :0], kv[:, :, :0]), {"scale": 0.5}),  # S = 0
        ("cross_entropy_forward", (x0, np.zeros(0, np.int64)), {"ignore_index": K.IGNORE_INDEX}),
        ("embedding_backward", (x0, np.zeros(0, np.int64), 7), {}),
    ]


@pytest.mark.parametrize("sel", ["auto", "c", "numba", "numpy"])
def test_zero_size_inputs_run_the_reference(sel):
    """A caller just calls the kernel: a zero-size input (which the C wrappers reject) runs the
    reference, under every selection, with the reference's results."""
    K.set_backend(sel)
    for name, args, kwargs in _empty_calls():
        got = K.get(name, np.float32)(*args, **kwargs)
        want = getattr(K.reference, name)(*args, **kwargs)
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert g.shape == w.shape and g.dtype == w.dtype, name
            np.testing.assert_array_equal(g, w, err_msg=name)


@needs_c
def test_c_rejects_zero_size_with_the_error_dispatch_catches():
    from goldbull_np.kernels import c_backend as cb
    from goldbull_np.kernels._checks import EmptyInputError
    with pytest.raises(EmptyInputError):
        cb.layer_norm_forward(np.zeros((0, 4), np.float32), None, None, 1e-5)
    assert issubclass(EmptyInputError, ValueError) and cb.RAISES_ON_EMPTY
    K.set_backend("c")
    assert K.get("layer_norm_forward").__wrapped__ is cb.layer_norm_forward


@pytest.mark.parametrize("sel", ["auto", "c", "numba", "numpy"])
def test_float16_runs_the_float32_kernel_and_casts_the_primary_output_back(sel):
    K.set_backend(sel)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8)).astype(np.float16)
    w, b = rng.standard_normal(8).astype(np.float16), rng.standard_normal(8).astype(np.float16)
    assert K.resolve_backend("layer_norm_forward", np.float16) == K.resolve_backend("layer_norm_forward", np.float32)
    out, mean, rstd = K.get("layer_norm_forward", np.float16)(x, w, b, 1e-5)
    want = K.get("layer_norm_forward", np.float32)(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), 1e-5)
    assert out.dtype == np.float16 and mean.dtype == np.float32 and rstd.dtype == np.float32
    np.testing.assert_array_equal(out, want[0].astype(np.float16))
    np.testing.assert_array_equal(rstd, want[2])
    g = K.get("gelu_forward", np.float16)(x.reshape(-1), approximate="tanh")  # keyword arguments too
    assert g.dtype == np.float16
    dout, wt = x[:, :3].copy(), x[:3].copy()  # dout (N, OC) = (5, 3), weight (OC, C) = (3, 8)
    dx, dw, db = K.get("linear_backward", np.float16)(dout, x, wt)
    assert dx.dtype == np.float16 and dw.dtype == np.float32  # only the primary output is cast back
    empty = K.get("layer_norm_forward", np.float16)(x[:0], w, b, 1e-5)  # float16 and empty: the reference
    assert empty[0].shape == (0, 8) and empty[0].dtype == np.float16
    assert K.get("sum_squares", np.float16) is K.reference.sum_squares  # the reference registers float16
    with pytest.raises(TypeError):
        K.get("adamw_step", np.float64)


def test_get_has_no_empty_flag_and_reference_stays_unwrapped():
    import inspect
    assert list(inspect.signature(K.get).parameters) == ["name", "dtype"]
    K.set_backend("numpy")
    assert K.get("layer_norm_forward", np.float64) is K.reference.layer_norm_forward
