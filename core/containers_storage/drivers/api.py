"""The graph-driver contract (``docs/spec/driver-api.md``), as a base class.

A driver stores layer *contents*; records, locks, tar-split and cross-process mount counts
belong to the store above it. A minimal driver implements only the directory operations
(:meth:`Driver.create`, :meth:`Driver.remove`, :meth:`Driver.get`, :meth:`Driver.put`,
:meth:`Driver.exists`, :meth:`Driver.list_layers`); the diff operations default to the
generic "naive" implementation in :mod:`containers_storage.drivers.naive`, which walks
mounted trees. Drivers with a cheaper native diff override them.

Drivers import only this module, :mod:`containers_storage.errors`,
:mod:`containers_storage.idtools` and the helpers under :mod:`containers_storage.drivers`
and :mod:`containers_storage.archive` -- never the store, records or CLI.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence

from ..archive.types import Change as Change
from ..archive.types import ChangeKind as ChangeKind
from ..archive.types import WhiteoutFormat as WhiteoutFormat
from ..idtools import IDMappings
from ..structs import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import IO, ClassVar

    from ..archive.types import FileGetter


@dataclass(frozen=True, slots=True)
class DriverConfig:
    """What a driver is initialised with (upstream graphdriver.Options plus the home)."""

    #: name of the driver's directory under the roots: its canonical name (an alias only
    #: for a store upstream's tool wrote under the alias, see drivers/select.py)
    requested_name: str
    #: graph root (image-store root in split mode)
    root: str
    run_root: str
    #: in split mode, the graph root: an additional read-only store for the driver
    image_store: str = ""
    #: driver options as given, ``key=value`` (config.md §7)
    options: Sequence[str] = ()
    #: store-default ID maps; their root owns the directories the driver creates
    id_mappings: IDMappings = IDMappings()

    @property
    def home(self) -> str:
        import os.path

        return os.path.join(self.root, self.requested_name)


@dataclass(frozen=True, slots=True)
class CreateOpts:
    mount_label: str = ""
    #: per-layer options such as ``size``
    storage_opt: Mapping[str, str] = field(default_factory=dict)
    #: None: use the driver's defaults; otherwise the layer's own maps
    id_mappings: IDMappings | None = None


@dataclass(frozen=True, slots=True)
class MountOpts:
    mount_label: str = ""
    id_mappings: IDMappings = IDMappings()
    options: Sequence[str] = ()
    volatile: bool = False
    disable_shifting: bool = False

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


@dataclass(frozen=True, slots=True)
class ApplyDiffOpts:
    """An *uncompressed* tar stream and how to write it."""

    diff: IO[bytes]
    id_mappings: IDMappings = IDMappings()
    mount_label: str = ""
    ignore_chown_errors: bool = False
    #: permission mask forced on created files (overlay with a mount program)
    force_mask: int | None = None


@dataclass(frozen=True, slots=True)
class DiskUsage:
    size: int
    inodes: int


class Driver(abc.ABC):
    """Base class of graph drivers. See the module docstring and driver-api.md §2."""

    #: canonical name (directory prefix of the records: ``<name>-layers``); must be the
    #: name its :class:`DriverInfo` and entry point offer it under
    name: ClassVar[str]
    #: deletions on disk (for the generic apply)
    whiteout_format: ClassVar[WhiteoutFormat] = WhiteoutFormat.DELETE
    #: a restriction of layer IDs beyond "one path component", matched against the whole
    #: ID (ZFS dataset names); the store refuses other IDs before calling the driver
    layer_id_pattern: ClassVar[re.Pattern[str] | None] = None

    def __init__(self, config: DriverConfig) -> None:
        from .options import check_known_options

        check_known_options(type(self), config)  # also when built without a store (the kit)
        self.config = config
        self.home = config.home

    # -- probing -------------------------------------------------------------------
    #: The driver-option keys (:attr:`DriverConfig.options`) this driver takes, lower-case
    #: and without the ``<name>.`` prefix. The store refuses any other option, naming it,
    #: before :meth:`probe`; the default takes none, so an option (``--storage-opt``,
    #: ``[storage.options.<name>]``) is never ignored silently. ``None``: the driver checks
    #: its options itself (the built-in drivers do, with upstream's messages). Checked
    #: again when the driver is constructed, so a driver built directly refuses them too.
    #: :func:`containers_storage.drivers.options.option_map` reads them.
    option_keys: ClassVar[frozenset[str] | None] = frozenset()

    @classmethod
    def probe(cls, config: DriverConfig) -> None:
        """Raise a :data:`~containers_storage.errors.PROBE_SKIPPABLE` error saying why the
        driver cannot run for ``config`` here; return when it can. Must be cheap and must
        not change anything on disk."""

    # -- layer lifecycle -------------------------------------------------------------
    @abc.abstractmethod
    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        """New layer whose initial content equals ``parent`` (or is empty)."""

    def create_read_write(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        """Like :meth:`create`, for a layer that will be written (a container's)."""
        self.create(id, parent, opts)

    def create_from_template(
        self,
        id: str,
        template: str,
        template_mappings: IDMappings,
        parent: str | None,
        parent_mappings: IDMappings,
        opts: CreateOpts | None,
        read_write: bool,
    ) -> None:
        """New layer whose content equals ``template`` (the record's parent is ``parent``)."""
        if read_write:
            self.create_read_write(id, template, opts)
        else:
            self.create(id, template, opts)

    @abc.abstractmethod
    def remove(self, id: str) -> None:
        """Delete the layer's content. Missing content is not an error for every driver."""

    @abc.abstractmethod
    def get(self, id: str, opts: MountOpts | None = None) -> str:
        """Make the content accessible and return its path; calls nest and are counted."""

    @abc.abstractmethod
    def put(self, id: str) -> None:
        """Release one :meth:`get`; the last release unmounts."""

    @abc.abstractmethod
    def exists(self, id: str) -> bool: ...

    @abc.abstractmethod
    def list_layers(self) -> list[str]:
        """IDs of the layers in the primary location."""

    def status(self) -> list[tuple[str, str]]:
        """Ordered key/value pairs for ``containers-storage status`` (driver-api.md §6)."""
        return []

    def metadata(self, id: str) -> dict[str, str]:
        return {}

    def read_write_disk_usage(self, id: str) -> DiskUsage:
        from .fsutil import disk_usage

        path = self.get(id, MountOpts(options=("ro",)))
        try:
            return disk_usage(path)
        finally:
            self.put(id)

    def cleanup(self) -> None:
        """Release driver resources (called at store shutdown)."""

    def additional_image_stores(self) -> list[str]:
        return []

    def supports_shifting(self) -> bool:
        return False

    # -- diffs: generic defaults (driver-api.md §4) ------------------------------------
    def changes(
        self,
        id: str,
        id_mappings: IDMappings,
        parent: str | None,
        parent_mappings: IDMappings,
        mount_label: str = "",
    ) -> list[Change]:
        from . import naive

        return naive.changes(self, id, id_mappings, parent, parent_mappings, mount_label)

    def diff(
        self,
        id: str,
        id_mappings: IDMappings,
        parent: str | None,
        parent_mappings: IDMappings,
        mount_label: str = "",
    ) -> IO[bytes]:
        """Uncompressed tar of the changes; closing the stream releases the mounts."""
        from . import naive

        return naive.diff(self, id, id_mappings, parent, parent_mappings, mount_label)

    def diff_size(
        self,
        id: str,
        id_mappings: IDMappings,
        parent: str | None,
        parent_mappings: IDMappings,
        mount_label: str = "",
    ) -> int:
        from . import naive

        return naive.diff_size(self, id, id_mappings, parent, parent_mappings, mount_label)

    def apply_diff(self, id: str, parent: str | None, opts: ApplyDiffOpts) -> int:
        """Extract ``opts.diff`` into the layer; returns the sum of the entries' sizes."""
        from . import naive

        return naive.apply_diff(self, id, parent, opts)

    def update_layer_id_map(
        self, id: str, to_container: IDMappings, to_host: IDMappings, mount_label: str = ""
    ) -> None:
        """Re-own every file from ``to_container`` maps to ``to_host`` maps."""
        from . import naive

        naive.update_layer_id_map(self, id, to_container, to_host, mount_label)

    def diff_getter(self, id: str) -> FileGetter | None:
        """An opener of file contents by tar name, to replay tar-split without mounting;
        None makes the store mount the layer and read from the mount."""
        return None


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """What a driver distribution's plugin offers (see :mod:`containers_storage.hookspecs`)."""

    #: the driver's name: the same as its entry point's name and its class's ``name``
    name: str
    #: import the driver class only when it is used
    load: Callable[[], type[Driver]]
    #: other names the driver answers to; they share its directory (``overlay2``)
    aliases: tuple[str, ...] = ()
    #: probing order when no driver is named, lower first, whoever ships the driver;
    #: the built-in ones follow upstream's order: overlay 10, btrfs 30, zfs 40, vfs 100
    priority: int = 50
    description: str = ""
