"""Big-data items of images and containers: files under the record's data directory,
with names, sizes and digests kept in the record (on-disk.md §5.1, §6, §8)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from ..errors import DigestUnknown, SizeUnknown, StorageError
from ..gojson import go_quote
from .base import RecordStore
from .files import big_data_file_name, remove_tree, write_atomic
from .ids import id_path, id_problem


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

    def to_json(self, *, extra: bool = True) -> dict[str, Any]: ...


B = TypeVar("B", bound=_BigDataRecord)


def sha256_of(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


class BigDataStore(RecordStore[B]):
    """A record store whose records carry big data in ``<dir>/<id>/<key-file>``."""

    #: error raised when a reference does not resolve
    unknown_error: type[StorageError] = StorageError
    #: whether that error names the reference (upstream's images do, containers do not)
    unknown_names_ref = False

    def __init__(self, *args: Any, data_root: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_root = data_root

    def data_dir(self, id: str) -> str:
        return id_path(self.data_root, id, self.kind)

    def get(self, ref: str) -> B:
        rec = self.resolve(ref)
        if rec is None:
            context = f"locating {self.kind} with ID {go_quote(ref)}" if self.unknown_names_ref else None
            raise self.unknown_error(context)
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
            raise SizeUnknown() from None

    def big_data_digest(self, ref: str, key: str) -> str:
        rec = self.get(ref)
        big_data_file_name(key)
        d = rec.big_data_digests.get(key)
        if d:
            return d
        raise DigestUnknown()

    def write_big_data(self, ref: str, key: str, data: bytes, digest: str) -> bool:
        """Store the item and record it; returns whether the record changed (§5.1: only
        then is it rewritten). Call under :meth:`writing`, then :meth:`save`."""
        rec = self.get(ref)
        name = big_data_file_name(key)
        os.makedirs(self.data_dir(rec.id), 0o700, exist_ok=True)
        write_atomic(os.path.join(self.data_dir(rec.id), name), data)
        changed = (
            rec.big_data_sizes.get(key) != len(data)
            or rec.big_data_digests.get(key) != digest
            or key not in rec.big_data_names
        )
        if changed:
            names = rec.big_data_names if key in rec.big_data_names else (*rec.big_data_names, key)
            new = replace(
                rec,  # type: ignore[type-var]
                big_data_names=names,
                big_data_sizes={**rec.big_data_sizes, key: len(data)},
                big_data_digests={**rec.big_data_digests, key: digest},
            )
            self.update(self.after_big_data_change(new))
        return changed

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
