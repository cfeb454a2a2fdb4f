"""The media types of images and what each one means for import and export."""

from __future__ import annotations

import json

OCI_LAYOUT_VERSION = "1.0.0"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_FOREIGN_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_FOREIGN_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_FOREIGN_LAYER_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_UNCOMPRESSED = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_LIST})
CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})
#: layer media types we can apply; the store detects the compression from the bytes
LAYERS = frozenset(
    {
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_FOREIGN_LAYER,
        OCI_FOREIGN_LAYER_GZIP,
        OCI_FOREIGN_LAYER_ZSTD,
        DOCKER_LAYER,
        DOCKER_LAYER_UNCOMPRESSED,
        DOCKER_FOREIGN_LAYER,
    }
)

#: what an exported layer is called, by manifest kind and compression name
EXPORT_LAYER_TYPES = {
    (OCI_MANIFEST, "none"): OCI_LAYER,
    (OCI_MANIFEST, "gzip"): OCI_LAYER_GZIP,
    (OCI_MANIFEST, "zstd"): OCI_LAYER_ZSTD,
    (DOCKER_MANIFEST, "none"): DOCKER_LAYER_UNCOMPRESSED,
    (DOCKER_MANIFEST, "gzip"): DOCKER_LAYER,
}

#: schema 2 names and their OCI counterparts (the conversion containers/image makes)
DOCKER_TO_OCI = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER: OCI_LAYER_GZIP,
    DOCKER_LAYER_UNCOMPRESSED: OCI_LAYER,
    DOCKER_FOREIGN_LAYER: OCI_FOREIGN_LAYER_GZIP,
}

#: layer annotations that describe one particular compressed blob (zstd:chunked, eStargz)
BLOB_ANNOTATIONS = (
    "io.github.containers.zstd-chunked.",
    "io.github.containers.compression.",
    "containerd.io/snapshot/stargz/",
    "io.containers.estargz.",
)


def guess(data: bytes) -> str:
    """The media type of a manifest that does not say (OCI allows leaving it out), from
    its shape, as containers/image guesses it; "" when it is not a JSON object."""
    try:
        doc = json.loads(data)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if doc.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED if "signatures" in doc else DOCKER_SCHEMA1
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc:
        return OCI_MANIFEST
    return ""
