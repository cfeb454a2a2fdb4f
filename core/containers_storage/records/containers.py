"""Container records (``containers.json`` + ``volatile-containers.json``) with big data
and per-container directories (on-disk.md §8)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence

from ..errors import (
    ContainerUnknown,
    DigestUnknown,
    DuplicateID,
    DuplicateName,
    InvalidMappings,
    SizeUnknown,
)
from ..gojson import GoTime, go_quote
from ..idtools import IDMaps
from ..locks.api import Lock
from ..structs import replace
from .base import RecordFile
from .bigdata import BigDataStore, sha256_of
from .ids import dedupe, generate_id, validate_id
from .layers import apply_name_operation
from .limits import check_metadata
from .model import VOLATILE_FLAG, Container

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _check_overlaps(maps: IDMaps, kind: str) -> None:
    spans = sorted((m.container_id, m.container_id + m.size) for m in maps)
    for (_a0, a1), (b0, _b1) in itertools.pairwise(spans):
        if b0 < a1:
            raise InvalidMappings(f"{kind} map ranges overlap")


class ContainerStore(BigDataStore[Container]):
    kind = "container"
    unknown_error = ContainerUnknown

    def __init__(self, lock: Lock, container_dir: str, volatile_dir: str) -> None:
        super().__init__(
            lock,
            [
                RecordFile(os.path.join(container_dir, "containers.json")),
                RecordFile(os.path.join(volatile_dir, "volatile-containers.json"), volatile=True),
            ],
            data_root=container_dir,
        )
        self._by_layer: dict[str, str] = {}

    def parse(self, data: dict[str, Any], file_index: int) -> Container:
        return Container.from_json(data)

    def index_raw(self, id: str, data: dict[str, Any]) -> None:
        layer = data.get("layer")
        if layer and layer.__class__ is str:
            self._by_layer.setdefault(layer, id)

    def index_add(self, rec: Container) -> None:
        self._by_layer.setdefault(rec.layer_id, rec.id)

    def index_remove(self, rec: Container) -> None:
        if self._by_layer.get(rec.layer_id) == rec.id:
            del self._by_layer[rec.layer_id]

    def index_clear(self) -> None:
        self._by_layer = {}

    def resolve(self, ref: str) -> Container | None:
        """ID, name, the container's layer ID, then a unique ID prefix (§3)."""
        rec = self._records.get(ref)
        if rec is not None:
            return rec
        rid = self._by_name.get(ref) or self._by_layer.get(ref)
        if rid is not None:
            return self._records[rid]
        return self._by_prefix(ref)

    def by_layer(self, layer_id: str) -> Container | None:
        rid = self._by_layer.get(layer_id)
        return None if rid is None else self._records[rid]

    def create(
        self,
        id: str,
        names: Sequence[str],
        image: str,
        layer: str,
        *,
        metadata: str = "",
        flags: Mapping[str, Any] | None = None,
        uid_map: IDMaps = (),
        gid_map: IDMaps = (),
        volatile: bool = False,
        big_data: Mapping[str, bytes] | None = None,
    ) -> Container:
        check_metadata(metadata)
        if not id:
            id = generate_id(self._records.__contains__)
        validate_id(id, "container")
        if id in self._records:
            raise DuplicateID(f"container ID {go_quote(id)} is already in use")
        names = dedupe(names)
        for name in names:
            if self.name_owner(name) is not None:
                raise DuplicateName(f"container name {go_quote(name)} is in use")
        _check_overlaps(uid_map, "UID")
        _check_overlaps(gid_map, "GID")
        all_flags = dict(flags or {})
        if volatile:
            all_flags[VOLATILE_FLAG] = True
        rec = Container(
            id=id,
            names=names,
            image_id=image,
            layer_id=layer,
            metadata=metadata,
            created=GoTime.now(),
            uid_map=uid_map,
            gid_map=gid_map,
            flags=all_flags,
        )
        self.add(rec, 1 if volatile else 0)
        try:
            for key, data in (big_data or {}).items():
                self.write_big_data(id, key, data, sha256_of(data), fresh=True)
            self.save()
        except BaseException:
            self.remove_data_dir(id)
            raise
        return self._records[id]

    def update_names(self, ref: str, names: Sequence[str], op: str) -> None:
        rec = self.get(ref)
        new = apply_name_operation(rec.names, names, op)
        self.take_names(new, rec.id, lambda r: r)
        self.update(replace(self._records[rec.id], names=new))
        self.save()

    def set_metadata(self, ref: str, metadata: str) -> None:
        check_metadata(metadata)
        rec = self.get(ref)
        self.update(replace(rec, metadata=metadata))
        self.save()

    def set_big_data(self, ref: str, key: str, data: bytes) -> None:
        if self.write_big_data(ref, key, data, sha256_of(data)):
            self.save()

    def big_data_size_recording(self, ref: str, key: str) -> int:
        """Size of an item, recording size and digest if the record lacked them (§8)."""
        rec = self.get(ref)
        if key in rec.big_data_sizes:
            return rec.big_data_sizes[key]
        try:
            data = self.big_data(ref, key)
        except FileNotFoundError:
            raise SizeUnknown(id=rec.id, key=key) from None
        self.set_big_data(ref, key, data)
        return len(data)

    def big_data_digest_recording(self, ref: str, key: str) -> str:
        rec = self.get(ref)
        if rec.big_data_digests.get(key):
            return rec.big_data_digests[key]
        try:
            data = self.big_data(ref, key)
        except FileNotFoundError:
            raise DigestUnknown(id=rec.id, key=key) from None
        self.set_big_data(ref, key, data)
        return sha256_of(data)
