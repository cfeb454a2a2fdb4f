"""Which files and chunks other layers of the store already hold, by digest (what
upstream's ``layersCache`` answers), built from the TOCs those layers recorded."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

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
    def build(cls, layers: Iterable[tuple[str, bytes]]) -> LayerIndex:
        """From (layer ID, TOC document) pairs; the first layer listing a digest wins.
        A TOC that does not parse is skipped, as upstream skips it."""
        index = cls()
        for layer, manifest in layers:
            try:
                entries = toc.parse(manifest)
            except InvalidTOC:
                continue
            index._add(layer, entries)
        return index

    def _add(self, layer: str, entries: list[toc.Entry]) -> None:
        current = ""
        for e in entries:
            if e.type == toc.REG:
                current = e.name
                if e.digest and e.size:
                    loc = Location(layer, e.name)
                    self.files.setdefault(e.digest, loc)
                    self.fingerprints.setdefault(hard_link_fingerprint(e), loc)
            if e.chunk_digest and e.type in (toc.REG, toc.CHUNK) and e.name == current:
                self.chunks.setdefault(e.chunk_digest, Location(layer, e.name, e.chunk_offset))
