"""The lock protocol every lock provider implements (hookspecs ``cstorage_lock``).

A lock guards one lock file. It is reentrant per thread and counted per process: the
same object is returned for one path within a process, and nested ``lock``/``rlock``
calls by the thread already holding it just count. A hold belongs to the thread that
took it; another thread may release it on that thread's behalf inside
:func:`acting_for` (a diff stream closed by whichever thread finishes reading it).
Besides mutual exclusion it carries upstream's *last-writer token* (on-disk.md §7.3):
64 bytes stored in the lock file that change on every recorded write, so a holder can
tell whether anyone else modified the data since it last looked.
"""

from __future__ import annotations

import abc
import os
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..typeshim import Generic, Protocol, TypeVar, runtime_checkable

#: length of upstream's last-writer token
TOKEN_SIZE = 64


@runtime_checkable
class Lock(Protocol):
    """One lock file. Methods raise :class:`~containers_storage.errors.StorageError`
    subclasses on failure (``StoreIsReadOnly`` when a read-only lock is taken for writing)."""

    @property
    def path(self) -> str: ...

    @property
    def read_only(self) -> bool:
        """Opened read-only: only :meth:`rlock` is allowed."""
        ...

    def lock(self) -> None:
        """Take the lock exclusively (blocks)."""

    def rlock(self) -> None:
        """Take the lock shared (blocks)."""

    def try_lock(self) -> bool:
        """Take the lock exclusively if that is possible without waiting."""
        ...

    def unlock(self) -> None:
        """Release one :meth:`lock`/:meth:`rlock`; the last release frees the file."""

    @property
    def locked(self) -> bool:
        """Held by this process (shared or exclusive)."""
        ...

    @property
    def locked_for_writing(self) -> bool:
        """Held exclusively by the calling thread."""
        ...

    def last_write(self) -> bytes:
        """The current last-writer token (the lock must be held)."""
        ...

    def record_write(self) -> bytes:
        """Write and return a new token (the lock must be held exclusively)."""
        ...

    def modified_since(self, token: bytes) -> bool:
        """Whether the token on disk differs from ``token`` (the lock must be held)."""
        ...

    def touch(self) -> None:
        """Record a write and remember it as seen (upstream's ``Touch``; exclusive lock)."""

    def modified(self) -> bool:
        """Whether anyone wrote since this object last looked, remembering the current
        token as seen (upstream's ``Modified``; the lock must be held)."""
        ...


class _Owner(threading.local):
    """Who holds what: a key unique to each thread (thread idents are reused after a
    thread ends, keys are not), or the key of the thread being acted for."""

    def __init__(self) -> None:
        self.key = object()
        self.acting: object | None = None


_owner = _Owner()


def lock_owner() -> object:
    """The key that holds of the calling thread are recorded under."""
    o = _owner
    return o.acting or o.key


@contextmanager
def acting_for(owner: object) -> Iterator[None]:
    """Within the block, the calling thread takes and releases holds as ``owner`` (a
    key from :func:`lock_owner` in another thread): the holds a stream took in the
    thread that opened it can be released by the thread that closes it."""
    o = _owner
    before, o.acting = o.acting, owner
    try:
        yield
    finally:
        o.acting = before


class FileLockBase(abc.ABC):
    """What every file-backed lock shares: counted holds per process over one file lock,
    threads kept apart by an :class:`InProcessRWLock`, the last-writer token, and
    ``touch``/``modified`` memory. Providers implement how the file itself is locked
    (:meth:`_take_file`, :meth:`_drop_file`) and how the token is read and written."""

    _seen: bytes | None = None

    def __init__(self, path: str, read_only: bool) -> None:
        self._path = path
        self._read_only = read_only
        self._rw = InProcessRWLock()
        self._mu = threading.Lock()
        self._holds = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r}, read_only={self._read_only})"

    @property
    def path(self) -> str:
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    # -- provider part -------------------------------------------------------------------
    @abc.abstractmethod
    def _take_file(self, exclusive: bool, blocking: bool) -> bool:
        """Lock the file for the first holder of this process; False if ``blocking`` is
        off and someone else holds it."""

    @abc.abstractmethod
    def _drop_file(self) -> None:
        """Release the file lock when the last holder of this process is done."""

    @abc.abstractmethod
    def _read_token(self) -> bytes:
        """The token bytes in the lock file (the file lock is held)."""

    @abc.abstractmethod
    def _write_token(self, token: bytes) -> int:
        """Write ``token`` at the start of the lock file; the number of bytes written."""

    # -- Lock protocol ---------------------------------------------------------------------
    def _acquire(self, exclusive: bool, blocking: bool) -> bool:
        from ..errors import StoreIsReadOnly

        if exclusive and self._read_only:
            raise StoreIsReadOnly(f"lock {self._path} is read-only")
        if not self._rw.acquire(exclusive, blocking):
            return False
        try:
            with self._mu:
                if self._holds == 0 and not self._take_file(exclusive, blocking):
                    self._rw.release()
                    return False
                self._holds += 1
        except BaseException:
            if self._holds == 0:
                self._rw.release()
            raise
        return True

    def lock(self) -> None:
        self._acquire(True, True)

    def rlock(self) -> None:
        self._acquire(False, True)

    def try_lock(self) -> bool:
        return self._acquire(True, False)

    def unlock(self) -> None:
        """Release one hold of the caller (see :func:`acting_for`); a caller holding
        nothing is refused before anything changes, so no hold is ever left behind."""
        if not self._rw.held_by_me:
            raise RuntimeError(f"unlock of lock {self._path} that this thread does not hold")
        with self._mu:
            if self._holds <= 0:
                raise RuntimeError(f"unlock of lock {self._path} that is not held")
            self._holds -= 1
            if self._holds == 0:
                self._drop_file()
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
        return self._read_token()

    def record_write(self) -> bytes:
        from ..errors import StorageError

        if not self.locked_for_writing:
            raise RuntimeError(f"recording a write on {self._path} without holding it exclusively")
        token = new_token()
        if self._write_token(token) != len(token):
            raise StorageError(f"writing the last-writer token to {self._path}: no space left on device")
        return token

    def modified_since(self, token: bytes) -> bool:
        return self.last_write() != token

    def touch(self) -> None:
        self._seen = self.record_write()

    def modified(self) -> bool:
        current = self.last_write()
        changed = current != self._seen
        self._seen = current
        return changed


L = TypeVar("L", bound=FileLockBase)


class LockRegistry(Generic[L]):
    """One lock object per path per process (POSIX locks must not be opened twice)."""

    def __init__(self, cls: type[L]) -> None:
        self._cls = cls
        self._locks: dict[str, L] = {}
        self._mu = threading.Lock()

    def get(self, path: str, read_only: bool = False) -> L:
        """The lock object for ``path``; a read-write request upgrades an object first
        opened read-only (it reopens on its next acquisition)."""
        key = os.path.abspath(path)
        with self._mu:
            lk = self._locks.get(key)
            if lk is None:
                lk = self._locks[key] = self._cls(key, read_only)
            elif not read_only and lk.read_only and not lk.locked:
                lk._read_only = False
            return lk

    def after_fork_in_child(self, reset: Callable[[L], None]) -> None:
        self._mu = threading.Lock()
        for lk in self._locks.values():
            reset(lk)


_counter = 0
_counter_lock = threading.Lock()


def new_token() -> bytes:
    """A fresh token laid out as upstream writes it: wall-clock ns, per-process counter,
    PID, random filler (only byte equality matters)."""
    import time

    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    head = struct.pack("<QQI", time.time_ns() & 0xFFFFFFFFFFFFFFFF, n, os.getpid() & 0xFFFFFFFF)
    return head + os.urandom(TOKEN_SIZE - len(head))


class InProcessRWLock:
    """A reader/writer lock between the threads of one process, reentrant per thread.

    A thread holding the write side may also take the read side (counted as a nested
    hold). Upgrading a read hold to a write hold would deadlock and is refused.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._writer: object | None = None
        self._write_depth = 0
        self._readers: dict[object, int] = {}

    def acquire(self, exclusive: bool, blocking: bool = True) -> bool:
        me = lock_owner()
        with self._cond:
            if self._writer is me:
                if exclusive:
                    self._write_depth += 1
                else:
                    self._readers[me] = self._readers.get(me, 0) + 1
                return True
            if exclusive:
                if me in self._readers:
                    raise RuntimeError("cannot upgrade a shared lock to an exclusive one in one thread")
                while self._writer is not None or self._readers:
                    if not blocking:
                        return False
                    self._cond.wait()
                self._writer = me
                self._write_depth = 1
            else:
                while self._writer is not None:
                    if not blocking:
                        return False
                    self._cond.wait()
                self._readers[me] = self._readers.get(me, 0) + 1
            return True

    def release(self) -> bool:
        """Release the innermost hold of the calling thread; True when the lock became free."""
        me = lock_owner()
        with self._cond:
            if self._readers.get(me):
                # nested reads inside a write, or plain reads
                self._readers[me] -= 1
                if not self._readers[me]:
                    del self._readers[me]
            elif self._writer is me:
                self._write_depth -= 1
                if not self._write_depth:
                    self._writer = None
            else:
                raise RuntimeError("unlock of a lock this thread does not hold")
            free = self._writer is None and not self._readers
            if free or self._writer is None:
                self._cond.notify_all()
            return free

    @property
    def held(self) -> bool:
        with self._cond:
            return self._writer is not None or bool(self._readers)

    @property
    def held_exclusive_by_me(self) -> bool:
        with self._cond:
            return self._writer is lock_owner()

    @property
    def held_by_me(self) -> bool:
        me = lock_owner()
        with self._cond:
            return self._writer is me or me in self._readers
