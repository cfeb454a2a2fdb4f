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


class Decompressor(Protocol):
    """Push interface: feed compressed chunks, get decompressed bytes; ``finish`` checks
    that the compressed stream ended properly."""

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Multistream:
    """Decoders for formats that may hold several concatenated members (gzip, bzip2, xz),
    as Go's readers accept."""

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

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            self._started = True
            try:
                out.append(self._dec.decompress(data))
            except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                raise CorruptCompression(f"{self._kind.name.lower()}: {exc}") from None
            if not self._eof():
                break
            data = self._dec.unused_data
            self._dec = self._new()
            self._started = False
        return b"".join(out)

    def _eof(self) -> bool:
        return bool(self._dec.eof)

    def finish(self) -> bytes:
        if self._started and not self._eof():
            from ..errors import UnexpectedEOF

            raise UnexpectedEOF(f"{self._kind.name.lower()} stream is truncated")
        return b""


class _Zstd:
    def __init__(self) -> None:
        import zstandard

        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._started = False
        self._zstd_error = zstandard.ZstdError

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            self._started = True
            try:
                out.append(self._obj.decompress(data))
            except self._zstd_error as exc:
                raise CorruptCompression(f"zstd: {exc}") from None
            if not self._obj.eof:
                break
            data = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            self._started = False
        return b"".join(out)

    def finish(self) -> bytes:
        if self._started and not self._obj.eof:
            from ..errors import UnexpectedEOF

            raise UnexpectedEOF("zstd stream is truncated")
        return b""


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
    upstream) and iterate its decompressed content; ``on_compressed`` sees every input
    byte. A truncated compressed stream raises UnexpectedEOF at the end."""
    head = raw.read(10240)
    kind = detect(head)
    dec = decompressor(kind)

    def chunks() -> Iterator[bytes]:
        data = head
        while data:
            if on_compressed is not None:
                on_compressed(data)
            out = dec.feed(data)
            if out:
                yield out
            data = raw.read(chunk)
        tail = dec.finish()
        if tail:
            yield tail

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
