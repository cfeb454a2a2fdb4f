"""Where upstream's zstd:chunked writer cuts a file into chunks.

Upstream rolls a bup-style checksum over each file's bytes (64-byte window, every byte
offset by 31, state restarted per file) and ends a chunk after any data byte where the
low 16 bits of the second sum are all ones; runs of 1024 or more zero bytes are *holes*,
chunks of their own whose bytes are rolled but never tested. Cutting at the same places
lets layers written by either implementation share chunks.

Unrolled, the second sum after byte ``n`` is ``sum((i + 1) * b[n - i] for i in
range(64)) + 64 * 63 * 31`` (modulo 2**32), the bytes before the file counting as zero:
a constant plus a convolution of the bytes with the weights 1..64, which one big-integer
multiplication computes for a whole block (a 32-bit slot per byte; no carries, since a
slot stays below 2**20).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

WINDOW = 64
#: a chunk ends where the convolution's low 16 bits take this value
_TARGET = (0xFFFF - WINDOW * (WINDOW - 1) * 31) & 0xFFFF
_TARGET_BYTES = bytes([_TARGET & 0xFF, _TARGET >> 8])
_KERNEL = sum((i + 1) << (32 * i) for i in range(WINDOW))
#: zero runs at least this long are holes (upstream's holesThreshold)
HOLE_THRESHOLD = 1 << 10
_BLOCK = 1 << 20
_ZEROS = re.compile(b"\x00{%d,}" % HOLE_THRESHOLD)


@dataclass(frozen=True, slots=True)
class Chunk:
    offset: int
    size: int
    zeros: bool = False


class Chunker:
    """Feed one file's bytes in pieces; :meth:`finish` returns its chunks."""

    def __init__(self) -> None:
        self._tail = bytes(WINDOW - 1)  # the window's older bytes, zeros at the start
        self._pos = 0  # bytes processed so far
        self._chunk_start = 0
        #: start of a zero run reaching the end of what was processed, which may still
        #: grow into a hole, and the split points found inside it meanwhile
        self._run_start: int | None = None
        self._deferred: list[int] = []
        self._chunks: list[Chunk] = []
        self._pending = bytearray()

    def feed(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= _BLOCK:
            self._process(bytes(self._pending), final=False)
            self._pending.clear()

    def finish(self) -> list[Chunk]:
        """The chunks not yet taken, up to the end of the file."""
        self._process(bytes(self._pending), final=True)
        self._pending.clear()
        self._close_run(self._pos)
        self._cut(self._pos)
        return self.take()

    def take(self) -> list[Chunk]:
        """The chunks decided since the last call, in order."""
        out, self._chunks = self._chunks, []
        return out

    def settled(self) -> int:
        """Bytes before this offset belong to the chunks taken or to the one being built:
        no later cut falls before it."""
        return self._pos if self._run_start is None else self._run_start

    # -- internals -----------------------------------------------------------------
    def _cut(self, end: int) -> None:
        if end > self._chunk_start:
            self._chunks.append(Chunk(self._chunk_start, end - self._chunk_start))
            self._chunk_start = end

    def _hole(self, start: int, end: int) -> None:
        self._cut(start)
        self._chunks.append(Chunk(start, end - start, zeros=True))
        self._chunk_start = end

    def _close_run(self, end: int) -> None:
        """The open zero run ends at ``end``: a hole, or data after all."""
        if self._run_start is None:
            return
        if end - self._run_start >= HOLE_THRESHOLD:
            self._hole(self._run_start, end)
        else:
            for split in self._deferred:
                self._cut(split)
        self._run_start = None
        self._deferred = []

    def _process(self, block: bytes, final: bool) -> None:
        base = self._pos
        n = len(block)
        splits = list(self._splits(block, base)) if n else []
        self._pos = base + n
        self._tail = (self._tail + block)[-(WINDOW - 1) :]
        lead = n - len(block.lstrip(b"\x00"))
        decided = base  # split points up to here are already dealt with
        if self._run_start is not None:
            if lead == n and not final:
                self._deferred.extend(splits)
                return
            self._deferred.extend(s for s in splits if s <= base + lead)
            self._close_run(base + lead)
            decided = base + lead
        scan = decided - base
        holes = [(base + a, base + b) for a, b in (m.span() for m in _ZEROS.finditer(block, scan))]
        trailing = n - len(block.rstrip(b"\x00"))
        open_start: int | None = None
        if not final and trailing and n - trailing >= scan:
            open_start = base + n - trailing
            if holes and holes[-1][1] == base + n:
                holes.pop()
        h = 0
        for split in splits:
            if split <= decided:
                continue
            if open_start is not None and split > open_start:
                self._deferred.append(split)
                continue
            while h < len(holes) and holes[h][1] < split:
                self._hole(*holes[h])
                h += 1
            if h < len(holes) and holes[h][0] < split <= holes[h][1]:
                continue
            self._cut(split)
        for hole in holes[h:]:
            self._hole(*hole)
        self._run_start = open_start

    def _splits(self, block: bytes, base: int) -> Iterator[int]:
        """Offsets just after each byte of ``block`` where the rolling sum says cut."""
        data = self._tail + block
        slots = bytearray(4 * len(data))
        slots[0::4] = data
        product = int.from_bytes(slots, "little") * _KERNEL
        out = product.to_bytes(4 * (len(data) + WINDOW), "little")
        first = 4 * (WINDOW - 1)
        end = 4 * len(data)
        pos = out.find(_TARGET_BYTES, first, end)
        while pos >= 0:
            if pos % 4 == 0:
                yield base + pos // 4 - (WINDOW - 1) + 1
            pos = out.find(_TARGET_BYTES, pos + 1, end)
