"""Inputs that are small on disk or endless but huge when read: a tar holding one file of
zeros, compressed on the fly in any of the layer compressions, written in bounded
memory (so tests and benchmarks can build multi-gigabyte "bombs" cheaply)."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import IO

from ..archive.tarwriter import END_OF_ARCHIVE, Header, encode, padding

_CHUNK = 1 << 20


def zero_file_tar(size: int, name: bytes = b"zeros") -> Iterator[bytes]:
    """An uncompressed tar stream of one regular file of ``size`` zero bytes."""
    yield encode(Header(name=name, typeflag=ord("0"), mode=0o644, size=size, mtime=1_700_000_000))
    zero = bytes(_CHUNK)
    left = size
    while left > 0:
        n = min(left, _CHUNK)
        yield zero if n == _CHUNK else bytes(n)
        left -= n
    yield padding(size)
    yield END_OF_ARCHIVE


def _compressor(kind: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    if kind == "gzip":
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress, c.flush
    if kind == "bzip2":
        b = bz2.BZ2Compressor(9)
        return b.compress, b.flush
    if kind == "xz":
        x = lzma.LZMACompressor(format=lzma.FORMAT_XZ)
        return x.compress, x.flush
    if kind == "zstd":
        import zstandard

        z = zstandard.ZstdCompressor(level=3).compressobj()
        return z.compress, z.flush
    if kind == "none":
        return (lambda d: d), (lambda: b"")
    raise ValueError(f"unknown compression {kind!r}")


def write_bomb(out: IO[bytes], size: int, kind: str = "gzip") -> None:
    """Write a ``kind``-compressed tar of one ``size``-byte file of zeros to ``out``."""
    compress, flush = _compressor(kind)
    for chunk in zero_file_tar(size):
        data = compress(chunk)
        if data:
            out.write(data)
    out.write(flush())


def write_gzip_members_bomb(out: IO[bytes], size: int, member_size: int = 64 << 20) -> None:
    """The same tar as :func:`write_bomb` in gzip, built in well under a second: one
    member compressing ``member_size`` zeros written over and over (Go and we read
    concatenated members as one stream); ``size`` is rounded down to whole members."""

    def member(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(data) + c.flush()

    count = size // member_size
    zeros = member(bytes(member_size))
    total = count * member_size
    out.write(
        member(encode(Header(name=b"zeros", typeflag=ord("0"), mode=0o644, size=total, mtime=1_700_000_000)))
    )
    for _ in range(count):
        out.write(zeros)
    out.write(member(padding(total) + END_OF_ARCHIVE))
