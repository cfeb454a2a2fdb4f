"""Portable lock provider (kind ``"portable"``), built on ``filelock``.

For filesystems where POSIX record locks do not work (some network and FUSE
filesystems). **Not interoperable with upstream**: ``filelock`` uses ``flock(2)`` on a
side file (``<lock file>.flock``), which Go processes using ``fcntl`` locks on the lock
file do not see. Never share a store between this kind and podman/buildah/CRI-O or our
default ``posix`` kind. Shared requests are served exclusively (``flock`` through
``filelock`` offers no shared mode), which is correct but serialises readers. The
last-writer token is kept in the lock file itself, as upstream does, so change detection
works the same way.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..errors import StorageError, StoreIsReadOnly
from ..hookspecs import hookimpl
from .api import TOKEN_SIZE, InProcessRWLock, TokenMemory, new_token


class PortableLock(TokenMemory):
    def __init__(self, path: str, read_only: bool) -> None:
        self._path = path
        self._read_only = read_only
        self._rw = InProcessRWLock()
        self._mu = threading.Lock()
        self._holds = 0
        self._flock: Any = None

    @property
    def path(self) -> str:
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    def _file_lock(self) -> Any:
        if self._flock is None:
            import filelock  # imported on first use: it is slow to import

            os.makedirs(os.path.dirname(self._path), 0o700, exist_ok=True)
            if not os.path.exists(self._path):
                os.close(os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
            self._flock = filelock.FileLock(self._path + ".flock", thread_local=False)
        return self._flock

    def _acquire(self, exclusive: bool, blocking: bool) -> bool:
        if exclusive and self._read_only:
            raise StoreIsReadOnly(f"lock {self._path} is read-only")
        if not self._rw.acquire(exclusive, blocking):
            return False
        try:
            with self._mu:
                if self._holds == 0:
                    import filelock

                    try:
                        self._file_lock().acquire(timeout=-1 if blocking else 0)
                    except filelock.Timeout:
                        self._rw.release()
                        return False
                self._holds += 1
        except OSError as exc:
            self._rw.release()
            raise StorageError(f"locking {self._path}: {exc}") from exc
        return True

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
            if self._holds == 0:
                self._file_lock().release()
        self._rw.release()

    @property
    def locked(self) -> bool:
        return self._holds > 0

    @property
    def locked_for_writing(self) -> bool:
        return self._rw.held_exclusive_by_me

    def last_write(self) -> bytes:
        if not self._holds:
            raise RuntimeError(f"lock {self._path} is not held")
        try:
            with open(self._path, "rb") as f:
                return f.read(TOKEN_SIZE)
        except FileNotFoundError:
            return b""

    def record_write(self) -> bytes:
        if not self.locked_for_writing:
            raise RuntimeError(f"recording a write on {self._path} without holding it exclusively")
        token = new_token()
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.pwrite(fd, token, 0) != len(token):
                raise StorageError(f"writing the last-writer token to {self._path}: no space left on device")
        finally:
            os.close(fd)
        return token

    def modified_since(self, token: bytes) -> bool:
        return self.last_write() != token


_registry: dict[str, PortableLock] = {}
_registry_lock = threading.Lock()


def get_lock(path: str, read_only: bool = False) -> PortableLock:
    key = os.path.abspath(path)
    with _registry_lock:
        lk = _registry.get(key)
        if lk is None:
            lk = _registry[key] = PortableLock(key, read_only)
        elif not read_only and lk.read_only and not lk.locked:
            lk._read_only = False
        return lk


@hookimpl(trylast=True)
def cstorage_lock(path: str, read_only: bool, kind: str) -> PortableLock | None:
    if kind != "portable":
        return None
    return get_lock(path, read_only)
