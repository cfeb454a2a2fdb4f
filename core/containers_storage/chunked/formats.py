"""Annotation keys, big-data keys and the two blob kinds partial pulls know."""

from __future__ import annotations

import enum

#: zstd:chunked layer annotations (containers/storage 1.45 and later)
MANIFEST_CHECKSUM_KEY = "io.github.containers.zstd-chunked.manifest-checksum"
MANIFEST_POSITION_KEY = "io.github.containers.zstd-chunked.manifest-position"
TARSPLIT_CHECKSUM_KEY = "io.github.containers.zstd-chunked.tarsplit-checksum"
TARSPLIT_POSITION_KEY = "io.github.containers.zstd-chunked.tarsplit-position"
#: eStargz: the digest of the uncompressed TOC JSON
ESTARGZ_TOC_DIGEST_KEY = "containerd.io/snapshot/stargz/toc.digest"

#: layer big data a partial pull records (upstream's names)
TOC_BIG_DATA = "zstd-chunked-manifest"
LAYER_DATA_BIG_DATA = "zstd-chunked-layer-data"
#: upstream's per-layer lookup cache; written by upstream's differ, read by nobody else
CACHE_BIG_DATA = "chunked-manifest-cache"


class BlobKind(enum.Enum):
    ZSTD_CHUNKED = "zstd:chunked"
    ESTARGZ = "estargz"


def toc_digest(annotations: dict[str, str]) -> str | None:
    """The TOC digest a layer's annotations give (eStargz first, as upstream looks)."""
    return annotations.get(ESTARGZ_TOC_DIGEST_KEY) or annotations.get(MANIFEST_CHECKSUM_KEY)
