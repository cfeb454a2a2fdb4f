"""The Store: layers, images and containers on one graph driver (upstream's ``Store``).

Open one with :func:`get_store`; use it as a context manager (``with get_store(opts) as
s:``) so the driver is released at the end. Every public method takes the locks it needs
in upstream's order (see :mod:`.locking`) and reloads records only when another process
changed them, so several processes -- ours or upstream's -- can share one store.

The class is put together from one part per concern: :mod:`.layers`, :mod:`.images`,
:mod:`.containers`, :mod:`.items` (any item by ID), :mod:`.additional` (additional layer
stores), :mod:`.partial` (partial pulls), :mod:`.maintenance` (check, repair, GC); the
option and report types are in :mod:`.options`.
"""

from __future__ import annotations

import os
import threading

from ..drivers.api import Driver
from ..errors import (
    IncompleteOptions,
    LayerUsedByContainer,
    StorageError,
)
from ..idtools import IDMaps
from ..locks.api import Lock
from ..records.containers import ContainerStore
from ..records.images import ImageStore
from ..records.layers import LayerStore
from ..records.model import (
    Container,
    Image,
    Layer,
)
from .additional import AdditionalLayerHandle, AdditionalMixin
from .argtypes import checked, flag, text
from .items import ItemsMixin
from .maintenance import MaintenanceMixin
from .options import DEFAULT_UNREFERENCED_AGE as DEFAULT_UNREFERENCED_AGE
from .options import (
    AutoUserNsOptions,
    CheckOptions,
    CheckReport,
    ContainerOptions,
    DiffOptions,
    IDMappingOptions,
    ImageBigData,
    ImageOptions,
    LayerOptions,
    RepairOptions,
)
from .options import ManifestDigester as ManifestDigester
from .partial import PartialMixin

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import StoreOptions
    from ..plugins import PluginHost


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
    from ..config import StoreOptions, complete_store_options

    if not isinstance(options, StoreOptions):
        raise TypeError(f"options must be a StoreOptions, not {type(options).__name__}")
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


class Store(ItemsMixin, MaintenanceMixin, AdditionalMixin, PartialMixin):
    """See the module docstring. Methods accept an ID, a name or an unambiguous ID prefix
    wherever upstream does; wrong argument types raise :class:`TypeError` naming the
    parameter before anything is written.

    What is safe, once for the whole class:

    - **Threads**: one Store may be used by any number of threads at once; every method
      takes the locks it needs (a reader/writer lock per lock file between the threads
      of the process, the file lock between processes) and returns records that are
      immutable snapshots. Two Store objects on the same roots in one process share
      those locks. A :meth:`diff` stream holds the layer locks until it is closed:
      other threads' layer operations wait meanwhile, the thread that opened it may go
      on using the store, and any thread may close it. :meth:`close` and
      :meth:`shutdown` must not race with other threads still using the store.
    - **Processes**: any number of processes, ours or upstream's Go tools, may share the
      roots, with the same lock files and lock kind (``posix``); each reloads records
      only when another wrote them. A forked child holds none of its parent's locks
      (they are reset in the child, open diff streams included); it should open its
      own Store rather than use one its parent opened.
    """

    def __init__(self, options: StoreOptions, *, plugins: PluginHost | None = None) -> None:
        from ..plugins import get_plugin_host

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

    def status(self) -> list[tuple[str, str]]:
        with self._graph() as driver:
            return driver.status()

    def version(self) -> list[tuple[str, str]]:
        """Key/value version facts of the store; upstream's store reports none (its tool
        prints an empty list), so neither does this one."""
        return []

    @checked(digest=text)
    def get_digest_lock(self, digest: str) -> Lock:
        """A lock named for ``digest`` in the run root, for callers that de-duplicate
        work on one blob (upstream ``GetDigestLock``)."""
        from ..records.images import validate_digest

        try:
            validate_digest(digest)
        except ValueError as exc:
            raise StorageError(message=str(exc)) from None
        return self._lock(os.path.join(self._run_root, f"{self._driver_name}-locks", digest))

    def __repr__(self) -> str:
        state = "closed" if getattr(self, "_closed", True) else "open"
        return (
            f"<Store driver={getattr(self, '_driver_name', '')!r} "
            f"graph_root={getattr(self, '_graph_root', '')!r} "
            f"run_root={getattr(self, '_run_root', '')!r} {state}>"
        )

    def close(self) -> None:
        """Release the driver; mounts stay (see :meth:`shutdown`). A closed store is
        no longer one that :func:`get_store` shares (see :meth:`free`). Safe to call
        again, and after :meth:`shutdown`."""
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

    @checked(force=flag)
    def shutdown(self, force: bool = False) -> list[str]:
        """Release the driver so other processes re-initialise theirs. Layers still
        mounted make it fail with :class:`LayerUsedByContainer` (``force`` unmounts them
        first, and still reports them, as upstream does); the error's ``mounted``
        attribute lists them. Returns the list (empty) on success. On a store already
        closed or shut down it does nothing and returns an empty list."""
        if self._closed:
            return []
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
