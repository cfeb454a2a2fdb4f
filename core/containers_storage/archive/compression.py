"""Compression of layer blobs: detection by magic, streaming decompression, compressors.

Numbers are upstream's ``archive.Compression`` values, stored in layer records.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Protocol

from ..errors import CorruptCompression
from .types import Compression as Compression

_MAGIC = (
    (b"\x42\x5a\x68", Compression.BZIP2),
    (b"\x1f\x8b\x08", Compression.GZIP),
    (b"\xfd\x37\x7a\x58\x5a\x00", Compression.XZ),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
)


def detect(head: bytes) -> Compression:
    """Compression of a stream starting with ``head`` (upstream reads up to 10240 bytes)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.NONE


#: most decompressed bytes one step hands on: a few KiB of gzip or zstd can stand for
#: gigabytes (a "zip bomb"), so output is pulled in pieces of at most this size
OUT_CHUNK = 1 << 20


class Decompressor(Protocol):
    """Push interface: feed compressed chunks, iterate decompressed pieces of at most
    :data:`OUT_CHUNK` bytes; ``finish`` checks that the compressed stream ended properly."""

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> None: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def finish(self) -> None:
        pass


def _truncated(kind: Compression) -> Exception:
    from ..errors import UnexpectedEOF

    return UnexpectedEOF(f"{kind.name.lower()} stream is truncated")


class _Multistream:
    """Decoders for formats that may hold several concatenated members (gzip, bzip2, xz),
    as Go's readers accept. Output is bounded with ``max_length``: what zlib cannot hand
    on yet stays in ``unconsumed_tail``, what bz2/lzma cannot stays in the decoder."""

    def __init__(self, kind: Compression) -> None:
        self._kind = kind
        self._dec = self._new()
        self._started = False

    def _new(self) -> zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor:
        if self._kind == Compression.GZIP:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._kind == Compression.BZIP2:
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            self._started = True
            dec = self._dec
            while True:
                try:
                    out = dec.decompress(data, OUT_CHUNK)
                except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                    raise CorruptCompression(f"{self._kind.name.lower()}: {exc}") from None
                if out:
                    yield out
                if dec.eof:
                    break
                if self._kind == Compression.GZIP:
                    data = dec.unconsumed_tail  # type: ignore[union-attr]
                    if not data and len(out) < OUT_CHUNK:
                        return
                else:
                    data = b""
                    if dec.needs_input:  # type: ignore[union-attr]
                        return
            data = dec.unused_data
            self._dec = self._new()
            self._started = False

    def finish(self) -> None:
        if self._started and not self._dec.eof:
            raise _truncated(self._kind)


_ZSTD_MAGIC = 0xFD2FB528
_BLOCKS_PER_FEED = 8  # a zstd block decodes to at most 128 KiB


class _ZstdFrames:
    """Follows the frame and block structure of a zstd stream (RFC 8878 §3.1) to cut the
    input after whole blocks: the library's decoder has no output bound, but one block
    yields at most 128 KiB. Knowing the structure also tells a truncated stream."""

    def __init__(self) -> None:
        self._state = "magic"
        self._need = 4
        self._field = bytearray()
        self._checksum = False
        self._last = False

    @property
    def at_frame_boundary(self) -> bool:
        return self._state == "magic" and not self._field

    def cuts(self, data: bytes) -> Iterator[int]:
        """Offsets into ``data`` after every :data:`_BLOCKS_PER_FEED` blocks."""
        pos, blocks, n = 0, 0, len(data)
        while pos < n:
            if self._state in ("block", "skip"):  # a body, consumed without a copy
                take = min(self._need, n - pos)
                pos += take
                self._need -= take
                if not self._need:
                    blocks += 1
                    self._after_body()
                    if blocks >= _BLOCKS_PER_FEED:
                        blocks = 0
                        yield pos
                continue
            take = min(self._need - len(self._field), n - pos)
            self._field += data[pos : pos + take]
            pos += take
            if len(self._field) == self._need:
                field, self._field = bytes(self._field), bytearray()
                self._header(field)
        yield n

    def _after_body(self) -> None:
        if self._state == "skip" or not self._last:
            self._state, self._need = ("magic", 4) if self._state == "skip" else ("blockhdr", 3)
        elif self._checksum:
            self._state, self._need = "checksum", 4
        else:
            self._state, self._need = "magic", 4

    def _header(self, field: bytes) -> None:
        state = self._state
        if state == "magic":
            magic = int.from_bytes(field, "little")
            if magic == _ZSTD_MAGIC:
                self._state, self._need = "fhd", 1
            elif magic & 0xFFFFFFF0 == 0x184D2A50:
                self._state, self._need = "skipsize", 4
            else:
                raise CorruptCompression("zstd: unknown frame descriptor")
        elif state == "fhd":
            fhd = field[0]
            if fhd & 0x08:
                raise CorruptCompression("zstd: reserved bit set in the frame header")
            single = bool(fhd & 0x20)
            self._checksum = bool(fhd & 0x04)
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            rest = (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            self._state, self._need = ("frameinfo", rest) if rest else ("blockhdr", 3)
        elif state == "frameinfo":
            self._state, self._need = "blockhdr", 3
        elif state == "blockhdr":
            hdr = int.from_bytes(field, "little")
            self._last = bool(hdr & 1)
            kind, size = (hdr >> 1) & 3, hdr >> 3
            if kind == 3:
                raise CorruptCompression("zstd: reserved block type")
            self._state, self._need = "block", 1 if kind == 1 else size
            if not self._need:
                self._after_body()
        elif state == "checksum":
            self._state, self._need = "magic", 4
        elif state == "skipsize":
            self._state, self._need = "skip", int.from_bytes(field, "little")
            if not self._need:
                self._state, self._need = "magic", 4


class _Zstd:
    def __init__(self) -> None:
        import zstandard

        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._frames = _ZstdFrames()
        self._zstd_error = zstandard.ZstdError

    def feed(self, data: bytes) -> Iterator[bytes]:
        start = 0
        for cut in self._frames.cuts(data):
            if cut > start:
                yield from self._decode(data[start:cut])
            start = cut

    def _decode(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._obj.decompress(data)
            except self._zstd_error as exc:
                raise CorruptCompression(f"zstd: {exc}") from None
            for i in range(0, len(out), OUT_CHUNK):
                yield out[i : i + OUT_CHUNK]
            if not self._obj.eof:
                return
            data = self._obj.unused_data
            self._obj = self._dctx.decompressobj()

    def finish(self) -> None:
        if not self._frames.at_frame_boundary:
            raise _truncated(Compression.ZSTD)


def decompressor(kind: Compression) -> Decompressor:
    if kind == Compression.NONE:
        return _Identity()
    if kind == Compression.ZSTD:
        return _Zstd()
    return _Multistream(kind)


def decompressed_chunks(
    raw: IO[bytes],
    on_compressed: Callable[[bytes], None] | None = None,
    chunk: int = 1 << 20,
) -> tuple[Compression, Iterator[bytes]]:
    """Detect the compression of ``raw`` (from its first 10240 bytes, one read, as
    upstream) and iterate its decompressed content in pieces of at most
    :data:`OUT_CHUNK` bytes (memory stays flat however well the input compresses);
    ``on_compressed`` sees every input byte. A truncated compressed stream raises
    UnexpectedEOF at the end."""
    head = raw.read(10240)
    kind = detect(head)
    dec = decompressor(kind)

    def chunks() -> Iterator[bytes]:
        data = head
        while data:
            if on_compressed is not None:
                on_compressed(data)
            yield from dec.feed(data)
            data = raw.read(chunk)
        dec.finish()

    return kind, chunks()


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


def compressor(kind: Compression, level: int | None = None) -> Compressor:
    """A push compressor for output streams: uncompressed, gzip or zstd (as upstream)."""
    if kind == Compression.NONE:
        return _NoCompress()
    if kind == Compression.GZIP:
        return zlib.compressobj(6 if level is None else level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if kind == Compression.ZSTD:
        import zstandard

        return zstandard.ZstdCompressor(level=3 if level is None else level).compressobj()
    raise CorruptCompression(f"compressing with {kind.name.lower()} is not supported")


class _NoCompress:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""
