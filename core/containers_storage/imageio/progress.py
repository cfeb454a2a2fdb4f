"""Progress of an import or export: what the caller may watch, and a one-line bar for
terminals (the tool draws it only when standard error is a terminal)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Protocol


class Progress(Protocol):
    """Told about each layer as its turn comes, then about the bytes of its blob;
    ``finish`` at the end."""

    def layer(self, index: int, count: int, digest: str, size: int, reused: bool) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def layer(self, index: int, count: int, digest: str, size: int, reused: bool) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class TerminalBar:
    """``Copying blob 2/5 sha256:0c3d283e1327  12.0 MiB / 40.1 MiB [#####     ]``, redrawn
    in place at most ten times a second; layers already in the store say so."""

    def __init__(self, stream: IO[bytes], verb: str = "Copying") -> None:
        self.stream = stream
        self.verb = verb
        self._label = ""
        self._size = 0
        self._done = 0
        self._last = 0.0

    def layer(self, index: int, count: int, digest: str, size: int, reused: bool) -> None:
        self.finish()
        short = digest.split(":", 1)[-1][:12]
        self._label = f"{self.verb} blob {index + 1}/{count} {digest.split(':', 1)[0]}:{short}"
        self._size = max(size, 0)
        self._done = 0
        if reused:
            self._write(f"{self._label}  already in the store")
            self.stream.write(b"\n")
            self.stream.flush()
            self._label = ""
        else:
            self._draw(force=True)

    def advance(self, nbytes: int) -> None:
        self._done += nbytes
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self._label or (not force and now - self._last < 0.1 and self._done < self._size):
            return
        self._last = now
        text = f"{self._label}  {_human(self._done)}"
        if self._size:
            frac = min(1.0, self._done / self._size)
            text += f" / {_human(self._size)} [{'#' * int(frac * 30):<30}]"
        self._write(text)

    def _write(self, text: str) -> None:
        self.stream.write(("\r" + text + "\x1b[K").encode())
        self.stream.flush()

    def finish(self) -> None:
        if self._label:
            self._draw(force=True)
            self.stream.write(b"\n")
            self.stream.flush()
        self._label = ""


class ReportingReader:
    """A binary reader over ``raw`` telling ``on_bytes`` how much passed: for blobs that
    were verified before the store reads them, so nothing needs hashing here."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self.raw = raw
        self._on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self._on_bytes(len(data))
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()
