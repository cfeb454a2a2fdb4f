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

from ..errors import StorageError
from ..hookspecs import hookimpl
from .api import TOKEN_SIZE, FileLockBase, LockRegistry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class PortableLock(FileLockBase):
    def __init__(self, path: str, read_only: bool) -> None:
        super().__init__(path, read_only)
        self._flock: Any = None

    def _file_lock(self) -> Any:
        if self._flock is None:
            import filelock  # imported on first use: it is slow to import

            os.makedirs(os.path.dirname(self._path), 0o700, exist_ok=True)
            if not os.path.exists(self._path):
                os.close(os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
            self._flock = filelock.FileLock(self._path + ".flock", thread_local=False)
        return self._flock

    def _take_file(self, exclusive: bool, blocking: bool) -> bool:
        import filelock

        try:
            self._file_lock().acquire(timeout=-1 if blocking else 0)
        except filelock.Timeout:
            return False
        except OSError as exc:
            raise StorageError(f"locking {self._path}: {exc}") from exc
        return True

    def _drop_file(self) -> None:
        self._file_lock().release()

    def _read_token(self) -> bytes:
        try:
            with open(self._path, "rb") as f:
                return f.read(TOKEN_SIZE)
        except FileNotFoundError:
            return b""

    def _write_token(self, token: bytes) -> int:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            return os.pwrite(fd, token, 0)
        finally:
            os.close(fd)


_registry = LockRegistry(PortableLock)
#: the process-wide lock object for a path (see :meth:`LockRegistry.get`)
get_lock = _registry.get


@hookimpl(trylast=True)
def cstorage_lock(path: str, read_only: bool, kind: str) -> PortableLock | None:
    if kind != "portable":
        return None
    return get_lock(path, read_only)
