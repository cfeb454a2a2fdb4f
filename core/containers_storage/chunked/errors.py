"""Errors of partial pulls, as upstream's ``pkg/chunked`` reports them."""

from __future__ import annotations

from ..errors import ArchiveError, StorageError


class InvalidTOC(ArchiveError):
    """The table of contents, its footer or what it points at cannot be trusted: a clear
    refusal before anything is written, or a digest that did not match while writing."""

    default_message = "invalid table of contents"


class ChecksumMismatch(InvalidTOC):
    default_message = "checksum mismatch"


class BadRequest(StorageError):
    """The blob source refused the ranges as asked (upstream ``ErrBadRequest``): the
    differ asks again with fewer, larger ranges."""

    default_message = "bad request"


class PartialPullsDisabled(StorageError):
    """``enable_partial_images`` (or ``convert_images``) is not set in ``pull_options``."""

    default_message = "partial images not enabled"
