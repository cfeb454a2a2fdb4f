"""Pull-based tar reader with raw-byte accounting (what tar-split needs).

Every byte consumed from the stream is passed to an optional ``tap`` in order, so a
caller can see exactly which raw bytes made up each header, padding and content.
Behaviour matches Go's ``archive/tar`` reader: two zero blocks (or a clean end of
stream at a block boundary) end the archive, a zero block followed by a non-zero one is
an invalid header, and a short read is an unexpected EOF.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

from ..errors import InvalidTarHeader, UnexpectedEOF
from . import tarheader as th

_CHUNK = 1 << 20
_MAX_SPECIAL = 1 << 20  # Go's maxSpecialFileSize for PAX and GNU long-name data


class Source:
    """Buffered reading from a stream, reporting consumed bytes to ``tap``."""

    def __init__(self, stream: IO[bytes], tap: Callable[[bytes], None] | None = None) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self.tap = tap
        self.consumed = 0

    def _fill(self, want: int) -> bool:
        """Make ``want`` bytes available; False at end of stream."""
        while len(self._buf) - self._pos < want:
            data = self._stream.read(max(_CHUNK, want))
            if not data:
                return False
            self._buf = self._buf[self._pos :] + data if self._pos < len(self._buf) else data
            self._pos = 0
        return True

    def _take(self, n: int) -> bytes:
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        self.consumed += n
        if self.tap is not None:
            self.tap(out)
        return out

    def read_exact(self, n: int) -> bytes:
        if not self._fill(n):
            raise UnexpectedEOF()
        return self._take(n)

    def read_block(self) -> bytes | None:
        """The next 512-byte block, or None at a clean end of stream."""
        if not self._fill(th.BLOCK):
            if len(self._buf) - self._pos:
                self._take(len(self._buf) - self._pos)
                raise UnexpectedEOF()
            return None
        return self._take(th.BLOCK)

    def read_some(self, limit: int) -> bytes:
        """Between 1 and ``limit`` bytes; raises at end of stream."""
        avail = len(self._buf) - self._pos
        if not avail:
            data = self._stream.read(min(limit, _CHUNK) if limit > 0 else _CHUNK)
            if not data:
                raise UnexpectedEOF()
            if len(data) > limit:
                self._buf, self._pos = data, 0
                return self._take(limit)
            self.consumed += len(data)
            if self.tap is not None:
                self.tap(data)
            return data
        return self._take(min(avail, limit))

    def rest(self) -> Iterator[bytes]:
        """Everything left in the stream."""
        if len(self._buf) - self._pos:
            yield self._take(len(self._buf) - self._pos)
        while data := self._stream.read(_CHUNK):
            self.consumed += len(data)
            if self.tap is not None:
                self.tap(data)
            yield data


class TarReader:
    """Iterate logical entries; read each entry's content before asking for the next
    (unread content is skipped)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._remaining = 0
        self._padding = 0
        self.finished = False

    @classmethod
    def of_content(cls, stream: IO[bytes], size: int) -> TarReader:
        """A reader positioned inside an entry whose ``size`` content bytes are ``stream``."""
        reader = cls(Source(stream))
        reader._remaining = size
        reader.finished = True
        return reader

    def next(self) -> th.Entry | None:
        self.skip_content()
        src = self.source
        if self._padding:
            src.read_exact(self._padding)
            self._padding = 0
        pax: dict[bytes, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            block = src.read_block()
            if block is None:
                self.finished = True
                return None
            if block == th.ZERO_BLOCK:
                second = src.read_block()
                if second is None or second == th.ZERO_BLOCK:
                    self.finished = True
                    return None
                raise InvalidTarHeader()
            entry, fmt = th.parse_block(block)
            flag = entry.typeflag
            if flag in (th.PAX_LOCAL, th.PAX_GLOBAL, th.GNU_LONGNAME, th.GNU_LONGLINK):
                if entry.size > _MAX_SPECIAL:
                    raise InvalidTarHeader("extended header too large")
                data = src.read_exact(entry.size + (-entry.size) % th.BLOCK)[: entry.size]
                if flag == th.PAX_LOCAL:
                    pax.update(th.parse_pax(data))
                    continue
                if flag == th.PAX_GLOBAL:
                    records = th.parse_pax(data)
                    th.merge_pax(entry, records)
                    return th.Entry(name=entry.name, typeflag=flag, xattrs=entry.xattrs)
                name = data.split(b"\x00", 1)[0]
                if flag == th.GNU_LONGNAME:
                    long_name = name
                else:
                    long_link = name
                continue
            th.merge_pax(entry, pax)
            if long_name is not None:
                entry.name = long_name
            if long_link is not None:
                entry.linkname = long_link
            if flag == th.REGA:
                entry.typeflag = th.DIR if entry.name.endswith(b"/") else th.REG
            entry.data_size = 0 if entry.typeflag in th.HEADER_ONLY else entry.size
            if flag == th.GNU_SPARSE and fmt == th.FORMAT_GNU:
                self._old_gnu_sparse(entry, block)
            elif th.pax_sparse(entry, pax):
                self._sparse_1_0(entry)
            if entry.sparse is not None:
                th.validate_sparse(entry)
            self._remaining = entry.data_size
            self._padding = (-entry.data_size) % th.BLOCK
            return entry

    def _old_gnu_sparse(self, entry: th.Entry, block: bytes) -> None:
        fragments, extended = th.parse_old_gnu_sparse(block, 386)
        while extended:
            ext = self.source.read_exact(th.BLOCK)
            more, extended = th.parse_old_gnu_sparse(ext, 0)
            fragments.extend(more)
        entry.sparse = fragments
        entry.data_size = entry.size
        entry.size = th.parse_number(block[483:495])
        entry.typeflag = th.REG

    def _sparse_1_0(self, entry: th.Entry) -> None:
        data = b""
        while True:
            if len(data) + th.BLOCK > entry.data_size:
                raise InvalidTarHeader("GNU sparse map exceeds the data")
            data += self.source.read_exact(th.BLOCK)
            parsed = th.parse_sparse_1_0(data)
            if parsed is not None:
                break
        entry.sparse, used = parsed
        entry.data_size -= used
        if used != len(data):
            raise InvalidTarHeader("malformed GNU sparse 1.0 map")

    def read(self, limit: int = _CHUNK) -> bytes:
        """Up to ``limit`` bytes of the current entry's content; b"" at its end."""
        if not self._remaining:
            return b""
        data = self.source.read_some(min(limit, self._remaining))
        self._remaining -= len(data)
        return data

    def iter_content(self) -> Iterator[bytes]:
        while self._remaining:
            yield self.read()

    def skip_content(self) -> None:
        while self._remaining:
            self.read()

    def __iter__(self) -> Iterator[th.Entry]:
        while (entry := self.next()) is not None:
            yield entry


def iter_logical(entry: th.Entry, reader: TarReader) -> Iterator[bytes]:
    """The entry's logical content: sparse holes expanded to zeros."""
    if entry.sparse is None:
        yield from reader.iter_content()
        return
    pos = 0
    for off, length in entry.sparse:
        yield from _zeros(off - pos)
        left = length
        while left:
            data = reader.read(min(left, _CHUNK))
            if not data:
                raise UnexpectedEOF()
            left -= len(data)
            yield data
        pos = off + length
    yield from _zeros(entry.size - pos)


def _zeros(n: int) -> Iterator[bytes]:
    while n > 0:
        k = min(n, _CHUNK)
        yield bytes(k)
        n -= k
