"""The lock protocol every lock provider implements (hookspecs ``cstorage_lock``).

A lock guards one lock file. It is reentrant per thread and counted per process: the
same object is returned for one path within a process, and nested ``lock``/``rlock``
calls by the thread already holding it just count. Besides mutual exclusion it carries
upstream's *last-writer token* (on-disk.md §7.3): 64 bytes stored in the lock file that
change on every recorded write, so a holder can tell whether anyone else modified the
data since it last looked.
"""

from __future__ import annotations

import os
import struct
import threading
from typing import Protocol, runtime_checkable

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


class _TokenSource(Protocol):
    _seen: bytes | None

    def record_write(self) -> bytes: ...

    def last_write(self) -> bytes: ...


class TokenMemory:
    """``touch``/``modified`` for lock classes that have ``record_write`` and
    ``last_write``: the object remembers the last token it saw."""

    _seen: bytes | None = None

    def touch(self: _TokenSource) -> None:
        self._seen = self.record_write()

    def modified(self: _TokenSource) -> bool:
        current = self.last_write()
        changed = current != self._seen
        self._seen = current
        return changed


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
        self._writer: int | None = None
        self._write_depth = 0
        self._readers: dict[int, int] = {}

    def acquire(self, exclusive: bool, blocking: bool = True) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
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
        me = threading.get_ident()
        with self._cond:
            if self._readers.get(me):
                # nested reads inside a write, or plain reads
                self._readers[me] -= 1
                if not self._readers[me]:
                    del self._readers[me]
            elif self._writer == me:
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
            return self._writer == threading.get_ident()
