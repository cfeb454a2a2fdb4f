"""Export of a stored image to an OCI layout, an OCI archive or a docker archive.

Layers are the store's diffs, uncompressed unless asked otherwise: a layer whose blob was
uncompressed comes back byte for byte (the store keeps its tar-split), so an image
imported with uncompressed layers is exported with its original manifest and the same
digests throughout. A layer that was compressed cannot be given back as the very same
compressed bytes; it is written uncompressed (or compressed anew) and the manifest is
rewritten to say so -- the config, and so the image ID and the DiffIDs, never change.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..archive.compression import Compression
from . import digests, manifests, references
from . import mediatypes as mt
from .dockerwriter import DockerArchiveWriter
from .errors import DigestMismatch, InvalidReference
from .locations import DOCKER_ARCHIVE, OCI_ARCHIVE, Location
from .ociwriter import LayoutWriter, check_layout_dir, tar_layout
from .progress import NoProgress, Progress
from .storereader import StoredImage

if TYPE_CHECKING:
    from ..records.model import Layer
    from ..store import Store

COMPRESSIONS = {"none": Compression.NONE, "gzip": Compression.GZIP, "zstd": Compression.ZSTD}

_FOREIGN = {
    "none": mt.OCI_FOREIGN_LAYER,
    "gzip": mt.OCI_FOREIGN_LAYER_GZIP,
    "zstd": mt.OCI_FOREIGN_LAYER_ZSTD,
}
_FOREIGN_TYPES = frozenset({*_FOREIGN.values(), mt.DOCKER_FOREIGN_LAYER})


@dataclass(frozen=True, slots=True)
class ExportedImage:
    location: Location
    #: the manifest written ("" for a docker archive, which has none)
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]


def _diff_chunks(
    store: Store, rec: Layer, kind: Compression, progress: Progress
) -> Generator[bytes, None, None]:
    from ..store import DiffOptions

    with store.diff("", rec.id, DiffOptions(compression=kind)) as stream:
        while chunk := stream.read(1 << 20):
            progress.advance(len(chunk))
            yield chunk


def _layer_type(original: str, compression: str) -> str:
    if original in _FOREIGN_TYPES:
        return _FOREIGN[compression]
    return mt.EXPORT_LAYER_TYPES[(mt.OCI_MANIFEST, compression)]


def oci_manifest(si: StoredImage, layers: list[tuple[str, int]], compression: str) -> bytes:
    """The stored manifest when every blob is the one it names, else one rewritten
    for the blobs written (an OCI manifest: a schema 2 one is converted)."""
    keep = (
        si.kind == mt.OCI_MANIFEST
        and si.manifest
        and all(
            d["digest"] == digest and d.get("mediaType") == _layer_type(d.get("mediaType", ""), compression)
            for d, (digest, _) in zip(si.doc["layers"], layers, strict=True)
        )
    )
    if keep:
        return si.manifest
    doc: dict[str, Any] = dict(si.doc)
    doc["mediaType"] = mt.OCI_MANIFEST
    config = dict(doc["config"])
    config["mediaType"] = mt.DOCKER_TO_OCI.get(config.get("mediaType", ""), config.get("mediaType", ""))
    doc["config"] = config
    new_layers = []
    for d, (digest, size) in zip(si.doc["layers"], layers, strict=True):
        nd = dict(d)
        nd["mediaType"] = _layer_type(d.get("mediaType", ""), compression)
        if digest != d["digest"]:
            nd.update(digest=digest, size=size)
            annotations = {
                k: v for k, v in (d.get("annotations") or {}).items() if not k.startswith(mt.BLOB_ANNOTATIONS)
            }
            nd.pop("annotations", None)
            if annotations:
                nd["annotations"] = annotations
        new_layers.append(nd)
    doc["layers"] = new_layers
    return manifests.encode(manifests.oci_manifest(doc))


def _write_layout(
    store: Store, si: StoredImage, root: str, ref: str, compression: str, progress: Progress
) -> ExportedImage:
    w = LayoutWriter(root)
    kind = COMPRESSIONS[compression]
    written: list[tuple[str, int]] = []
    added: list[str] = []
    try:
        for i, rec in enumerate(si.layers):
            if kind == Compression.NONE and w.has(rec.uncompressed_digest):
                progress.layer(i, len(si.layers), rec.uncompressed_digest, rec.uncompressed_size, True)
                written.append((rec.uncompressed_digest, rec.uncompressed_size))
                continue
            progress.layer(i, len(si.layers), rec.uncompressed_digest, rec.uncompressed_size, False)
            with closing(_diff_chunks(store, rec, kind, progress)) as chunks:
                digest, size, new = w.put_stream(chunks)
            if new:
                added.append(w.path(digest))
            if kind == Compression.NONE and digest != rec.uncompressed_digest:
                raise DigestMismatch(
                    f"layer {rec.id}",
                    message=f"the store's diff has digest {digest}, its DiffID is {rec.uncompressed_digest}",
                )
            written.append((digest, size))
        progress.finish()
        for data in (si.config, manifest := oci_manifest(si, written, compression)):
            digest = digests.of(data)
            if not w.has(digest):
                added.append(w.path(digest))
            w.put_bytes(data)
        entry: dict[str, Any] = {
            "mediaType": mt.OCI_MANIFEST,
            "digest": digests.of(manifest),
            "size": len(manifest),
        }
        if ref:
            entry["annotations"] = {mt.REF_NAME_ANNOTATION: ref}
        w.add_to_index(entry)
    except BaseException:
        for path in added:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        progress.finish()
        raise
    return ExportedImage(
        Location("oci", root, ref), entry["digest"], si.config_digest, tuple(d for d, _ in written)
    )


def export_layout(
    store: Store, si: StoredImage, location: Location, compression: str, progress: Progress | None = None
) -> ExportedImage:
    progress = progress or NoProgress()
    if location.format != OCI_ARCHIVE:
        check_layout_dir(location.path)
        fresh = not os.path.exists(location.path)
        try:
            return _write_layout(store, si, location.path, location.ref, compression, progress)
        except BaseException:
            if fresh:
                shutil.rmtree(location.path, ignore_errors=True)
            raise
    directory = os.path.dirname(os.path.abspath(location.path))
    scratch = tempfile.mkdtemp(prefix=".tmp-oci-archive-", dir=directory)
    try:
        done = _write_layout(store, si, scratch, location.ref, compression, progress)
        _replace(location.path, lambda f: tar_layout(scratch, f))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ExportedImage(location, done.manifest_digest, done.config_digest, done.layer_digests)


def _replace(path: str, write: Any) -> None:
    """Write ``path`` whole through a temporary file beside it."""
    fd, tmp = tempfile.mkstemp(
        prefix=f".tmp-{os.path.basename(path)}-", dir=os.path.dirname(os.path.abspath(path))
    )
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fdatasync(f.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _repo_tags(si: StoredImage, ref: str) -> list[tuple[str, str]]:
    names = (
        [references.normalize(ref, default_domain=references.DOCKER_DOMAIN)] if ref else list(si.image.names)
    )
    out = []
    for name in names:
        pair = references.repository_and_tag(name)
        if pair is None:
            if ref:
                raise InvalidReference(f"{ref!r}", message="a docker archive needs a tag, not only a digest")
            continue
        out.append(pair)
    return out


def export_docker_archive(
    store: Store, si: StoredImage, location: Location, compression: str, progress: Progress | None = None
) -> ExportedImage:
    if compression != "none":
        raise InvalidReference(
            f"compression {compression!r}", message="docker archives hold uncompressed layers"
        )
    progress = progress or NoProgress()
    tags = _repo_tags(si, location.ref)

    def write(f: Any) -> None:
        w = DockerArchiveWriter(f)
        try:
            for i, rec in enumerate(si.layers):
                progress.layer(i, len(si.layers), rec.uncompressed_digest, rec.uncompressed_size, False)
                with closing(_diff_chunks(store, rec, Compression.NONE, progress)) as chunks:
                    w.layer(rec.uncompressed_digest, rec.uncompressed_size, chunks)
        finally:
            progress.finish()
        w.finish(si.config, si.diff_ids, tags)

    _replace(location.path, write)
    return ExportedImage(
        Location(DOCKER_ARCHIVE, location.path, location.ref), "", si.config_digest, si.diff_ids
    )
