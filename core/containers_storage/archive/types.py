"""Small shared types of the archive package, also used by drivers (:mod:`..drivers.api`
re-exports them for driver authors): they live here, below both, so neither imports up."""

from __future__ import annotations

import enum

from ..structs import dataclass
from ..typeshim import Protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


class FileGetter(Protocol):
    """Opens layer files by their tar name, to replay tar-split without a mount."""

    def open(self, name: str) -> IO[bytes]:
        """The content of ``name`` (a cleaned, relative tar name); OSError if missing."""
        ...

    def close(self) -> None: ...


class Compression(enum.IntEnum):
    """Upstream's ``archive.Compression`` numbers, as layer records store them. A number
    this version does not know (a newer writer's) is kept as a pseudo-member
    ``UNKNOWN_<n>`` rather than refused, so such a record still loads, as upstream's does;
    producing a diff in it fails."""

    NONE = 0
    BZIP2 = 1
    GZIP = 2
    XZ = 3
    ZSTD = 4

    @classmethod
    def _missing_(cls, value: object) -> Compression | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member


class ChangeKind(enum.IntEnum):
    """Upstream's archive.ChangeType values (their integers appear in JSON output)."""

    MODIFY = 0
    ADD = 1
    DELETE = 2


@dataclass(frozen=True, slots=True, order=True)
class Change:
    """One changed path; ``path`` is absolute inside the layer (``/a/b``)."""

    path: str
    kind: ChangeKind


class WhiteoutFormat(enum.Enum):
    """How a driver stores deletions on disk when a diff is applied."""

    #: deletions are carried out (vfs, btrfs, zfs)
    DELETE = "delete"
    #: kernel overlay: 0/0 character devices and the opaque xattr
    OVERLAY = "overlay"
    #: AUFS names stored as files (overlay with a FUSE mount program)
    AUFS = "aufs"
