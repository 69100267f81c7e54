"""goldbull_np.io.atomic: a file or directory is complete at its final name or absent; temporaries never
survive a failure (KeyboardInterrupt included); replacing never leaves a half-deleted target."""
import json
import os

import pytest

from goldbull_np.io import atomic
from goldbull_np.io.atomic import (atomic_directory, atomic_write, atomic_write_json, atomic_write_text, fsync_tree,
                                   remove_tree)


def leftovers(d):
    return sorted(p.name for p in d.iterdir() if p.name.startswith((".tmp-", ".trash-")))


def write_bytes(data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    return write


def test_atomic_write_creates_and_replaces(tmp_path):
    p = tmp_path / "f.bin"
    seen = []

    def write(tmp):
        seen.append(tmp)
        write_bytes(b"one")(tmp)

    atomic_write(p, write)
    assert p.read_bytes() == b"one"
    assert os.path.dirname(seen[0]) == str(tmp_path) and os.path.basename(seen[0]).startswith(".tmp-f.bin-")
    atomic_write(str(p), write_bytes(b"two"))
    assert p.read_bytes() == b"two"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [ValueError("disk full"), KeyboardInterrupt()])
def test_failed_write_leaves_target_and_no_temporary(tmp_path, exc):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise exc

    with pytest.raises(type(exc)):
        atomic_write(p, write)
    assert p.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_overwrite_false_refuses_existing_and_names_it(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    called = []
    with pytest.raises(FileExistsError, match="f.bin"):
        atomic_write(p, lambda tmp: called.append(tmp), overwrite=False)
    assert not called and p.read_bytes() == b"old"
    q = tmp_path / "new.bin"
    atomic_write(q, write_bytes(b"x"), overwrite=False)
    assert q.read_bytes() == b"x" and leftovers(tmp_path) == []


def test_overwrite_false_loses_the_race_cleanly(tmp_path):
    p = tmp_path / "f.bin"

    def write(tmp):  # someone else creates the target while we write
        write_bytes(b"mine")(tmp)
        p.write_bytes(b"theirs")

    with pytest.raises(FileExistsError, match="f.bin"):
        atomic_write(p, write, overwrite=False)
    assert p.read_bytes() == b"theirs" and leftovers(tmp_path) == []


def test_write_fn_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="did not create"):
        atomic_write(tmp_path / "f", lambda tmp: None)
    assert not (tmp_path / "f").exists()


def test_file_and_directory_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic_write(tmp_path / "f", write_bytes(b"x"))
    if os.path.exists("/proc/self/fd"):
        assert any(os.path.basename(s).startswith(".tmp-f-") for s in synced)  # the file, before the rename
        assert str(tmp_path) in synced  # the directory, after it
    else:  # pragma: no cover
        assert len(synced) >= 2


def test_atomic_write_text_and_json(tmp_path):
    atomic_write_text(tmp_path / "t.txt", "a\nb\u00e9")
    assert (tmp_path / "t.txt").read_bytes() == "a\nb\u00e9".encode()
    obj = {"b": [1, 2.5, None], "a": "x", "nan": float("nan")}
    atomic_write_json(tmp_path / "c.json", obj)
    text = (tmp_path / "c.json").read_text()
    assert text.endswith("}\n") and text.index('"b"') < text.index('"a"')
    back = json.loads(text)
    assert back["b"] == [1, 2.5, None] and back["nan"] != back["nan"]
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists() and leftovers(tmp_path) == []
    with pytest.raises(FileExistsError):
        atomic_write_json(tmp_path / "c.json", {}, overwrite=False)


# ---- directories ------------------------------------------------------------------------------------
def test_atomic_directory_renames_into_place(tmp_path):
    target = tmp_path / "run" / "ckpt"
    with atomic_directory(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".tmp-ckpt-")
        assert not target.exists()
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("b")
    assert (target / "a.txt").read_text() == "a" and (target / "sub" / "b.txt").read_text() == "b"
    assert leftovers(target.parent) == []


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failed_directory_is_removed(tmp_path, exc):
    target = tmp_path / "ckpt"
    with pytest.raises(type(exc)):
        with atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text("a")
            raise exc
    assert not target.exists() and leftovers(tmp_path) == []


def test_existing_directory_needs_replace(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="ckpt"):
        with atomic_directory(target):
            pytest.fail("the block must not run")
    with atomic_directory(target, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert leftovers(tmp_path) == []


def test_failed_replace_keeps_the_old_directory(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target, replace=True) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"] and leftovers(tmp_path) == []


def test_rename_failure_during_replace_puts_the_old_directory_back(tmp_path, monkeypatch):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real = os.rename

    def rename(src, dst):
        if os.path.basename(os.fspath(src)).startswith(".tmp-"):
            raise OSError("rename failed")
        return real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_directory(target, replace=True) as tmp:
            (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"] and leftovers(tmp_path) == []


def test_target_created_meanwhile_is_not_clobbered(tmp_path):
    target = tmp_path / "ckpt"
    with pytest.raises(FileExistsError, match="ckpt"):
        with atomic_directory(target) as tmp:
            (tmp / "new.txt").write_text("new")
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
    assert sorted(p.name for p in target.iterdir()) == ["theirs.txt"] and leftovers(tmp_path) == []


def test_remove_tree_and_fsync_tree(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_text("x")
    os.symlink(tmp_path / "missing", d / "dangling")  # skipped, not followed
    fsync_tree(d)
    remove_tree(d)
    assert not d.exists() and leftovers(tmp_path) == []
    remove_tree(d)  # already gone: fine
    f = tmp_path / "file"
    f.write_text("x")
    remove_tree(f)
    assert not f.exists()


def test_module_exports():
    assert set(atomic.__all__) >= {"atomic_write", "atomic_write_text", "atomic_write_json", "atomic_directory",
                                   "fsync_dir", "fsync_tree", "remove_tree"}
