"""The three record types (on-disk.md §4, §5, §8) and their JSON form.

Records are immutable: the stores replace a record when it changes, so the objects handed
to callers can be shared without copying (listing 20,000 layers copies nothing). Unknown
JSON keys found on disk travel in ``extra`` and are written back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..archive.types import Compression
from ..gojson import GoTime, go_map
from ..idtools import IDMap, IDMaps
from ..structs import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: layer flag marking a layer whose creation or deletion has not finished (§4.2)
INCOMPLETE_FLAG = "incomplete"
#: container flags (§8)
MOUNT_LABEL_FLAG = "MountLabel"
PROCESS_LABEL_FLAG = "ProcessLabel"
MOUNT_OPTS_FLAG = "MountOpts"
VOLATILE_FLAG = "Volatile"


class RecordFormatError(ValueError):
    """A record's JSON has a field of the wrong type; the loader names the file."""


# --- typed field readers ----------------------------------------------------------------
#: the range of Go's ``int64`` (sizes, counts): what upstream can read back
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: the range of Go's ``uint32`` (UID and GID sets)
UINT32_MAX = (1 << 32) - 1


def _shown(v: object) -> str:
    """A wrong value for a message: short scalars as they are, anything else by its kind
    (a value may be huge or nested thousands deep)."""
    if isinstance(v, str | int | float) and not isinstance(v, bool):
        text = repr(v)
        return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
    return f"a JSON {_kind(v)}"


def _kind(v: object) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    return type(v).__name__


def _str(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    if v.__class__ is str:
        return v  # type: ignore[no-any-return]
    if v is None:
        return ""
    raise RecordFormatError(f"field {key!r} is not a string: {_shown(v)}")


def _int(d: Mapping[str, Any], key: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """An integer field; floats (``1.5``, ``1e3``) and numbers outside ``[low, high]`` are
    refused with the field named, as upstream's decoder refuses them."""
    v = d.get(key)
    if v is None:
        return 0
    if v.__class__ is not int:
        raise RecordFormatError(f"field {key!r} is not an integer: {_shown(v)}")
    if not low <= v <= high:
        raise RecordFormatError(f"field {key!r} is out of range [{low}, {high}]: {_shown(v)}")
    return v  # type: ignore[no-any-return]


def _strs(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    v = d.get(key)
    if v is None:
        return ()
    if v.__class__ is list:
        t = tuple(v)
        for x in t:
            if x.__class__ is not str:
                break
        else:
            return t
    raise RecordFormatError(f"field {key!r} is not a list of strings")


def _ids(d: Mapping[str, Any], key: str) -> tuple[int, ...]:
    """A list of UIDs or GIDs (Go ``[]uint32``)."""
    v = d.get(key)
    if v is None:
        return ()
    if v.__class__ is list:
        t = tuple(v)
        for x in t:
            if x.__class__ is not int or not 0 <= x <= UINT32_MAX:
                break
        else:
            return t
    raise RecordFormatError(f"field {key!r} is not a list of integers in [0, {UINT32_MAX}]")


def _obj(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise RecordFormatError(f"field {key!r} is not an object")
    return dict(v)


def _int_map(d: Mapping[str, Any], key: str) -> dict[str, int]:
    m = _obj(d, key)
    for k in m:
        try:
            m[k] = _int(m, k)
        except RecordFormatError as exc:
            raise RecordFormatError(f"field {key!r}: {exc}") from None
    return m


def _str_map(d: Mapping[str, Any], key: str) -> dict[str, str]:
    m = _obj(d, key)
    for k in m:
        m[k] = _str(m, k)
    return m


def _time(d: Mapping[str, Any], key: str) -> GoTime:
    v = d.get(key)
    if v is None:
        return GoTime.zero()
    if not isinstance(v, str):
        raise RecordFormatError(f"field {key!r} is not a time string: {_shown(v)}")
    try:
        return GoTime.parse(v)
    except ValueError as exc:
        raise RecordFormatError(str(exc)) from None


def _maps(d: Mapping[str, Any], key: str) -> IDMaps:
    v = d.get(key)
    if v is None:
        return ()
    if not isinstance(v, list):
        raise RecordFormatError(f"field {key!r} is not a list of ID map entries")
    try:
        return tuple(IDMap.from_json(e) for e in v)
    except (KeyError, TypeError, ValueError) as exc:
        why = f": {exc}" if isinstance(exc, ValueError) else ""
        raise RecordFormatError(f"field {key!r} has a malformed ID map entry{why}") from None


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Go's ``omitempty``: leave out "", 0, false, empty lists and maps."""
    if value:
        out[key] = value


def _maps_json(maps: IDMaps) -> list[dict[str, int]]:
    return [m.to_json() for m in maps]


def _extra(d: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    if d.keys() <= known:
        return {}
    return {k: v for k, v in d.items() if k not in known}


# --- layers -----------------------------------------------------------------------------
_LAYER_KEYS = frozenset(
    [
        "id",
        "names",
        "parent",
        "metadata",
        "mountlabel",
        "created",
        "compressed-diff-digest",
        "compressed-size",
        "diff-digest",
        "toc-digest",
        "diff-size",
        "compression",
        "uidset",
        "gidset",
        "flags",
        "uidmap",
        "gidmap",
        "big-data-names",
    ]
)


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer record (on-disk.md §4) plus what is derived at run time."""

    id: str
    names: tuple[str, ...] = ()
    parent: str = ""
    metadata: str = ""
    mount_label: str = ""
    created: GoTime = field(default_factory=GoTime.zero)
    #: digest and size of the blob last applied, as given (``compressed-diff-digest``)
    compressed_digest: str = ""
    compressed_size: int = 0
    #: DiffID: digest and size of the uncompressed stream
    uncompressed_digest: str = ""
    #: a partial pull's TOC digest (upstream 1.52's ``toc-digest``): the TOC was verified,
    #: the uncompressed stream was not, so ``uncompressed_digest`` stays empty
    toc_digest: str = ""
    uncompressed_size: int = 0
    compression: Compression = Compression.NONE
    uidset: tuple[int, ...] = ()
    gidset: tuple[int, ...] = ()
    flags: dict[str, Any] = field(default_factory=dict)
    uid_map: IDMaps = ()
    gid_map: IDMaps = ()
    big_data_names: tuple[str, ...] = ()
    # -- not stored in layers.json --
    #: where the layer is mounted (from mountpoints.json), "" when not mounted
    mount_point: str = ""
    mount_count: int = 0
    #: the record comes from a read-only (additional) store
    read_only: bool = False
    #: the record lives in volatile-layers.json
    volatile: bool = False
    #: unknown JSON keys, written back as found
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def incomplete(self) -> bool:
        return self.flags.get(INCOMPLETE_FLAG) is True

    @property
    def size(self) -> int | None:
        """The uncompressed diff size when known (a digest was recorded), else None."""
        return self.uncompressed_size if self.uncompressed_digest or self.toc_digest else None

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, read_only: bool = False, volatile: bool = False) -> Layer:
        return cls(
            id=_str(d, "id"),
            names=_strs(d, "names"),
            parent=_str(d, "parent"),
            metadata=_str(d, "metadata"),
            mount_label=_str(d, "mountlabel"),
            created=_time(d, "created"),
            compressed_digest=_str(d, "compressed-diff-digest"),
            compressed_size=_int(d, "compressed-size"),
            uncompressed_digest=_str(d, "diff-digest"),
            toc_digest=_str(d, "toc-digest"),
            uncompressed_size=_int(d, "diff-size"),
            compression=Compression(_int(d, "compression")),
            uidset=_ids(d, "uidset"),
            gidset=_ids(d, "gidset"),
            flags=_obj(d, "flags"),
            uid_map=_maps(d, "uidmap"),
            gid_map=_maps(d, "gidmap"),
            big_data_names=_strs(d, "big-data-names"),
            read_only=read_only,
            volatile=volatile,
            extra=_extra(d, _LAYER_KEYS),
        )

    def to_json(self, *, extra: bool = True) -> dict[str, Any]:
        """The record as upstream writes it (``extra=False``: without unknown keys, as
        upstream's tool prints it)."""
        out: dict[str, Any] = {"id": self.id}
        _put(out, "names", list(self.names))
        _put(out, "parent", self.parent)
        _put(out, "metadata", self.metadata)
        _put(out, "mountlabel", self.mount_label)
        out["created"] = self.created.rfc3339nano()
        _put(out, "compressed-diff-digest", self.compressed_digest)
        _put(out, "compressed-size", self.compressed_size)
        _put(out, "diff-digest", self.uncompressed_digest)
        _put(out, "toc-digest", self.toc_digest)
        _put(out, "diff-size", self.uncompressed_size)
        _put(out, "compression", self.compression)
        _put(out, "uidset", list(self.uidset))
        _put(out, "gidset", list(self.gidset))
        _put(out, "flags", go_map(self.flags))
        _put(out, "uidmap", _maps_json(self.uid_map))
        _put(out, "gidmap", _maps_json(self.gid_map))
        _put(out, "big-data-names", list(self.big_data_names))
        if extra and self.extra:
            out.update(self.extra)
        return out


# --- images -----------------------------------------------------------------------------
_IMAGE_KEYS = frozenset(
    [
        "id",
        "digest",
        "names",
        "names-history",
        "layer",
        "mapped-layers",
        "metadata",
        "big-data-names",
        "big-data-sizes",
        "big-data-digests",
        "created",
        "flags",
    ]
)


@dataclass(frozen=True, slots=True)
class Image:
    """An image record (on-disk.md §5)."""

    id: str
    #: primary lookup digest
    digest: str = ""
    #: not stored: ``digest`` plus the digests of ``manifest*`` big data (§5.3)
    digests: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    names_history: tuple[str, ...] = ()
    top_layer: str = ""
    mapped_top_layers: tuple[str, ...] = ()
    metadata: str = ""
    big_data_names: tuple[str, ...] = ()
    big_data_sizes: dict[str, int] = field(default_factory=dict)
    big_data_digests: dict[str, str] = field(default_factory=dict)
    created: GoTime = field(default_factory=GoTime.zero)
    flags: dict[str, Any] = field(default_factory=dict)
    read_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(
        cls, d: Mapping[str, Any], *, read_only: bool = False, digests: tuple[str, ...] | None = None
    ) -> Image:
        """The record; ``digests``, when the caller computed them from ``d`` already
        (``records.images.digest_list``), are set with the digest they fill in."""
        rid = _str(d, "id")
        digest = _str(d, "digest")
        if digests is None:
            digests = ()
        elif not digest and digests:
            digest = digests[0]
        return cls(
            id=rid,
            digest=digest,
            digests=digests,
            names=_strs(d, "names"),
            names_history=_strs(d, "names-history"),
            top_layer=_str(d, "layer"),
            mapped_top_layers=_strs(d, "mapped-layers"),
            metadata=_str(d, "metadata"),
            big_data_names=_strs(d, "big-data-names"),
            big_data_sizes=_int_map(d, "big-data-sizes"),
            big_data_digests=_str_map(d, "big-data-digests"),
            created=_time(d, "created"),
            flags=_obj(d, "flags"),
            read_only=read_only,
            extra=_extra(d, _IMAGE_KEYS),
        )

    def to_json(self, *, extra: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        _put(out, "digest", self.digest)
        _put(out, "names", list(self.names))
        _put(out, "names-history", list(self.names_history))
        _put(out, "layer", self.top_layer)
        _put(out, "mapped-layers", list(self.mapped_top_layers))
        _put(out, "metadata", self.metadata)
        _put(out, "big-data-names", list(self.big_data_names))
        _put(out, "big-data-sizes", go_map(self.big_data_sizes))
        _put(out, "big-data-digests", go_map(self.big_data_digests))
        out["created"] = self.created.rfc3339nano()
        _put(out, "flags", go_map(self.flags))
        if extra and self.extra:
            out.update(self.extra)
        return out


# --- containers -------------------------------------------------------------------------
_CONTAINER_KEYS = frozenset(
    [
        "id",
        "names",
        "image",
        "layer",
        "metadata",
        "big-data-names",
        "big-data-sizes",
        "big-data-digests",
        "created",
        "uidmap",
        "gidmap",
        "flags",
    ]
)


@dataclass(frozen=True, slots=True)
class Container:
    """A container record (on-disk.md §8)."""

    id: str
    names: tuple[str, ...] = ()
    #: "" when created without an image
    image_id: str = ""
    layer_id: str = ""
    metadata: str = ""
    big_data_names: tuple[str, ...] = ()
    big_data_sizes: dict[str, int] = field(default_factory=dict)
    big_data_digests: dict[str, str] = field(default_factory=dict)
    created: GoTime = field(default_factory=GoTime.zero)
    uid_map: IDMaps = ()
    gid_map: IDMaps = ()
    flags: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mount_label(self) -> str:
        v = self.flags.get(MOUNT_LABEL_FLAG)
        return v if isinstance(v, str) else ""

    @property
    def process_label(self) -> str:
        v = self.flags.get(PROCESS_LABEL_FLAG)
        return v if isinstance(v, str) else ""

    @property
    def mount_opts(self) -> tuple[str, ...]:
        v = self.flags.get(MOUNT_OPTS_FLAG)
        return tuple(x for x in v if isinstance(x, str)) if isinstance(v, list) else ()

    @property
    def volatile(self) -> bool:
        return self.flags.get(VOLATILE_FLAG) is True

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Container:
        return cls(
            id=_str(d, "id"),
            names=_strs(d, "names"),
            image_id=_str(d, "image"),
            layer_id=_str(d, "layer"),
            metadata=_str(d, "metadata"),
            big_data_names=_strs(d, "big-data-names"),
            big_data_sizes=_int_map(d, "big-data-sizes"),
            big_data_digests=_str_map(d, "big-data-digests"),
            created=_time(d, "created"),
            uid_map=_maps(d, "uidmap"),
            gid_map=_maps(d, "gidmap"),
            flags=_obj(d, "flags"),
            extra=_extra(d, _CONTAINER_KEYS),
        )

    def to_json(self, *, extra: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        _put(out, "names", list(self.names))
        out["image"] = self.image_id
        out["layer"] = self.layer_id
        _put(out, "metadata", self.metadata)
        _put(out, "big-data-names", list(self.big_data_names))
        _put(out, "big-data-sizes", go_map(self.big_data_sizes))
        _put(out, "big-data-digests", go_map(self.big_data_digests))
        out["created"] = self.created.rfc3339nano()
        _put(out, "uidmap", _maps_json(self.uid_map))
        _put(out, "gidmap", _maps_json(self.gid_map))
        _put(out, "flags", go_map(self.flags))
        if extra and self.extra:
            out.update(self.extra)
        return out
