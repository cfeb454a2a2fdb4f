"""The Store: layers, images and containers on one graph driver (upstream's ``Store``).

Open one with :func:`get_store`; use it as a context manager (``with get_store(opts) as
s:``) so the driver is released at the end. Every public method takes the locks it needs
in upstream's order (on-disk.md §7.5) and reloads records only when another process
changed them, so several processes -- ours or upstream's -- can share one store.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import pairwise
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from .drivers.api import Change, Driver, MountOpts
from .errors import (
    ContainerDataIncorrectSize,
    ContainerDataMissing,
    ContainerImageMissing,
    ContainerUnknown,
    DuplicateID,
    DuplicateName,
    ImageDataIncorrectSize,
    ImageDataMissing,
    ImageLayerMissing,
    ImageUnknown,
    ImageUsedByContainer,
    IncompleteOptions,
    InvalidID,
    LayerContentModified,
    LayerDataMissing,
    LayerHasChildren,
    LayerIncorrectContentDigest,
    LayerIncorrectContentSize,
    LayerMissing,
    LayerUnaccounted,
    LayerUnknown,
    LayerUnreferenced,
    LayerUsedByContainer,
    LayerUsedByImage,
    NotAContainer,
    NotALayer,
    NotAnID,
    NotAnImage,
    ParentIsContainer,
    StorageError,
    StoreIsReadOnly,
)
from .gojson import GoTime, go_quote
from .idtools import IDMappings, IDMaps
from .locks.api import Lock
from .records.bigdata import sha256_of
from .records.containers import ContainerStore
from .records.files import read_file, remove_tree, write_atomic
from .records.ids import dedupe, id_path, id_problem, validate_id
from .records.images import ImageStore
from .records.layers import LayerStore
from .records.model import (
    MOUNT_LABEL_FLAG,
    MOUNT_OPTS_FLAG,
    PROCESS_LABEL_FLAG,
    Container,
    Image,
    Layer,
)

if TYPE_CHECKING:
    from .additional_layers import AdditionalLayer
    from .chunked.differ import ChunkedDiffer, DifferOutput
    from .config import StoreOptions
    from .plugins import PluginHost
    from .records.contents import Header, Ignore

__all__ = [
    "AdditionalLayerHandle",
    "AutoUserNsOptions",
    "CheckOptions",
    "CheckReport",
    "Container",
    "ContainerOptions",
    "DiffOptions",
    "IDMappingOptions",
    "Image",
    "ImageBigData",
    "ImageOptions",
    "Layer",
    "LayerOptions",
    "RepairOptions",
    "Store",
    "get_store",
]


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
        from .config import parse_id_map_setting, subordinate_ids
        from .errors import ConfigError

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


@dataclass(frozen=True, slots=True)
class ImageBigData:
    """One big-data item of a new image (upstream ImageBigDataOption)."""

    key: str
    data: bytes
    #: recorded as given (e.g. a manifest's own digest); empty means the SHA-256 of ``data``
    digest: str = ""


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


@dataclass(frozen=True, slots=True)
class AutoUserNsOptions:
    """How to size an automatic user namespace (upstream types.AutoUserNsOptions)."""

    #: exact number of IDs; 0 sizes it from the image (at least ``initial_size`` and
    #: the store's minimum, at most its maximum)
    size: int = 0
    initial_size: int = 0
    #: host files read instead of the image's /etc/passwd and /etc/group
    passwd_file: str = ""
    group_file: str = ""
    #: maps added as given; their IDs are left out of the automatic ranges
    additional_uid_mappings: IDMaps = ()
    additional_gid_mappings: IDMaps = ()


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


@dataclass(frozen=True, slots=True)
class DiffOptions:
    #: None: the compression recorded for the layer; else 0 none, 1 bzip2, 2 gzip, 3 xz, 4 zstd
    compression: int | None = None


#: layers nobody uses are reported by :meth:`Store.check` once older than this (seconds)
DEFAULT_UNREFERENCED_AGE = 24 * 3600.0
_ID_RE = re.compile(r"[0-9a-f]{64}")


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


#: stores opened with ``get_store(..., shared=True)``, as upstream's GetStore keeps them
_shared_stores: list[Store] = []
_shared_lock = threading.Lock()


def get_store(options: StoreOptions, *, plugins: PluginHost | None = None, shared: bool = False) -> Store:
    """Open the store described by ``options`` (creating its directories), completed by
    the system configuration as upstream's GetStore does
    (:func:`~containers_storage.config.complete_store_options`: with every option empty,
    ``storage.conf``'s store; a missing root from it; a broken file is an error).

    With ``shared``, a store this process opened with ``shared`` on the same graph and
    run roots (and the same driver, when ``options`` names one) is returned instead of a
    new one, as upstream's GetStore does; :meth:`Store.free` (or closing it) forgets it.
    """
    from .config import complete_store_options

    options = complete_store_options(options)
    if not shared:
        return Store(options, plugins=plugins)
    graph, run = options.graph_root, options.run_root
    with _shared_lock:
        for store in _shared_stores:
            if (store.graph_root, store.run_root) == (graph, run) and options.driver_name in (
                "",
                store.graph_driver_name,
            ):
                return store
        store = Store(options, plugins=plugins)
        _shared_stores.append(store)
        return store


def _read_all(data: bytes | IO[bytes]) -> bytes:
    return data if isinstance(data, bytes | bytearray) else data.read()


class Store:
    """See the module docstring. Methods accept an ID, a name or an unambiguous ID prefix
    wherever upstream does."""

    def __init__(self, options: StoreOptions, *, plugins: PluginHost | None = None) -> None:
        from .plugins import get_plugin_host

        if not options.run_root or not options.graph_root:
            missing = [
                n for n, v in (("runroot", options.run_root), ("graphroot", options.graph_root)) if not v
            ]
            raise IncompleteOptions(f"no storage {' or '.join(missing)} specified")
        if options.image_store and os.path.abspath(options.image_store) == os.path.abspath(
            options.graph_root
        ):
            raise IncompleteOptions(
                message=f"imagestore {options.image_store} must either be not set "
                "or be a different than graphroot"
            )
        self._options = options
        self._plugins = plugins or get_plugin_host()
        self._plugins.load_external_plugins()
        self._run_root = os.path.abspath(options.run_root)
        self._graph_root = os.path.abspath(options.graph_root)
        self._image_store = os.path.abspath(options.image_store) if options.image_store else ""
        homes = [self._run_root, self._graph_root, self._image_store]
        if options.driver_name:  # the driver home is 0700 whoever creates it first
            homes += [os.path.join(self._image_store or self._graph_root, options.driver_name)]
        for d in filter(None, homes):
            _mkdir_private(d)
        self._graph_lock = self._lock(os.path.join(self._graph_root, "storage.lock"))
        self._userns_lock = self._lock(os.path.join(self._graph_root, "userns.lock"))
        self._driver: Driver | None = None
        self._graph_token = b""
        self._closed = False
        with self._graph():
            pass
        name = self.driver.name
        self._driver_name = name
        root = self._image_store or self._graph_root
        layer_dir = os.path.join(root, f"{name}-layers")
        run_layers = os.path.join(self._run_root, f"{name}-layers")
        image_dir = os.path.join(root, f"{name}-images")
        self._container_dir = os.path.join(self._graph_root, f"{name}-containers")
        self._run_container_dir = os.path.join(self._run_root, f"{name}-containers")
        for d in (
            os.path.join(self._graph_root, name),
            image_dir,
            self._container_dir,
            self._run_container_dir,
            os.path.join(self._run_root, f"{name}-locks"),
            layer_dir,
            run_layers,
        ):
            _mkdir_private(d)
        transient = options.transient_store
        self._layers = LayerStore(
            self._lock(os.path.join(layer_dir, "layers.lock")),
            layer_dir,
            run_layers if transient else layer_dir,
            self.driver,
            mounts_lock=self._lock(os.path.join(run_layers, "mountpoints.lock")),
            run_dir=run_layers,
        )
        self._images = ImageStore(self._lock(os.path.join(image_dir, "images.lock")), image_dir)
        cdir = self._run_container_dir if transient else self._container_dir
        self._containers = ContainerStore(
            self._lock(os.path.join(cdir, "containers.lock")), self._container_dir, cdir
        )
        # read-only additional image stores (on-disk.md §9.1), searched after the primary
        self._ro_layers: list[LayerStore] = []
        self._ro_images: list[ImageStore] = []
        for extra in self.driver.additional_image_stores():
            ro_layer_dir = os.path.join(extra, f"{name}-layers")
            self._ro_layers.append(
                LayerStore(
                    self._lock(os.path.join(ro_layer_dir, "layers.lock"), read_only=True),
                    ro_layer_dir,
                    ro_layer_dir,
                    self.driver,
                    read_only=True,
                )
            )
            ro_image_dir = os.path.join(extra, f"{name}-images")
            # in split mode the graph root's images stay writable (on-disk.md §9.2)
            writable = bool(self._image_store) and os.path.abspath(extra) == self._graph_root
            ro_image_lock = self._lock(os.path.join(ro_image_dir, "images.lock"), read_only=not writable)
            self._ro_images.append(ImageStore(ro_image_lock, ro_image_dir, read_only=not writable))
        for lk in (
            self._userns_lock,
            self._layers.lock,
            self._layers.mounts_lock,
            self._images.lock,
            self._containers.lock,
        ):
            # lock files exist from the store's first open, as upstream's do; taking the
            # lock (not a second open/close) keeps this process's other holds intact
            if lk is not None and not os.path.exists(lk.path):
                lk.rlock()
                lk.unlock()

    def _lock(self, path: str, read_only: bool = False) -> Lock:
        return self._plugins.lock(path, read_only, self._options.lock_kind)

    # -- locking helpers ---------------------------------------------------------------
    @contextmanager
    def _graph(self) -> Iterator[Driver]:
        """Hold ``storage.lock`` exclusively with a current driver: re-create the driver
        when another process shut it down (its token changed)."""
        from .drivers.select import open_driver

        if self._closed:
            raise StorageError(message="the store has been shut down")
        self._graph_lock.lock()
        try:
            if self._driver is not None and self._graph_lock.modified_since(self._graph_token):
                self._driver.cleanup()
                self._driver = None
            if self._driver is None:
                self._driver = open_driver(self._options, self._plugins)
                if hasattr(self, "_layers"):
                    self._layers.driver = self._driver
            self._graph_token = self._graph_lock.last_write()
            yield self._driver
        finally:
            self._graph_lock.unlock()

    def _fresh_driver(self) -> None:
        with self._graph():
            pass

    @contextmanager
    def _read_layers(self) -> Iterator[LayerStore]:
        self._fresh_driver()
        with self._layers.reading():
            yield self._layers

    @contextmanager
    def _write_layers(self) -> Iterator[LayerStore]:
        self._fresh_driver()
        with self._layers.writing():
            yield self._layers

    @contextmanager
    def _read_all_layers(self) -> Iterator[list[LayerStore]]:
        """Every layer store, primary first, held shared (in upstream's lock order)."""
        self._fresh_driver()
        with ExitStack() as stack:
            for store in (self._layers, *self._ro_layers):
                stack.enter_context(store.reading())
            yield [self._layers, *self._ro_layers]

    @contextmanager
    def _ro_layers_reading(self) -> Iterator[list[LayerStore]]:
        """The read-only layer stores held shared (taken after the primary's lock)."""
        with ExitStack() as stack:
            for store in self._ro_layers:
                stack.enter_context(store.reading())
            yield self._ro_layers

    @contextmanager
    def _read_all_images(self) -> Iterator[list[ImageStore]]:
        with ExitStack() as stack:
            for store in (self._images, *self._ro_images):
                stack.enter_context(store.reading())
            yield [self._images, *self._ro_images]

    @contextmanager
    def _ro_images_reading(self) -> Iterator[list[ImageStore]]:
        with ExitStack() as stack:
            for store in self._ro_images:
                stack.enter_context(store.reading())
            yield self._ro_images

    @staticmethod
    def _home(stores: Sequence[LayerStore], ref: str) -> tuple[LayerStore, Layer] | None:
        """The first store (primary first) that knows ``ref``, with the record."""
        for store in stores:
            rec = store.resolve(ref)
            if rec is not None:
                return store, rec
        return None

    @staticmethod
    def _image_home(stores: Sequence[ImageStore], ref: str) -> tuple[ImageStore, Image] | None:
        for store in stores:
            rec = store.resolve(ref)
            if rec is not None:
                return store, rec
        return None

    def _lookup_layer(self, stores: Sequence[LayerStore]) -> Callable[[str], Layer | None]:
        def lookup(ref: str) -> Layer | None:
            found = self._home(stores, ref)
            return found[1] if found else None

        return lookup

    @contextmanager
    def _write_all(self) -> Iterator[None]:
        """Layers, images, containers exclusively, in upstream's order (§7.5)."""
        self._fresh_driver()
        with self._layers.writing(), self._images.writing(), self._containers.writing():
            yield

    # -- identity and configuration -----------------------------------------------------
    @property
    def run_root(self) -> str:
        return self._run_root

    @property
    def graph_root(self) -> str:
        return self._graph_root

    @property
    def image_store(self) -> str:
        return self._image_store

    @property
    def transient_store(self) -> bool:
        return self._options.transient_store

    @property
    def graph_driver_name(self) -> str:
        return self._driver_name

    @property
    def graph_options(self) -> list[str]:
        return list(self._options.driver_options)

    @property
    def pull_options(self) -> dict[str, str]:
        return dict(self._options.pull_options)

    @property
    def uid_map(self) -> IDMaps:
        return tuple(self._options.uid_map)

    @property
    def gid_map(self) -> IDMaps:
        return tuple(self._options.gid_map)

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            self._fresh_driver()
        assert self._driver is not None
        return self._driver

    def status(self) -> list[tuple[str, str]]:
        with self._graph() as driver:
            return driver.status()

    def version(self) -> list[tuple[str, str]]:
        """Key/value version facts of the store; upstream's store reports none (its tool
        prints an empty list), so neither does this one."""
        return []

    def get_digest_lock(self, digest: str) -> Lock:
        """A lock named for ``digest`` in the run root, for callers that de-duplicate
        work on one blob (upstream ``GetDigestLock``)."""
        from .records.images import validate_digest

        try:
            validate_digest(digest)
        except ValueError as exc:
            raise StorageError(message=str(exc)) from None
        return self._lock(os.path.join(self._run_root, f"{self._driver_name}-locks", digest))

    def close(self) -> None:
        """Release the driver; mounts stay (see :meth:`shutdown`). A closed store is
        no longer one that :func:`get_store` shares (see :meth:`free`)."""
        if self._driver is not None:
            self._driver.cleanup()
            self._driver = None
        self._closed = True
        self.free()

    def free(self) -> None:
        """Forget this store in :func:`get_store`'s shared stores (upstream Free); it
        stays open."""
        with _shared_lock:
            if self in _shared_stores:
                _shared_stores.remove(self)

    def shutdown(self, force: bool = False) -> list[str]:
        """Release the driver so other processes re-initialise theirs. Layers still
        mounted make it fail with :class:`LayerUsedByContainer` (``force`` unmounts them
        first, and still reports them, as upstream does); the error's ``mounted``
        attribute lists them. Returns the list (empty) on success."""
        with self._graph():
            with self._layers.writing():
                mounted = [lid for lid, (_p, c) in self._layers.mounts().items() if c > 0]
                if force:
                    for lid in mounted:
                        self._layers.unmount(lid, force=True)
            if mounted:
                err = LayerUsedByContainer(message="a layer is mounted: layer is in use by a container")
                err.mounted = mounted  # type: ignore[attr-defined]
                raise err
            self._graph_lock.record_write()
            assert self._driver is not None
            self._driver.cleanup()
            self._driver = None
            self._closed = True
        return mounted

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generic by ID ------------------------------------------------------------------
    def _find(self, id: str) -> Layer | Image | Container | None:
        """The layer, image or container called ``id``, searched in upstream's order.
        Stores whose files cannot hold the name are not even decoded."""
        self._fresh_driver()
        groups: list[tuple[Any, list[Any]]] = [
            (self._layers, self._ro_layers),
            (self._images, self._ro_images),
            (self._containers, []),
        ]
        for primary, extras in groups:
            with primary.holding(id, exclusive=False) as hit:
                if hit:
                    rec: Layer | Image | Container | None = primary.resolve(id)
                    return rec
            for store in extras:
                with store.reading():
                    rec = store.resolve(id)
                if rec is not None:
                    return rec
        return None

    def exists(self, id: str) -> bool:
        return self._find(id) is not None

    def lookup(self, name: str) -> str:
        """The ID of the layer, image or container called ``name`` (ID, name or prefix)."""
        rec = self._find(name)
        if rec is None:
            raise LayerUnknown()
        return rec.id

    def metadata(self, id: str) -> str:
        rec = self._find(id)
        if rec is None:
            raise NotAnID()
        return rec.metadata

    def set_metadata(self, id: str, metadata: str) -> None:
        with self._write_all():
            if self._layers.resolve(id) is not None:
                self._layers.set_metadata(id, metadata)
            elif self._images.resolve(id) is not None:
                self._images.set_metadata(id, metadata)
            elif self._containers.resolve(id) is not None:
                self._containers.set_metadata(id, metadata)
            else:
                raise NotAnID()

    def names(self, id: str) -> list[str]:
        rec = self._find(id)
        if rec is None:
            raise LayerUnknown()
        return list(rec.names)

    def _update_names(self, id: str, names: Sequence[str], op: str) -> None:
        names = dedupe(names)
        self._fresh_driver()
        with self._layers.holding(id, exclusive=True) as hit:
            if hit:
                self._layers.update_names(id, names, op)
                return
        with self._images.holding(id, exclusive=True) as hit:
            if hit:
                self._images.update_names(id, names, op)
                return
        if self._copy_up_image(id, names, op):
            return
        with self._containers.holding(id, exclusive=True) as hit:
            if hit:
                self._containers.update_names(id, names, op)
                return
        raise LayerUnknown()

    def _copy_up_image(self, id: str, names: Sequence[str], op: str) -> bool:
        """Naming an image of a read-only store copies its whole record (same ID, names,
        names history, digests, metadata, flags, big data with their digests) into the
        primary store and changes the names there, as upstream does (on-disk.md §9.1)."""
        if not self._ro_images:
            return False
        with self._images.writing(), self._ro_images_reading() as ro:
            found = self._image_home(ro, id)
            if found is None:
                return False
            store, img = found
            self._images.create(
                img.id,
                img.names,
                img.top_layer,
                digest=img.digest,
                digests=img.digests,
                metadata=img.metadata,
                created=img.created,
                big_data=self._ro_big_data(store, img),
                names_history=img.names_history,
                flags=img.flags,
            )
            try:
                self._images.update_names(img.id, names, op)
            except BaseException:
                self._images.delete(img.id)
                raise
        return True

    @staticmethod
    def _ro_big_data(store: ImageStore, img: Image) -> list[tuple[str, bytes, str]]:
        return [(k, store.big_data(img.id, k), store.big_data_digest(img.id, k)) for k in img.big_data_names]

    def set_names(self, id: str, names: Sequence[str]) -> None:
        self._update_names(id, names, "set")

    def add_names(self, id: str, names: Sequence[str]) -> None:
        self._update_names(id, names, "add")

    def remove_names(self, id: str, names: Sequence[str]) -> None:
        self._update_names(id, names, "remove")

    def delete(self, id: str) -> None:
        """Delete a container (with its layer), an image or a layer, without safety checks."""
        with self._write_all():
            c = self._containers.resolve(id)
            if c is not None:
                if self._layers.resolve(c.layer_id) is None:
                    raise NotALayer()
                self._drop_container_and_layer(c)
                if id_problem(c.id) is None:
                    for base in (self._container_dir, self._run_container_dir):
                        remove_tree(id_path(base, c.id, "container", "userdata"))
                return
            if self._images.resolve(id) is not None:
                self._images.delete(id)
                return
            if self._layers.resolve(id) is not None:
                self._layers.delete(id)
                return
            raise LayerUnknown()

    def wipe(self) -> None:
        with self._write_all():
            self._containers.wipe()
            self._images.wipe()
            self._layers.wipe()

    # -- layers -------------------------------------------------------------------------
    def create_layer(
        self,
        id: str = "",
        parent: str = "",
        names: Sequence[str] = (),
        mount_label: str = "",
        writeable: bool = False,
        options: LayerOptions | None = None,
    ) -> Layer:
        return self.put_layer(id, parent, names, mount_label, writeable, options, None)[0]

    def _layer_maps(self, opts: IDMappingOptions, base: IDMappings) -> IDMappings:
        """Upstream's choice: explicit maps, else the parent's (or store's) maps; host
        mapping means none; a driver that shifts at mount time stores none."""
        uids = () if opts.host_uid_mapping else (opts.uid_map or base.uids)
        gids = () if opts.host_gid_mapping else (opts.gid_map or base.gids)
        if self._can_shift(uids, gids):
            return IDMappings()
        return IDMappings(tuple(uids), tuple(gids))

    def _can_shift(self, uids: IDMaps, gids: IDMaps) -> bool:
        """Whether maps can be applied at mount time instead of re-owning files: the
        driver shifts and each map is one contiguous range (upstream canUseShifting)."""
        return self.driver.supports_shifting() and _contiguous(uids) and _contiguous(gids)

    def put_layer(
        self,
        id: str = "",
        parent: str = "",
        names: Sequence[str] = (),
        mount_label: str = "",
        writeable: bool = False,
        options: LayerOptions | None = None,
        diff: IO[bytes] | None = None,
    ) -> tuple[Layer, int]:
        """Create a layer and apply ``diff`` (any compression); returns the layer and the
        size the driver reported (-1 without a diff)."""
        opts = options or LayerOptions()
        if id:
            self._layers.valid_id(id)  # before anything touches the disk
        with self._write_layers() as layers, self._ro_layers_reading() as ro, self._containers.reading():
            parent_rec: Layer | None = None
            if parent:
                parent_rec = self._lookup_layer([layers, *ro])(parent)
                if parent_rec is None:
                    raise LayerUnknown(f"layer {go_quote(parent)}")
                if self._containers.by_layer(parent_rec.id) is not None:
                    raise ParentIsContainer(f"layer {parent_rec.id}")
                base = IDMappings(parent_rec.uid_map, parent_rec.gid_map)
            else:
                base = self._default_maps()
            maps = self._layer_maps(opts.id_mapping, base)
            return layers.create(
                id,
                parent_rec,
                names,
                mount_label,
                opts.storage_opt,
                maps,
                writeable=writeable,
                template=opts.template_layer,
                flags=opts.flags,
                big_data=opts.big_data,
                volatile=opts.volatile,
                original_digest=opts.original_digest,
                original_size=opts.original_size,
                uncompressed_digest=opts.uncompressed_digest,
                diff=diff,
            )

    # -- additional layer stores (on-disk.md §14) ----------------------------------------
    def _additional_layer_stores(self) -> list[str]:
        """The ``additionallayerstore`` values among the driver options (any prefix)."""
        out = []
        for option in self._options.driver_options:
            key, sep, value = option.partition("=")
            if sep and key.strip().lower().rsplit(".", 1)[-1] == "additionallayerstore":
                out.append(value.strip())
        return out

    def lookup_additional_layer(self, digest: str, image_ref: str = "") -> AdditionalLayerHandle:
        """The layer with compressed ``digest`` of image ``image_ref`` in an additional
        layer store (upstream ``LookupAdditionalLayer``), found through the
        ``cstorage_additional_layer`` hook; :class:`LayerUnknown` when no store has it.
        ``put_as`` the handle to use the layer without pulling it; ``release`` it after."""
        from .records.model import RecordFormatError

        self._fresh_driver()
        found = self._plugins.additional_layer(digest, image_ref, self._additional_layer_stores())
        if found is None:
            raise LayerUnknown()
        try:
            with found.info() as f:
                data = json.loads(f.read())
            if not isinstance(data, dict):
                raise RecordFormatError("not a JSON object")
            info = Layer.from_json(data)
        except (OSError, ValueError) as exc:
            found.release()
            raise StorageError(f"reading the record of additional layer {digest}", message=str(exc)) from None
        return AdditionalLayerHandle(self, digest, image_ref, found, info)

    def _put_additional_layer(
        self, handle: AdditionalLayerHandle, id: str, parent: str, names: Sequence[str]
    ) -> Layer:
        """Record the layer and give the driver its contents: in place when the driver
        reads additional layer stores itself (overlay links the store's ``diff``), else
        by applying the store's blob, which must reproduce the recorded DiffID."""
        from .errors import DriverLayerUnknown

        with self._write_layers() as layers, self._ro_layers_reading() as ro, self._containers.reading():
            parent_rec: Layer | None = None
            if parent:
                parent_rec = self._lookup_layer([layers, *ro])(parent)
                if parent_rec is None:
                    raise LayerUnknown(f"layer {go_quote(parent)}")
                if self._containers.by_layer(parent_rec.id) is not None:
                    raise ParentIsContainer(f"layer {parent_rec.id}")
            native = getattr(self.driver, "lookup_additional_layer", None)
            if native is not None:
                try:
                    in_driver = native(handle.digest, handle.image_ref)
                except (DriverLayerUnknown, LayerUnknown):
                    in_driver = None
                if in_driver is not None:
                    # the lookup and create_as tell the store of the use; the caller's
                    # release of the handle is the one release, as upstream's
                    return layers.create_additional(id, parent_rec, names, handle.info, in_driver.create_as)
            base = IDMappings(parent_rec.uid_map, parent_rec.gid_map) if parent_rec else self._default_maps()
            with handle.found.blob() as blob:
                rec, _size = layers.create(
                    id,
                    parent_rec,
                    names,
                    "",
                    {},
                    self._layer_maps(IDMappingOptions(), base),
                    writeable=False,
                    original_digest=handle.digest,
                    original_size=handle.info.compressed_size or None,
                    diff=blob,
                )
            want = handle.uncompressed_digest
            if want and rec.uncompressed_digest != want:
                layers.delete(rec.id)
                raise LayerIncorrectContentDigest(
                    f"additional layer {handle.digest}: blob has DiffID {rec.uncompressed_digest}, "
                    f"its record says {want}"
                )
            handle.found.put_as(rec.id, parent_rec.id if parent_rec else None, list(rec.names))
            return rec

    def _default_maps(self) -> IDMappings:
        """The store's own maps: for layers without a parent, containers without an image."""
        return IDMappings(self.uid_map, self.gid_map)

    def layer(self, id: str) -> Layer:
        with self._read_all_layers() as stores:
            found = self._home(stores, id)
            if found is None:
                raise LayerUnknown()
            return found[0].public(found[1])

    def layers(self) -> list[Layer]:
        """Every layer: the primary store's, then those only read-only stores have."""
        with self._read_all_layers() as stores:
            out: list[Layer] = []
            seen: set[str] = set()
            for store in stores:
                for rec in store.all():
                    if rec.id not in seen:
                        seen.add(rec.id)
                        out.append(store.public(rec))
            return out

    def layer_size(self, id: str) -> int:
        """The layer's uncompressed diff size, or -1 when not recorded."""
        rec = self.layer(id)
        return rec.uncompressed_size if rec.uncompressed_digest else -1

    def layers_by_compressed_digest(self, digest: str) -> list[Layer]:
        self._check_digest(digest)
        with self._read_all_layers() as stores:
            return [rec for store in stores for rec in store.by_compressed_digest(digest)]

    def layers_by_uncompressed_digest(self, digest: str) -> list[Layer]:
        self._check_digest(digest)
        with self._read_all_layers() as stores:
            return [rec for store in stores for rec in store.by_uncompressed_digest(digest)]

    @staticmethod
    def _check_digest(digest: str) -> None:
        from .records.images import validate_digest

        try:
            validate_digest(digest)
        except ValueError as exc:
            raise StorageError(
                f"looking for layers matching digest {go_quote(digest)}", message=str(exc)
            ) from None

    def layer_parent_owners(self, id: str) -> tuple[list[int], list[int]]:
        with self._read_layers() as layers:
            return layers.parent_owners(id)

    def list_layer_big_data(self, id: str) -> list[str]:
        return list(self.layer(id).big_data_names)

    def layer_big_data(self, id: str, key: str) -> bytes:
        with self.open_layer_big_data(id, key) as f:
            return f.read()

    def open_layer_big_data(self, id: str, key: str) -> BinaryIO:
        """The item as a binary file open for reading (upstream's LayerBigData returns a
        stream), so a large one need not fit in memory; close it when done."""
        with self._read_all_layers() as stores:
            found = self._home(stores, id)
            if found is None:
                raise LayerUnknown(f"locating layer with ID {go_quote(id)}")
            try:
                return found[0].open_big_data(found[1].id, key)
            except FileNotFoundError:
                raise StorageError(
                    message=f"locating item named {go_quote(key)} for layer with ID {go_quote(id)}: "
                    "file does not exist"
                ) from None

    def set_layer_big_data(self, id: str, key: str, data: bytes | IO[bytes]) -> None:
        payload = _read_all(data)
        with self._write_layers() as layers:
            if layers.resolve(id) is None:
                raise LayerUnknown(f"locating layer with ID {go_quote(id)} to write bigdata")
            layers.set_big_data(id, key, payload)

    def delete_layer(self, id: str) -> None:
        with self._write_all():
            rec = self._layers.resolve(id)
            if rec is None:
                raise NotALayer()
            # "" links to nothing (a record someone else wrote may still have that ID)
            for other in self._layers.all():
                if rec.id and other.parent == rec.id:
                    raise LayerHasChildren(f"used by layer {other.id}")
            images = self._images.all()
            for img in images:
                if rec.id and img.top_layer == rec.id:
                    raise LayerUsedByImage(f"layer {rec.id} used by image {img.id}")
            for ctr in self._containers.all():
                if rec.id and ctr.layer_id == rec.id:
                    raise LayerUsedByContainer(f"layer {rec.id} used by container {ctr.id}")
            self._layers.delete(rec.id)
            for img in images:
                if rec.id in img.mapped_top_layers:
                    self._images.remove_mapped_top_layer(img.id, rec.id)

    def _container_mount_opts(self, id: str, mount_label: str) -> tuple[str, MountOpts]:
        """The layer to mount and how: a container's layer with its maps and options."""
        with self._containers.reading():
            ctr = self._containers.resolve(id)
        if ctr is None:
            return id, MountOpts(mount_label=mount_label)
        return ctr.layer_id, MountOpts(
            mount_label=mount_label,
            id_mappings=IDMappings(ctr.uid_map, ctr.gid_map),
            options=ctr.mount_opts,
            volatile=ctr.volatile and not self._options.disable_volatile,
            # maps that cannot be shifted were applied to the files already (§5.4)
            disable_shifting=bool(ctr.uid_map or ctr.gid_map)
            and not self._can_shift(ctr.uid_map, ctr.gid_map),
        )

    def mount(self, id: str, mount_label: str = "") -> str:
        """Mount a layer (or a container's layer) read-write; counted across processes."""
        layer_id, opts = self._container_mount_opts(id, mount_label)
        with self._graph(), self._layers.writing(), self._ro_layers_reading() as ro:
            if self._layers.resolve(layer_id) is None and self._home(ro, layer_id) is not None:
                raise StoreIsReadOnly("mounting read/only store images is not allowed")
            return self._layers.mount(layer_id, opts)

    def unmount(self, id: str, force: bool = False) -> bool:
        """Drop one mount reference (all with ``force``); True if still mounted."""
        layer_id, _opts = self._container_mount_opts(id, "")
        with self._graph(), self._layers.writing():
            return self._layers.unmount(layer_id, force)

    def mounted(self, id: str) -> int:
        layer_id, _opts = self._container_mount_opts(id, "")
        with self._read_layers() as layers:
            rec = layers.resolve(layer_id)
            if rec is None:
                raise LayerUnknown()
            return layers.mount_count(rec.id)

    def mount_image(self, id: str, mount_options: Sequence[str] = (), mount_label: str = "") -> str:
        """Mount an image's top layer read-only (``ro`` is added to the options)."""
        img = self.image(id)
        if not img.top_layer:
            raise LayerUnknown()
        opts = tuple(dict.fromkeys([*mount_options, "ro"]))
        with self._graph(), self._layers.writing():
            return self._layers.mount(img.top_layer, MountOpts(mount_label=mount_label, options=opts))

    def unmount_image(self, id: str, force: bool = False) -> bool:
        img = self.image(id)
        with self._graph(), self._layers.writing():
            return self._layers.unmount(img.top_layer, force)

    def _layer_home(self, stores: list[LayerStore], ref: str) -> LayerStore:
        found = self._home(stores, ref)
        if found is None:
            raise LayerUnknown()
        return found[0]

    def changes(self, from_: str, to: str) -> list[Change]:
        """Changes of layer ``to`` against ``from_`` ("" = its parent)."""
        with self._graph(), self._layers.writing(), self._ro_layers_reading() as ro:
            stores = [self._layers, *ro]
            return self._layer_home(stores, to).changes(from_, to, self._lookup_layer(stores))

    def diff_size(self, from_: str, to: str) -> int:
        with self._graph(), self._layers.writing(), self._ro_layers_reading() as ro:
            stores = [self._layers, *ro]
            return self._layer_home(stores, to).diff_size(from_, to, self._lookup_layer(stores))

    def diff(self, from_: str, to: str, options: DiffOptions | None = None) -> IO[bytes]:
        """The diff of ``to`` against ``from_`` ("" = its parent) as a tar stream, compressed
        as recorded for the layer unless ``options`` says otherwise. The layer lock stays
        held until the stream is closed, which must happen in the thread that asked for it
        (other threads of the process wait for the layers meanwhile)."""
        compression = options.compression if options is not None else None
        self._fresh_driver()
        stack = ExitStack()
        stack.enter_context(self._layers.writing())
        try:
            ro = stack.enter_context(self._ro_layers_reading())
            stores = [self._layers, *ro]
            home = self._layer_home(stores, to)
            stream = home.diff(from_, to, compression, self._lookup_layer(stores))
        except BaseException:
            stack.close()
            raise

        def release() -> None:
            stack.close()

        return io.BufferedReader(_ClosingStream(stream, release), 1 << 20)  # type: ignore[return-value]

    def apply_diff(self, to: str, diff: IO[bytes]) -> int:
        with self._write_layers() as layers:
            return layers.apply_diff(to, diff)

    # -- partial pulls (zstd:chunked, eStargz): thin wrappers over chunked.storeglue,
    #    under the layer store's write lock as upstream's --------------------------------
    def apply_diff_with_differ(
        self, to: str, differ: ChunkedDiffer, id_mappings: IDMappings | None = None
    ) -> DifferOutput:
        """Write a partial pull's files: into a new staging directory (``to`` empty;
        pass the output to :meth:`apply_diff_from_staging_directory`) or into layer ``to``."""
        from .chunked import storeglue

        with self._write_layers() as layers:
            return storeglue.apply_with_differ(self.driver, layers, to, differ, id_mappings)

    def apply_diff_from_staging_directory(
        self, to: str, staging_directory: str, diff_output: DifferOutput
    ) -> None:
        from .chunked import storeglue

        with self._write_layers() as layers:
            storeglue.apply_from_staging(self.driver, layers, to, staging_directory, diff_output)

    def cleanup_staging_directory(self, staging_directory: str) -> None:
        from .chunked import storeglue

        with self._write_layers():
            storeglue.cleanup_staging(self.driver, staging_directory)

    def differ_target(self, id: str) -> str:
        from .chunked import storeglue

        with self._write_layers() as layers:
            return storeglue.differ_target(self.driver, layers, id)

    # -- images -------------------------------------------------------------------------
    def create_image(
        self,
        id: str = "",
        names: Sequence[str] = (),
        layer: str = "",
        metadata: str = "",
        options: ImageOptions | None = None,
    ) -> Image:
        """A new image; an ``id`` of an image in a read-only store copies that image's
        metadata, dates, digests, names history and big data into the new record first
        (the options override or add to them) and gives it that image's names too."""
        opts = options or ImageOptions()
        if id:
            validate_id(id, "image")  # before anything touches the disk
        if isinstance(opts.big_data, Mapping):
            big = [(k, v, "") for k, v in opts.big_data.items()]
        else:
            big = [(item.key, item.data, item.digest) for item in opts.big_data]
        with self._read_all_layers() as stores:
            if layer:
                found = self._home(stores, layer)
                if found is None:
                    raise LayerUnknown()
                layer = found[1].id
            with self._images.writing(), self._ro_images_reading() as ro:
                base = self._image_home(ro, id) if id else None
                if base is None or base[1].id != id:
                    return self._images.create(
                        id,
                        names,
                        layer,
                        digest=opts.digest,
                        digests=opts.digests,
                        metadata=metadata or opts.metadata,
                        created=opts.created,
                        big_data=big,
                        names_history=opts.names_history,
                        flags=opts.flags,
                    )
                store, img = base
                created = opts.created if opts.created is not None and not opts.created.is_zero else None
                self._images.create(
                    id,
                    names,
                    layer,
                    digest=opts.digest or img.digest,
                    digests=[*img.digests, *opts.digests],
                    metadata=metadata or opts.metadata or img.metadata,
                    created=created or img.created,
                    big_data=[*self._ro_big_data(store, img), *big],
                    names_history=[*img.names_history, *opts.names_history],
                    flags=opts.flags,
                )
                try:
                    self._images.update_names(id, dedupe([*img.names, *names]), "add")
                except BaseException:
                    self._images.delete(id)
                    raise
                return self._images.get(id)

    def _find_image(self, stores: Sequence[ImageStore], id: str) -> tuple[ImageStore, Image]:
        found = self._image_home(stores, id)
        if found is None:
            raise ImageUnknown(f"locating image with ID {go_quote(id)}")
        return found

    def image(self, id: str) -> Image:
        """The image called ``id``. A read-only store's image whose record was copied into
        the primary store is not found by a name the copy no longer has (as upstream)."""
        with self._read_all_images() as stores:
            for store in stores:
                rec = store.resolve(id)
                if rec is not None and (store is self._images or self._images.by_id(rec.id) is None):
                    return rec
            raise ImageUnknown(f"locating image with ID {go_quote(id)}")

    def images(self) -> list[Image]:
        """Every image: the primary store's, then those only read-only stores have."""
        with self._read_all_images() as stores:
            out: list[Image] = []
            seen: set[str] = set()
            for store in stores:
                for rec in store.all():
                    if rec.id not in seen:
                        seen.add(rec.id)
                        out.append(rec)
            return out

    def images_by_top_layer(self, id: str) -> list[Image]:
        layer_id = self.layer(id).id
        with self._read_all_images() as stores:
            return [rec for store in stores for rec in store.by_top_layer(layer_id)]

    def images_by_digest(self, digest: str) -> list[Image]:
        from .records.images import validate_digest

        try:
            validate_digest(digest)
        except ValueError as exc:
            raise StorageError(message=str(exc)) from None
        with self._read_all_images() as stores:
            return [rec for store in stores for rec in store.by_digest(digest)]

    def list_image_big_data(self, id: str) -> list[str]:
        return list(self.image(id).big_data_names)

    def image_big_data(self, id: str, key: str) -> bytes:
        with self._read_all_images() as stores:
            found = self._image_home(stores, id)
            if found is None:
                raise ImageUnknown(f"locating item named {go_quote(key)} for image with ID {go_quote(id)}")
            try:
                return found[0].big_data(found[1].id, key)
            except FileNotFoundError:
                raise StorageError(
                    message=f"locating item named {go_quote(key)} for image with ID {go_quote(id)} "
                    "(consider removing the image to resolve the issue): file does not exist"
                ) from None

    def image_big_data_size(self, id: str, key: str) -> int:
        with self._read_all_images() as stores:
            store, img = self._find_image(stores, id)
            return store.big_data_size(img.id, key)

    def image_big_data_digest(self, id: str, key: str) -> str:
        with self._read_all_images() as stores:
            store, img = self._find_image(stores, id)
            return store.big_data_digest(img.id, key)

    def set_image_big_data(
        self, id: str, key: str, data: bytes, digest_manifest: ManifestDigester | None = None
    ) -> None:
        """Store an item; keys starting with ``manifest`` are digested by
        ``digest_manifest`` (SHA-256 of the bytes when not given), others by SHA-256."""
        from .records.images import is_manifest_key

        digest = (digest_manifest or sha256_of)(data) if is_manifest_key(key) else sha256_of(data)
        with self._images.writing():
            self._images.set_big_data(id, key, data, digest)

    def image_size(self, id: str) -> int:
        """Sizes of the image's layers (each counted once) plus its big data."""
        with ExitStack() as stack:
            stack.enter_context(self._graph())
            stack.enter_context(self._layers.writing())
            layer_stores = [self._layers, *stack.enter_context(self._ro_layers_reading())]
            image_stores = stack.enter_context(self._read_all_images())
            image_store, img = self._find_image(image_stores, id)
            lookup = self._lookup_layer(layer_stores)
            queue = [x for x in (img.top_layer, *img.mapped_top_layers) if x]
            seen: set[str] = set()
            total = 0
            while queue:
                lid = queue.pop()
                if lid in seen:
                    continue
                seen.add(lid)
                rec = lookup(lid)
                if rec is None:
                    raise LayerUnknown(f"locating layer with ID {go_quote(lid)}")
                if rec.uncompressed_digest:
                    total += rec.uncompressed_size
                else:
                    total += self._layer_home(layer_stores, rec.id).diff_size("", rec.id, lookup)
                if rec.parent:
                    queue.append(rec.parent)
            for key in img.big_data_names:
                total += image_store.big_data_size(img.id, key)
            return total

    def image_directory(self, id: str) -> str:
        with self._images.reading():
            img = self._images.get(id)
        path = id_path(self._images.image_dir, img.id, "image", "userdata")
        os.makedirs(path, 0o700, exist_ok=True)
        return path

    def image_run_directory(self, id: str) -> str:
        with self._images.reading():
            img = self._images.get(id)
        run_images = os.path.join(self._run_root, f"{self._driver_name}-images")
        path = id_path(run_images, img.id, "image", "userdata")
        os.makedirs(path, 0o700, exist_ok=True)
        return path

    def delete_image(self, id: str, commit: bool = True) -> list[str]:
        """Delete the image and the layers only it used; returns those layers' IDs.
        ``commit=False`` only reports what would be removed."""
        with self._write_all(), ExitStack() as stack:
            # the primary store and writable extra ones (the graph root's in split mode)
            stores = [self._images]
            for extra in self._ro_images:
                if not extra.read_only:
                    stack.enter_context(extra.writing())
                    stores.append(extra)
            homes = [(store, found) for store in stores if (found := store.resolve(id)) is not None]
            if not homes:
                raise NotAnImage()
            img = homes[0][1]
            for ctr in self._containers.all():
                if ctr.image_id == img.id:
                    raise ImageUsedByContainer(f"image used by {ctr.id}")
            children: dict[str, list[str]] = {}
            for lrec in self._layers.all():
                children.setdefault(lrec.parent, []).append(lrec.id)
            others: set[str] = set()
            for store in stores:
                for other in store.all():
                    if other.id != img.id:
                        others.add(other.top_layer)
                        others.update(other.mapped_top_layers)
            if commit:
                for store, _found in homes:
                    store.delete(img.id)
            remove = list(img.mapped_top_layers)
            slated = set(remove)
            layer = img.top_layer
            while layer:
                if self._containers.resolve(layer) is not None or layer in others:
                    break
                rec = self._layers.resolve(layer)
                parent = rec.parent if rec is not None else ""
                check = [layer, *img.mapped_top_layers] if layer == img.top_layer else [layer]
                if any(c not in slated for lid in check for c in children.get(lid, ())):
                    break
                remove.append(layer)
                slated.add(layer)
                layer = parent
            if commit:
                for lid in remove:
                    if self._layers.by_id(lid) is not None:
                        self._layers.delete(lid)
            return remove

    # -- containers ---------------------------------------------------------------------
    def _top_layer_for_mapping(
        self, img: Image, opts: IDMappingOptions, stores: Sequence[LayerStore], in_primary: bool
    ) -> Layer:
        """§5.4: the image's top layer, or a copy of it with the requested ID maps (made
        only for images of the primary store whose layer is there too)."""
        shifting = self._can_shift(opts.uid_map, opts.gid_map)

        def matches(rec: Layer) -> bool:
            if shifting and not rec.uid_map and not rec.gid_map:
                return True
            if (opts.host_uid_mapping and rec.uid_map) or (opts.host_gid_mapping and rec.gid_map):
                return False
            return rec.uid_map == tuple(opts.uid_map) and rec.gid_map == tuple(opts.gid_map)

        lookup = self._lookup_layer(stores)
        first: Layer | None = None
        first_parent: Layer | None = None
        copy_allowed = in_primary
        for store in stores:
            for cand in (img.top_layer, *img.mapped_top_layers):
                rec = store.by_id(cand)
                if rec is None:
                    continue
                parent_rec = lookup(rec.parent) if rec.parent else None
                if rec.parent and parent_rec is None:
                    continue
                if matches(rec):
                    return rec
                if first is None:
                    first, first_parent = rec, parent_rec
                    copy_allowed = copy_allowed and store is self._layers
        if first is None:
            raise LayerUnknown()
        if not copy_allowed:
            # the container's own layer gets re-owned instead (on-disk.md §5.4)
            return first
        maps = IDMappings() if shifting else IDMappings(tuple(opts.uid_map), tuple(opts.gid_map))
        mapped, _size = self._layers.create(
            "", first_parent, (), first.mount_label, {}, maps, writeable=False, template=first.id
        )
        try:
            self._images.add_mapped_top_layer(img.id, mapped.id)
        except BaseException:
            self._layers.delete(mapped.id)
            raise
        return mapped

    def create_container(
        self,
        id: str = "",
        names: Sequence[str] = (),
        image: str = "",
        layer: str = "",
        metadata: str = "",
        options: ContainerOptions | None = None,
    ) -> Container:
        """``layer`` is the ID wanted for the container's new layer ("" = random)."""
        opts = options or ContainerOptions()
        if id:
            validate_id(id, "container")  # before anything touches the disk
        if layer:
            self._layers.valid_id(layer)
        idm = opts.id_mapping
        flags = dict(opts.flags)
        if opts.mount_opts:
            flags[MOUNT_OPTS_FLAG] = list(opts.mount_opts)
        plabel = flags.get(PROCESS_LABEL_FLAG, "")
        mlabel = flags.get(MOUNT_LABEL_FLAG, "")
        if bool(plabel) != bool(mlabel):
            raise StorageError(
                message="ProcessLabel and Mountlabel must either not be specified or both specified"
            )
        flags.setdefault(PROCESS_LABEL_FLAG, "")
        flags.setdefault(MOUNT_LABEL_FLAG, "")
        volatile = opts.volatile or self._options.transient_store
        self._fresh_driver()
        with ExitStack() as stack:
            if opts.auto_userns or idm.uid_map or idm.gid_map:
                # one allocation at a time, so two containers never get the same range
                stack.enter_context(_held(self._userns_lock))
            stack.enter_context(self._layers.writing())
            layer_stores = [self._layers, *stack.enter_context(self._ro_layers_reading())]
            stack.enter_context(self._images.writing())
            image_stores = [self._images, *stack.enter_context(self._ro_images_reading())]
            stack.enter_context(self._containers.writing())
            if id and self._containers.by_id(id) is not None:
                raise DuplicateID(f"container ID {go_quote(id)} is already in use")
            for name in dedupe(names):
                if self._containers.name_owner(name) is not None:
                    raise DuplicateName(f"container name {go_quote(name)} is in use")
            top: Layer | None = None
            img: Image | None = None
            in_primary = False
            if image:
                image_store, img = self._find_image(image_stores, image)
                in_primary = image_store is self._images
            if opts.auto_userns:
                uids, gids = self._auto_userns(opts.auto_userns_opts, img, layer_stores)
                idm = replace(idm, uid_map=uids, gid_map=gids)
            uid_map = () if idm.host_uid_mapping else tuple(idm.uid_map)
            gid_map = () if idm.host_gid_mapping else tuple(idm.gid_map)
            if img is not None and img.top_layer:
                top = self._top_layer_for_mapping(img, idm, layer_stores, in_primary)
            base = IDMappings(top.uid_map, top.gid_map) if top else self._default_maps()
            maps = self._layer_maps(idm, base)
            clayer, _size = self._layers.create(
                layer,
                top,
                (),
                str(mlabel),
                opts.storage_opt,
                maps,
                writeable=True,
                volatile=volatile,
            )
            try:
                return self._containers.create(
                    id,
                    names,
                    img.id if img is not None else "",
                    clayer.id,
                    metadata=metadata or opts.metadata,
                    flags=flags,
                    uid_map=uid_map,
                    gid_map=gid_map,
                    volatile=volatile,
                    big_data=opts.big_data,
                )
            except BaseException:
                self._layers.delete(clayer.id)
                raise
        raise AssertionError("unreachable")

    def _auto_userns(
        self, opts: AutoUserNsOptions, img: Image | None, stores: Sequence[LayerStore]
    ) -> tuple[IDMaps, IDMaps]:
        """Maps for a new container (upstream getAutoUserNS); call with the userns lock,
        the primary layers and the containers held for writing."""
        from .config import is_rootless
        from .userns import ROOT_AUTO_USERNS_USER, auto_maps, available_ids

        user = self._options.root_auto_userns_user or ROOT_AUTO_USERNS_USER
        avail_uids, avail_gids = available_ids(user, is_rootless(os.environ))
        used_uids = [m for c in self._containers.all() for m in c.uid_map]
        used_gids = [m for c in self._containers.all() for m in c.gid_map]
        wanted = opts.size
        if not wanted:
            wanted = max(self._options.auto_userns_min_size, opts.initial_size or 1)
            if img is not None:
                wanted = max(wanted, self._ids_used_by_image(img, stores, opts))
            limit = self._options.auto_userns_max_size
            if limit > 0 and wanted > limit:
                raise StorageError(
                    message=f"the container needs a user namespace with size {wanted} that is bigger "
                    f"than the maximum value allowed with userns=auto {limit}"
                )
        return auto_maps(
            wanted,
            avail_uids,
            avail_gids,
            used_uids,
            used_gids,
            opts.additional_uid_mappings,
            opts.additional_gid_mappings,
        )

    def _ids_used_by_image(self, img: Image, stores: Sequence[LayerStore], opts: AutoUserNsOptions) -> int:
        """One more than the largest ID the image's layers record or its passwd/group
        files name (read through a throw-away layer on top of the image, as upstream)."""
        from .userns import max_ids_in_files

        lookup = self._lookup_layer(stores)
        top: Layer | None = None
        wanted = 0
        lid = img.top_layer
        while lid:
            rec = lookup(lid)
            if rec is None:
                raise LayerUnknown(f"cannot find layer {go_quote(lid)}")
            top = top or rec
            wanted = max([wanted, *(u + 1 for u in rec.uidset), *(g + 1 for g in rec.gidset)])
            lid = rec.parent
        if top is None:
            return wanted
        probe, _size = self._layers.create("", top, (), "", {}, IDMappings(), writeable=False)
        try:
            root = self._layers.mount(probe.id, MountOpts())
            try:
                return max(wanted, max_ids_in_files(root, opts.passwd_file, opts.group_file))
            finally:
                self._layers.unmount(probe.id, force=True)
        finally:
            self._layers.delete(probe.id)

    def container(self, id: str) -> Container:
        with self._containers.reading():
            return self._containers.get(id)

    def containers(self) -> list[Container]:
        with self._containers.reading():
            return self._containers.all()

    def container_by_layer(self, layer_id: str) -> Container:
        lid = self.layer(layer_id).id
        with self._containers.reading():
            ctr = self._containers.by_layer(lid)
        if ctr is None:
            raise ContainerUnknown()
        return ctr

    def list_container_big_data(self, id: str) -> list[str]:
        return list(self.container(id).big_data_names)

    def container_big_data(self, id: str, key: str) -> bytes:
        with self._containers.reading():
            try:
                return self._containers.big_data(id, key)
            except FileNotFoundError as exc:
                raise StorageError(message=f"open {exc.filename}: no such file or directory") from None

    def container_big_data_size(self, id: str, key: str) -> int:
        with self._containers.writing():
            return self._containers.big_data_size_recording(id, key)

    def container_big_data_digest(self, id: str, key: str) -> str:
        with self._containers.writing():
            return self._containers.big_data_digest_recording(id, key)

    def set_container_big_data(self, id: str, key: str, data: bytes) -> None:
        with self._containers.writing():
            self._containers.set_big_data(id, key, data)

    def container_size(self, id: str) -> int:
        """The container layer's diff size, its big data and both userdata directories."""
        cdir = self.container_directory(id)
        rdir = self.container_run_directory(id)
        with self._graph(), self._layers.writing(), self._containers.writing():
            ctr = self._containers.get(id)
            if self._layers.resolve(ctr.layer_id) is None:
                raise LayerUnknown(f"locating layer with ID {go_quote(ctr.layer_id)}")
            total = self._layers.diff_size("", ctr.layer_id, self._layers.resolve)
            for key in ctr.big_data_names:
                total += self._containers.big_data_size_recording(ctr.id, key)
        return total + _dir_size(cdir) + _dir_size(rdir)

    def _container_subdir(self, base: str, id: str) -> str:
        with self._containers.reading():
            ctr = self._containers.get(id)
        path = id_path(base, ctr.id, "container", "userdata")
        os.makedirs(path, 0o700, exist_ok=True)
        return path

    def container_directory(self, id: str) -> str:
        return self._container_subdir(self._container_dir, id)

    def container_run_directory(self, id: str) -> str:
        return self._container_subdir(self._run_container_dir, id)

    @staticmethod
    def _set_file(directory: str, file: str, data: bytes) -> None:
        path = os.path.join(directory, file)
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        write_atomic(path, data)

    def set_container_directory_file(self, id: str, file: str, data: bytes) -> None:
        self._set_file(self.container_directory(id), file, data)

    def from_container_directory(self, id: str, file: str) -> bytes:
        return read_file(os.path.join(self.container_directory(id), file))

    def set_container_run_directory_file(self, id: str, file: str, data: bytes) -> None:
        self._set_file(self.container_run_directory(id), file, data)

    def from_container_run_directory(self, id: str, file: str) -> bytes:
        return read_file(os.path.join(self.container_run_directory(id), file))

    def container_parent_owners(self, id: str) -> tuple[list[int], list[int]]:
        ctr = self.container(id)
        with self._read_layers() as layers:
            return layers.parent_owners(ctr.layer_id)

    def delete_container(self, id: str) -> None:
        with self._write_all():
            ctr = self._containers.resolve(id)
            if ctr is None:
                raise NotAContainer()
            self._drop_container_and_layer(ctr)
            if id_problem(ctr.id) is None:
                for base in (self._container_dir, self._run_container_dir):
                    remove_tree(id_path(base, ctr.id, "container"))

    def _drop_container_and_layer(self, ctr: Container) -> None:
        """The record first, then the layer: a crash in between leaves an unused layer,
        never a container whose layer is gone; a failed layer removal restores the record."""
        idx = self._containers.file_index(ctr.id)
        self._containers.remove(ctr.id)
        self._containers.save()
        try:
            if self._layers.resolve(ctr.layer_id) is not None:
                self._layers.delete(ctr.layer_id)
        except BaseException:
            self._containers.add(ctr, idx)
            self._containers.save()
            raise

    # -- maintenance: check, repair, garbage collection ------------------------------------
    def _check_ignore(self) -> Ignore:
        from .records.contents import Ignore

        ownership = any("ignore_chown_errors=true" in o for o in self._options.driver_options)
        masked = any("force_mask=" in o for o in self._options.driver_options)
        links = any("use_hard_links" in k and v == "true" for k, v in self._options.pull_options.items())
        return Ignore(ownership=ownership or masked, timestamps=links, permissions=masked, filetype=masked)

    def check(self, options: CheckOptions | None = None) -> CheckReport:
        """Find damage (cli.md §5.7 ``check``): unreadable big data, layers whose diff no
        longer reproduces its digest or size, layers that do not mount or whose mounted
        tree differs from the replay of their diffs, missing layers and images, layers
        nobody uses (older than the maximum age), driver layers without records."""
        from .records.contents import Tree, compare, expected_tree, scan

        opts = options or CheckOptions.most()
        ignore = self._check_ignore()
        report = CheckReport()
        headers: dict[str, list[Header]] = {}
        with ExitStack() as stack:
            driver = stack.enter_context(self._graph())
            stack.enter_context(self._layers.writing())
            layer_stores = [self._layers, *stack.enter_context(self._ro_layers_reading())]
            stack.enter_context(self._images.reading())
            image_stores = [self._images, *stack.enter_context(self._ro_images_reading())]
            layers = self._layers.all()
            #: primary layers -> whether an image or container uses them
            referenced: dict[str, bool] = {}
            ro_known: set[str] = set()
            for store in layer_stores:
                rw = store is self._layers
                desc = "" if rw else "read-only "
                for rec in store.all():
                    if rec.id in referenced or rec.id in ro_known:
                        continue
                    report.layer_parents[rec.id] = rec.parent
                    if rw:
                        referenced[rec.id] = False
                    else:
                        ro_known.add(rec.id)
                    errs = (report.layers if rw else report.ro_layers).setdefault(rec.id, [])
                    bad_id = _invalid_id_error(store.id_problem, f"{desc}layer", rec.id, rec.parent)
                    if bad_id is not None:
                        # never used as a path: no data, diff or mount checks
                        errs.append(bad_id)
                        continue
                    if opts.layer_data:
                        errs += _data_errors(
                            f"{desc}layer {rec.id}",
                            rec.big_data_names,
                            partial(store.big_data, rec.id),
                            None,
                            LayerDataMissing,
                            LayerDataMissing,
                        )
                    if opts.layer_digests and rec.uncompressed_digest:
                        self._check_layer_digest(store, rec, errs, headers, desc, layer_stores)
            for rec in layers:
                errs = report.layers[rec.id]
                if not opts.layer_mountable or any(isinstance(e, InvalidID) for e in errs):
                    continue
                try:
                    mount_point = driver.get(rec.id, MountOpts(mount_label=rec.mount_label, options=("ro",)))
                except Exception as exc:
                    errs.append(StorageError(f"layer {rec.id}", message=str(exc)))
                    continue
                try:
                    if opts.layer_digests and rec.uncompressed_digest and opts.layer_contents:
                        chain: list[list[Header]] = []
                        lid = rec.id
                        while lid and lid in headers:
                            chain.insert(0, headers[lid])
                            lid = report.layer_parents.get(lid, "")
                        if not lid:  # every diff down the chain is known
                            # files were re-owned unless the maps could be shifted at mount time
                            shifted = self._can_shift(rec.uid_map, rec.gid_map)
                            maps = None if shifted else (rec.uid_map, rec.gid_map)
                            try:
                                actual: Tree = scan(mount_point)
                            except OSError as exc:
                                errs.append(
                                    StorageError(f"scanning contents of layer {rec.id}", message=str(exc))
                                )
                            else:
                                for diff in compare(expected_tree(chain), actual, maps, ignore):
                                    errs.append(
                                        LayerContentModified(
                                            message=f"layer {rec.id}: {diff}, layer content modified"
                                        )
                                    )
                finally:
                    try:
                        driver.put(rec.id)
                    except Exception as exc:
                        errs.append(StorageError(f"layer {rec.id}", message=str(exc)))
            for rec in layers:
                if rec.parent and rec.parent not in referenced and rec.parent not in ro_known:
                    report.layers[rec.id].append(LayerMissing(f"layer {rec.parent}"))
            examined: set[str] = set()
            for istore in image_stores:
                rw = not istore.read_only
                desc = "" if rw else "read-only "
                for img in istore.all():
                    if img.id in examined:
                        continue
                    examined.add(img.id)
                    ierrs = (report.images if rw else report.ro_images).setdefault(img.id, [])
                    bad_id = _invalid_id_error(id_problem, f"{desc}image", img.id)
                    if bad_id is not None:
                        ierrs.append(bad_id)
                    elif opts.image_data:
                        ierrs += _data_errors(
                            f"{desc}image {img.id}",
                            img.big_data_names,
                            partial(istore.big_data, img.id),
                            img.big_data_sizes,
                            ImageDataMissing,
                            ImageDataIncorrectSize,
                        )
                    seen: set[str] = set()
                    for top in (img.top_layer, *img.mapped_top_layers):
                        if not top or top in seen:
                            continue
                        seen.add(top)
                        lid = top
                        while lid:
                            if lid in referenced:
                                referenced[lid] = True
                            elif lid not in ro_known:
                                ierrs.append(ImageLayerMissing(f"{desc}image {img.id}: layer {lid}"))
                            ierrs.extend(report.layers.get(lid, ()))
                            ierrs.extend(report.ro_layers.get(lid, ()))
                            lid = report.layer_parents.get(lid, "")
            with self._containers.reading():
                for ctr in self._containers.all():
                    cerrs = report.containers.setdefault(ctr.id, [])
                    bad_id = _invalid_id_error(id_problem, "container", ctr.id)
                    if bad_id is not None:
                        cerrs.append(bad_id)
                    elif opts.container_data:
                        cerrs += _data_errors(
                            f"container {ctr.id}",
                            ctr.big_data_names,
                            partial(self._containers.big_data, ctr.id),
                            ctr.big_data_sizes,
                            ContainerDataMissing,
                            ContainerDataIncorrectSize,
                        )
                    if ctr.image_id:
                        if ctr.image_id not in examined:
                            cerrs.append(ContainerImageMissing(f"image {ctr.image_id}"))
                        cerrs.extend(report.images.get(ctr.image_id, ()))
                        cerrs.extend(report.ro_images.get(ctr.image_id, ()))
                    if ctr.layer_id:
                        referenced[ctr.layer_id] = True
            max_age = opts.layer_unreferenced_maximum_age
            if max_age is None:
                max_age = DEFAULT_UNREFERENCED_AGE
            now = GoTime.now().unix_ns
            for rec in layers:
                old = rec.created.is_zero or rec.created.unix_ns + int(max_age * 1e9) < now
                if not referenced.get(rec.id) and old:
                    report.layers[rec.id].append(LayerUnreferenced(f"layer {rec.id}"))
            for i, lid in enumerate(_driver_layers(driver)):
                if lid not in referenced:
                    report.layers.setdefault(lid, []).append(LayerUnaccounted(f"layer {lid}"))
                report.layer_order[lid] = i + 1
        report.drop_empty()
        return report

    def _check_layer_digest(
        self,
        store: LayerStore,
        rec: Layer,
        errs: list[Exception],
        headers: dict[str, list[Header]],
        desc: str,
        stores: Sequence[LayerStore],
    ) -> None:
        """Regenerate the uncompressed diff; compare digest and size; keep its headers.
        The diff is read as Go's tar reader reads it (an empty stream is an empty
        archive; bytes after the end marker count but are not entries)."""
        import hashlib

        from .archive.tarreader import Source, TarReader
        from .records.contents import Header
        from .records.images import validate_digest

        try:
            validate_digest(rec.uncompressed_digest)
        except ValueError as exc:
            errs.append(StorageError(f"{desc}layer {rec.id}", message=_error_text(exc)))
            return
        algorithm = rec.uncompressed_digest.split(":", 1)[0]
        hasher = hashlib.new(algorithm)
        count = 0
        found: list[Header] = []
        try:
            stream = store.diff("", rec.id, 0, self._lookup_layer(stores))
        except Exception as exc:
            errs.append(StorageError(f"{desc}layer {rec.id}", message=_error_text(exc)))
            return

        def tap(data: bytes) -> None:
            nonlocal count
            hasher.update(data)
            count += len(data)

        source = Source(stream, tap)
        try:
            for e in TarReader(source):
                # directory names keep their trailing slash: the replay order depends on it
                found.append(
                    Header(
                        os.fsdecode(e.name),
                        chr(e.typeflag),
                        e.uid,
                        e.gid,
                        e.size,
                        e.mode,
                        e.mtime_ns // 1_000_000_000,
                        os.fsdecode(e.linkname),
                    )
                )
            for _rest in source.rest():
                pass
        except Exception as exc:
            errs.append(StorageError(f"{desc}layer {rec.id}", message=_error_text(exc)))
            return
        finally:
            stream.close()
        ok = True
        if f"{algorithm}:{hasher.hexdigest()}" != rec.uncompressed_digest:
            errs.append(LayerIncorrectContentDigest(f"{desc}layer {rec.id}"))
            ok = False
        if count != rec.uncompressed_size:
            errs.append(
                LayerIncorrectContentSize(
                    f"{desc}layer {rec.id}: read {count} bytes instead of {rec.uncompressed_size} bytes"
                )
            )
            ok = False
        if ok:
            headers[rec.id] = found

    def repair(self, report: CheckReport, options: RepairOptions | None = None) -> list[Exception]:
        """Remove what :meth:`check` found damaged: containers (only with
        ``remove_containers``), images, then layers -- known ones deepest first,
        unaccounted ones last, straight from the driver. Returns the errors met."""
        opts = options or RepairOptions()
        failures: list[Exception] = []
        if opts.remove_containers:
            for cid in report.containers:
                try:
                    self.delete_container(cid)
                except (ContainerUnknown, NotAContainer):
                    pass
                except StorageError as exc:
                    failures.append(StorageError(f"deleting container {cid}", message=str(exc)))
        deleted: set[str] = set()
        for iid in report.images:
            try:
                deleted.update(self.delete_image(iid, True))
            except (ImageUnknown, NotAnImage, LayerUnknown):
                pass
            except StorageError as exc:
                failures.append(StorageError(f"deleting image {iid}", message=str(exc)))

        def unaccounted(lid: str) -> bool:
            return any(isinstance(e, LayerUnaccounted) for e in report.layers[lid])

        def depth(lid: str) -> int:
            n, parent = 0, report.layer_parents.get(lid, "")
            while parent:
                n += 1
                parent = report.layer_parents.get(parent, "")
            return n

        order = sorted(
            report.layers,
            key=lambda lid: (1, report.layer_order.get(lid, 0)) if unaccounted(lid) else (0, -depth(lid)),
        )
        for lid in order:
            if lid in deleted:
                continue
            for err in report.layers[lid]:
                try:
                    if isinstance(err, LayerUnaccounted):
                        with self._graph() as driver:
                            driver.remove(self._layers.valid_id(lid))
                    else:
                        try:
                            self.unmount(lid, force=True)
                        except StorageError:
                            pass
                        self.delete_layer(lid)
                except (LayerUnknown, NotALayer, FileNotFoundError):
                    pass
                except (StorageError, OSError) as exc:
                    failures.append(StorageError(f"deleting layer {lid}", message=str(exc)))
        return failures

    def garbage_collect(self) -> None:
        """Remove leftovers nothing refers to: container and image data directories
        without records, driver layers without records (with their tar-split and data).
        Continues past errors and raises the first."""
        first: BaseException | None = None

        def sweep(directory: str, known: Callable[[str], bool]) -> None:
            nonlocal first
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                return
            for name in names:
                if (
                    _ID_RE.fullmatch(name)
                    and not known(name)
                    and os.path.isdir(os.path.join(directory, name))
                ):
                    try:
                        remove_tree(os.path.join(directory, name))
                    except OSError as exc:
                        first = first or exc

        with self._containers.writing():
            sweep(self._container_dir, lambda i: self._containers.by_id(i) is not None)
        with self._images.writing():
            sweep(self._images.image_dir, lambda i: self._images.by_id(i) is not None)
        with self._graph() as driver, self._layers.writing():
            for lid in _driver_layers(driver):
                if self._layers.by_id(lid) is not None:
                    continue
                try:
                    driver.remove(lid)
                    for path in (self._layers.tar_split_path(lid),):
                        if os.path.exists(path):
                            os.unlink(path)
                    remove_tree(self._layers.data_dir(lid))
                except (OSError, StorageError) as exc:
                    first = first or exc
            try:
                from .chunked.storeglue import collect_staging

                collect_staging(driver)  # partial pulls' abandoned staging directories
            except OSError as exc:
                first = first or exc
        if first is not None:
            raise first


class AdditionalLayerHandle:
    """A layer found in an additional layer store (upstream's ``AdditionalLayer``); use
    it as a context manager or call :meth:`release`."""

    def __init__(
        self, store: Store, digest: str, image_ref: str, found: AdditionalLayer, info: Layer
    ) -> None:
        self._store = store
        self.digest = digest
        self.image_ref = image_ref
        self.found = found
        #: the store's record of the layer (its ``info`` file)
        self.info = info

    @property
    def uncompressed_digest(self) -> str:
        return self.info.uncompressed_digest

    @property
    def compressed_size(self) -> int:
        return self.info.compressed_size

    def put_as(self, id: str = "", parent: str = "", names: Sequence[str] = ()) -> Layer:
        """Add the layer to the store as ``id`` ("" = random) on top of ``parent``."""
        return self._store._put_additional_layer(self, id, parent, names)

    def release(self) -> None:
        self.found.release()

    def __enter__(self) -> AdditionalLayerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _data_errors(
    desc: str,
    keys: Sequence[str],
    read: Callable[[str], bytes],
    sizes: Mapping[str, int] | None,
    missing: type[StorageError],
    wrong_size: type[StorageError],
) -> list[Exception]:
    """Check findings for big-data items: unreadable, missing, or (when ``sizes`` is
    given) of another size than recorded."""
    out: list[Exception] = []
    for key in keys:
        where = f"{desc}: data item {go_quote(key)}"
        try:
            data = read(key)
        except FileNotFoundError:
            out.append(missing(where))
            continue
        except OSError as exc:
            out.append(StorageError(where, message=exc.strerror or str(exc)))
            continue
        if sizes is not None and len(data) != sizes.get(key, 0):
            out.append(wrong_size(where))
    return out


def _invalid_id_error(
    problem: Callable[[str], str | None], what: str, id: str, parent: str = ""
) -> InvalidID | None:
    """The finding for a record (written by someone else) whose ID, or parent's ID,
    cannot be a path component; such a record is reported and only ever dropped."""
    checks = [(f"{what} ID {go_quote(id)}", id)]
    if parent:
        checks.append((f"{what} {go_quote(id)}: parent ID {go_quote(parent)}", parent))
    for context, value in checks:
        reason = problem(value)
        if reason is not None:
            return InvalidID(context, message=f"{InvalidID.default_message}: {reason}")
    return None


def _driver_layers(driver: Driver) -> list[str]:
    """The driver's layer IDs for check and GC; empty for a driver that cannot enumerate
    (DriverNotSupported, as upstream's zfs says): its unaccounted-layer pass is skipped,
    as upstream's is."""
    from .errors import DriverNotSupported

    try:
        return driver.list_layers()
    except DriverNotSupported:
        return []


def _contiguous(maps: IDMaps) -> bool:
    """Each range continues the previous one on both sides (upstream IsContiguous)."""
    return all(
        a.container_id + a.size == b.container_id and a.host_id + a.size == b.host_id
        for a, b in pairwise(maps)
    )


def _error_text(exc: BaseException) -> str:
    """An error as upstream's Go reports it: ``open <path>: no such file or directory``
    for failed file operations, the message otherwise."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"open {exc.filename}: {exc.strerror[:1].lower()}{exc.strerror[1:]}"
    return str(exc)


def _mkdir_private(path: str) -> None:
    """``mkdir -p`` with mode 0700 for every directory it creates (as Go's MkdirAll)."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        _mkdir_private(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass


@contextmanager
def _held(lock: Lock) -> Iterator[None]:
    lock.lock()
    try:
        yield
    finally:
        lock.unlock()


def _dir_size(path: str) -> int:
    """Apparent size of the files below ``path`` (hard links counted once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if not os.path.isdir(os.path.join(root, name)) or os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total


class _ClosingStream(io.RawIOBase):
    """A read stream that runs ``on_close`` once (releases the layer lock of a diff)."""

    def __init__(self, inner: IO[bytes], on_close: Callable[[], None]) -> None:
        self._inner = inner
        self._on_close: Callable[[], None] | None = on_close

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def readinto(self, b: Any) -> int:
        data = self._inner.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._on_close is not None:
            cb, self._on_close = self._on_close, None
            try:
                self._inner.close()
            finally:
                cb()
        super().close()
