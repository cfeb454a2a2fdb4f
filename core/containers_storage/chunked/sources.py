"""Where the differ reads byte ranges of a blob: the one small interface
(:class:`BlobSource`) and the two sources the library ships, a local file and HTTP(S)
range requests (a registry's blob URL) through the standard library.

A source returns one readable stream per requested range, in the order asked, each to be
read before the next is taken (an HTTP multipart response arrives as one stream).
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Protocol

from ..errors import StorageError
from .errors import BadRequest

#: (offset, length) of a part of the blob
Range = tuple[int, int]


class BlobSource(Protocol):
    """Anything that can serve byte ranges of one blob (upstream ``ImageSourceSeekable``)."""

    def get_blob_at(self, ranges: Sequence[Range]) -> Iterator[IO[bytes]]:
        """A stream for each of ``ranges`` (sorted, not overlapping), in order; raise
        :class:`~containers_storage.chunked.errors.BadRequest` when there are too many
        ranges for one request, so the caller asks again with fewer."""
        ...


class _Limited:
    """The next ``left`` bytes of ``stream``."""

    def __init__(self, stream: IO[bytes], left: int) -> None:
        self._stream = stream
        self.left = left

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self._stream.read(n)
        if not data:
            raise StorageError(message="unexpected end of the blob stream")
        self.left -= len(data)
        return data

    def drain(self) -> None:
        while self.left > 0:
            self.read(1 << 20)


class FileSource:
    """Ranges of a local file (a blob already downloaded, or one written by a writer)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.size = os.stat(self.path).st_size
        self.bytes_read = 0
        self.requests = 0

    def get_blob_at(self, ranges: Sequence[Range]) -> Iterator[IO[bytes]]:
        self.requests += 1
        for offset, length in ranges:
            if offset < 0 or length < 0 or offset + length > self.size:
                raise BadRequest(f"range {offset}+{length} of a {self.size}-byte blob")
        return self._parts(list(ranges))

    def _parts(self, ranges: list[Range]) -> Iterator[IO[bytes]]:
        with open(self.path, "rb") as f:
            for offset, length in ranges:
                f.seek(offset)
                self.bytes_read += length
                yield _Limited(f, length)  # type: ignore[misc]


_CONTENT_RANGE = re.compile(rb"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)


class HTTPSource:
    """Ranges of a blob at an HTTP(S) URL, many in one request (``Range: bytes=a-b,...``),
    as registries serve them: a ``multipart/byteranges`` answer, a single ``206`` part,
    or the whole blob (``200``) from servers that ignore ranges."""

    def __init__(self, url: str, headers: Mapping[str, str] | None = None, timeout: float = 60.0) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.bytes_read = 0
        self.requests = 0

    def get_blob_at(self, ranges: Sequence[Range]) -> Iterator[IO[bytes]]:
        wanted = list(ranges)
        if not wanted:
            return iter(())
        spec = ",".join(f"{o}-{o + n - 1}" for o, n in wanted if n > 0)
        req = urllib.request.Request(self.url, headers={**self.headers, "Range": f"bytes={spec}"})
        self.requests += 1
        try:
            resp = urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (400, 413, 414, 416, 431):
                raise BadRequest(f"GET {self.url}", message=f"{exc.code} {exc.reason}") from None
            raise StorageError(f"GET {self.url}", message=f"{exc.code} {exc.reason}") from None
        except OSError as exc:
            raise StorageError(f"GET {self.url}", message=str(exc)) from None
        return self._parts(resp, wanted)

    def _parts(self, resp: IO[bytes], wanted: list[Range]) -> Iterator[IO[bytes]]:
        counted = _Counted(resp, self)
        try:
            yield from _serve(_received(resp, counted), wanted)
        finally:
            resp.close()


class _Counted:
    def __init__(self, stream: IO[bytes], owner: HTTPSource) -> None:
        self._stream = stream
        self._owner = owner

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._owner.bytes_read += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._stream.readline(limit)  # type: ignore[attr-defined]
        self._owner.bytes_read += len(data)
        return data


def _received(resp: IO[bytes], body: _Counted) -> Iterator[tuple[int, _Limited]]:
    """The parts of the answer as (blob offset, stream)."""
    status = getattr(resp, "status", 200)
    headers = getattr(resp, "headers", {})
    ctype = headers.get("Content-Type", "") if headers else ""
    if status == 200:
        yield 0, _Limited(body, 1 << 62)  # type: ignore[arg-type]
        return
    if status != 206:
        raise StorageError(message=f"range request answered {status}")
    if ctype.lower().startswith("multipart/"):
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if m is None:
            raise StorageError(message="multipart answer without a boundary")
        delimiter = b"--" + m.group(1).encode()
        while True:
            line = body.readline(1 << 16)
            if not line:
                raise StorageError(message="unexpected end of the multipart answer")
            line = line.strip()
            if not line:
                continue
            if line == delimiter + b"--":
                return
            if line != delimiter:
                raise StorageError(message="malformed multipart answer")
            start = end = None
            while True:
                hline = body.readline(1 << 16).strip()
                if not hline:
                    break
                name, _, value = hline.partition(b":")
                if name.strip().lower() == b"content-range":
                    cr = _CONTENT_RANGE.match(value.strip())
                    if cr:
                        start, end = int(cr.group(1)), int(cr.group(2))
            if start is None or end is None or end < start:
                raise StorageError(message="multipart part without a usable Content-Range")
            part = _Limited(body, end - start + 1)  # type: ignore[arg-type]
            yield start, part
            part.drain()
    else:
        cr = _CONTENT_RANGE.match((headers.get("Content-Range", "") if headers else "").encode())
        if cr is None:
            raise StorageError(message="206 answer without a Content-Range")
        start, end = int(cr.group(1)), int(cr.group(2))
        yield start, _Limited(body, end - start + 1)  # type: ignore[arg-type]


def _serve(received: Iterator[tuple[int, _Limited]], wanted: list[Range]) -> Iterator[IO[bytes]]:
    """Cut the requested ranges out of the parts received (a server may merge or split
    ranges, never reorder them)."""
    part: _Limited | None = None
    pos = 0  # blob offset of the part's next byte
    end = 0
    for offset, length in wanted:
        while part is None or offset >= end:
            try:
                start, part = next(received)
            except StopIteration:
                raise StorageError(
                    message=f"the server did not send bytes {offset}-{offset + length - 1}"
                ) from None
            pos, end = start, start + part.left
        if offset < pos:
            raise StorageError(message=f"the server sent ranges out of order at {offset}")
        skip = offset - pos
        while skip:
            skip -= len(part.read(min(skip, 1 << 20)))
        if offset + length > end:
            raise StorageError(message=f"the server sent a short part for bytes at {offset}")
        piece = _Limited(part, length)  # type: ignore[arg-type]
        yield piece  # type: ignore[misc]
        piece.drain()
        pos = offset + length
