"""Errors of image import and export.

All derive from :class:`ImageIOError`, itself a
:class:`~containers_storage.errors.StorageError`, so the tool prints them as one line
and callers can catch every store error at once. Texts follow containers/image's where
it has one for the same case (``Digest did not match``, ``unsupported MIME type``).
"""

from __future__ import annotations

from ..errors import StorageError


class ImageIOError(StorageError):
    default_message = "image import or export failed"


class InvalidImageSource(ImageIOError):
    """The layout or archive is not what its format says (broken JSON, missing files,
    inconsistent manifest and config)."""

    default_message = "invalid image source"


class InvalidReference(ImageIOError, ValueError):
    """A source or destination string, or an image name, that cannot be parsed."""

    default_message = "invalid reference format"


class ImageNotFound(ImageIOError, LookupError):
    """No image (or more than one) matches the reference given for the source."""

    default_message = "image not found in the source"


class BlobMissing(ImageIOError):
    default_message = "blob not found"


class DigestMismatch(ImageIOError):
    """A blob's content does not match the digest or size that names it."""

    default_message = "Digest did not match"


class UnsupportedMediaType(ImageIOError):
    default_message = "unsupported MIME type"


class UnsupportedDigest(ImageIOError):
    default_message = "unsupported digest algorithm"


class PlatformNotFound(ImageIOError, LookupError):
    """An image index has no image for the wanted platform; the text lists the ones it has."""

    default_message = "no image found for the platform"


class UnsafeArchivePath(ImageIOError):
    """An image archive holds a member (or a link) whose path leaves the archive."""

    default_message = "archive member escapes the archive"
