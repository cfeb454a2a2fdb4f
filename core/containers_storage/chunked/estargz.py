"""eStargz blobs: gzip members (one per file chunk), then a gzip stream holding a tar
with ``stargz.index.json`` (the TOC), then a 51-byte footer -- an empty gzip member
whose extra field carries the TOC's offset as 16 hex digits and ``STARGZ``.

The TOC digest (annotation ``containerd.io/snapshot/stargz/toc.digest``) is the sha256
of the uncompressed TOC JSON.
"""

from __future__ import annotations

import hashlib
import io
import zlib

from ..archive.tarreader import Source, TarReader
from ..errors import ArchiveError
from .errors import ChecksumMismatch, InvalidTOC
from .formats import ESTARGZ_TOC_DIGEST_KEY
from .sources import BlobSource
from .toc import MAX_TOC_SIZE
from .zstdchunked import Manifest, _read

FOOTER_SIZE = 51
TOC_TAR_NAME = "stargz.index.json"
PREFETCH_LANDMARK = ".prefetch.landmark"
NO_PREFETCH_LANDMARK = ".no.prefetch.landmark"
#: entries of the format itself, not of the layer
METADATA_NAMES = frozenset({PREFETCH_LANDMARK, NO_PREFETCH_LANDMARK, TOC_TAR_NAME})


def parse_footer(footer: bytes) -> int:
    """The TOC offset a footer records."""
    if len(footer) != FOOTER_SIZE or footer[:3] != b"\x1f\x8b\x08" or footer[10:14] != b"\x1a\x00SG":
        raise InvalidTOC("reading the eStargz footer", message="not an eStargz footer")
    if footer[16 : 22 + 16][-6:] != b"STARGZ":
        raise InvalidTOC("reading the eStargz footer", message="not an eStargz footer")
    try:
        return int(footer[16:32].decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise InvalidTOC("reading the eStargz footer", message="parse ToC offset") from None


def footer_bytes(toc_offset: int) -> bytes:
    """The footer an eStargz writer ends a blob with."""
    extra = b"SG" + b"\x16\x00" + b"%016xSTARGZ" % toc_offset
    header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + len(extra).to_bytes(2, "little") + extra
    return header + b"\x01\x00\x00\xff\xff" + bytes(8)


def read_manifest(source: BlobSource, blob_size: int, annotations: dict[str, str]) -> Manifest:
    if blob_size <= FOOTER_SIZE:
        raise InvalidTOC("reading the eStargz footer", message="blob too small")
    digest = annotations.get(ESTARGZ_TOC_DIGEST_KEY, "")
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64:
        raise InvalidTOC(f"annotation {ESTARGZ_TOC_DIGEST_KEY}", message=f"invalid digest {digest!r}")
    [footer] = _read(source, [(blob_size - FOOTER_SIZE, FOOTER_SIZE)])
    toc_offset = parse_footer(footer)
    size = blob_size - FOOTER_SIZE - toc_offset
    if toc_offset <= 0 or size <= 0:
        raise InvalidTOC("reading the eStargz footer", message=f"TOC offset {toc_offset} is outside the blob")
    if size > MAX_TOC_SIZE:
        raise InvalidTOC("reading the eStargz TOC", message="manifest too big")
    [compressed] = _read(source, [(toc_offset, size)])
    toc = _toc_from_tar(compressed)
    got = hashlib.sha256(toc).hexdigest()
    if got != hexdigest:
        raise ChecksumMismatch("reading the eStargz TOC", message="invalid manifest checksum")
    return Manifest(toc, b"", toc_offset, digest)


def _toc_from_tar(compressed: bytes) -> bytes:
    d = zlib.decompressobj(31)
    try:
        tar = d.decompress(compressed, MAX_TOC_SIZE + (1 << 16))
    except zlib.error as exc:
        raise InvalidTOC("decompressing the eStargz TOC", message=str(exc)) from None
    try:
        reader = TarReader(Source(io.BytesIO(tar)))
        entry = reader.next()
        if entry is None:
            raise InvalidTOC("reading the eStargz TOC", message="empty TOC archive")
        if entry.size > MAX_TOC_SIZE:
            raise InvalidTOC("reading the eStargz TOC", message="manifest too big")
        data = b"".join(reader.iter_content())
    except ArchiveError as exc:
        if isinstance(exc, InvalidTOC):
            raise
        raise InvalidTOC("reading the eStargz TOC", message=str(exc)) from None
    if len(data) != entry.size:
        raise InvalidTOC("reading the eStargz TOC", message="truncated TOC")
    return data
