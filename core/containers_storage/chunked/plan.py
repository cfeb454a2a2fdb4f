"""From TOC entries to the files to create: chunk entries merged into their file, the
compressed range of every chunk worked out, and everything a hostile TOC could use to
make the differ read or write where it must not refused before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import toc
from .errors import InvalidTOC
from .estargz import METADATA_NAMES
from .formats import BlobKind


@dataclass(slots=True)
class ChunkRef:
    #: where the chunk's bytes go in the file
    file_offset: int
    size: int
    #: its compressed bytes in the blob: [start, end)
    start: int
    end: int
    digest: str = ""
    zeros: bool = False


@dataclass(slots=True)
class Item:
    """A TOC entry to create; regular files with content carry their chunks."""

    entry: toc.Entry
    chunks: list[ChunkRef] = field(default_factory=list)


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _digest_ok(d: str) -> bool:
    return _DIGEST.fullmatch(d) is not None


def merge(entries: list[toc.Entry], kind: BlobKind, toc_offset: int) -> list[Item]:
    """Upstream's ``mergeTocEntries`` with the checks it leaves out."""
    items: list[Item] = []
    # (item, chunk entries) for regular files, in TOC order
    i = 0
    groups: list[tuple[Item, list[toc.Entry]]] = []
    while i < len(entries):
        e = entries[i]
        i += 1
        if kind is BlobKind.ESTARGZ and e.name in METADATA_NAMES:
            continue
        if e.type == toc.CHUNK:
            raise InvalidTOC(f"{e.name!r}", message="chunk type without a regular file")
        if e.type not in toc.TYPES:
            raise InvalidTOC(f"{e.name!r}", message=f"unknown type {e.type!r}")
        if not e.name:
            raise InvalidTOC(message="entry without a name")
        if e.size < 0 or e.mode < 0 or e.uid < 0 or e.gid < 0:
            raise InvalidTOC(f"{e.name!r}", message="negative size, mode or owner")
        item = Item(e)
        items.append(item)
        if e.type != toc.REG:
            continue
        chunks = [e]
        while i < len(entries) and entries[i].type == toc.CHUNK:
            if entries[i].name != e.name:
                raise InvalidTOC(f"{entries[i].name!r}", message=f"chunk of another file than {e.name!r}")
            chunks.append(entries[i])
            i += 1
        if e.size == 0:
            if len(chunks) > 1:
                raise InvalidTOC(f"{e.name!r}", message="chunks of an empty file")
            continue
        if not _digest_ok(e.digest):
            raise InvalidTOC(f"{e.name!r}", message=f"missing or invalid digest {e.digest!r}")
        groups.append((item, chunks))
    # compressed ranges: a chunk ends where the next data begins
    starts = [c.offset for _, chunks in groups for c in chunks]
    nxt = iter([*starts[1:], toc_offset])
    prev_end = 0
    for item, chunks in groups:
        e = item.entry
        pos = 0
        for j, c in enumerate(chunks):
            following = next(nxt)
            single = len(chunks) == 1
            size = e.size if single else c.chunk_size
            if not single and c.chunk_offset != pos:
                raise InvalidTOC(f"{e.name!r}", message=f"chunk at {c.chunk_offset}, expected {pos}")
            if size <= 0 or pos + size > e.size:
                raise InvalidTOC(f"{e.name!r}", message="chunk sizes do not add up to the file size")
            end = following
            if j == len(chunks) - 1 and e.end_offset and kind is BlobKind.ZSTD_CHUNKED:
                end = e.end_offset
            if c.offset < prev_end or c.offset <= 0 or end <= c.offset or end > following or end > toc_offset:
                raise InvalidTOC(
                    f"{e.name!r}",
                    message=f"chunk range {c.offset}-{end} overlaps or is outside the file data",
                )
            digest = c.chunk_digest or (e.digest if single else "")
            if digest and not _digest_ok(digest):
                raise InvalidTOC(f"{e.name!r}", message=f"invalid chunk digest {digest!r}")
            zeros = not single and c.chunk_type == toc.CHUNK_ZEROS
            if c.chunk_type not in (toc.CHUNK_DATA, toc.CHUNK_ZEROS):
                raise InvalidTOC(f"{e.name!r}", message=f"unknown chunk type {c.chunk_type!r}")
            item.chunks.append(ChunkRef(pos, size, c.offset, end, digest, zeros))
            pos += size
            prev_end = end
        if pos != e.size:
            raise InvalidTOC(f"{e.name!r}", message="chunk sizes do not add up to the file size")
    return items
