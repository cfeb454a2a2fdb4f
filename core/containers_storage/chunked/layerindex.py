"""Which files and chunks other layers of the store already hold, by digest (what
upstream's ``layersCache`` answers), built from the TOCs those layers recorded."""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

from . import toc
from .errors import InvalidTOC


@dataclass(frozen=True, slots=True)
class Location:
    layer: str
    #: the file's name in that layer's TOC
    name: str
    #: where a chunk starts in that file (0 for whole files)
    offset: int = 0


def hard_link_fingerprint(e: toc.Entry) -> str:
    """Digest of content, owner, mode and xattrs: equal fingerprints mean a hard link
    gives the new layer exactly the file it asks for (upstream's recipe)."""
    h = hashlib.sha256()
    h.update(e.digest.encode())
    h.update(f"{e.uid}:{e.gid}:{e.mode:o}".encode())
    for k in sorted(e.xattrs):
        h.update(k.encode())
        h.update(e.xattrs[k].encode())
    return "sha256:" + h.hexdigest()


class LayerIndex:
    def __init__(self) -> None:
        self.files: dict[str, Location] = {}
        self.fingerprints: dict[str, Location] = {}
        self.chunks: dict[str, Location] = {}

    @classmethod
    def build(
        cls,
        layers: Iterable[tuple[str, bytes]],
        wanted: Container[str] | None = None,
        hard_links: bool = True,
    ) -> LayerIndex:
        """From (layer ID, TOC document) pairs; the first layer listing a digest wins.
        Only digests in ``wanted`` are kept (all when None), fingerprints only for
        ``hard_links``. A TOC that does not parse is skipped, as upstream skips it."""
        index = cls()
        for layer, manifest in layers:
            try:
                index._add(layer, toc.document_entries(manifest), wanted, hard_links)
            except InvalidTOC:
                continue
        return index

    def _add(self, layer: str, raw: list[Any], wanted: Container[str] | None, hard_links: bool) -> None:
        """Reads the few keys it needs straight from the JSON objects (a store's TOCs
        hold hundreds of thousands of entries); an entry spelling its keys otherwise
        goes through the full parser."""
        entries: list[tuple[str, str, str, int, str, int, toc.Entry | None]] = []
        for i, obj in enumerate(raw):
            if not isinstance(obj, dict):
                raise InvalidTOC(f"entry {i}", message="not a JSON object")
            full = hard_links or not obj.keys() <= _SPELLED
            e = toc.parse_entry(obj, i, {}) if full else None
            if e is None:
                get = obj.get
                t, name, digest, size = get("type", ""), get("name", ""), get("digest", ""), get("size", 0)
                cd, co = get("chunkDigest", ""), get("chunkOffset", 0)
                if not (
                    t.__class__ is name.__class__ is digest.__class__ is cd.__class__ is str
                    and size.__class__ is co.__class__ is int
                ):
                    raise InvalidTOC(f"entry {i}", message="a key of the wrong type")
                entries.append((t, name, digest, size, cd, co, None))
            else:
                entries.append((e.type, e.name, e.digest, e.size, e.chunk_digest, e.chunk_offset, e))
        current = ""
        for t, name, digest, size, chunk_digest, chunk_offset, e in entries:
            if t == toc.REG:
                current = name
                if digest and size and (wanted is None or digest in wanted):
                    loc = Location(layer, name)
                    self.files.setdefault(digest, loc)
                    if e is not None:
                        self.fingerprints.setdefault(hard_link_fingerprint(e), loc)
            if (
                chunk_digest
                and t in (toc.REG, toc.CHUNK)
                and name == current
                and (wanted is None or chunk_digest in wanted)
            ):
                self.chunks.setdefault(chunk_digest, Location(layer, name, chunk_offset))


#: keys as upstream's writers spell them: the fast path reads only these
_SPELLED = frozenset(
    {
        "type", "name", "linkName", "mode", "size", "uid", "gid", "modtime", "accesstime",
        "changetime", "devMajor", "devMinor", "xattrs", "digest", "offset", "endOffset",
        "chunkSize", "chunkOffset", "chunkDigest", "chunkType",
    }
)  # fmt: skip
