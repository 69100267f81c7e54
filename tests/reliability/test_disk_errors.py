"""Weak spot: ENOSPC (disk full, quota) while saving names the file or checkpoint being written and says
the previous version is intact; the previous checkpoint survives."""
import errno

import pytest

from goldbull_np.io import atomic_write, load_safetensors
from goldbull_np.train import CheckpointManager
from rel_helpers import datasets, tiny_model


def _full(tmp):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_atomic_write_names_the_target(tmp_path):
    p = tmp_path / "w.bin"
    p.write_bytes(b"old")
    with pytest.raises(OSError, match=r"w.bin: No space left on device while writing it; nothing was replaced") as e:
        atomic_write(p, _full)
    assert e.value.errno == errno.ENOSPC and p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["w.bin"]


def test_checkpoint_save_on_a_full_disk_names_the_checkpoint_and_keeps_the_last(tmp_path, monkeypatch):
    tok, _, _ = datasets()
    m = tiny_model(tok.vocab_size)
    mgr = CheckpointManager(tmp_path)
    mgr.save(1, model=m, trainer_state={})
    import goldbull_np.io.safetensors as st
    real = st.atomic_write
    monkeypatch.setattr(st, "atomic_write", lambda path, fn, **kw: real(path, _full, **kw))
    with pytest.raises(OSError, match=r"checkpoint-00000002: No space left on device while writing it "
                                      r"\(.*model.safetensors\)"):
        mgr.save(2, model=m, trainer_state={})
    assert [c.step for c in mgr.checkpoints()] == [1]
    assert load_safetensors(mgr.latest() / "model.safetensors")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_other_errors_pass_unchanged(tmp_path):
    def boom(tmp):
        raise PermissionError(errno.EACCES, "Permission denied", tmp)
    with pytest.raises(PermissionError, match="Permission denied"):
        atomic_write(tmp_path / "x", boom)
