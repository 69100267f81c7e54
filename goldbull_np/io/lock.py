"""An advisory lock per run directory: one writing process at a time.

The lock is ``<dir>/.goldbull-lock``, held with ``fcntl.flock`` (so the kernel releases it when the
holder exits, even on SIGKILL: a stale lock file is never a problem) and holding the writer's pid,
host and start time, so a second writer is told who holds it::

    lock = DirectoryLock(run_dir)
    lock.acquire()          # DirectoryLockedError naming the holder's pid when another process writes
    ...
    lock.release()

Within one process the lock is shared: every ``DirectoryLock`` of the same directory counts into one
holding (``flock`` would otherwise make two objects of one process exclude each other), and the file
is unlocked when the last one releases. Readers never take it; :meth:`DirectoryLock.held_elsewhere`
tells them whether a live writer (another process) owns the directory, so they leave its temporary
files alone. Where ``fcntl`` does not exist (Windows) the lock is a no-op.
"""
import json
import os
import socket
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".goldbull-lock"
_ATTEMPTS, _RETRY_SECONDS = 20, 0.02  # up to 0.4 s before a held lock is reported

_registry = {}  # realpath -> [fd, count]: this process's holdings
_registry_lock = threading.Lock()


class DirectoryLockedError(RuntimeError):
    """Another process holds a run directory's lock (it is writing there)."""

    def __init__(self, directory, holder):
        self.directory, self.holder = Path(directory), holder or {}
        pid = self.holder.get("pid", "unknown")
        host = self.holder.get("host")
        since = self.holder.get("started")
        when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
        super().__init__(f"{directory}: another goldbull process (pid {pid}{' on ' + host if host else ''}{when}) is "
                         "writing to this run directory; wait for it to finish, stop it, or use another output "
                         "directory")


def _key(directory) -> str:
    return os.path.realpath(os.fspath(directory))


def read_holder(directory) -> dict:
    """What the lock file says about its (last) holder: ``{"pid", "host", "started"}``, or {}."""
    try:
        with open(os.path.join(os.fspath(directory), LOCK_NAME), encoding="utf-8") as f:
            d = json.loads(f.read() or "{}")
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


class DirectoryLock:
    """The writer's lock of one directory (see the module docstring).

    Args:
        directory: the run directory (created if needed on :meth:`acquire`).
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.held = False

    def acquire(self) -> "DirectoryLock":
        """Take the lock (a no-op if this object holds it already).

        Raises:
            DirectoryLockedError: another process holds it; the message names its pid.
        """
        if self.held or fcntl is None:
            self.held = True
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        key = _key(self.directory)
        with _registry_lock:
            entry = _registry.get(key)
            if entry is not None:  # this process holds it already: share the holding
                entry[1] += 1
                self.held = True
                return self
            fd = os.open(os.path.join(key, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
            for attempt in range(_ATTEMPTS):  # a reader's probe holds it for microseconds: retry briefly
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if attempt == _ATTEMPTS - 1:
                        os.close(fd)
                        raise DirectoryLockedError(self.directory, read_holder(key)) from None
                    time.sleep(_RETRY_SECONDS)
            info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode("utf-8"), 0)
            _registry[key] = [fd, 1]
        self.held = True
        return self

    def release(self) -> None:
        """Give the lock back (the file is unlocked when this process's last holder releases)."""
        if not self.held:
            return
        self.held = False
        if fcntl is None:
            return
        key = _key(self.directory)
        with _registry_lock:
            entry = _registry.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del _registry[key]
                fcntl.flock(entry[0], fcntl.LOCK_UN)
                os.close(entry[0])

    def held_here(self) -> bool:
        """Whether this process holds the directory's lock (through any DirectoryLock)."""
        return _key(self.directory) in _registry

    def held_elsewhere(self) -> bool:
        """Whether another live process holds the lock (tested by trying it; nothing is kept)."""
        if fcntl is None or self.held_here():
            return False
        path = os.path.join(os.fspath(self.directory), LOCK_NAME)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False  # no lock file: nobody has ever written here with a lock
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing drops our probe lock
        return False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


__all__ = ["DirectoryLock", "DirectoryLockedError", "LOCK_NAME", "read_holder"]
