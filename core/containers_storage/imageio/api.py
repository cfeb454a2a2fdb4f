"""``import_image`` and ``export_image``: the two entry points."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from . import locations, references
from .errors import InvalidReference
from .export import COMPRESSIONS, ExportedImage, export_docker_archive, export_layout
from .platforms import Platform, host
from .progress import Progress

if TYPE_CHECKING:
    from ..records.model import Image
    from ..store import Store
    from .sources import SourceImage


def _read_source(location: locations.Location, wanted: Platform, stack: ExitStack) -> SourceImage:
    from . import dockerarchive, ocilayout
    from .tarindex import TarIndex

    if location.format == locations.OCI:
        return ocilayout.read(ocilayout.Blobs.directory(location.path), location.ref, wanted)
    index = stack.enter_context(TarIndex(location.path))
    fmt = location.format or locations.archive_format(
        index.exists("manifest.json"), index.exists("oci-layout"), location.path
    )
    if fmt == locations.DOCKER_ARCHIVE:
        return dockerarchive.read(index, location.ref)
    return ocilayout.read(ocilayout.Blobs.archive(index), location.ref, wanted)


def import_image(
    store: Store,
    source: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    platform: Platform | str | None = None,
    progress: Progress | None = None,
) -> Image:
    """Put the image at ``source`` into ``store`` as podman would pull it; returns the
    image record.

    ``source`` is ``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``,
    ``docker-archive:FILE[:REF]`` or a bare path (a directory is an OCI layout, a file
    an archive of either kind). ``names`` are normalized as podman does
    (``localhost/`` for names without a domain, ``:latest`` without a tag); None takes
    the source's own (the OCI reference name, the docker archive's tags). ``platform``
    (``os/arch[/variant]``) picks from a multi-platform image; the host's by default.
    Layers the store already has are reused; every blob is verified against its digest
    while the store reads it; on any error nothing of the image is left in the store.
    """
    from .storewriter import StoreWriter

    wanted = Platform.parse(platform) if isinstance(platform, str) else (platform or host())
    chosen = None if names is None else [references.normalize(n) for n in names]
    location = locations.parse(source)
    with ExitStack() as stack:
        src = _read_source(location, wanted, stack)
        return StoreWriter(store, src, progress).write(src.names if chosen is None else chosen)


def export_image(
    store: Store,
    image: str,
    dest: str | os.PathLike[str],
    *,
    format: str | None = None,
    compression: str | None = None,
    progress: Progress | None = None,
) -> ExportedImage:
    """Write the stored ``image`` (ID, name or ID prefix) to ``dest``.

    ``dest`` is ``oci:DIR[:REF]`` (added to an existing layout), ``oci-archive:FILE[:REF]``,
    ``docker-archive:FILE[:NAME:TAG]`` or a path taking ``format`` (default ``oci``).
    Layers are written uncompressed unless ``compression`` is ``gzip`` or ``zstd``
    (OCI only); the config is the original, so the image keeps its ID and DiffIDs.
    """
    from .storereader import load

    location = locations.parse(dest, format=format, output=True)
    name = compression or "none"
    if name not in COMPRESSIONS:
        raise InvalidReference(f"compression {name!r}", message=f"expected one of {', '.join(COMPRESSIONS)}")
    si = load(store, image)
    if location.format == locations.DOCKER_ARCHIVE:
        return export_docker_archive(store, si, location, name, progress)
    return export_layout(store, si, location, name, progress)
