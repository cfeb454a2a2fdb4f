"""Images in and out of the store: OCI layouts, OCI archives and docker archives,
written into the store exactly as containers/image's storage destination writes them
(so podman and skopeo see the images as their own) and exported back with their
original config and digests.

    from containers_storage.imageio import import_image, export_image
    image = import_image(store, "oci:/path/to/layout:latest", names=["example.com/app:1"])
    export_image(store, image.id, "docker-archive:/tmp/app.tar")

Not imported by the store or the tool's start-up; import it where it is used.
"""

from __future__ import annotations

from .api import export_image, import_image
from .errors import (
    BlobMissing,
    DigestMismatch,
    ImageIOError,
    ImageNotFound,
    InvalidImageSource,
    InvalidReference,
    PlatformNotFound,
    UnsafeArchivePath,
    UnsupportedDigest,
    UnsupportedMediaType,
)
from .export import ExportedImage
from .platforms import Platform
from .progress import Progress, TerminalBar

__all__ = [
    "BlobMissing",
    "DigestMismatch",
    "ExportedImage",
    "ImageIOError",
    "ImageNotFound",
    "InvalidImageSource",
    "InvalidReference",
    "Platform",
    "PlatformNotFound",
    "Progress",
    "TerminalBar",
    "UnsafeArchivePath",
    "UnsupportedDigest",
    "UnsupportedMediaType",
    "export_image",
    "import_image",
]
