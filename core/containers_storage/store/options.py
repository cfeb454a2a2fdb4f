"""What callers hand the Store and what :meth:`Store.check` hands back: the option and
report types (upstream's LayerOptions, ImageOptions, ContainerOptions, CheckOptions ...).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from ..archive.types import Compression
from ..gojson import GoTime
from ..idtools import IDMap, IDMaps
from ..structs import dataclass, field
from .argtypes import (
    anything,
    data,
    fields,
    flag,
    instance,
    integer,
    mapping,
    optional,
    path,
    sequence_of,
    text,
    texts,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: a path parameter: ``str`` or :class:`os.PathLike` (``pathlib.Path``)
StrPath = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class IDMappingOptions:
    """How a new layer or container maps IDs (upstream types.IDMappingOptions).

    ``host_*_mapping`` requests the host's IDs; otherwise empty maps inherit the parent
    layer's (or the image's, or the store's default) maps.
    """

    host_uid_mapping: bool = False
    host_gid_mapping: bool = False
    uid_map: IDMaps = ()
    gid_map: IDMaps = ()

    def __post_init__(self) -> None:
        fields(
            self,
            host_uid_mapping=flag,
            host_gid_mapping=flag,
            uid_map=sequence_of(IDMap),
            gid_map=sequence_of(IDMap),
        )

    @classmethod
    def parse(
        cls,
        uid_maps: Sequence[str] = (),
        gid_maps: Sequence[str] = (),
        sub_uid_user: str = "",
        sub_gid_group: str = "",
    ) -> IDMappingOptions:
        """Options from ``container:host:size`` texts and /etc/subuid, /etc/subgid entries
        (upstream ParseIDMapping): either kind given alone serves for both; without any,
        a non-root caller maps container root to itself and root gets the host's IDs.
        Subordinate ranges come first, the texts are appended. Raises ConfigError."""
        from ..config import parse_id_map_setting, subordinate_ids
        from ..errors import ConfigError

        sub_uid_user, sub_gid_group = sub_uid_user or sub_gid_group, sub_gid_group or sub_uid_user
        uid_maps, gid_maps = list(uid_maps or gid_maps), list(gid_maps or uid_maps)
        if not uid_maps and not sub_uid_user and os.getuid() != 0:
            uid_maps = [f"0:{os.getuid()}:1"]
        if not gid_maps and not sub_gid_group and os.getuid() != 0:
            gid_maps = [f"0:{os.getgid()}:1"]
        uids: IDMaps = ()
        gids: IDMaps = ()
        if sub_uid_user:
            try:
                uids = subordinate_ids(sub_uid_user, "/etc/subuid")
                gids = subordinate_ids(sub_gid_group, "/etc/subgid")
            except ConfigError as e:
                raise ConfigError(
                    message=f"failed to create NewIDMappings for uidmap={sub_uid_user} "
                    f"gidmap={sub_gid_group}: {e}"
                ) from None
        for specs, kind in ((uid_maps, "UID"), (gid_maps, "GID")):
            parsed: IDMaps = ()
            try:
                for spec in filter(None, specs):
                    parsed += parse_id_map_setting(spec, kind)
            except ConfigError as e:
                raise ConfigError(
                    message=f"failed to create Parse{kind}Map {kind}=[{' '.join(specs)}]: {e}"
                ) from None
            if kind == "UID":
                uids += parsed
            else:
                gids += parsed
        return cls(host_uid_mapping=not uids, host_gid_mapping=not gids, uid_map=uids, gid_map=gids)


@dataclass(frozen=True, slots=True)
class LayerOptions:
    id_mapping: IDMappingOptions = IDMappingOptions()
    #: create the layer as a copy of this layer (its contents, digests, tar-split)
    template_layer: str = ""
    #: digest and size of the compressed blob the caller will apply (recorded as given)
    original_digest: str = ""
    original_size: int | None = None
    uncompressed_digest: str = ""
    flags: Mapping[str, Any] = field(default_factory=dict)
    #: initial layer big data, in order
    big_data: Mapping[str, bytes] = field(default_factory=dict)
    #: record the layer in volatile-layers.json (no fsync)
    volatile: bool = False
    #: per-layer driver options such as ``size``
    storage_opt: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fields(
            self,
            id_mapping=instance(IDMappingOptions),
            template_layer=text,
            original_digest=text,
            original_size=optional(integer),
            uncompressed_digest=text,
            flags=mapping(anything),
            big_data=mapping(data),
            volatile=flag,
            storage_opt=mapping(text),
        )


@dataclass(frozen=True, slots=True)
class ImageBigData:
    """One big-data item of a new image (upstream ImageBigDataOption)."""

    key: str
    data: bytes
    #: recorded as given (e.g. a manifest's own digest); empty means the SHA-256 of ``data``
    digest: str = ""

    def __post_init__(self) -> None:
        fields(self, key=text, data=data, digest=text)


@dataclass(frozen=True, slots=True)
class ImageOptions:
    #: creation time; None means now
    created: GoTime | None = None
    digest: str = ""
    digests: Sequence[str] = ()
    metadata: str = ""
    #: initial big data, in order: a mapping of key to bytes, or items with their digests
    big_data: Mapping[str, bytes] | Sequence[ImageBigData] = field(default_factory=dict)
    names_history: Sequence[str] = ()
    flags: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fields(
            self,
            created=optional(instance(GoTime)),
            digest=text,
            digests=texts,
            metadata=text,
            big_data=_image_big_data,
            names_history=texts,
            flags=mapping(anything),
        )


@dataclass(frozen=True, slots=True)
class AutoUserNsOptions:
    """How to size an automatic user namespace (upstream types.AutoUserNsOptions)."""

    #: exact number of IDs; 0 sizes it from the image (at least ``initial_size`` and
    #: the store's minimum, at most its maximum)
    size: int = 0
    initial_size: int = 0
    #: host files read instead of the image's /etc/passwd and /etc/group
    passwd_file: StrPath = ""
    group_file: StrPath = ""
    #: maps added as given; their IDs are left out of the automatic ranges
    additional_uid_mappings: IDMaps = ()
    additional_gid_mappings: IDMaps = ()

    def __post_init__(self) -> None:
        fields(
            self,
            size=integer,
            initial_size=integer,
            passwd_file=path,
            group_file=path,
            additional_uid_mappings=sequence_of(IDMap),
            additional_gid_mappings=sequence_of(IDMap),
        )


@dataclass(frozen=True, slots=True)
class ContainerOptions:
    id_mapping: IDMappingOptions = IDMappingOptions()
    #: pick the container's maps automatically (upstream ``userns=auto``)
    auto_userns: bool = False
    auto_userns_opts: AutoUserNsOptions = AutoUserNsOptions()
    metadata: str = ""
    big_data: Mapping[str, bytes] = field(default_factory=dict)
    #: ``MountLabel``, ``ProcessLabel``, ``MountOpts`` ... (on-disk.md §8)
    flags: Mapping[str, Any] = field(default_factory=dict)
    #: mount options used whenever the container is mounted
    mount_opts: Sequence[str] = ()
    volatile: bool = False
    #: per-layer driver options for the container's layer
    storage_opt: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fields(
            self,
            id_mapping=instance(IDMappingOptions),
            auto_userns=flag,
            auto_userns_opts=instance(AutoUserNsOptions),
            metadata=text,
            big_data=mapping(data),
            flags=mapping(anything),
            mount_opts=texts,
            volatile=flag,
            storage_opt=mapping(text),
        )


@dataclass(frozen=True, slots=True)
class DiffOptions:
    #: None: the compression recorded for the layer
    compression: Compression | None = None

    def __post_init__(self) -> None:
        # upstream's numbers given as plain ints (older callers) become the enum
        if self.compression is not None and not isinstance(self.compression, Compression):
            if not isinstance(self.compression, int) or isinstance(self.compression, bool):
                raise TypeError(f"compression must be a Compression, not {type(self.compression).__name__}")
            object.__setattr__(self, "compression", Compression(self.compression))


def _image_big_data(param: str, value: object) -> None:
    """A mapping of key to bytes, or a sequence of :class:`ImageBigData`."""
    if isinstance(value, Mapping):
        mapping(data)(param, value)
    else:
        sequence_of(ImageBigData)(param, value)


#: layers nobody uses are reported by :meth:`Store.check` once older than this (seconds)
DEFAULT_UNREFERENCED_AGE = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What :meth:`Store.check` examines (upstream's CheckOptions)."""

    #: seconds; None means a day
    layer_unreferenced_maximum_age: float | None = None
    #: regenerate each layer's diff and compare its digest and size
    layer_digests: bool = False
    #: mount each layer of the primary store
    layer_mountable: bool = False
    #: compare mounted trees with the replay of their diffs (needs the two above)
    layer_contents: bool = False
    layer_data: bool = False
    image_data: bool = False
    container_data: bool = False

    @classmethod
    def most(cls) -> CheckOptions:
        """Everything but the content comparison."""
        return cls(
            layer_digests=True, layer_mountable=True, layer_data=True, image_data=True, container_data=True
        )

    @classmethod
    def everything(cls) -> CheckOptions:
        return cls(
            layer_digests=True,
            layer_mountable=True,
            layer_contents=True,
            layer_data=True,
            image_data=True,
            container_data=True,
        )


@dataclass
class CheckReport:
    """Problems by item ID; images carry their layers' problems, containers their image's."""

    layers: dict[str, list[Exception]] = field(default_factory=dict)
    ro_layers: dict[str, list[Exception]] = field(default_factory=dict)
    images: dict[str, list[Exception]] = field(default_factory=dict)
    ro_images: dict[str, list[Exception]] = field(default_factory=dict)
    containers: dict[str, list[Exception]] = field(default_factory=dict)
    #: layer ID -> parent ID, for removal order
    layer_parents: dict[str, str] = field(default_factory=dict)
    #: driver enumeration order (1-based) of layers, for removing unaccounted ones
    layer_order: dict[str, int] = field(default_factory=dict)

    def drop_empty(self) -> None:
        for items in (self.layers, self.ro_layers, self.images, self.ro_images, self.containers):
            for key in [k for k, v in items.items() if not v]:
                del items[key]


@dataclass(frozen=True, slots=True)
class RepairOptions:
    #: also delete damaged containers
    remove_containers: bool = False

    @classmethod
    def everything(cls) -> RepairOptions:
        """Every optional remedy on (upstream RepairEverything)."""
        return cls(remove_containers=True)


#: computes the digest of a manifest (``sha256:<hex>``) for big data keys ``manifest*``
ManifestDigester = Callable[[bytes], str]
