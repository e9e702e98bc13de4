"""One writer per run folder: `with RunLock(run_dir): ...` holds an exclusive `flock` on
`<run_dir>/.lock` (which records the owner's pid, host and command) for as long as the block runs.

A second process on the same folder (a second `bench --run-id X`, a `--resume` of a run that is still
measuring, a `validate` writing into it) is refused at once with a one-line `RunInUse` (a
ConfigError: exit 2) naming the owner's pid. A folder the lock created and that holds nothing but
`.lock` when the lock is released (or when writing the owner line failed) is removed again. The kernel drops an flock when its process dies, even by
`kill -9`, so a lock left by a dead process is simply taken over: no stale-lock cleanup. The lock file
itself stays (removing it would race with a process that just opened it); it is only a name.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from simulators.errors import ConfigError, raise_with_path
from simulators.safe_load import read_regular_text

LOCK_FILE = ".lock"
_HELD: dict[Path, int] = {}  # lock files this process holds -> nesting count (flock is per open file,
# so a second open + flock in the same process would refuse the process itself)


class RunInUse(ConfigError):
    """The run folder is owned by another live process."""


def owner(run_dir: str | os.PathLike) -> dict | None:
    """What the lock file says about its last owner ({} when unreadable, None when absent)."""
    try:
        text = read_regular_text(Path(run_dir) / LOCK_FILE)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ConfigError):
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


class RunLock:
    """Exclusive, non-blocking lock on a run folder (created if missing). Re-entrant within a
    process: `daedalus run` holds it for the whole pipeline, and its steps take it again."""

    def __init__(self, run_dir: str | os.PathLike, what: str = "bench"):
        self.dir = Path(run_dir)
        self.what = what
        self._fd: int | None = None
        self._nested = False
        self._created: list[Path] = []  # folders this lock made (removed again when left holding only .lock)

    @property
    def path(self) -> Path:
        return self.dir / LOCK_FILE

    def acquire(self) -> RunLock:
        if self._fd is not None or self._nested:
            return self
        self._created = make_dirs(self.dir)
        key = self.path.resolve()
        if key in _HELD:
            _HELD[key] += 1
            self._nested = True
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:  # no room even for the lock file: the folders made for it go again
            remove_empty_dirs(self._created)
            self._created = []
            raise_with_path(exc, self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            self._created = []  # someone else holds it: their folder now
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                info = owner(self.dir) or {}
                pid = info.get("pid", "unknown")
                doing = f" ({info['what']})" if info.get("what") else ""
                raise RunInUse(f"run {self.dir.name} is in use by pid {pid}{doing}; wait for it to finish or "
                               f"stop it (lock: {self.path})") from None
            raise
        info = {"pid": os.getpid(), "host": socket.gethostname(), "what": self.what,
                "argv": sys.argv[:8], "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError as exc:  # disk full: the owner's line cannot be written (the lock is held)
            self._remove_if_empty()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise_with_path(exc, self.path)
        self._fd = fd
        _HELD[key] = 1
        return self

    def release(self) -> None:
        key = self.path.resolve()
        if self._nested:
            self._nested = False
            _HELD[key] -= 1
            return
        if self._fd is None:
            return
        _HELD.pop(key, None)
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no owner any more (the file stays: see the module docstring)
        except OSError:
            pass
        self._remove_if_empty()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _remove_if_empty(self) -> None:
        """A folder this lock created that holds nothing but `.lock` (a start that failed on a full
        disk, a bad input found under the lock) is removed again, lock first, while still locked."""
        if not self._created:
            return
        try:
            if [p.name for p in self.dir.iterdir()] != [LOCK_FILE]:
                return
            os.unlink(self.path)
            remove_empty_dirs(self._created)
        except OSError:
            pass
        finally:
            self._created = []

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def make_dirs(path: str | os.PathLike) -> list[Path]:
    """mkdir -p; returns the folders it created, deepest first."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    return missing


def remove_empty_dirs(dirs: list[Path]) -> None:
    """rmdir each of `dirs` (deepest first, as `make_dirs` returns them) up to the first not empty."""
    for d in dirs:
        try:
            os.rmdir(d)
        except OSError:
            break


def check_free(run_dir: str | os.PathLike, what: str = "read") -> None:
    """Refuse (RunInUse) when another process holds the run folder's lock; take nothing.
    For readers (`report`, `validate` before they write) of a run that may still be measuring."""
    if not (Path(run_dir) / LOCK_FILE).exists():
        return
    with RunLock(run_dir, what):
        pass
