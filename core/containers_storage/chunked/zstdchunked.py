"""The zstd:chunked container: file contents as independent zstd frames, then three
skippable frames -- the compressed TOC, the compressed tar-split, and a 64-byte footer
(offsets and lengths as little-endian uint64, then an 8-byte magic).

The footer's fields are also in the layer annotations; upstream prefers those. The TOC
digest (sha256 of the *compressed* TOC frame payload) comes from the annotations only,
so the blob alone cannot vouch for itself.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import zstandard

from .errors import ChecksumMismatch, InvalidTOC
from .formats import (
    MANIFEST_CHECKSUM_KEY,
    MANIFEST_POSITION_KEY,
    TARSPLIT_CHECKSUM_KEY,
    TARSPLIT_POSITION_KEY,
)
from .sources import BlobSource
from .toc import MAX_TOC_SIZE

SKIPPABLE_MAGIC = b"\x50\x2a\x4d\x18"
FOOTER_MAGIC = b"GNUlInUx"
FOOTER_SIZE = 64
SKIPPABLE_HEADER = 8
MANIFEST_TYPE_CRFS = 1


@dataclass(frozen=True, slots=True)
class Footer:
    offset: int
    length_compressed: int
    length_uncompressed: int
    manifest_type: int = MANIFEST_TYPE_CRFS
    offset_tar_split: int = 0
    length_compressed_tar_split: int = 0
    length_uncompressed_tar_split: int = 0

    def to_bytes(self) -> bytes:
        return (
            struct.pack(
                "<7Q",
                self.offset,
                self.length_compressed,
                self.length_uncompressed,
                self.manifest_type,
                self.offset_tar_split,
                self.length_compressed_tar_split,
                self.length_uncompressed_tar_split,
            )
            + FOOTER_MAGIC
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Footer:
        if len(data) < FOOTER_SIZE:
            raise InvalidTOC("reading the zstd:chunked footer", message="blob too small")
        if data[-8:] != FOOTER_MAGIC:
            raise InvalidTOC("reading the zstd:chunked footer", message="invalid magic number")
        f = struct.unpack("<7Q", data[-FOOTER_SIZE:-8])
        return cls(f[0], f[1], f[2], f[3], f[4], f[5], f[6])

    @classmethod
    def from_annotations(cls, annotations: dict[str, str]) -> Footer:
        def numbers(key: str, count: int) -> list[int]:
            text = annotations.get(key, "")
            fields = text.split(":")
            try:
                values = [int(x) for x in fields[:count]]
            except ValueError:
                values = []
            if len(values) != count or any(v < 0 for v in values):
                raise InvalidTOC(f"annotation {key}", message=f"{text!r} is not {count} numbers")
            return values

        off, comp, plain, kind = numbers(MANIFEST_POSITION_KEY, 4)
        ts = [0, 0, 0]
        if TARSPLIT_POSITION_KEY in annotations:
            ts = numbers(TARSPLIT_POSITION_KEY, 3)
        return cls(off, comp, plain, kind, *ts)


def skippable_frame(payload: bytes) -> bytes:
    return SKIPPABLE_MAGIC + struct.pack("<I", len(payload)) + payload


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a differ needs from the blob before it plans anything."""

    toc: bytes
    #: tar-split JSON lines (uncompressed); empty for eStargz
    tar_split: bytes
    #: where the metadata starts: file data lies before it
    toc_offset: int
    toc_digest: str


def _verified(data: bytes, expected: str, what: str) -> None:
    algo, _, hexdigest = expected.partition(":")
    if algo != "sha256" or len(hexdigest) != 64:
        raise InvalidTOC(f"{what} checksum", message=f"invalid digest {expected!r}")
    got = hashlib.sha256(data).hexdigest()
    if got != hexdigest:
        raise ChecksumMismatch(
            f"{what}", message=f"invalid blob checksum, expected checksum {expected}, got sha256:{got}"
        )


def _decompress(data: bytes, length: int, what: str) -> bytes:
    try:
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=max(length, 1))
    except zstandard.ZstdError as exc:
        raise InvalidTOC(f"decompressing the {what}", message=str(exc)) from None
    if len(out) != length:
        raise InvalidTOC(f"decompressing the {what}", message=f"{len(out)} bytes, the footer says {length}")
    return out


def read_manifest(source: BlobSource, blob_size: int, annotations: dict[str, str]) -> Manifest:
    """Fetch and verify the TOC and tar-split of a zstd:chunked blob."""
    if blob_size <= FOOTER_SIZE:
        raise InvalidTOC("reading the zstd:chunked footer", message="blob too small")
    digest = annotations.get(MANIFEST_CHECKSUM_KEY, "")
    if not digest:
        raise InvalidTOC(message=f"manifest checksum annotation {MANIFEST_CHECKSUM_KEY!r} not found")
    if annotations.get(MANIFEST_POSITION_KEY):
        footer = Footer.from_annotations(annotations)
    else:
        [part] = list(_read(source, [(blob_size - FOOTER_SIZE, FOOTER_SIZE)]))
        footer = Footer.from_bytes(part)
    if footer.manifest_type != MANIFEST_TYPE_CRFS:
        raise InvalidTOC("reading the zstd:chunked footer", message="invalid manifest type")
    for length in (footer.length_compressed, footer.length_uncompressed):
        if length > MAX_TOC_SIZE:
            raise InvalidTOC("reading the zstd:chunked footer", message="manifest too big")
    if (
        footer.length_uncompressed_tar_split > 8 * MAX_TOC_SIZE
        or footer.length_compressed_tar_split > MAX_TOC_SIZE
    ):
        raise InvalidTOC("reading the zstd:chunked footer", message="tar-split too big")
    ranges = [(footer.offset, footer.length_compressed)]
    if footer.offset_tar_split:
        ranges.append((footer.offset_tar_split, footer.length_compressed_tar_split))
    for off, length in ranges:
        if off < SKIPPABLE_HEADER or off + length > blob_size:
            raise InvalidTOC(
                "reading the zstd:chunked footer", message=f"range {off}+{length} is outside the blob"
            )
    if len(ranges) == 2 and ranges[1][0] < ranges[0][0] + ranges[0][1]:
        raise InvalidTOC("reading the zstd:chunked footer", message="the TOC and the tar-split overlap")
    parts = list(_read(source, ranges))
    _verified(parts[0], digest, "TOC")
    toc = _decompress(parts[0], footer.length_uncompressed, "TOC")
    tar_split = b""
    if footer.offset_tar_split:
        ts_digest = annotations.get(TARSPLIT_CHECKSUM_KEY, "")
        _verified(parts[1], ts_digest, "tar-split")
        tar_split = _decompress(parts[1], footer.length_uncompressed_tar_split, "tar-split")
    return Manifest(toc, tar_split, footer.offset - SKIPPABLE_HEADER, digest)


def _read(source: BlobSource, ranges: list[tuple[int, int]]) -> list[bytes]:
    out = []
    for (_off, length), stream in zip(ranges, source.get_blob_at(ranges), strict=False):
        data = stream.read(length)
        while len(data) < length:
            more = stream.read(length - len(data))
            if not more:
                break
            data += more
        if len(data) != length:
            raise InvalidTOC("reading the blob's metadata", message="short read")
        out.append(data)
    if len(out) != len(ranges):
        raise InvalidTOC("reading the blob's metadata", message="not enough data returned from the source")
    return out
