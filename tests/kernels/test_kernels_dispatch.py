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
    assert sel == want and ln == want and mm == want


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
    for name, row in info["kernels"].items():
        assert row["float32"] == "numba", name
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
