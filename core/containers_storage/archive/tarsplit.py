"""tar-split metadata (on-disk.md §11): recording while a layer is applied, and replay.

The file is a gzip stream of JSON objects, one per line, in upstream's key order.
Segments keep the raw header and padding bytes; file entries keep the name, the size
and a CRC-64/ISO of the content, which is read back from the layer on replay.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import posixpath
import re
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import IO

from ..errors import (
    ArchiveError,
    DuplicateTarPath,
    TarSplitEmpty,
    TarSplitIntegrity,
    TrailingDataTooLarge,
    UnexpectedEOF,
)
from ..gojson import loads
from . import tarheader as th
from .crc64 import Crc64, CrcBatch, CrcSlot
from .paths import go_clean, layer_parts
from .rooted import RootedDir
from .tarreader import Source, TarReader
from .types import FileGetter

SEGMENT = 2
FILE = 1
_PADDING_CHUNK = 1 << 20
#: most bytes kept after a tar's end-of-archive marker (upstream's tar-split keeps
#: them all, as padding; tools write at most a few blocks, so more is refused: an
#: endless input such as /dev/zero must not grow the tar-split file or memory)
MAX_TRAILING = 16 << 20


_GO_ESCAPES = {
    **{chr(c): f"\\u{c:04x}" for c in range(0x20)},
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    '"': '\\"',
    "\\": "\\\\",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_SPECIAL = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029]')


def _go_json_string(text: str) -> str:
    """JSON string as Go's encoder (1.21) writes it: HTML-safe, control characters other
    than \\n, \\r and \\t as \\u00XX."""
    return '"' + _GO_SPECIAL.sub(lambda m: _GO_ESCAPES[m.group()], text) + '"'


class TarSplitWriter:
    """Writes entries to a gzip'd JSON-lines stream."""

    def __init__(self, out: IO[bytes]) -> None:
        self._gz = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0)
        self._pos = 0
        self._lines: list[str] = []
        self._buffered = 0

    def segment(self, payload: bytes) -> None:
        if payload:
            self._emit(
                f'{{"type":2,"payload":"{base64.b64encode(payload).decode()}","position":{self._pos}}}'
            )

    def file(self, name: bytes, size: int, checksum: bytes | None) -> None:
        try:
            key = f'"name":{_go_json_string(name.decode("utf-8"))}' if name else ""
        except UnicodeDecodeError:
            key = f'"name_raw":"{base64.b64encode(name).decode()}"'
        parts = ['{"type":1']
        if key:
            parts.append(key)
        if size:
            parts.append(f'"size":{size}')
        payload = "null" if checksum is None else f'"{base64.b64encode(checksum).decode()}"'
        parts.append(f'"payload":{payload}')
        parts.append(f'"position":{self._pos}}}')
        self._emit(",".join(parts))

    def _emit(self, line: str) -> None:
        self._lines.append(line)
        self._pos += 1
        self._buffered += len(line)
        if len(self._lines) >= 256 or self._buffered >= 1 << 20:  # 1 MiB segments are big lines
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self._gz.write(("\n".join(self._lines) + "\n").encode())
            self._lines.clear()
            self._buffered = 0

    def close(self) -> None:
        self.flush()
        self._gz.close()


@dataclass
class OwnerSets:
    """UIDs and GIDs seen in headers (whiteouts excluded), as upstream's uidset/gidset."""

    uids: set[int] = field(default_factory=set)
    gids: set[int] = field(default_factory=set)

    def add(self, entry: th.Entry) -> None:
        if not posixpath.basename(entry.name.rstrip(b"/")).startswith(b".wh."):
            self.uids.add(entry.uid)
            self.gids.add(entry.gid)


_BATCHED = 1 << 20  # files up to this size are checksummed in batches


class _Recording:
    """Entries waiting for batched checksums, written in order once known."""

    def __init__(self, writer: TarSplitWriter | None) -> None:
        self.writer = writer
        self.batch = CrcBatch()
        self.queue: list[tuple[bytes, int, CrcSlot | bytes | None] | bytes] = []

    def segment(self, payload: bytes) -> None:
        if self.writer is not None and payload:
            if self.queue:
                self.queue.append(payload)
            else:
                self.writer.segment(payload)

    def file(self, name: bytes, size: int, checksum: CrcSlot | bytes | None) -> None:
        if self.writer is not None:
            self.queue.append((name, size, checksum))
            if self.batch.full:
                self.batch.submit()
                self.drain()

    def drain(self, final: bool = False) -> None:
        """Write the queued entries whose checksums are known (all of them if final)."""
        if final:
            self.batch.finish()
        writer = self.writer
        if writer is None:
            return
        done = 0
        for item in self.queue:
            if isinstance(item, bytes):
                writer.segment(item)
            else:
                name, size, checksum = item
                if isinstance(checksum, CrcSlot):
                    if checksum.digest is None:
                        break
                    checksum = checksum.digest
                writer.file(name, size, checksum)
            done += 1
        del self.queue[:done]


def disassemble(
    stream: IO[bytes], writer: TarSplitWriter | None, owners: OwnerSets
) -> Generator[bytes, None, None]:
    """Read a tar stream, record it into ``writer`` and yield every raw byte onwards.

    The consumer sees the stream unchanged; the recording follows tar-split's rules: the
    padding and header blocks before each entry form one segment, each entry is a file
    record with the CRC of its logical content, and what follows the end-of-archive
    marker is kept as segments of at most 1 MiB, up to :data:`MAX_TRAILING` bytes
    (more raises :class:`~containers_storage.errors.TrailingDataTooLarge`).
    """
    rec = _Recording(writer)
    try:
        yield from _disassemble(stream, rec, owners)
        rec.drain(final=True)
    finally:
        rec.batch.close()


def _disassemble(stream: IO[bytes], rec: _Recording, owners: OwnerSets) -> Iterator[bytes]:
    writer = rec.writer
    pending: list[bytes] = []
    seen: set[bytes] = set()
    src = Source(stream, tap=pending.append)
    reader = TarReader(src)

    def flush_segment() -> bytes:
        data = b"".join(pending)
        pending.clear()
        rec.segment(data)
        return data

    while True:
        entry = reader.next()
        if entry is None:
            break
        if data := flush_segment():
            yield data
        owners.add(entry)
        cleaned = go_clean(entry.name)
        if cleaned in seen:
            raise DuplicateTarPath(f"{entry.name.decode('utf-8', 'replace')!r}")
        seen.add(cleaned)
        checksum: CrcSlot | bytes | None = None
        want = writer is not None and entry.size > 0
        if entry.sparse is not None:
            # the stored fragments are kept as they are in the archive: a replay of the
            # file's logical content would not reproduce the archive's bytes
            for _chunk in reader.iter_content():
                for piece in pending:
                    for i in range(0, len(piece), _PADDING_CHUNK):
                        rec.segment(piece[i : i + _PADDING_CHUNK])
                    yield piece
                pending.clear()
            rec.file(entry.name, 0, None)
            continue
        if entry.size <= _BATCHED:
            chunks: list[bytes] = []
            while chunk := reader.read():
                pending.clear()
                chunks.append(chunk)
                yield chunk
            if want:
                checksum = rec.batch.add(chunks)
        else:
            crc = Crc64()
            for chunk in reader.iter_content():
                if want:
                    crc.update(chunk)
                if pending:
                    yield b"".join(pending)
                    pending.clear()
            if want:
                checksum = crc.digest()
        rec.file(entry.name, entry.size, checksum)
        if data := flush_segment():
            yield data
    if data := flush_segment():
        yield data
    rec.drain(final=True)  # from here on, segments are written as they come
    trailing = 0
    for chunk in src.rest():
        pending.clear()
        trailing += len(chunk)
        if trailing > MAX_TRAILING:
            raise TrailingDataTooLarge(
                message=f"more than {MAX_TRAILING} bytes after the end of the tar archive"
            )
        for i in range(0, len(chunk), _PADDING_CHUNK):
            piece = chunk[i : i + _PADDING_CHUNK]
            rec.segment(piece)
            yield piece


# -- replay ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Record:
    type: int
    name: bytes | None
    size: int
    payload: bytes | None


#: longest line of a tar-split file read back: what this writer produces is at most a
#: 1 MiB segment (or headers of at most 1 MiB each) in base64
MAX_LINE = 8 << 20


def read_records(tar_split: IO[bytes]) -> Iterator[Record]:
    """Entries of a tar-split file (gzip'd JSON lines), with upstream's duplicate check.

    A zero-byte file (not even a gzip header: upstream writes one even for an empty
    stream) is refused with TarSplitEmpty, as is a line over :data:`MAX_LINE`."""
    seen: set[bytes] = set()
    if not tar_split.read(1):
        raise TarSplitEmpty("reading tar-split metadata")
    tar_split.seek(-1, os.SEEK_CUR)
    try:
        with gzip.GzipFile(fileobj=tar_split, mode="rb") as gz:
            while line := gz.readline(MAX_LINE + 1):
                if len(line) > MAX_LINE:
                    raise ArchiveError(
                        "reading tar-split metadata", message=f"an entry is over {MAX_LINE} bytes"
                    )
                if not line.strip():
                    continue
                obj = loads(line)  # past MAX_DEPTH levels: NestedTooDeep, a ValueError
                if not isinstance(obj, dict):
                    raise ArchiveError("reading tar-split metadata", message="an entry is not a JSON object")
                kind = int(obj.get("type", 0))
                raw_name = obj.get("name_raw")
                name: bytes | None
                if raw_name:
                    name = base64.b64decode(raw_name)
                elif obj.get("name") is not None:
                    name = obj["name"].encode("utf-8", "surrogateescape")
                else:
                    name = None
                payload = base64.b64decode(obj["payload"]) if obj.get("payload") else None
                if kind == FILE:
                    cleaned = go_clean(name or b"")
                    if cleaned in seen:
                        raise DuplicateTarPath(f"{(name or b'').decode('utf-8', 'replace')!r}")
                    seen.add(cleaned)
                elif kind != SEGMENT:
                    raise ArchiveError(message=f"unknown tar-split entry type {kind}")
                yield Record(kind, name, int(obj.get("size", 0) or 0), payload)
    except EOFError:  # a truncated file: Go's gzip reader says io.ErrUnexpectedEOF
        raise UnexpectedEOF("reading tar-split metadata") from None
    except (OSError, ValueError, KeyError, TypeError, zlib.error) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError("reading tar-split metadata", message=str(exc)) from exc


def assemble(tar_split: IO[bytes], getter: FileGetter, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The original uncompressed tar stream, from tar-split plus file contents.

    Small files are checksummed in batches, so a mismatch is reported a little after
    the file's bytes were produced (always before the stream ends)."""
    batch = CrcBatch()
    try:
        yield from _assemble(tar_split, getter, chunk, batch)
    finally:
        batch.close()


def _assemble(tar_split: IO[bytes], getter: FileGetter, chunk: int, batch: CrcBatch) -> Iterator[bytes]:
    checks: list[tuple[str, bytes | None, CrcSlot]] = []

    def verify(final: bool = False) -> None:
        if final:
            batch.finish()
        else:
            batch.submit()
        done = 0
        for name, expected, slot in checks:
            if slot.digest is None:
                break
            if slot.digest != (expected or b""):
                raise TarSplitIntegrity(message=f"file integrity checksum failed for {json.dumps(name)}")
            done += 1
        del checks[:done]

    for rec in read_records(tar_split):
        if rec.type == SEGMENT:
            if rec.payload:
                yield rec.payload
            continue
        if rec.size == 0:
            continue
        name = (rec.name or b"").decode("utf-8", "surrogateescape")
        with getter.open(name) as f:
            if rec.size <= _BATCHED:
                data = f.read(rec.size + 1)
                rest = f.read(chunk) if len(data) > rec.size else b""
                parts = [data, rest] if rest else [data]
                checks.append((name, rec.payload, batch.add(parts)))
                yield from parts
                while rest:
                    rest = f.read(chunk)
                    if rest:
                        parts.append(rest)
                        yield rest
                if batch.full:
                    verify()
                continue
            crc = Crc64()
            while data := f.read(chunk):
                crc.update(data)
                yield data
        if crc.digest() != (rec.payload or b""):
            raise TarSplitIntegrity(message=f"file integrity checksum failed for {json.dumps(name)}")
    verify(final=True)


class DirectoryFileGetter:
    """Opens layer files below a directory (vfs ``dir/<id>``, a mount point), resolving
    every name inside that root without following symlinks out of it."""

    def __init__(self, root: str) -> None:
        self._tree = RootedDir(root)

    def open(self, name: str) -> IO[bytes]:
        parts = layer_parts(os.fsencode(name))
        return os.fdopen(self._tree.open_file(parts), "rb")

    def close(self) -> None:
        self._tree.close()

    def __enter__(self) -> DirectoryFileGetter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
