"""Where an image comes from or goes to, written as skopeo writes transports:
``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``, ``docker-archive:FILE[:REF]`` (REF: a
name, or ``@N`` for the N-th image). A path without a transport is recognised by
what is there (import), or is an OCI layout directory (export)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InvalidImageSource, InvalidReference

OCI = "oci"
OCI_ARCHIVE = "oci-archive"
DOCKER_ARCHIVE = "docker-archive"
FORMATS = (OCI, OCI_ARCHIVE, DOCKER_ARCHIVE)


@dataclass(frozen=True, slots=True)
class Location:
    format: str
    path: str
    ref: str = ""

    def __str__(self) -> str:
        return f"{self.format}:{self.path}" + (f":{self.ref}" if self.ref else "")


def parse(text: str | os.PathLike[str], *, format: str | None = None, output: bool = False) -> Location:
    """``text`` with its transport, or a bare path taking ``format``; without either, a
    directory is an OCI layout and a file's format is "" (the archive will tell); an
    ``output`` is an OCI layout."""
    raw = os.fspath(text)
    prefix, sep, rest = raw.partition(":")
    if sep and prefix in FORMATS:
        path, _, ref = rest.partition(":")
        if not path:
            raise InvalidReference(f"{raw!r}", message="no path given")
        if format is not None and format != prefix:
            raise InvalidReference(
                f"{raw!r}", message=f"the transport says {prefix}, the format option {format}"
            )
        return Location(prefix, path, ref)
    if format is not None:
        if format not in FORMATS:
            raise InvalidReference(f"format {format!r}", message=f"expected one of {', '.join(FORMATS)}")
        return Location(format, raw)
    if output or os.path.isdir(raw):
        return Location(OCI, raw)
    if not os.path.exists(raw):
        raise InvalidImageSource(f"{raw!r}", message="no such file or directory")
    return Location("", raw)


def archive_format(has_docker_manifest: bool, has_oci_layout: bool, path: str) -> str:
    """The format of an archive from what it holds (docker's own ``manifest.json``
    first: newer docker archives are also OCI layouts, and only that file has the tags)."""
    if has_docker_manifest:
        return DOCKER_ARCHIVE
    if has_oci_layout:
        return OCI_ARCHIVE
    raise InvalidImageSource(f"{path!r}", message="neither an OCI layout or archive nor a docker archive")
