"""The store-facing entry point for applying a layer blob (on-disk.md §10).

One pass over the input: detect the compression, hash the compressed bytes, decompress,
hash the uncompressed bytes, record tar-split and hand the very same bytes to the
driver's extraction, all as chunks flowing through generators (constant memory).
Reading, hashing and decompressing run in a thread (those release the GIL) feeding a
bounded queue; tar-split checksums of big layers run in a helper process.
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import IO, cast

from .compression import Compression, decompressed_chunks
from .tarsplit import OwnerSets, TarSplitWriter, disassemble


@dataclass(frozen=True, slots=True)
class IngestResult:
    compressed_digest: str
    compressed_size: int
    uncompressed_digest: str
    uncompressed_size: int
    compression: int
    uids: list[int]
    gids: list[int]
    #: what ``apply`` returned (upstream: the sum of the entries' sizes)
    size: int


class IterReader(io.RawIOBase):
    """A read-only binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            rest = [self._buf[self._pos :], *self._chunks]
            self._buf, self._pos = b"", 0
            return b"".join(rest)
        if self._pos >= len(self._buf):
            for chunk in self._chunks:
                if chunk:
                    self._buf, self._pos = chunk, 0
                    break
            else:
                return b""
        out = self._buf[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        self._buf, self._pos = b"", 0
        for _ in self._chunks:
            pass


class _Counter:
    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def add(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def _decompressed(
    raw: IO[bytes], compressed: _Counter, uncompressed: _Counter
) -> tuple[int, Generator[bytes, None, None]]:
    kind, chunks = decompressed_chunks(raw, compressed.add)
    if kind == Compression.NONE:
        return int(kind), _in_thread(chunks)  # the same bytes: hashed once, as compressed

    def counted() -> Iterator[bytes]:
        for chunk in chunks:
            uncompressed.add(chunk)
            yield chunk

    return int(kind), _in_thread(counted())


_DONE = object()


def _in_thread(chunks: Iterator[bytes], depth: int = 4) -> Generator[bytes, None, None]:
    """Run ``chunks`` (reading, hashing, decompressing: work that releases the GIL) in a
    thread, handing results over through a bounded queue, so it overlaps extraction."""
    out: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    worker = threading.Thread(target=produce, name="layer-decompress", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


def apply_layer_stream(
    raw: IO[bytes], apply: Callable[[IO[bytes]], int], tar_split_out: IO[bytes] | None
) -> IngestResult:
    """Apply the (possibly compressed) layer blob ``raw`` through ``apply``.

    ``apply`` receives the uncompressed tar stream; ``tar_split_out`` receives the
    tar-split file (gzip'd JSON lines) when given. Raises a
    :class:`~containers_storage.errors.StorageError` subclass on corrupt compression,
    truncated or invalid tar data and duplicate paths.
    """
    compressed, uncompressed = _Counter(), _Counter()
    kind, chunks = _decompressed(raw, compressed, uncompressed)
    if kind == Compression.NONE:
        uncompressed = compressed
    writer = TarSplitWriter(tar_split_out) if tar_split_out is not None else None
    owners = OwnerSets()
    recording = disassemble(cast(IO[bytes], IterReader(chunks)), writer, owners)
    stream = IterReader(recording)
    try:
        size = apply(cast(IO[bytes], stream))
        stream.drain()
    finally:
        recording.close()
        chunks.close()  # stops the reading thread if extraction failed midway
    if writer is not None:
        writer.close()
    return IngestResult(
        compressed_digest=compressed.digest(),
        compressed_size=compressed.size,
        uncompressed_digest=uncompressed.digest(),
        uncompressed_size=uncompressed.size,
        compression=kind,
        uids=sorted(owners.uids),
        gids=sorted(owners.gids),
        size=size,
    )
