"""The kernel registry: one list of names (the reference's), each backend registering only kernels it
defines and a selection can pick, and load failures told apart from bugs in our backend code."""
import sys

import numpy as np
import pytest

import goldbull_np.kernels as K
from goldbull_np.kernels import reference as ref
from kernels_helpers import c_available


def _backend(name):
    mod = K._load(name)
    if mod is None:
        pytest.skip(f"{name} backend unavailable")
    return mod


def test_one_list_of_kernel_names():
    assert K.KERNEL_NAMES is ref.KERNEL_NAMES
    assert tuple(ref.__all__) == ref.KERNEL_NAMES and tuple(ref.KERNELS) == ref.KERNEL_NAMES
    assert tuple(K.AUTO_TABLE) == K.KERNEL_NAMES
    for name in ("numba", "c"):
        if name == "c" and not c_available():
            continue
        mod = _backend(name)
        assert set(mod.KERNELS) <= set(K.KERNEL_NAMES), name
        assert set(mod.DTYPES) == set(mod.KERNELS), name


def test_auto_lists_end_at_numpy_and_name_only_registering_backends():
    """numpy registers every kernel, so nothing after it in an order could ever be picked."""
    for name, order in K.AUTO_TABLE.items():
        assert order[-1] == "numpy" and order.count("numpy") == 1, (name, order)
        assert set(order) <= set(K.BACKENDS), (name, order)
        for b in order:
            if b == "c" and not c_available():
                continue
            assert name in _backend(b).KERNELS, f"AUTO_TABLE[{name!r}] lists {b}, which does not register it"


@pytest.mark.parametrize("backend", ["numba", "c"])
def test_every_registered_kernel_is_one_auto_can_pick(backend):
    """A fast backend registers exactly the kernels whose `auto` order lists it before numpy (where it
    is picked, or picked when the backends before it cannot load): an implementation no selection
    order reaches is not shipped as a default path. numba's matmul, linear and cross-entropy lose to
    NumPy, so they are not registered (they stay as bench_kernels.py's contenders)."""
    if backend == "c" and not c_available():
        pytest.skip("C extension not built")
    listed = {name for name, order in K.AUTO_TABLE.items() if backend in order}
    assert set(_backend(backend).KERNELS) == listed


@pytest.mark.skipif(not c_available(), reason="C extension not built")
def test_the_naive_c_kernels_are_test_oracles_only():
    """sgemm_naive / layernorm_forward_naive (csrc) exist for tests/kernels/test_kernels_c_naive.py:
    no Python wrapper, no registry entry."""
    from goldbull_np.kernels import c_backend as cb
    assert hasattr(cb.load(), "sgemm_naive") and hasattr(cb.lib, "layernorm_forward_naive")
    for mod in (cb, _backend("numba"), ref):
        assert not [n for n in mod.KERNELS if "naive" in n]
        assert not [n for n in dir(mod) if "naive" in n]


def test_ignore_index_is_defined_once_and_is_every_default():
    import inspect
    from goldbull_np.kernels import _checks
    F = pytest.importorskip("goldbull_np.nn.functional")
    from goldbull_np import constants
    assert K.IGNORE_INDEX == -100 and F.IGNORE_INDEX is _checks.IGNORE_INDEX is constants.IGNORE_INDEX
    fns = [F.cross_entropy, F.nll_loss, ref.cross_entropy_forward, ref.cross_entropy_backward]
    for name in ("numba", "c"):
        if name == "c" and not c_available():
            continue
        mod = sys.modules.get(f"goldbull_np.kernels.{K._MODULES[name]}") or _backend(name)
        fns += [mod.cross_entropy_forward, mod.cross_entropy_backward]
    for fn in fns:
        assert inspect.signature(fn).parameters["ignore_index"].default == K.IGNORE_INDEX, fn


# ---- backend load failures --------------------------------------------------------------------

@pytest.fixture
def fake_backend(tmp_path, monkeypatch):
    """write(source) -> the numba slot now loads a module with that source; state restored after."""
    monkeypatch.setattr(K, "__path__", list(K.__path__) + [str(tmp_path)])
    monkeypatch.setitem(K._MODULES, "numba", "_fake_backend_under_test")
    prev = K.get_backend()

    def write(source):
        sys.modules.pop("goldbull_np.kernels._fake_backend_under_test", None)
        (tmp_path / "_fake_backend_under_test.py").write_text(source)
        K._reset_for_tests()
        K.set_backend("numba")

    yield write
    sys.modules.pop("goldbull_np.kernels._fake_backend_under_test", None)
    monkeypatch.undo()
    K._reset_for_tests()
    K.set_backend(prev)


@pytest.mark.parametrize("source,error", [
    ("KERNELS = {}\nDTYPES = {}\ndef load():\n    return undefined_name\n", NameError),
    ("KERNELS = {\n", SyntaxError),
    ("from ._no_such_module_of_ours import x\n", ImportError),
    ("from ._checks import no_such_function\n", ImportError),
    ("KERNELS = {}\nDTYPES = {}\ndef load():\n    raise RuntimeError('boom')\n", RuntimeError),
], ids=["NameError", "SyntaxError", "ImportError-own-module", "ImportError-own-name", "RuntimeError"])
def test_a_bug_in_backend_code_raises(fake_backend, source, error):
    fake_backend(source)
    with pytest.raises(error):
        K.get("gelu_forward", np.float32)


@pytest.mark.parametrize("source", [
    "import numba_is_not_installed_here  # noqa\n",
    "KERNELS = {}\nDTYPES = {}\ndef load():\n    raise ModuleNotFoundError('no goldbull_np._C', name='goldbull_np._C')\n",
    "KERNELS = {}\nDTYPES = {}\ndef load():\n    raise OSError('cannot load shared object file')\n",
], ids=["missing-third-party", "missing-extension-module", "OSError"])
def test_an_unavailable_backend_warns_once_and_falls_back(fake_backend, source):
    fake_backend(source)
    with pytest.warns(RuntimeWarning, match="numba backend unavailable") as w:
        fn = K.get("gelu_forward", np.float64)
        K.get("gelu_backward", np.float64)
    assert len(w) == 1
    assert fn is ref.gelu_forward and K.resolve_backend("gelu_forward", np.float64) == "numpy"
