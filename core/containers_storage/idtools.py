"""UID/GID mappings between a user namespace and the host (upstream pkg/idtools)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import InvalidMappings
from .structs import dataclass

#: Owner used for IDs that cannot be mapped (the kernel's overflow ID).
OVERFLOW_ID = 65534
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class IDMap:
    """One contiguous range: container IDs ``[container_id, container_id+size)``."""

    container_id: int
    host_id: int
    size: int

    def __post_init__(self) -> None:
        # records keep these as Go ints: a value outside int64 would make the record
        # unreadable to upstream (and to us)
        for name in ("container_id", "host_id", "size"):
            value = getattr(self, name)
            if value.__class__ is not int:
                raise InvalidMappings(f"ID map {name} {value!r} is not an integer")
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise InvalidMappings(f"ID map {name} {value} is out of range")

    def to_json(self) -> dict[str, int]:
        return {"container_id": self.container_id, "host_id": self.host_id, "size": self.size}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> IDMap:
        """From a record's entry: integers only, as upstream's decoder takes (``"5"``,
        ``5.0`` and ``true`` are refused, not converted)."""
        return cls(data["container_id"], data["host_id"], data["size"])


IDMaps = tuple[IDMap, ...]


def parse_id_map(spec: str | Iterable[str], kind: str = "uid") -> IDMaps:
    """Parse ``cid:hid:size[:cid:hid:size...]`` strings (repeatable CLI flags).

    Raises :class:`InvalidMappings` on malformed text, naming what was given.
    """
    specs = [spec] if isinstance(spec, str) else list(spec)
    out: list[IDMap] = []
    for one in specs:
        fields = one.split(":") if one else []
        if not fields or len(fields) % 3:
            raise InvalidMappings(f"{kind} map {one!r} is not of the form container:host:size")
        try:
            nums = [int(f) for f in fields]
        except ValueError:
            raise InvalidMappings(f"{kind} map {one!r} is not of the form container:host:size") from None
        if any(n < 0 or n > 0xFFFFFFFF for n in nums):
            raise InvalidMappings(f"{kind} map {one!r} has a value outside uint32")
        out.extend(IDMap(nums[i], nums[i + 1], nums[i + 2]) for i in range(0, len(nums), 3))
    return tuple(out)


def format_id_map(maps: Sequence[IDMap]) -> str:
    return ":".join(f"{m.container_id}:{m.host_id}:{m.size}" for m in maps)


def to_host(cid: int, maps: Sequence[IDMap]) -> int | None:
    """Host ID for container ID ``cid``; identity when ``maps`` is empty, None if unmapped."""
    if not maps:
        return cid
    for m in maps:
        if m.container_id <= cid < m.container_id + m.size:
            return m.host_id + cid - m.container_id
    return None


def to_container(hid: int, maps: Sequence[IDMap]) -> int | None:
    """Container ID for host ID ``hid``; identity when ``maps`` is empty, None if unmapped."""
    if not maps:
        return hid
    for m in maps:
        if m.host_id <= hid < m.host_id + m.size:
            return m.container_id + hid - m.host_id
    return None


def root_pair(uid_maps: Sequence[IDMap], gid_maps: Sequence[IDMap]) -> tuple[int, int]:
    """Host owner of the namespace's root: what owns directories a driver creates."""
    uid = to_host(0, uid_maps)
    gid = to_host(0, gid_maps)
    if uid is None or gid is None:
        raise InvalidMappings("container ID 0 is not mapped")
    return uid, gid


@dataclass(frozen=True, slots=True)
class IDMappings:
    """A UID map and a GID map together; empty maps mean the identity mapping."""

    uids: IDMaps = ()
    gids: IDMaps = ()

    @property
    def empty(self) -> bool:
        return not self.uids and not self.gids

    def root_pair(self) -> tuple[int, int]:
        return root_pair(self.uids, self.gids)

    def to_host(self, uid: int, gid: int) -> tuple[int | None, int | None]:
        return to_host(uid, self.uids), to_host(gid, self.gids)

    def to_container(self, uid: int, gid: int) -> tuple[int | None, int | None]:
        return to_container(uid, self.uids), to_container(gid, self.gids)
