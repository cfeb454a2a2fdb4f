"""Layers: create, look up, mount, diff and delete them (the Store's layer methods)."""

from __future__ import annotations

import io
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise

from ..drivers.api import Change, MountOpts
from ..errors import (
    BigDataUnknown,
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
from ..locks.api import Lock, acting_for, lock_owner
from ..records.layers import LayerStore
from ..records.model import (
    Layer,
)
from .argtypes import binary_input, checked, flag, instance, optional, text, texts
from .locking import StoreLocks
from .options import (
    DiffOptions,
    IDMappingOptions,
    LayerOptions,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, BinaryIO


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

    @checked(
        id=text,
        parent=text,
        names=texts,
        mount_label=text,
        writeable=flag,
        options=instance(LayerOptions, none=True),
        diff=optional(binary_input),
    )
    def put_layer(
        self,
        id: str = "",
        parent: str = "",
        names: Sequence[str] = (),
        mount_label: str = "",
        writeable: bool = False,
        options: LayerOptions | None = None,
        diff: IO[bytes] | bytes | None = None,
    ) -> tuple[Layer, int]:
        """Create a layer and apply ``diff`` (any compression; a binary file or bytes);
        returns the layer and the size the driver reported (-1 without a diff)."""
        opts = options or LayerOptions()
        diff = _as_stream(diff) if diff is not None else None
        if id:
            self._layers.valid_id(id)  # before anything touches the disk
        with self._write_layers() as layers, self._ro_layers_reading() as ro, self._containers.reading():
            parent_rec: Layer | None = None
            if parent:
                parent_rec = self._lookup_layer([layers, *ro])(parent)
                if parent_rec is None:
                    raise LayerUnknown(f"layer {go_quote(parent)}", id=parent)
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

    @checked(id=text)
    def layer(self, id: str) -> Layer:
        with self._read_all_layers() as stores:
            found = self._home(stores, id)
            if found is None:
                raise LayerUnknown(id=id)
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

    @checked(id=text)
    def layer_size(self, id: str) -> int:
        """The layer's uncompressed diff size, or -1 when not recorded."""
        rec = self.layer(id)
        return -1 if rec.size is None else rec.size

    @checked(digest=text)
    def layers_by_compressed_digest(self, digest: str) -> list[Layer]:
        self._check_digest(digest)
        with self._read_all_layers() as stores:
            return [rec for store in stores for rec in store.by_compressed_digest(digest)]

    @checked(digest=text)
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

    @checked(id=text)
    def layer_parent_owners(self, id: str) -> tuple[list[int], list[int]]:
        with self._read_layers() as layers:
            return layers.parent_owners(id)

    @checked(id=text)
    def list_layer_big_data(self, id: str) -> list[str]:
        with self._read_all_layers() as stores:
            return list(self._located_layer(stores, id)[1].big_data_names)

    def _located_layer(self, stores: Sequence[LayerStore], id: str) -> tuple[LayerStore, Layer]:
        found = self._home(stores, id)
        if found is None:
            raise LayerUnknown(f"locating layer with ID {go_quote(id)}", id=id)
        return found

    @checked(id=text, key=text)
    def layer_big_data(self, id: str, key: str) -> bytes:
        with self.open_layer_big_data(id, key) as f:
            return f.read()

    @checked(id=text, key=text)
    def open_layer_big_data(self, id: str, key: str) -> BinaryIO:
        """The item as a binary file open for reading (upstream's LayerBigData returns a
        stream), so a large one need not fit in memory; close it when done."""
        with self._read_all_layers() as stores:
            store, rec = self._located_layer(stores, id)
            try:
                return store.open_big_data(rec.id, key)
            except FileNotFoundError:
                raise BigDataUnknown(
                    f"locating item named {go_quote(key)} for layer with ID {go_quote(id)}", id=id, key=key
                ) from None

    @checked(id=text, key=text, data=binary_input)
    def set_layer_big_data(self, id: str, key: str, data: bytes | IO[bytes]) -> None:
        """Store an item; a stream is copied to its file in chunks (never held whole)."""
        with self._write_layers() as layers:
            if layers.resolve(id) is None:
                raise LayerUnknown(f"locating layer with ID {go_quote(id)} to write bigdata", id=id)
            layers.set_big_data(id, key, data)

    @checked(id=text)
    def delete_layer(self, id: str) -> None:
        self._delete_layer(id)

    def _delete_layer(self, id: str, along: Collection[str] = ()) -> None:
        """``delete_layer``; children in ``along`` (being removed with it: repair's parent
        loops) do not keep it."""
        with self._write_all():
            rec = self._layers.resolve(id)
            if rec is None:
                raise NotALayer(id=id)
            # "" links to nothing (a record someone else wrote may still have that ID)
            for other in self._layers.all():
                if rec.id and other.parent == rec.id and other.id not in along:
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

    @checked(id=text, mount_label=text)
    def mount(self, id: str, mount_label: str = "") -> str:
        """Mount a layer (or a container's layer) read-write; counted across processes."""
        layer_id, opts = self._container_mount_opts(id, mount_label)
        with self._graph(), self._layers.writing(), self._ro_layers_reading() as ro:
            if self._layers.resolve(layer_id) is None and self._home(ro, layer_id) is not None:
                raise StoreIsReadOnly("mounting read/only store images is not allowed")
            return self._layers.mount(layer_id, opts)

    @checked(id=text, force=flag)
    def unmount(self, id: str, force: bool = False) -> bool:
        """Drop one mount reference (all with ``force``); True if still mounted."""
        layer_id, _opts = self._container_mount_opts(id, "")
        with self._graph(), self._layers.writing():
            return self._layers.unmount(layer_id, force)

    @checked(id=text)
    def mounted(self, id: str) -> int:
        """How many times the layer (or a container's layer) is mounted (upstream's
        ``Mounted``); for a mount that ends with a block, see :meth:`mounting`."""
        layer_id, _opts = self._container_mount_opts(id, "")
        with self._read_layers() as layers:
            rec = layers.resolve(layer_id)
            if rec is None:
                raise LayerUnknown(id=layer_id)
            return layers.mount_count(rec.id)

    @checked(id=text, mount_label=text)
    @contextmanager
    def mounting(self, id: str, mount_label: str = "") -> Iterator[str]:
        """``with store.mounting(id) as path:`` -- :meth:`mount` for the block, one
        :meth:`unmount` when it ends, also when it raises (then a failed unmount is added
        to the block's error as a note, and the block's error is what propagates). Named
        so because :meth:`mounted` is upstream's ``Mounted``, which returns the count."""
        path = self.mount(id, mount_label)
        try:
            yield path
        except BaseException as exc:
            try:
                self.unmount(id)
            except Exception as unmount_error:
                exc.add_note(f"unmounting {id} after the error failed too: {unmount_error}")
            raise
        self.unmount(id)

    def _layer_home(self, stores: list[LayerStore], ref: str) -> LayerStore:
        found = self._home(stores, ref)
        if found is None:
            raise LayerUnknown(id=ref)
        return found[0]

    @checked(from_=text, to=text)
    def changes(self, from_: str, to: str) -> list[Change]:
        """Changes of layer ``to`` against ``from_`` ("" = its parent)."""
        with self._graph(), self._layers.writing(), self._ro_layers_reading() as ro:
            stores = [self._layers, *ro]
            return self._layer_home(stores, to).changes(from_, to, self._lookup_layer(stores))

    @checked(from_=text, to=text)
    def diff_size(self, from_: str, to: str) -> int:
        with self._graph(), self._layers.writing(), self._ro_layers_reading() as ro:
            stores = [self._layers, *ro]
            return self._layer_home(stores, to).diff_size(from_, to, self._lookup_layer(stores))

    @checked(from_=text, to=text, options=instance(DiffOptions, none=True))
    def diff(self, from_: str, to: str, options: DiffOptions | None = None) -> IO[bytes]:
        """The diff of ``to`` against ``from_`` ("" = its parent) as a tar stream, compressed
        as recorded for the layer unless ``options`` says otherwise. The layer locks stay
        held until the stream is closed (other threads wait for the layers meanwhile; the
        opening thread may go on using the store); any thread may close it, as upstream's
        closer may run on any goroutine."""
        compression = options.compression if options is not None else None
        self._fresh_driver()
        holds: list[Lock] = []
        owner = lock_owner()
        try:
            with self._layers.writing(), self._ro_layers_reading() as ro:
                stores = [self._layers, *ro]
                stream = self._layer_home(stores, to).diff(from_, to, compression, self._lookup_layer(stores))
                try:
                    # the stream's own holds, taken as the records are current and
                    # outliving this block; released by whoever closes the stream
                    for store in stores:
                        store.lock.lock() if store is self._layers else store.lock.rlock()
                        holds.append(store.lock)
                except BaseException:
                    stream.close()
                    raise
        except BaseException:
            _release(holds, owner)
            raise
        return io.BufferedReader(_ClosingStream(stream, lambda: _release(holds, owner)), 1 << 20)  # type: ignore[return-value]

    @checked(to=text, diff=binary_input)
    def apply_diff(self, to: str, diff: IO[bytes] | bytes) -> int:
        """Apply ``diff`` (any compression; a binary file or bytes) to layer ``to``."""
        with self._write_layers() as layers:
            return layers.apply_diff(to, _as_stream(diff))


def _release(holds: list[Lock], owner: object) -> None:
    """Release a stream's holds on behalf of the thread that took them, in any thread;
    every one is released even if one fails (the first failure is raised after)."""
    failure: BaseException | None = None
    with acting_for(owner):
        while holds:
            try:
                holds.pop().unlock()
            except BaseException as exc:
                failure = failure or exc
    if failure is not None:
        raise failure


def _as_stream(diff: IO[bytes] | bytes) -> IO[bytes]:
    return io.BytesIO(diff) if isinstance(diff, bytes | bytearray | memoryview) else diff


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
