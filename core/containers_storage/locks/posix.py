"""Default lock provider: POSIX ``fcntl`` record locks, the lock kind upstream uses.

Interoperates with upstream's Go processes (on-disk.md §7.2): whole-file ``F_RDLCK`` /
``F_WRLCK`` taken with ``F_SETLKW`` on the same lock files, and the 64-byte last-writer
token in the file. POSIX locks belong to the *process* and vanish when any descriptor of
the file is closed, so there is exactly one descriptor per lock file per process, opened
by the first holder and closed by the last; threads are kept apart by an in-process
reader/writer lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time

from ..errors import StorageError
from ..hookspecs import hookimpl
from .api import TOKEN_SIZE, FileLockBase, InProcessRWLock, LockRegistry

_RETRY_SECONDS = 0.01


class PosixLock(FileLockBase):
    """One lock file; obtain it through :func:`get_lock` (one object per path)."""

    def __init__(self, path: str, read_only: bool) -> None:
        super().__init__(path, read_only)
        self._fd: int | None = None

    def _open(self) -> int:
        flags = (os.O_RDONLY if self._read_only else os.O_RDWR) | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self._path, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self._path), 0o700, exist_ok=True)
            return os.open(self._path, flags, 0o644)

    def _fcntl_lock(self, fd: int, exclusive: bool, blocking: bool) -> bool:
        kind = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if not blocking:
            kind |= fcntl.LOCK_NB
        while True:
            try:
                # lockf is fcntl(F_SETLK[W]) on the whole file, not flock(2)
                fcntl.lockf(fd, kind, 0, 0, os.SEEK_SET)
                return True
            except OSError as exc:
                if not blocking and exc.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                if exc.errno in (errno.EINTR, errno.EDEADLK, errno.ENOLCK):
                    time.sleep(_RETRY_SECONDS)
                    continue
                raise StorageError(f"locking {self._path}: {exc.strerror}") from exc

    def _take_file(self, exclusive: bool, blocking: bool) -> bool:
        fd = self._open()
        try:
            if not self._fcntl_lock(fd, exclusive, blocking):
                os.close(fd)
                return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def _drop_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # drops the POSIX lock

    def _held_fd(self) -> int:
        fd = self._fd
        if fd is None:
            raise RuntimeError(f"lock {self._path} is not held")
        return fd

    def _read_token(self) -> bytes:
        return os.pread(self._held_fd(), TOKEN_SIZE, 0)

    def _write_token(self, token: bytes) -> int:
        return os.pwrite(self._held_fd(), token, 0)

    def _reset_after_fork(self) -> None:
        """A forked child holds none of the parent's POSIX locks: start from scratch."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None
        self._holds = 0
        self._rw = InProcessRWLock()
        self._mu = threading.Lock()


_registry = LockRegistry(PosixLock)
#: the process-wide lock object for a path (see :meth:`LockRegistry.get`)
get_lock = _registry.get

os.register_at_fork(after_in_child=lambda: _registry.after_fork_in_child(PosixLock._reset_after_fork))


@hookimpl(trylast=True)
def cstorage_lock(path: str, read_only: bool, kind: str) -> PosixLock | None:
    if kind != "posix":
        return None
    return get_lock(path, read_only)
