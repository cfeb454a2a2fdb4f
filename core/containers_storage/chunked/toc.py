"""Table-of-contents entries of zstd:chunked and eStargz layers.

Both formats list every tar entry as a JSON object (``{"version": 1, "entries": [...]}``);
files cut into chunks continue with ``"type": "chunk"`` entries. Keys are read without
regard to case, as upstream's reader does, and unknown keys are ignored. Entries are
written in upstream's field order with Go's omit-empty rules, so a TOC we write reads the
same to upstream and has the digest upstream computes over it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from ..gojson import GoTime, dumps, go_map
from .errors import InvalidTOC

REG = "reg"
CHUNK = "chunk"
HARDLINK = "hardlink"
CHAR = "char"
BLOCK = "block"
DIR = "dir"
FIFO = "fifo"
SYMLINK = "symlink"
TYPES = frozenset({REG, CHUNK, HARDLINK, CHAR, BLOCK, DIR, FIFO, SYMLINK})

CHUNK_DATA = ""
CHUNK_ZEROS = "zeros"

#: the TOC (and its tar entry in eStargz) may not exceed what upstream accepts
MAX_TOC_SIZE = 50 << 20


@dataclass(slots=True)
class Entry:
    type: str
    name: str
    linkname: str = ""
    mode: int = 0
    size: int = 0
    uid: int = 0
    gid: int = 0
    modtime: GoTime | None = None
    accesstime: GoTime | None = None
    changetime: GoTime | None = None
    devmajor: int = 0
    devminor: int = 0
    #: name -> base64 of the value, as in the JSON
    xattrs: dict[str, str] = field(default_factory=dict)
    digest: str = ""
    offset: int = 0
    end_offset: int = 0
    chunk_size: int = 0
    chunk_offset: int = 0
    chunk_digest: str = ""
    chunk_type: str = ""

    def xattr_values(self) -> dict[str, bytes]:
        try:
            return {k: base64.b64decode(v, validate=True) for k, v in self.xattrs.items()}
        except ValueError:
            raise InvalidTOC(f"{self.name!r}", message="xattr value is not base64") from None

    def to_json(self) -> dict[str, Any]:
        """Upstream's struct order; empty values omitted (times only when absent)."""
        out: dict[str, Any] = {"type": self.type, "name": self.name}
        pairs: list[tuple[str, Any]] = [
            ("linkName", self.linkname),
            ("mode", self.mode),
            ("size", self.size),
            ("uid", self.uid),
            ("gid", self.gid),
        ]
        out.update((k, v) for k, v in pairs if v)
        for key, t in (
            ("modtime", self.modtime),
            ("accesstime", self.accesstime),
            ("changetime", self.changetime),
        ):
            if t is not None:
                out[key] = t.rfc3339nano()
        pairs = [
            ("devMajor", self.devmajor),
            ("devMinor", self.devminor),
            ("xattrs", go_map(self.xattrs) if self.xattrs else None),
            ("digest", self.digest),
            ("offset", self.offset),
            ("endOffset", self.end_offset),
            ("chunkSize", self.chunk_size),
            ("chunkOffset", self.chunk_offset),
            ("chunkDigest", self.chunk_digest),
            ("chunkType", self.chunk_type),
        ]
        out.update((k, v) for k, v in pairs if v)
        return out


_INT_KEYS = {
    "mode": "mode",
    "size": "size",
    "uid": "uid",
    "gid": "gid",
    "devmajor": "devmajor",
    "devminor": "devminor",
    "offset": "offset",
    "endoffset": "end_offset",
    "chunksize": "chunk_size",
    "chunkoffset": "chunk_offset",
}
_STR_KEYS = {
    "type": "type",
    "name": "name",
    "linkname": "linkname",
    "digest": "digest",
    "chunkdigest": "chunk_digest",
    "chunktype": "chunk_type",
}
_TIME_KEYS = {"modtime": "modtime", "accesstime": "accesstime", "changetime": "changetime"}


#: every key as written (upstream's spelling) and lower-cased -> (attribute, kind)
_KEYS: dict[str, tuple[str, int]] = {}
for _table, _kind in ((_STR_KEYS, 0), (_INT_KEYS, 1), (_TIME_KEYS, 2)):
    for _low, _attr in _table.items():
        _KEYS[_low] = (_attr, _kind)
for _name in (
    "linkName",
    "devMajor",
    "devMinor",
    "endOffset",
    "chunkSize",
    "chunkOffset",
    "chunkDigest",
    "chunkType",
):
    _KEYS[_name] = _KEYS[_name.lower()]
_KEYS["xattrs"] = ("xattrs", 3)
_INT_MIN, _INT_MAX = -(1 << 63), 1 << 63


def parse_entry(obj: Any, index: int, times: dict[str, GoTime]) -> Entry:
    """One entry of the ``entries`` array (``times`` caches parsed time strings)."""
    if not isinstance(obj, dict):
        raise InvalidTOC(f"entry {index}", message="not a JSON object")
    values: dict[str, Any] = {"type": "", "name": ""}
    for key, value in obj.items():
        spec = _KEYS.get(key) or _KEYS.get(key.lower())
        if spec is None:
            continue
        attr, kind = spec
        if kind == 0:
            if value.__class__ is not str:
                raise InvalidTOC(f"entry {index}", message=f"{key} is not a string")
            values[attr] = value
        elif kind == 1:
            if value.__class__ is not int:
                raise InvalidTOC(f"entry {index}", message=f"{key} is not an integer")
            if not _INT_MIN <= value < _INT_MAX:
                raise InvalidTOC(f"entry {index}", message=f"{key} is out of range")
            values[attr] = value
        elif kind == 2:
            if value.__class__ is not str:
                raise InvalidTOC(f"entry {index}", message=f"{key} is not a string")
            # many entries share their times: each distinct string is parsed once
            t = times.get(value)
            if t is None:
                try:
                    t = times[value] = GoTime.parse(value)
                except ValueError as exc:
                    raise InvalidTOC(f"entry {index}", message=str(exc)) from None
            values[attr] = t
        else:
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise InvalidTOC(f"entry {index}", message="xattrs is not an object of strings")
            values["xattrs"] = dict(value)
    return Entry(**values)


def document_entries(manifest: bytes) -> list[Any]:
    """The raw ``entries`` array of a TOC document (for readers that want a few keys of
    many entries); :class:`InvalidTOC` when it is not one."""
    try:
        doc = json.loads(manifest)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidTOC("parsing the TOC", message=str(exc)) from None
    if not isinstance(doc, dict):
        raise InvalidTOC("parsing the TOC", message="not a JSON object")
    entries = doc.get("entries")
    if entries is None:
        entries = next((v for k, v in doc.items() if k.lower() == "entries"), None)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise InvalidTOC("parsing the TOC", message="entries is not an array")
    return entries


def parse(manifest: bytes) -> list[Entry]:
    """The entries of a TOC document; :class:`InvalidTOC` when it is not one."""
    times: dict[str, GoTime] = {}
    return [parse_entry(obj, i, times) for i, obj in enumerate(document_entries(manifest))]


def dump(entries: list[Entry]) -> bytes:
    """The TOC document as upstream's writer produces it."""
    body = ",".join(dumps(e.to_json()) for e in entries)
    return f'{{"version":1,"entries":[{body}]}}'.encode()
