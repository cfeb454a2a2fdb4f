"""Layers: create, look up, mount, diff and delete them (the Store's layer methods)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from itertools import pairwise
from typing import IO, Any, BinaryIO

from ..drivers.api import Change, MountOpts
from ..errors import (
    LayerHasChildren,
    LayerUnknown,
    LayerUsedByContainer,
    LayerUsedByImage,
    NotALayer,
    ParentIsContainer,
    StorageError,
    StoreIsReadOnly,
)
from ..gojson import go_quote
from ..idtools import IDMappings, IDMaps
from ..records.layers import LayerStore
from ..records.model import (
    Layer,
)
from .locking import StoreLocks
from .options import (
    DiffOptions,
    IDMappingOptions,
    LayerOptions,
)


class LayersMixin(StoreLocks):
    """The layer methods of :class:`~containers_storage.store.Store`."""

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

    def _default_maps(self) -> IDMappings:
        """The store's own maps: for layers without a parent, containers without an image."""
        return IDMappings(tuple(self._options.uid_map), tuple(self._options.gid_map))

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
        from ..records.images import validate_digest

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
        """Store an item; a stream is copied to its file in chunks (never held whole)."""
        with self._write_layers() as layers:
            if layers.resolve(id) is None:
                raise LayerUnknown(f"locating layer with ID {go_quote(id)} to write bigdata")
            layers.set_big_data(id, key, data)

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
            # maps that cannot be shifted were applied to the files already (on-disk.md §5.4)
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


def _contiguous(maps: IDMaps) -> bool:
    """Each range continues the previous one on both sides (upstream IsContiguous)."""
    return all(
        a.container_id + a.size == b.container_id and a.host_id + a.size == b.host_id
        for a, b in pairwise(maps)
    )


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
