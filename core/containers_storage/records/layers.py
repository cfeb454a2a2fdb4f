"""Layer records (``layers.json`` + ``volatile-layers.json``), their mount counts
(``mountpoints.json``), tar-split files and big data, and the layer lifecycle on the
driver: create, apply a diff, delete, mount (on-disk.md §4, §10, §11).

Crash safety follows upstream: a layer is saved with ``flags.incomplete`` before any
driver work, and whichever read-write loader next finds such a record finishes the job
by deleting the layer.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from ..archive.types import Compression
from ..drivers.api import ApplyDiffOpts, Change, CreateOpts, Driver, MountOpts
from ..errors import (
    DuplicateID,
    DuplicateLayerNames,
    DuplicateName,
    LayerNotMounted,
    LayerUnknown,
    LoadError,
    StorageError,
    StoreIsReadOnly,
)
from ..gojson import GoTime, dumps, go_quote
from ..idtools import IDMappings, IDMaps, to_container
from ..locks.api import Lock
from ..structs import replace
from .base import RecordFile, RecordStore
from .files import big_data_file_name, read_json_array, remove_tree, require_utf8, write_atomic
from .ids import dedupe, generate_id, id_problem, validate_id
from .limits import MAX_LAYER_BIG_DATA, check_metadata, check_size
from .model import INCOMPLETE_FLAG, Layer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, BinaryIO

TAR_SPLIT_SUFFIX = ".tar-split.gz"
#: compressions a diff cannot be produced in, with upstream's extension names
_NO_COMPRESSOR = {1: "tar.bz2", 3: "tar.xz"}
#: mount counts above this cannot come from mounting (one per mount call): a record
#: holding one was written by something else
MAX_MOUNT_COUNT = (1 << 31) - 1


def apply_name_operation(old: Sequence[str], given: Sequence[str], op: str) -> tuple[str, ...]:
    """Upstream's set/add/remove semantics: ``add`` puts the new names first."""
    if op == "set":
        result = list(given)
    elif op == "add":
        result = [*given, *old]
    elif op == "remove":
        drop = set(given)
        result = [n for n in old if n not in drop]
    else:
        raise ValueError(f"unknown name operation {op!r}")
    return dedupe(result)


class LayerStore(RecordStore[Layer]):
    kind = "layer"

    def __init__(
        self,
        lock: Lock,
        layer_dir: str,
        volatile_dir: str,
        driver: Driver,
        *,
        mounts_lock: Lock | None = None,
        run_dir: str = "",
        read_only: bool = False,
    ) -> None:
        super().__init__(
            lock,
            [
                RecordFile(os.path.join(layer_dir, "layers.json")),
                RecordFile(os.path.join(volatile_dir, "volatile-layers.json"), volatile=True),
            ],
            read_only=read_only,
        )
        self.layer_dir = layer_dir
        self.driver = driver
        self.mounts_lock = mounts_lock
        self.mounts_path = os.path.join(run_dir, "mountpoints.json") if run_dir else ""
        self._mounts: dict[str, tuple[str, int]] = {}
        self._invalid_mounts: dict[str, int] = {}
        self._mounts_token: bytes | None = None
        self._by_compressed: dict[str, list[str]] | None = None
        self._by_uncompressed: dict[str, list[str]] | None = None
        self._incomplete: set[str] = set()

    # -- RecordStore hooks -------------------------------------------------------------
    def parse(self, data: dict[str, Any], file_index: int) -> Layer:
        return Layer.from_json(data, read_only=self.read_only, volatile=file_index == 1)

    def check_mtimes(self) -> bool:
        return True

    def index_raw(self, id: str, data: dict[str, Any]) -> None:
        flags = data.get("flags")
        if flags and flags.__class__ is dict and flags.get(INCOMPLETE_FLAG) is True:
            self._incomplete.add(id)

    def _digest_index(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """The digest indexes, built on first use (most commands never look layers up
        by digest, and a big store's load should not pay for them)."""
        if self._by_compressed is None or self._by_uncompressed is None:
            self._by_compressed, self._by_uncompressed = {}, {}
            for rec in self._records.values():
                self._index_digests(rec)
        return self._by_compressed, self._by_uncompressed

    def _index_digests(self, rec: Layer) -> None:
        assert self._by_compressed is not None and self._by_uncompressed is not None
        if rec.compressed_digest:
            self._by_compressed.setdefault(rec.compressed_digest, []).append(rec.id)
        if rec.uncompressed_digest:
            self._by_uncompressed.setdefault(rec.uncompressed_digest, []).append(rec.id)

    def index_add(self, rec: Layer) -> None:
        if self._by_compressed is not None:
            self._index_digests(rec)
        if rec.incomplete:
            self._incomplete.add(rec.id)

    def index_remove(self, rec: Layer) -> None:
        if self._by_compressed is not None and self._by_uncompressed is not None:
            for index, key in (
                (self._by_compressed, rec.compressed_digest),
                (self._by_uncompressed, rec.uncompressed_digest),
            ):
                ids = index.get(key)
                if ids and rec.id in ids:
                    ids.remove(rec.id)
                    if not ids:
                        del index[key]
        self._incomplete.discard(rec.id)

    def index_clear(self) -> None:
        self._by_compressed = None
        self._by_uncompressed = None
        self._incomplete = set()

    def duplicate_names_error(self) -> Exception:
        return DuplicateLayerNames()

    def needs_repair(self) -> bool:
        if super().needs_repair():
            return True
        return not self.read_only and bool(self._incomplete)

    def repair(self) -> None:
        """Finish interrupted creations and deletions: delete every incomplete layer."""
        for lid in [i for i in self._records if i in self._incomplete]:
            self._delete_internal(lid)

    def load(self) -> None:
        super().load()
        if self.mounts_lock is not None:
            self._mounts_token = None
            self._refresh_mounts()

    def _refresh(self) -> None:
        with self._mem:
            if self._changed_on_disk():
                self.load()
            elif self.mounts_lock is not None:
                self._refresh_mounts()

    # -- mount records -------------------------------------------------------------------
    @contextmanager
    def _mounts_locked(self, exclusive: bool) -> Iterator[None]:
        assert self.mounts_lock is not None
        if exclusive:
            self.mounts_lock.lock()
        else:
            self.mounts_lock.rlock()
        try:
            if self._mounts_token is None or self.mounts_lock.modified_since(self._mounts_token):
                self._load_mounts()
            yield
        finally:
            self.mounts_lock.unlock()

    def _refresh_mounts(self) -> None:
        with self._mounts_locked(False):
            pass

    def _load_mounts(self) -> None:
        assert self.mounts_lock is not None
        token = self.mounts_lock.last_write()
        mounts: dict[str, tuple[str, int]] = {}
        invalid: dict[str, int] = {}
        for data in read_json_array(self.mounts_path)[0]:
            lid, path, count = data.get("id"), data.get("path"), data.get("count")
            if count is None:
                count = 0  # as Go decodes a missing or null count
            if lid.__class__ is not str or path.__class__ is not str or count.__class__ is not int:
                field = "id" if lid.__class__ is not str else "path" if path.__class__ is not str else "count"
                why = f"malformed mount record: field {field!r}"
                raise LoadError(f"loading {self.mounts_path}", message=why)
            if not 0 <= count <= MAX_MOUNT_COUNT:
                # clamped: a negative count is no mount; an impossible one is one mount
                # (the next unmount unmounts); check reports it until the next save
                invalid[lid] = count
                count = 0 if count < 0 else 1
            if lid in self._records and path and count > 0:
                mounts[lid] = (os.path.normpath(path), count)
        self._mounts = mounts
        self._invalid_mounts = invalid
        self._mounts_token = token

    def invalid_mount_counts(self) -> dict[str, int]:
        """Layer ID -> the out-of-range count its mount record holds (taken clamped)."""
        with self._mounts_locked(False):
            return dict(self._invalid_mounts)

    def rewrite_mounts(self) -> None:
        """Save the mount records with clamped counts (repair)."""
        with self._mounts_locked(True):
            self._save_mounts()

    def _save_mounts(self) -> None:
        assert self.mounts_lock is not None
        entries = [
            {"id": lid, "path": self._mounts[lid][0], "count": self._mounts[lid][1]}
            for lid in self._records
            if lid in self._mounts
        ]
        self._mounts_token = self.mounts_lock.record_write()
        os.makedirs(os.path.dirname(self.mounts_path), 0o700, exist_ok=True)
        write_atomic(self.mounts_path, dumps(entries).encode())
        self._invalid_mounts = {}

    def public(self, rec: Layer) -> Layer:
        """The record as callers see it: with its mount point and count."""
        m = self._mounts.get(rec.id)
        return rec if m is None else replace(rec, mount_point=m[0], mount_count=m[1])

    def mount_count(self, id: str) -> int:
        m = self._mounts.get(id)
        return m[1] if m else 0

    def layer_by_mount_point(self, path: str) -> Layer | None:
        path = os.path.normpath(path)
        for lid, (p, _c) in self._mounts.items():
            if p == path:
                return self._records.get(lid)
        return None

    # -- queries -------------------------------------------------------------------------
    def by_compressed_digest(self, digest: str) -> list[Layer]:
        return [self.public(self._records[i]) for i in self._digest_index()[0].get(digest, ())]

    def by_uncompressed_digest(self, digest: str) -> list[Layer]:
        return [self.public(self._records[i]) for i in self._digest_index()[1].get(digest, ())]

    # -- IDs as paths ----------------------------------------------------------------
    def id_problem(self, id: str) -> str | None:
        """Why ``id`` cannot be a layer's path component here (core rule and the
        driver's own restriction), or None."""
        return id_problem(id, self.driver.layer_id_pattern)

    def valid_id(self, id: str) -> str:
        return validate_id(id, "layer", self.driver.layer_id_pattern)

    def usable(self, rec: Layer) -> Layer:
        """``rec`` if its ID and parent ID may be handed to the driver and joined into
        paths; a record someone else wrote with another ID raises :class:`InvalidID`."""
        self.valid_id(rec.id)
        if rec.parent:
            self.valid_id(rec.parent)
        return rec

    def tar_split_path(self, id: str) -> str:
        return os.path.join(self.layer_dir, self.valid_id(id) + TAR_SPLIT_SUFFIX)

    def data_dir(self, id: str) -> str:
        return os.path.join(self.layer_dir, self.valid_id(id))

    def mappings(self, rec: Layer | None) -> IDMappings:
        return IDMappings(rec.uid_map, rec.gid_map) if rec is not None else IDMappings()

    def _get(self, ref: str) -> Layer:
        rec = self.resolve(ref)
        if rec is None:
            raise LayerUnknown(id=ref)
        return rec

    # -- big data ------------------------------------------------------------------------
    def big_data(self, ref: str, key: str) -> bytes:
        with self.open_big_data(ref, key) as f:
            return f.read()

    def open_big_data(self, ref: str, key: str) -> BinaryIO:
        """The item's file, open for reading; a missing one raises FileNotFoundError."""
        rec = self._get(ref)
        return open(os.path.join(self.data_dir(rec.id), big_data_file_name(key)), "rb")

    def set_big_data(self, ref: str, key: str, data: bytes | IO[bytes]) -> None:
        """Store an item; a stream is copied to the item's file in chunks (upstream's
        SetBigData takes a reader), up to :data:`~.limits.MAX_LAYER_BIG_DATA` bytes."""
        rec = self._get(ref)
        name = big_data_file_name(key)
        require_utf8("big data key", key)
        what = f"big data item {go_quote(key)}"
        if isinstance(data, bytes | bytearray):
            check_size(len(data), MAX_LAYER_BIG_DATA, what)
        os.makedirs(self.data_dir(rec.id), 0o700, exist_ok=True)
        write_atomic(os.path.join(self.data_dir(rec.id), name), data, limit=(MAX_LAYER_BIG_DATA, what))
        if key not in rec.big_data_names:
            self.update(replace(rec, big_data_names=(*rec.big_data_names, key)))
            self.save()

    # -- names and metadata --------------------------------------------------------------
    def update_names(self, ref: str, names: Sequence[str], op: str) -> None:
        rec = self._get(ref)
        new = apply_name_operation(rec.names, names, op)
        self.take_names(new, rec.id, lambda r: r)
        self.update(replace(self._records[rec.id], names=new))
        self.save()

    def set_metadata(self, ref: str, metadata: str) -> None:
        check_metadata(metadata)
        rec = self._get(ref)
        self.update(replace(rec, metadata=metadata))
        self.save()

    # -- lifecycle -----------------------------------------------------------------------
    def create(
        self,
        id: str,
        parent: Layer | None,
        names: Sequence[str],
        mount_label: str,
        storage_opt: Mapping[str, str],
        id_mappings: IDMappings,
        *,
        writeable: bool,
        template: str = "",
        flags: Mapping[str, Any] | None = None,
        big_data: Mapping[str, bytes] | None = None,
        volatile: bool = False,
        original_digest: str = "",
        original_size: int | None = None,
        uncompressed_digest: str = "",
        diff: IO[bytes] | None = None,
    ) -> tuple[Layer, int]:
        """§4.1; call under :meth:`writing`. Any failure after the first save deletes the
        layer again; a crash leaves an incomplete record for the next writer to remove."""
        id, names = self._claim(id, names)
        if parent is not None:
            self.usable(parent)
        tmpl: Layer | None = None
        if template:
            tmpl = self.usable(self._get(template))
        rec = Layer(
            id=id,
            names=names,
            parent=parent.id if parent else "",
            metadata=tmpl.metadata if tmpl else "",
            mount_label=mount_label,
            created=GoTime.now(),
            compressed_digest=tmpl.compressed_digest if tmpl else "",
            compressed_size=tmpl.compressed_size if tmpl else 0,
            uncompressed_digest=tmpl.uncompressed_digest if tmpl else "",
            toc_digest=tmpl.toc_digest if tmpl else "",
            uncompressed_size=tmpl.uncompressed_size if tmpl else 0,
            compression=tmpl.compression if tmpl else Compression.NONE,
            uidset=tmpl.uidset if tmpl else (),
            gidset=tmpl.gidset if tmpl else (),
            flags={**(flags or {}), INCOMPLETE_FLAG: True},
            uid_map=id_mappings.uids,
            gid_map=id_mappings.gids,
            volatile=volatile,
        )
        self.add(rec, 1 if volatile else 0)
        self.save()
        size = -1
        try:
            for key, value in (big_data or {}).items():
                self.set_big_data(id, key, value)
            opts = CreateOpts(mount_label=mount_label, storage_opt=dict(storage_opt), id_mappings=id_mappings)
            parent_maps = self.mappings(parent)
            if tmpl is not None:
                old_maps = self.mappings(tmpl)
                self.driver.create_from_template(
                    id, tmpl.id, old_maps, parent.id if parent else None, parent_maps, opts, writeable
                )
            else:
                old_maps = parent_maps
                if writeable:
                    self.driver.create_read_write(id, parent.id if parent else None, opts)
                else:
                    self.driver.create(id, parent.id if parent else None, opts)
            if old_maps.uids != id_mappings.uids or old_maps.gids != id_mappings.gids:
                self.driver.update_layer_id_map(id, old_maps, id_mappings, mount_label)
            if tmpl is not None and os.path.exists(self.tar_split_path(tmpl.id)):
                with open(self.tar_split_path(tmpl.id), "rb") as f:
                    write_atomic(self.tar_split_path(id), f)
            if diff is not None:
                size = self.apply_diff(
                    id,
                    diff,
                    original_digest=original_digest,
                    original_size=original_size,
                    uncompressed_digest=uncompressed_digest,
                )
            done = self._records[id]
            self.update(replace(done, flags={k: v for k, v in done.flags.items() if k != INCOMPLETE_FLAG}))
            self.save()
        except BaseException:
            if id in self._records:
                try:
                    self._delete_internal(id)
                    self.save()
                except Exception:
                    pass  # the incomplete flag is on disk: the next writer retries
            raise
        return self.public(self._records[id]), size

    def _claim(self, id: str, names: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        """A free ID (``id`` or a random one) and the de-duplicated, unused names."""
        if not id:
            id = generate_id(self._records.__contains__)
        self.valid_id(id)
        if id in self._records:
            raise DuplicateID()
        unique = dedupe(names)
        for name in unique:
            if self.name_owner(name) is not None:
                raise DuplicateName(f"layer name {go_quote(name)} is in use")
        return id, unique

    def create_additional(
        self,
        id: str,
        parent: Layer | None,
        names: Sequence[str],
        info: Layer,
        create_as: Callable[[str, str | None], None],
    ) -> Layer:
        """A layer whose contents stay in an additional layer store (on-disk.md §14): the
        record is ``info`` with local ID, names, parent and creation time; ``create_as``
        makes the driver's layer use the store's contents. Same crash safety as
        :meth:`create`."""
        id, unique = self._claim(id, names)
        if parent is not None:
            self.usable(parent)
        rec = replace(
            info,
            id=id,
            names=unique,
            parent=parent.id if parent else "",
            created=GoTime.now(),
            flags={**info.flags, INCOMPLETE_FLAG: True},
            big_data_names=(),
            mount_point="",
            mount_count=0,
            read_only=False,
            volatile=False,
        )
        self.add(rec, 0)
        self.save()
        try:
            create_as(id, parent.id if parent else None)
            self.update(replace(rec, flags={k: v for k, v in rec.flags.items() if k != INCOMPLETE_FLAG}))
            self.save()
        except BaseException:
            try:
                self._delete_internal(id)
                self.save()
            except Exception:
                pass  # the incomplete flag is on disk: the next writer retries
            raise
        return self.public(self._records[id])

    def apply_diff(
        self,
        ref: str,
        diff: IO[bytes],
        *,
        original_digest: str = "",
        original_size: int | None = None,
        uncompressed_digest: str = "",
    ) -> int:
        """§10: extract ``diff`` (any compression) into the layer and record digests,
        sizes, compression, UID/GID sets and the tar-split file."""
        from ..archive.ingest import apply_layer_stream

        rec = self.usable(self._get(ref))
        maps = self.mappings(rec)
        parent = rec.parent or None

        def apply(stream: IO[bytes]) -> int:
            return self.driver.apply_diff(
                rec.id, parent, ApplyDiffOpts(diff=stream, id_mappings=maps, mount_label=rec.mount_label)
            )

        ts_path = self.tar_split_path(rec.id)
        # recorded to an unnamed file first (its size grows with the entry count), then
        # copied into place atomically once the layer applied
        import tempfile  # only when a diff is applied: it imports re, random, shutil

        with tempfile.TemporaryFile(dir=os.path.dirname(ts_path)) as tar_split:
            result = apply_layer_stream(diff, apply, tar_split)
            tar_split.seek(0)
            write_atomic(ts_path, tar_split)
        compressed_digest = result.compressed_digest
        if original_digest and not original_digest.startswith("sha256:"):
            compressed_digest = original_digest
        plain_digest = result.uncompressed_digest
        if uncompressed_digest and not uncompressed_digest.startswith("sha256:"):
            plain_digest = uncompressed_digest
        compressed_size = result.compressed_size
        if original_digest and original_size is not None:
            compressed_size = original_size
        rec = self._records[rec.id]
        self.update(
            replace(
                rec,
                compressed_digest=compressed_digest,
                compressed_size=compressed_size,
                uncompressed_digest=plain_digest,
                uncompressed_size=result.uncompressed_size,
                compression=Compression(result.compression),
                uidset=tuple(sorted(set(result.uids))),
                gidset=tuple(sorted(set(result.gids))),
            )
        )
        self.save()
        return int(result.size)

    def _delete_internal(self, id: str) -> None:
        """§4.2: mark incomplete and save, remove content, tar-split and data, drop. A
        record whose ID is not a valid path component only loses its record: nothing
        on disk is provably its own, and its ID must never reach a path."""
        rec = self._records[id]
        if self.id_problem(id) is not None:
            self.remove(id)
            self._mounts.pop(id, None)
            return
        if not rec.incomplete:
            self.update(replace(rec, flags={**rec.flags, INCOMPLETE_FLAG: True}))
            self.save()
        try:
            self.driver.remove(id)
        except FileNotFoundError:
            pass
        for path in (self.tar_split_path(id),):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        remove_tree(self.data_dir(id))
        self.remove(id)
        if id in self._mounts:
            del self._mounts[id]

    def delete(self, ref: str) -> None:
        rec = self._get(ref)
        if self.mounts_lock is not None and self.id_problem(rec.id) is None:
            while self.mount_count(rec.id) > 0:
                self.unmount(rec.id, force=False)
        self._delete_internal(rec.id)
        self.save()

    def wipe(self) -> None:
        """Delete every layer, newest first (children before their parents)."""
        for rec in sorted(self._records.values(), key=lambda r: r.created, reverse=True):
            self.delete(rec.id)

    # -- mounts --------------------------------------------------------------------------
    def mount(self, ref: str, opts: MountOpts) -> str:
        from ..drivers.mounts import is_mounted

        if self.read_only or self.mounts_lock is None:
            raise StoreIsReadOnly(f"not allowed to update mount locations for layers at {self.layer_dir}")
        with self._mounts_locked(True):
            rec = self.usable(self._get(ref))
            current = self._mounts.get(rec.id)
            if current is not None and current[1] > 0 and is_mounted(current[0]):
                self._mounts[rec.id] = (current[0], current[1] + 1)
                self._save_mounts()
                return current[0]
            if not opts.mount_label:
                opts = replace(opts, mount_label=rec.mount_label)
            if (
                not opts.id_mappings.empty
                and not self.driver.supports_shifting()
                and (opts.id_mappings.uids != rec.uid_map or opts.id_mappings.gids != rec.gid_map)
            ):
                raise StorageError(f"cannot mount layer {rec.id}", message="shifting not enabled")
            path = self.driver.get(rec.id, opts)
            count = current[1] if current else 0
            self._mounts[rec.id] = (os.path.normpath(path), count + 1)
            self._save_mounts()
            return path

    def unmount(self, ref: str, force: bool, conditional: bool = False) -> bool:
        if self.read_only or self.mounts_lock is None:
            raise StoreIsReadOnly(f"not allowed to update mount locations for layers at {self.layer_dir}")
        with self._mounts_locked(True):
            rec = self.resolve(ref) or self.layer_by_mount_point(ref)
            if rec is None:
                raise LayerUnknown(id=ref)
            self.usable(rec)
            path, count = self._mounts.get(rec.id, ("", 0))
            if conditional and count == 0:
                raise LayerNotMounted()
            if force:
                count = 1
            if count > 1:
                self._mounts[rec.id] = (path, count - 1)
                self._save_mounts()
                return True
            try:
                self.driver.put(rec.id)
            except FileNotFoundError:
                pass
            self._mounts.pop(rec.id, None)
            self._save_mounts()
            return False

    def mounts(self) -> dict[str, tuple[str, int]]:
        return dict(self._mounts)

    # -- diffs ---------------------------------------------------------------------------
    def _from_to(self, from_: str, to: str) -> tuple[Layer | None, Layer]:
        to_rec = self.usable(self._get(to))
        from_id = from_ or to_rec.parent
        from_rec = self.resolve(from_id) if from_id else None
        return from_rec, to_rec

    def _driver_from(self, from_rec: Layer | None, from_id: str) -> str | None:
        """The layer the driver compares against: the record's ID, else the reference
        as given (as upstream) -- either way one that passes the ID rule."""
        lid = from_rec.id if from_rec else from_id
        return self.valid_id(lid) if lid else None

    def changes(self, from_: str, to: str, lookup: Callable[[str], Layer | None]) -> list[Change]:
        from_rec, to_rec = self._from_to(from_, to)
        from_rec = from_rec or (lookup(from_ or to_rec.parent) if (from_ or to_rec.parent) else None)
        return self.driver.changes(
            to_rec.id,
            self.mappings(to_rec),
            self._driver_from(from_rec, from_ or to_rec.parent),
            self.mappings(from_rec),
            to_rec.mount_label,
        )

    def diff_size(self, from_: str, to: str, lookup: Callable[[str], Layer | None]) -> int:
        from_rec, to_rec = self._from_to(from_, to)
        from_rec = from_rec or (lookup(from_ or to_rec.parent) if (from_ or to_rec.parent) else None)
        return self.driver.diff_size(
            to_rec.id,
            self.mappings(to_rec),
            self._driver_from(from_rec, from_ or to_rec.parent),
            self.mappings(from_rec),
            to_rec.mount_label,
        )

    def diff(
        self, from_: str, to: str, compression: Compression | None, lookup: Callable[[str], Layer | None]
    ) -> IO[bytes]:
        """The tar stream of ``to`` against ``from_``: replayed byte for byte from the
        tar-split file when diffing against the parent, else built by the driver."""
        from_rec, to_rec = self._from_to(from_, to)
        from_id = from_ or to_rec.parent
        from_rec = from_rec or (lookup(from_id) if from_id else None)
        kind = to_rec.compression if compression is None else compression
        if kind in _NO_COMPRESSOR:
            # upstream can decompress these but not produce them
            raise StorageError(message=f"unsupported compression format {_NO_COMPRESSOR[kind]}")
        if not 0 <= kind <= 4:
            # a record someone else wrote (upstream loads any int there, then fails alike)
            raise StorageError(f"layer {to_rec.id}", message=f"unsupported compression format {kind}")
        ts_path = self.tar_split_path(to_rec.id)
        chunks: Iterator[bytes]
        if from_id == to_rec.parent and os.path.exists(ts_path):
            chunks = self._replay_tar_split(to_rec, ts_path)
        elif from_id == to_rec.parent and (blob := self._additional_blob(to_rec.id)) is not None:
            # a layer of an additional layer store: its blob is the diff (on-disk.md §14)
            if kind == to_rec.compression:
                return blob
            chunks = _decompressed(blob)
        else:
            stream = self.driver.diff(
                to_rec.id,
                self.mappings(to_rec),
                self._driver_from(from_rec, from_id),
                self.mappings(from_rec),
                to_rec.mount_label,
            )
            chunks = _stream_chunks(stream)
        if kind:
            chunks = _compressed(chunks, kind)
        return io.BufferedReader(ChunkStream(chunks), 1 << 20)  # type: ignore[return-value]

    def _additional_blob(self, id: str) -> IO[bytes] | None:
        """The blob of a layer the driver took from an additional layer store, or None;
        closing the stream releases the store's layer."""
        by_id = getattr(self.driver, "lookup_additional_layer_by_id", None)
        if by_id is None:
            return None
        try:
            handle = by_id(id)
        except (OSError, LayerUnknown, StorageError):
            return None
        try:
            blob: IO[bytes] = handle.blob()
        except BaseException:
            handle.release()
            raise

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := blob.read(1 << 20):
                    yield chunk
            finally:
                blob.close()
                handle.release()

        return io.BufferedReader(ChunkStream(chunks()), 1 << 20)  # type: ignore[return-value]

    def _replay_tar_split(self, rec: Layer, ts_path: str) -> Iterator[bytes]:
        from ..archive.tarsplit import DirectoryFileGetter, assemble

        getter = self.driver.diff_getter(rec.id)
        mounted = getter is None
        if getter is None:
            getter = DirectoryFileGetter(self.driver.get(rec.id, MountOpts(options=("ro",))))
        try:
            with open(ts_path, "rb") as f:
                yield from assemble(f, getter)
        finally:
            getter.close()
            if mounted:
                self.driver.put(rec.id)

    def parent_owners(self, ref: str) -> tuple[list[int], list[int]]:
        """Host IDs owning the directories above the mount point that the layer's maps
        cannot represent (upstream ``ParentOwners``)."""
        rec = self.public(self._get(ref))
        if not rec.uid_map and not rec.gid_map:
            return [], []
        if not rec.mount_point:
            raise LayerNotMounted()
        return unmapped_parent_owners(rec.mount_point, rec.uid_map, rec.gid_map)


def unmapped_parent_owners(mount_point: str, uid_map: IDMaps, gid_map: IDMaps) -> tuple[list[int], list[int]]:
    uids: set[int] = set()
    gids: set[int] = set()
    d = os.path.dirname(mount_point)
    while d and d != "/":
        for st in (os.stat(d), os.lstat(d)):
            uids.add(st.st_uid)
            gids.add(st.st_gid)
        d = os.path.dirname(d)
    return (
        sorted(u for u in uids if to_container(u, uid_map) is None),
        sorted(g for g in gids if to_container(g, gid_map) is None),
    )


class ChunkStream(io.RawIOBase):
    """A read stream over a generator of byte chunks; closing it closes the generator
    (which releases what it holds: mounts, files)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf = nxt
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        super().close()


def _stream_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := stream.read(1 << 20):
            yield chunk
    finally:
        stream.close()


def _decompressed(stream: IO[bytes]) -> Iterator[bytes]:
    from ..archive.compression import decompressed_chunks

    try:
        _kind, chunks = decompressed_chunks(stream)
        yield from chunks
    finally:
        stream.close()


def _compressed(chunks: Iterator[bytes], kind: int) -> Iterator[bytes]:
    from ..archive.compression import Compression, compressor

    comp = compressor(Compression(kind))
    try:
        for chunk in chunks:
            out = comp.compress(chunk)
            if out:
                yield out
        yield comp.flush()
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
