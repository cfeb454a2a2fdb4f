"""The store's state and its locks, in one place.

Lock order (upstream's, on-disk.md §7.5); every method of every part of the Store takes
the locks it needs in this order, and only through the helpers here or the record
stores' ``reading()``/``writing()``/``holding()`` in this order:

1. ``storage.lock`` (the graph lock, held only while the driver is checked or used:
   :meth:`StoreLocks._graph`);
2. ``userns.lock`` (automatic user namespaces only);
3. the primary layer store's ``layers.lock`` (its ``mountpoints.lock`` is taken inside
   it by the layer store itself), then each read-only layer store's;
4. the primary image store's ``images.lock``, then each read-only image store's;
5. ``containers.lock``.

Locks are taken shared for reading and exclusively for writing; a later lock is never
held while an earlier one is waited for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

from ..drivers.api import Driver
from ..errors import (
    StorageError,
)
from ..locks.api import Lock
from ..records.containers import ContainerStore
from ..records.images import ImageStore
from ..records.layers import LayerStore
from ..records.model import (
    Image,
    Layer,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import StoreOptions
    from ..plugins import PluginHost


class StoreLocks:
    """The attributes every part of the Store shares (set by ``Store.__init__``) and
    the helpers that take its locks in the order of the module docstring."""

    _options: StoreOptions
    _plugins: PluginHost
    _run_root: str
    _graph_root: str
    _image_store: str
    _graph_lock: Lock
    _userns_lock: Lock
    _driver: Driver | None
    _graph_token: bytes
    _closed: bool
    _driver_name: str
    _container_dir: str
    _run_container_dir: str
    _layers: LayerStore
    _images: ImageStore
    _containers: ContainerStore
    _ro_layers: list[LayerStore]
    _ro_images: list[ImageStore]

    def _lock(self, path: str, read_only: bool = False) -> Lock:
        return self._plugins.lock(path, read_only, self._options.lock_kind)

    @contextmanager
    def _graph(self) -> Iterator[Driver]:
        """Hold ``storage.lock`` exclusively with a current driver: re-create the driver
        when another process shut it down (its token changed)."""
        from ..drivers.select import open_driver

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

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            self._fresh_driver()
        assert self._driver is not None
        return self._driver


@contextmanager
def held(lock: Lock) -> Iterator[None]:
    lock.lock()
    try:
        yield
    finally:
        lock.unlock()
