"""Checking layer blobs against their digests ahead of the store applying them, as
containers/image verifies blobs before it commits layers.

One thread reads the blobs an import will apply, in that order, hashing them in large
chunks (reading and hashlib release the GIL, so this overlaps the store's work on
earlier layers). A blob that is missing, or of the wrong size or digest, fails the
import before the store begins the next layer -- no layer is written for nothing and
none has to be taken away again -- and the store's own pass over a checked blob needs
no second hash. The store records the digest of what it read; the writer compares that
with the manifest, so a blob that changes after its check is refused just the same.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from typing import IO, cast

from .digests import Digester

_CHUNK = 4 << 20


class _Stopped(Exception):
    pass


class _Check:
    __slots__ = ("digest", "done", "error", "open", "size", "wanted")

    def __init__(self, digest: str, size: int, opener: Callable[[], IO[bytes]]) -> None:
        self.digest = digest
        self.size = size
        self.open = opener
        self.done = threading.Event()
        self.error: BaseException | None = None
        #: False once the import no longer needs the blob (the layer turned up in the store)
        self.wanted = True


class AheadChecks:
    """Checks of the blobs ``jobs`` (key, digest, size, opener), run in order in a
    thread from ``start`` until ``close``."""

    def __init__(self, jobs: Sequence[tuple[int, str, int, Callable[[], IO[bytes]]]]) -> None:
        self._checks = {key: _Check(digest, size, opener) for key, digest, size, opener in jobs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blob-verify", daemon=True)

    def start(self) -> None:
        if self._checks:
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __contains__(self, key: int) -> bool:
        return key in self._checks

    def wait(self, key: int) -> None:
        """Wait for the check of ``key``'s blob; raise its error, if it failed."""
        check = self._checks[key]
        check.done.wait()
        if check.error is not None:
            raise check.error

    def discard(self, key: int) -> None:
        """The blob of ``key`` is not needed after all: its failure fails nothing."""
        self._checks[key].wanted = False

    def raise_failed(self) -> None:
        """Raise the error of the first finished check that failed, if any did."""
        for check in self._checks.values():
            if check.wanted and check.done.is_set() and check.error is not None:
                raise check.error

    def _run(self) -> None:
        view = memoryview(bytearray(_CHUNK))
        for check in self._checks.values():
            try:
                if self._stop.is_set():
                    raise _Stopped
                if check.wanted:
                    self._verify(check, view)
            except BaseException as exc:  # handed to the import, raised there
                check.error = exc
            finally:
                check.done.set()

    def _verify(self, check: _Check, view: memoryview) -> None:
        digester = Digester(check.digest, check.size, "layer")
        with check.open() as blob:
            # every source's blob reader (file, archive window, decompressor) has readinto
            readinto = cast(io.BufferedIOBase, blob).readinto
            while n := readinto(view):
                digester.update(view[:n])
                if self._stop.is_set():
                    raise _Stopped
        digester.verify()
