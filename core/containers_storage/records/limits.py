"""Size limits for inputs that are held in memory or kept in a record.

Upstream has none (an endless input such as ``/dev/zero`` given to ``set-image-data``
grows its memory until the process dies); here each is a documented cap, enforced at
the record level for callers of the API and while reading for the commands, so an
endless input costs at most the cap before
:class:`~containers_storage.errors.InputTooLarge` is raised and nothing is written.
"""

from __future__ import annotations

from ..errors import InputTooLarge

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

#: an image's or a container's big-data item (held in memory: image items are digested
#: as manifests); manifests and configs are kilobytes
MAX_BIG_DATA = 64 << 20
#: a layer's big-data item: streamed to its file in chunks, so only disk is at stake
MAX_LAYER_BIG_DATA = 1 << 30
#: the metadata string of a layer, image or container (kept inside the records file)
MAX_METADATA = 16 << 20

_CHUNK = 1 << 20


def check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise InputTooLarge(message=f"{what} is larger than the limit of {limit} bytes")


def read_limited(stream: IO[bytes], limit: int, what: str) -> bytes:
    """All of ``stream``, refused once it passes ``limit`` bytes (reading at most one
    chunk more than the limit)."""
    parts: list[bytes] = []
    size = 0
    while data := stream.read(min(_CHUNK, limit + 1 - size)):
        parts.append(data)
        size += len(data)
        check_size(size, limit, what)
    return b"".join(parts)


def check_metadata(metadata: str) -> None:
    check_size(len(metadata.encode("utf-8", "surrogateescape")), MAX_METADATA, "metadata")
