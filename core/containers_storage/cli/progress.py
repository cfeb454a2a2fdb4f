"""A progress line on standard error while large streams move, only on a terminal.

Used by ``import-layer``, ``applydiff`` and ``diff``; when standard error is not a
terminal nothing is added, so scripted output stays byte-identical to upstream's.
"""

from __future__ import annotations

import time
from types import TracebackType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class Progress:
    """Counts bytes and redraws one status line at most ten times a second."""

    def __init__(self, err: IO[bytes], label: str, total: int | None = None) -> None:
        self.err = err
        self.label = label
        self.total = total
        self.done = 0
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        text = f"{self.label}: {_human(self.done)}"
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            text += f" / {_human(self.total)} [{bar:<30}] {frac * 100:3.0f}%"
        self.err.write(("\r" + text + "\x1b[K").encode())
        self.err.flush()

    def finish(self) -> None:
        self.err.write(b"\r\x1b[K")
        self.err.flush()


class ProgressReader:
    """A binary reader that reports what passes through it."""

    def __init__(self, raw: IO[bytes], progress: Progress) -> None:
        self.raw = raw
        self.progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.progress.advance(len(data))
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()


class ProgressWriter:
    """A binary writer that reports what passes through it."""

    def __init__(self, raw: IO[bytes], progress: Progress) -> None:
        self.raw = raw
        self.progress = progress

    def write(self, data: bytes) -> int:
        n = self.raw.write(data)
        self.progress.advance(len(data))
        return n

    def flush(self) -> None:
        self.raw.flush()

    def __enter__(self) -> ProgressWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.finish()


def on_terminal(err: IO[bytes]) -> bool:
    try:
        return err.isatty()
    except (AttributeError, ValueError):
        return False
