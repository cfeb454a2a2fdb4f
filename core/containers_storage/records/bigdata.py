"""Big-data items of images and containers: files under the record's data directory,
with names, sizes and digests kept in the record (on-disk.md §5.1, §6, §8).

Changing an item of a saved record touches two files, the item and the record, so a
kill between them must not leave a record that disagrees with its item (check would
call the image damaged and repair would remove it and its containers). The new bytes go
to a pending file first; the record is saved with their size and digest and a
``big-data-pending`` flag naming the item; then the pending file is renamed into place
and the flag dropped. Whichever writer next finds the flag finishes the rename.
"""

from __future__ import annotations

import os

from ..errors import DigestUnknown, NotFoundError, SizeUnknown
from ..gojson import go_quote
from ..structs import replace
from ..typeshim import Protocol, TypeVar
from .base import RecordStore
from .files import big_data_file_name, remove_tree, require_utf8, write_atomic
from .ids import id_path, id_problem
from .limits import MAX_BIG_DATA, check_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _BigDataRecord(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def big_data_names(self) -> tuple[str, ...]: ...

    @property
    def big_data_sizes(self) -> dict[str, int]: ...

    @property
    def big_data_digests(self) -> dict[str, str]: ...

    @property
    def flags(self) -> dict[str, Any]: ...

    def to_json(self, *, extra: bool = True) -> dict[str, Any]: ...


B = TypeVar("B", bound=_BigDataRecord)

#: record flag: items whose new bytes may still wait in their pending file (a list of keys)
PENDING_FLAG = "big-data-pending"
#: prefix of a pending item file; item file names never hold "-" (files.big_data_file_name)
_PENDING_PREFIX = ".pending-"


def sha256_of(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


class BigDataStore(RecordStore[B]):
    """A record store whose records carry big data in ``<dir>/<id>/<key-file>``."""

    #: error raised when a reference does not resolve
    unknown_error: type[NotFoundError] = NotFoundError
    #: whether that error names the reference (upstream's images do, containers do not)
    unknown_names_ref = False

    def __init__(self, *args: Any, data_root: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_root = data_root
        #: records loaded with the pending flag (a writer was killed mid-change)
        self._pending: set[str] = set()

    # -- interrupted item changes --------------------------------------------------------
    def load(self) -> None:
        super().load()
        self._pending = set()
        for rid, data in self._records.raw.items():
            flags = data.get("flags")
            if flags.__class__ is dict and PENDING_FLAG in flags:
                self._pending.add(rid)

    def needs_repair(self) -> bool:
        return super().needs_repair() or (not self.read_only and bool(self._pending))

    def repair(self) -> None:
        """Finish item changes a killed writer left half done: the record already holds
        the new size and digest, so the pending file (if still there) takes the item's
        place; then the flag goes."""
        super().repair()
        for rid in sorted(self._pending):
            rec = self._records.get(rid)
            if rec is None:
                continue
            keys = rec.flags.get(PENDING_FLAG)
            for key in keys if isinstance(keys, list) else ():
                if isinstance(key, str) and key and id_problem(rid) is None:
                    self._finish_pending(rid, key)
            self.update(self._without_pending(rec))
        self._pending.clear()

    def _finish_pending(self, id: str, key: str) -> None:
        directory = self.data_dir(id)
        name = big_data_file_name(key)
        try:
            os.rename(os.path.join(directory, _PENDING_PREFIX + name), os.path.join(directory, name))
        except FileNotFoundError:
            return  # renamed before the kill
        _sync_directory(directory)

    @staticmethod
    def _without_pending(rec: B) -> B:
        return replace(rec, flags={k: v for k, v in rec.flags.items() if k != PENDING_FLAG})  # type: ignore[type-var]

    def data_dir(self, id: str) -> str:
        return id_path(self.data_root, id, self.kind)

    def get(self, ref: str) -> B:
        rec = self.resolve(ref)
        if rec is None:
            context = f"locating {self.kind} with ID {go_quote(ref)}" if self.unknown_names_ref else None
            raise self.unknown_error(context, id=ref)
        return rec

    def big_data_path(self, ref: str, key: str) -> str:
        return os.path.join(self.data_dir(self.get(ref).id), big_data_file_name(key))

    def big_data(self, ref: str, key: str) -> bytes:
        """The item's bytes; a missing file raises FileNotFoundError (callers word it)."""
        with open(self.big_data_path(ref, key), "rb") as f:
            return f.read()

    def big_data_size(self, ref: str, key: str) -> int:
        rec = self.get(ref)
        big_data_file_name(key)
        if key in rec.big_data_sizes:
            return rec.big_data_sizes[key]
        try:
            return len(self.big_data(ref, key))
        except FileNotFoundError:
            raise SizeUnknown(id=rec.id, key=key) from None

    def big_data_digest(self, ref: str, key: str) -> str:
        rec = self.get(ref)
        big_data_file_name(key)
        d = rec.big_data_digests.get(key)
        if d:
            return d
        raise DigestUnknown(id=rec.id, key=key)

    def write_big_data(self, ref: str, key: str, data: bytes, digest: str, *, fresh: bool = False) -> bool:
        """Store the item and record it; returns whether the record changed (§5.1: only
        then is it rewritten). Call under :meth:`writing`, then :meth:`save`. ``fresh``:
        the record is new and not saved yet, so its first save commits the item too;
        otherwise a changed record is saved here, with the pending flag, before the
        item's file changes (see the module docstring). An item over
        :data:`~.limits.MAX_BIG_DATA` is refused before anything is written."""
        check_size(len(data), MAX_BIG_DATA, f"big data item {go_quote(key)}")
        rec = self.get(ref)
        name = big_data_file_name(key)
        require_utf8("big data key", key)
        directory = self.data_dir(rec.id)
        os.makedirs(directory, 0o700, exist_ok=True)
        changed = (
            rec.big_data_sizes.get(key) != len(data)
            or rec.big_data_digests.get(key) != digest
            or key not in rec.big_data_names
        )
        if not changed or fresh:
            write_atomic(os.path.join(directory, name), data)
        if not changed:
            return False
        names = rec.big_data_names if key in rec.big_data_names else (*rec.big_data_names, key)
        new = replace(
            rec,  # type: ignore[type-var]
            big_data_names=names,
            big_data_sizes={**rec.big_data_sizes, key: len(data)},
            big_data_digests={**rec.big_data_digests, key: digest},
        )
        new = self.after_big_data_change(new)
        if fresh:
            self.update(new)
            return True
        pending = os.path.join(directory, _PENDING_PREFIX + name)
        write_atomic(pending, data)  # durable, under its pending name
        self.update(replace(new, flags={**new.flags, PENDING_FLAG: [key]}))  # type: ignore[type-var]
        self.save()
        try:
            os.rename(pending, os.path.join(directory, name))
            _sync_directory(directory)
        except BaseException:
            self._loaded = False  # the saved flag is on disk: a reload finishes the change
            raise
        self.update(self._without_pending(self._records[rec.id]))
        return True

    def after_big_data_change(self, rec: B) -> B:
        """Hook: derived fields to recompute when big data changes (image digests)."""
        return rec

    def delete(self, ref: str) -> None:
        """Drop the record, save, then its data directory (a kill in between leaves only
        an orphan directory, which GC removes)."""
        rec = self.get(ref)
        self.remove(rec.id)
        self.save()
        self.remove_data_dir(rec.id)

    def wipe(self) -> None:
        ids = list(self._records)
        for rid in ids:
            self.remove(rid)
        self.save()
        for rid in ids:
            self.remove_data_dir(rid)

    def remove_data_dir(self, id: str) -> None:
        """Remove the record's data directory -- unless its ID (from a record someone
        else wrote) cannot be a path component: then nothing on disk is its own."""
        if id_problem(id) is None:
            remove_tree(self.data_dir(id))


def _sync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
