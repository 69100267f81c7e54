"""goldbull_np.runtime: the process-wide settings, each applied once, opt-out, never undoing the user's."""
import gc
import json
import os
import subprocess
import sys

import pytest

from goldbull_np import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OURS = ("GOLDBULL_RUNTIME_TUNING", "GOLDBULL_OMP_PASSIVE", "GOLDBULL_MALLOC_TUNE", "GOLDBULL_GC_FREEZE",
         "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def run(code, **env):
    """Run code in a fresh interpreter with our variables cleared, then `env`; its stdout as JSON."""
    full = {k: v for k, v in os.environ.items() if k not in _OURS}
    full["PYTHONPATH"] = ROOT + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


_OMP = ("import json, os, sys, goldbull_np.kernels, goldbull_np.runtime as rt; "
        "print(json.dumps([os.environ.get('OMP_WAIT_POLICY'), rt.report()['omp_wait_policy'], "
        "'numba' in sys.modules, 'goldbull_np._C' in sys.modules]))")


def test_omp_wait_policy_is_set_at_kernels_import_without_loading_libgomp():
    policy, st, numba_loaded, c_loaded = run(_OMP)
    assert policy == "PASSIVE" and st["applied"] is True
    assert not numba_loaded and not c_loaded  # set before either could load libgomp


@pytest.mark.parametrize("env,policy", [
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),         # the user's own setting wins
    ({"GOMP_SPINCOUNT": "1000"}, None),                 # so does an explicit spin count
    ({"GOLDBULL_OMP_PASSIVE": "0"}, None),              # per-setting opt-out
    ({"GOLDBULL_RUNTIME_TUNING": "off"}, None),         # master switch
])
def test_omp_wait_policy_respects_the_user_and_the_opt_outs(env, policy):
    got, st, _, _ = run(_OMP, **env)
    assert got == policy and st["applied"] is False and st["reason"]


@pytest.fixture
def fresh_status():
    """runtime's once-only decisions forgotten for the test, the real ones restored after."""
    saved = dict(runtime._status)
    runtime._reset_for_tests()
    yield
    runtime._status.clear()
    runtime._status.update(saved)


class FakeLib:
    def __init__(self, ok=1):
        self.calls, self.ok = [], ok

    def gb_malloc_keep_freed(self, mmap_threshold, trim_threshold):
        self.calls.append((mmap_threshold, trim_threshold))
        return self.ok


@pytest.mark.parametrize("env", [{"GOLDBULL_MALLOC_TUNE": "0"}, {"GOLDBULL_MALLOC_TUNE": "False"},
                                 {"GOLDBULL_RUNTIME_TUNING": "0"}, {"MALLOC_TRIM_THRESHOLD_": "131072"},
                                 {"MALLOC_MMAP_THRESHOLD_": "65536"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}])
def test_malloc_tuning_respects_the_user_and_the_opt_outs(env, monkeypatch, fresh_status):
    for k in _OURS:
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    lib = FakeLib()
    st = runtime.tune_malloc(lib)
    assert lib.calls == [] and st["applied"] is False and st["reason"]


def test_malloc_tuning_is_applied_once(monkeypatch, fresh_status):
    for k in _OURS:
        monkeypatch.delenv(k, raising=False)
    lib = FakeLib()
    assert runtime.tune_malloc(lib)["applied"] is True
    assert runtime.tune_malloc(lib)["applied"] is True
    assert lib.calls == [(runtime.MMAP_THRESHOLD, runtime.TRIM_THRESHOLD)]
    assert runtime.report()["malloc"]["applied"] is True
    runtime._reset_for_tests()
    assert runtime.tune_malloc(FakeLib(ok=0))["applied"] is False  # mallopt refused (not glibc)


def test_the_c_backend_tunes_malloc_through_runtime_when_it_loads():
    code = ("import json, goldbull_np.runtime as rt\n"
            "try:\n    from goldbull_np.kernels import c_backend as cb; cb.load()\nexcept ImportError:\n"
            "    print(json.dumps(None)); raise SystemExit\n"
            "print(json.dumps(rt.report()['malloc']))")
    st = run(code)
    if st is None:
        pytest.skip("C extension not built")
    assert st["applied"] is True
    assert run(code, GOLDBULL_MALLOC_TUNE="0")["applied"] is False


@pytest.fixture
def no_frozen_objects():
    if gc.get_freeze_count():
        pytest.skip("objects are already frozen in this process")
    yield
    gc.unfreeze()


def test_frozen_gc_freezes_and_unfreezes_what_it_froze(no_frozen_objects, monkeypatch):
    monkeypatch.delenv("GOLDBULL_GC_FREEZE", raising=False)
    monkeypatch.delenv("GOLDBULL_RUNTIME_TUNING", raising=False)
    with runtime.frozen_gc() as froze:
        assert froze is True and gc.get_freeze_count() > 0
        assert runtime.report()["gc_freeze"]["applied"] is True
        with runtime.frozen_gc():  # nested: the inner block leaves the outer one's freeze alone
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    assert runtime.report()["gc_freeze"]["applied"] is False


def test_frozen_gc_keeps_the_users_frozen_objects_frozen(no_frozen_objects, monkeypatch):
    monkeypatch.delenv("GOLDBULL_GC_FREEZE", raising=False)
    monkeypatch.delenv("GOLDBULL_RUNTIME_TUNING", raising=False)
    gc.freeze()  # the user's
    users = gc.get_freeze_count()
    assert users > 0
    with runtime.frozen_gc():
        pass
    assert gc.get_freeze_count() >= users  # not unfrozen behind the user's back


@pytest.mark.parametrize("var", ["GOLDBULL_GC_FREEZE", "GOLDBULL_RUNTIME_TUNING"])
def test_frozen_gc_opt_out(var, no_frozen_objects, monkeypatch):
    monkeypatch.setenv(var, "0")
    with runtime.frozen_gc() as froze:
        assert froze is False and gc.get_freeze_count() == 0
    st = runtime.report()["gc_freeze"]
    assert st["applied"] is False and var in st["reason"]


def test_report_covers_every_setting():
    rep = runtime.report()
    assert list(rep) == list(runtime.SETTINGS)
    for name, st in rep.items():
        assert isinstance(st["applied"], bool) and st["reason"] and runtime.OPT_OUT[name] in st["opt_out"]
    json.dumps(rep)


def test_import_goldbull_np_runtime_is_light():
    mods = run("import json, sys, goldbull_np.runtime; print(json.dumps(sorted(m for m in sys.modules "
               "if m.startswith(('numba', 'goldbull_np._C', 'goldbull_np.kernels')))))")
    assert mods == []


def test_goldbull_info_reports_each_setting():
    rep = run("import contextlib, io, json, types\n"
              "from goldbull_np.cli.info import cmd_info\n"
              "buf = io.StringIO()\n"
              "with contextlib.redirect_stdout(buf):\n"
              "    cmd_info(types.SimpleNamespace(json=True))\n"
              "js = json.loads(buf.getvalue())\n"
              "buf = io.StringIO()\n"
              "with contextlib.redirect_stdout(buf):\n"
              "    cmd_info(types.SimpleNamespace(json=False))\n"
              "print(json.dumps([js['runtime'], buf.getvalue()]))", GOLDBULL_GC_FREEZE="0")
    settings, text = rep
    assert list(settings) == list(runtime.SETTINGS)
    assert settings["omp_wait_policy"]["applied"] is True
    assert settings["gc_freeze"]["applied"] is False and "GOLDBULL_GC_FREEZE=0" in settings["gc_freeze"]["reason"]
    for name in runtime.SETTINGS:
        assert name in text
