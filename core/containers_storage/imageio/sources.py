"""What an image source hands to the store writer: the image's documents and a way to
open each layer's blob. Readers of each format (OCI layout, docker archive) build it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from .errors import InvalidImageSource

#: containers/image's limits for documents read into memory
MAX_MANIFEST_SIZE = 4 << 20
MAX_CONFIG_SIZE = 4 << 20


@dataclass(frozen=True, slots=True)
class SourceLayer:
    #: the blob's digest and size as the manifest gives them (-1: size unknown)
    digest: str
    size: int
    media_type: str
    #: the uncompressed digest, from the config's ``rootfs.diff_ids``
    diff_id: str


@dataclass(frozen=True, slots=True)
class SourceImage:
    manifest: bytes
    manifest_type: str
    manifest_digest: str
    config: bytes
    config_digest: str
    layers: tuple[SourceLayer, ...]
    #: the top-level index the image was chosen from, when there was one
    toplevel: bytes | None
    toplevel_digest: str
    #: names the source gives the image (normalized), used when the caller gives none
    names: tuple[str, ...]
    #: opens a layer's blob (unverified: the writer checks it while the store reads it)
    open_layer: Callable[[SourceLayer], IO[bytes]]
    #: whether the source holds the layer's blob
    has_layer: Callable[[SourceLayer], bool]


def read_limited(stream: IO[bytes], limit: int, what: str) -> bytes:
    """All of ``stream``, refusing documents larger than ``limit``."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InvalidImageSource(f"reading {what}", message=f"exceeds maximum allowed size of {limit} bytes")
    return data


def diff_ids(config: object, what: str) -> list[str]:
    """``rootfs.diff_ids`` of a parsed config (validated as digests)."""
    from .digests import sha256_hex

    if not isinstance(config, dict):
        raise InvalidImageSource(message=f"{what}: not a JSON object")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict):
        raise InvalidImageSource(message=f"{what}: rootfs is not set")
    ids = rootfs.get("diff_ids") or []
    if not isinstance(ids, list):
        raise InvalidImageSource(message=f"{what}: rootfs.diff_ids is not a list")
    for d in ids:
        sha256_hex(d, "layer DiffID")
    return list(ids)
