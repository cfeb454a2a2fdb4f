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

from ..errors import StorageError, StoreIsReadOnly
from ..hookspecs import hookimpl
from .api import TOKEN_SIZE, InProcessRWLock, TokenMemory, new_token

_RETRY_SECONDS = 0.01


class PosixLock(TokenMemory):
    """One lock file; obtain it through :func:`get_lock` (one object per path)."""

    def __init__(self, path: str, read_only: bool) -> None:
        self._path = path
        self._read_only = read_only
        self._rw = InProcessRWLock()
        self._mu = threading.Lock()
        self._fd: int | None = None
        self._holds = 0

    def __repr__(self) -> str:
        return f"PosixLock({self._path!r}, read_only={self._read_only})"

    @property
    def path(self) -> str:
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    # -- file handling -------------------------------------------------------------------
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

    def _acquire(self, exclusive: bool, blocking: bool) -> bool:
        if exclusive and self._read_only:
            raise StoreIsReadOnly(f"lock {self._path} is read-only")
        if not self._rw.acquire(exclusive, blocking):
            return False
        try:
            with self._mu:
                if self._holds == 0:
                    fd = self._open()
                    try:
                        if not self._fcntl_lock(fd, exclusive, blocking):
                            os.close(fd)
                            self._rw.release()
                            return False
                    except BaseException:
                        os.close(fd)
                        raise
                    self._fd = fd
                self._holds += 1
        except BaseException:
            if self._holds == 0:
                self._rw.release()
            raise
        return True

    # -- Lock protocol -------------------------------------------------------------------
    def lock(self) -> None:
        self._acquire(True, True)

    def rlock(self) -> None:
        self._acquire(False, True)

    def try_lock(self) -> bool:
        return self._acquire(True, False)

    def unlock(self) -> None:
        with self._mu:
            if self._holds <= 0:
                raise RuntimeError(f"unlock of lock {self._path} that is not held")
            self._holds -= 1
            if self._holds == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)  # drops the POSIX lock
        self._rw.release()

    @property
    def locked(self) -> bool:
        return self._holds > 0

    @property
    def locked_for_writing(self) -> bool:
        return self._rw.held_exclusive_by_me

    def _held_fd(self) -> int:
        fd = self._fd
        if fd is None:
            raise RuntimeError(f"lock {self._path} is not held")
        return fd

    def last_write(self) -> bytes:
        return os.pread(self._held_fd(), TOKEN_SIZE, 0)

    def record_write(self) -> bytes:
        if not self.locked_for_writing:
            raise RuntimeError(f"recording a write on {self._path} without holding it exclusively")
        token = new_token()
        written = os.pwrite(self._held_fd(), token, 0)
        if written != len(token):
            raise StorageError(f"writing the last-writer token to {self._path}: no space left on device")
        return token

    def modified_since(self, token: bytes) -> bool:
        return self.last_write() != token

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


_registry: dict[str, PosixLock] = {}
_registry_lock = threading.Lock()


def get_lock(path: str, read_only: bool = False) -> PosixLock:
    """The process-wide lock object for ``path``; a read-write request upgrades an
    object first opened read-only (it reopens on its next acquisition)."""
    key = os.path.abspath(path)
    with _registry_lock:
        lk = _registry.get(key)
        if lk is None:
            lk = _registry[key] = PosixLock(key, read_only)
        elif not read_only and lk.read_only and not lk.locked:
            lk._read_only = False
        return lk


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for lk in _registry.values():
        lk._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


@hookimpl(trylast=True)
def cstorage_lock(path: str, read_only: bool, kind: str) -> PosixLock | None:
    if kind != "posix":
        return None
    return get_lock(path, read_only)
