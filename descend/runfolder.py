"""Run folders that two processes never share by accident: unique default names, an fcntl lock for the run's life.

A default name is ``<prefix>-<YYYYmmdd-HHMMSS>-<6 hex digits>`` made with an exclusive ``mkdir`` (a clash,
however unlikely, draws a new suffix). The process that trains in a folder holds an advisory lock on
``<folder>/.lock`` (``fcntl.flock``, released by the kernel when the process dies, so a killed run never
leaves a folder locked) with its PID written inside; a second process is refused, naming that PID.
Temporary files of interrupted checkpoint saves are removed only by the lock's holder. A folder that
this module created is removed again when the job fails before training starts (``RunFolder.discard``).
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import time
from pathlib import Path

__all__ = ["RunFolder", "FolderError", "FolderBusy", "LOCK_NAME", "unique_name"]

LOCK_NAME = ".lock"


class FolderError(ValueError):
    """The folder cannot be used as asked (it holds another run, or it cannot be written)."""


class FolderBusy(RuntimeError):
    """Another live process holds the folder's lock; ``pid`` is that process's id (None if unreadable)."""

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


def unique_name(prefix: str) -> str:
    """``<prefix>-<YYYYmmdd-HHMMSS>-<6 hex>``: the time for people, the suffix so that runs started in the same
    second differ. The suffix comes from the OS's entropy, not a seeded generator: it must differ between
    processes started with the same seed, and it affects no result."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class RunFolder:
    """A run folder held by this process: ``RunFolder.new(parent, prefix)`` or ``RunFolder.claim(path, ...)``.

    Use as a context manager (or call ``release``); ``discard`` removes what this object created.
    """

    def __init__(self, path: Path, created: Path | None):
        self.path = Path(path)
        self.created = created  # the topmost folder this process made (None: it existed before)
        self._fd: int | None = None
        self._made_lock = False  # whether this object created the .lock file (discard removes only its own)

    # ----------------------------------------------------------------------------------- opening

    @classmethod
    def new(cls, parent, prefix: str, *, attempts: int = 20) -> "RunFolder":
        """A fresh, uniquely named folder under ``parent``, locked."""
        parent = Path(parent)
        top = _missing_top(parent)
        _mkdirs(parent)
        for _ in range(attempts):
            path = parent / unique_name(prefix)
            try:
                path.mkdir()  # exclusive: fails if another process made this name first
            except FileExistsError:
                continue
            except OSError as e:
                raise _unwritable(parent, e) from None
            folder = cls(path, top or path)
            folder._lock()
            return folder
        raise FolderError(f"could not make a new run folder under {parent} ({attempts} names were taken); "
                          "choose a folder with --out")

    @classmethod
    def claim(cls, path, *, existing: str = "refuse", is_run=lambda p: False) -> "RunFolder":
        """Lock the folder ``path`` (made if missing). ``existing``: what to do when it already holds a run
        (``is_run(path)``): "refuse" (a FolderError), "resume" (it must hold one) or "overwrite"."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FolderError(f"run folder {path} is a file (not a folder); choose another --out")
        if existing == "resume" and not path.is_dir():
            raise FolderError(f"cannot resume {path} (no such folder); give the folder of an earlier run")
        top = _missing_top(path)
        _mkdirs(path)
        folder = cls(path, top)
        try:
            folder._lock()
            has_run = is_run(path)
            if existing == "refuse" and has_run:
                raise FolderError(f"run folder {path} already holds a run (its files would be overwritten); "
                                  "continue it with --resume, replace it with --overwrite, or choose another --out")
            if existing == "resume" and not has_run:
                raise FolderError(f"cannot resume {path} (it holds no run: no checkpoint); "
                                  "give the folder of an earlier run")
        except BaseException:
            folder.discard()
            raise
        return folder

    def _lock(self) -> None:
        import fcntl
        lock = self.path / LOCK_NAME
        existed = lock.exists()
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _unwritable(self.path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            pid = int(raw) if raw.isdigit() else None
            holder = f"process {pid}" if pid is not None else "another process"
            raise FolderBusy(f"run folder {self.path} is in use by {holder} (it holds {lock}); wait for that "
                             "run to finish, or choose another --out", pid) from None
        self._made_lock = not existed
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        self.clean_stale()

    # ------------------------------------------------------------------------------ while it is held

    def clean_stale(self) -> list[Path]:
        """Remove temporary files left by checkpoint saves that were killed; only the lock's holder may."""
        assert self._fd is not None, "clean_stale needs the lock"
        removed = []
        for stale in self.path.glob("*.tmp"):
            stale.unlink(missing_ok=True)
            removed.append(stale)
        return removed

    def release(self) -> None:
        """Give the lock up (the .lock file stays; it is the lock's place, not its state)."""
        if self._fd is not None:
            import fcntl
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Release, and remove what this object made: the folder (and parents) it created, else the lock file if it
        made it (an earlier run's lock file stays; the PID inside is then this process's, which is harmless)."""
        self.release()
        if self.created is not None:
            shutil.rmtree(self.created, ignore_errors=True)
        elif self._made_lock:
            (self.path / LOCK_NAME).unlink(missing_ok=True)

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _missing_top(path: Path) -> Path | None:
    """The topmost ancestor of ``path`` (or itself) that does not exist yet: what ``_mkdirs`` will create."""
    top = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        top = p
    return top


def _mkdirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(path, e) from None


def _unwritable(path: Path, e: OSError) -> FolderError:
    why = {errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
           errno.ENOSPC: "no space left on the device"}.get(e.errno, e.strerror or str(e))
    return FolderError(f"cannot write the run folder {path} ({why}); choose a writable folder with --out")
