"""Reading the chunks the store lacks from the blob: ranges merged into few requests,
then each chunk's compressed bytes decoded in order as the files are written."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import IO

import zstandard

from .errors import BadRequest, InvalidTOC
from .formats import BlobKind
from .sources import BlobSource, Range

_ZLIB_DECOMPRESS = type(zlib.decompressobj())
#: upstream asks for at most this many ranges in one request
MAX_RANGES = 1024
#: below this many ranges a refused request is not retried
MIN_RANGES = 64


def merge_ranges(parts: list[Range], target: int = MAX_RANGES) -> list[Range]:
    """Adjacent parts joined, then the smallest gaps closed until at most ``target``
    ranges remain (the gap bytes are fetched and skipped)."""
    merged: list[list[int]] = []
    for off, length in parts:
        if merged and merged[-1][0] + merged[-1][1] == off:
            merged[-1][1] += length
        else:
            merged.append([off, length])
    if len(merged) > target:
        gaps = sorted(merged[i][0] - (merged[i - 1][0] + merged[i - 1][1]) for i in range(1, len(merged)))
        limit = gaps[len(merged) - target - 1]
        out = [merged[0]]
        closed = 0
        for off, length in merged[1:]:
            prev = out[-1]
            gap = off - (prev[0] + prev[1])
            if gap <= limit and closed < len(merged) - target:
                prev[1] = off + length - prev[0]
                closed += 1
            else:
                out.append([off, length])
        merged = out
    return [(o, n) for o, n in merged]


class BlobCursor:
    """Walks the fetched ranges forward; :meth:`raw` gives the bytes of one span."""

    def __init__(self, source: BlobSource, parts: list[Range]) -> None:
        target = MAX_RANGES
        while True:
            ranges = merge_ranges(parts, target)
            try:
                self._streams = source.get_blob_at(ranges)
                break
            except BadRequest:
                if len(ranges) < MIN_RANGES:
                    raise
                target = len(ranges) // 2
        self._ranges = iter(ranges)
        self._stream: IO[bytes] | None = None
        self._pos = 0
        self._end = 0

    def _advance(self, offset: int) -> IO[bytes]:
        while self._stream is None or offset >= self._end:
            try:
                start, length = next(self._ranges)
                self._stream = next(self._streams)
            except StopIteration:
                raise InvalidTOC(message="not enough data returned from the server") from None
            self._pos, self._end = start, start + length
        if offset < self._pos:
            raise InvalidTOC(message=f"blob offset {offset} requested out of order")
        skip = offset - self._pos
        while skip:
            data = self._stream.read(min(skip, 1 << 20))
            if not data:
                raise InvalidTOC(message="short read from the blob source")
            skip -= len(data)
        self._pos = offset
        return self._stream

    def raw(self, start: int, end: int) -> Iterator[bytes]:
        stream = self._advance(start)
        if end > self._end:
            raise InvalidTOC(message=f"blob span {start}-{end} crosses a fetched range")
        left = end - start
        while left:
            data = stream.read(min(left, 1 << 20))
            if not data:
                raise InvalidTOC(message="short read from the blob source")
            left -= len(data)
            self._pos += len(data)
            yield data


def decode(kind: BlobKind, raw: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The first ``size`` uncompressed bytes of the compressed span ``raw`` (zstd
    frames or gzip members, several in a row allowed); the rest of the span is read and
    dropped."""
    left = size
    dec = _decoder(kind)
    for data in raw:
        while data and left:
            try:
                if isinstance(dec, _ZLIB_DECOMPRESS):
                    out = dec.decompress(data, left)
                else:
                    out = dec.decompress(data)
            except (zlib.error, zstandard.ZstdError) as exc:
                raise InvalidTOC("decoding a chunk", message=str(exc)) from None
            if len(out) > left:
                out = out[:left]
            if out:
                left -= len(out)
                yield out
            if isinstance(dec, _ZLIB_DECOMPRESS) and dec.unconsumed_tail:
                data = dec.unconsumed_tail
                continue
            if dec.eof:
                data = dec.unused_data
                dec = _decoder(kind)
            else:
                data = b""
    if left:
        raise InvalidTOC(message=f"a chunk decodes to {size - left} bytes, the TOC says {size}")


def _decoder(kind: BlobKind) -> zlib._Decompress | zstandard.ZstdDecompressionObj:  # type: ignore[name-defined]
    if kind is BlobKind.ESTARGZ:
        return zlib.decompressobj(31)
    return zstandard.ZstdDecompressor().decompressobj()
