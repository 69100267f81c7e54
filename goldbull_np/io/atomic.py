"""Atomic writes: a file, or a whole directory, is either complete at its final name or absent.

A file is written to ``.tmp-<name>-<random>`` in the same directory (same filesystem, so the rename is
atomic), fsynced, renamed over the target with ``os.replace``, and the directory is fsynced so the
rename survives a power cut. On any failure (KeyboardInterrupt included) the temporary is removed and
the target is untouched. A directory is built the same way (:func:`atomic_directory`); replacing an
existing one renames the old one to ``.trash-<name>-<random>`` first and deletes it only after the new
one is in place, so there is never a half-deleted target. Leftover ``.tmp-`` / ``.trash-`` entries
(from a killed process) are safe to delete.
"""
import contextlib
import errno
import json
import os
import shutil
import uuid
from pathlib import Path

TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


def _random_name(prefix, name):
    return f"{prefix}{name}-{uuid.uuid4().hex[:12]}"


# ---- fsync ------------------------------------------------------------------------------------------
def fsync_file(path) -> None:
    """fsync one file's contents to disk."""
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    """fsync a directory so a rename inside it is durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def fsync_tree(path) -> None:
    """fsync every regular file under ``path``, then every directory, deepest first (symlinks are skipped)."""
    path = Path(path)
    dirs = [path]
    for root, dirnames, filenames in os.walk(path):
        for fn in filenames:
            p = os.path.join(root, fn)
            if not os.path.islink(p):
                fsync_file(p)
        dirs.extend(Path(root) / d for d in dirnames if not os.path.islink(os.path.join(root, d)))
    for d in reversed(dirs):
        fsync_dir(d)


def _remove_path(path) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def remove_tree(path) -> None:
    """Remove a file or directory by renaming it to ``.trash-<name>-<random>`` first (then deleting that),
    so ``path`` never looks half-deleted. A missing ``path`` is not an error."""
    path = Path(path)
    trash = path.with_name(_random_name(TRASH_PREFIX, path.name))
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    fsync_dir(path.parent)
    _remove_path(trash)


# ---- errors -----------------------------------------------------------------------------------------
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def _named(exc, path):
    """A disk-full (quota, read-only, I/O) error that does not say which file: the same errno, naming ``path``
    and saying that the previous version is intact. Other errors, and ones naming a file, pass unchanged."""
    if exc.errno not in _DISK_ERRNOS or os.fspath(path) in str(exc):
        return exc
    inner = f" ({exc.filename})" if exc.filename else ""
    return OSError(exc.errno, f"{os.fspath(path)}: {os.strerror(exc.errno)} while writing it{inner}; nothing was "
                              "replaced (the previous version, if any, is intact)", os.fspath(path))


# ---- files ------------------------------------------------------------------------------------------
def _exists_error(path):
    return FileExistsError(errno.EEXIST, f"{os.fspath(path)}: already exists (overwrite=False)", os.fspath(path))


def _link_no_clobber(tmp, path):
    """Put ``tmp`` at ``path`` only if nothing is there (a hard link fails atomically if it exists)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # no hard links on this filesystem: check, then rename
        if os.path.lexists(path):
            raise _exists_error(path) from None
        os.replace(tmp, path)


def atomic_write(path, write_fn, *, overwrite=True) -> None:
    """Write ``path`` through a temporary file beside it: ``write_fn(tmp_path)`` writes the whole file,
    which is then fsynced and renamed into place; the directory is fsynced.

    Args:
        path: the target file.
        write_fn: called once with the temporary path (a str in the target's directory); it must create
            that file (e.g. ``np.save``, ``open(tmp, "wb")``, a library's ``save_file``).
        overwrite: replace an existing ``path`` (else FileExistsError naming it, and nothing is written).
    Raises:
        FileExistsError: ``overwrite=False`` and ``path`` exists.
        FileNotFoundError: ``write_fn`` returned without creating the temporary file.
        Whatever ``write_fn`` raises; the temporary file is removed and ``path`` is untouched.
    """
    path = os.fspath(path)
    if not overwrite and os.path.lexists(path):
        raise _exists_error(path)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, _random_name(TMP_PREFIX, name))
    try:
        try:
            write_fn(tmp)
            if not os.path.isfile(tmp):
                raise FileNotFoundError(f"{path}: write_fn did not create the temporary file {tmp}")
            fsync_file(tmp)
            if overwrite:
                os.replace(tmp, path)
            else:
                _link_no_clobber(tmp, path)
        except OSError as exc:
            named = _named(exc, path)
            if named is exc:
                raise
            raise named from exc
    finally:
        if os.path.lexists(tmp):  # failed (or hard-linked into place): the temporary goes
            _remove_path(tmp)
    fsync_dir(directory)


def atomic_write_text(path, text, *, encoding="utf-8", overwrite=True) -> None:
    """Write ``text`` to ``path`` atomically (exactly these characters: no newline translation)."""
    data = text.encode(encoding)

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write, overwrite=overwrite)


def atomic_write_json(path, obj, *, indent=2, sort_keys=False, allow_nan=True, overwrite=True) -> None:
    """Write ``obj`` as JSON (plus a final newline) to ``path`` atomically.

    ``obj`` is serialised before anything touches the disk, so a value JSON cannot hold raises
    TypeError (or ValueError for NaN with ``allow_nan=False``) with no file written.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n"
    atomic_write_text(path, text, overwrite=overwrite)


# ---- directories ------------------------------------------------------------------------------------
def _install_directory(tmp, target, replace):
    if os.path.lexists(target):
        if not replace:
            raise FileExistsError(errno.EEXIST, f"{target}: already exists (replace=False)", os.fspath(target))
        trash = target.with_name(_random_name(TRASH_PREFIX, target.name))
        os.rename(target, trash)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(trash, target)  # put the old one back: the target is never lost
            raise
        fsync_dir(target.parent)
        _remove_path(trash)
        return
    try:
        os.rename(tmp, target)
    except OSError as exc:  # created meanwhile (a non-empty directory cannot be renamed over)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, f"{target}: already exists (replace=False)",
                                  os.fspath(target)) from None
        raise


@contextlib.contextmanager
def atomic_directory(target, *, replace=False):
    """Context manager: build a directory under a temporary name beside ``target`` and rename it into
    place when the block succeeds::

        with atomic_directory("runs/checkpoint-00000500") as tmp:
            save_safetensors(arrays, tmp / "model.safetensors")
            atomic_write_json(tmp / "trainer_state.json", state)

    Args:
        target: the directory to create (its parent is created if needed).
        replace: replace an existing ``target`` (it is renamed to ``.trash-...`` and deleted only after
            the new directory is in place; if that rename fails the old one is put back).
    Yields:
        The temporary directory, a ``pathlib.Path`` named ``.tmp-<name>-<random>`` in target's parent.
    Raises:
        FileExistsError naming ``target`` when it exists and ``replace`` is False (checked on entry
        and again at the rename). On any error in the block (KeyboardInterrupt included) the
        temporary directory is removed, the error propagates and ``target`` is as it was.
    """
    target = Path(target)
    if not replace and os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, f"{target}: already exists (replace=False)", os.fspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / _random_name(TMP_PREFIX, target.name)
    tmp.mkdir()
    try:
        try:
            yield tmp
            fsync_tree(tmp)
            _install_directory(tmp, target, replace)
        except OSError as exc:
            named = _named(exc, target)
            if named is not exc:
                raise named from exc
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(target.parent)


__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_directory", "fsync_file", "fsync_dir",
           "fsync_tree", "remove_tree", "TMP_PREFIX", "TRASH_PREFIX"]
