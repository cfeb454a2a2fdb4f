"""Reading an OCI image layout (a directory, or a tar of one: an OCI archive).

``index.json`` lists images by descriptor; a reference picks the one whose
``org.opencontainers.image.ref.name`` annotation matches (or ``@N``, the N-th entry).
A descriptor may be an index (a multi-platform image, possibly nested): the wanted
platform's entry is followed down to an image manifest. The first index on the way is
the image's top-level manifest, stored beside the image's own as containers/image does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import IO, Any

from . import digests, manifests, references
from . import mediatypes as mt
from .errors import BlobMissing, ImageNotFound, InvalidImageSource, InvalidReference
from .platforms import Platform, choose
from .sources import MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, SourceImage, SourceLayer, diff_ids, read_limited
from .tarindex import TarIndex

_MAX_DEPTH = 8


class Blobs:
    """The files of a layout: ``open(path)`` and ``exists(path)`` on layout-relative paths."""

    def __init__(
        self, open_file: Callable[[str], IO[bytes]], exists: Callable[[str], bool], where: str
    ) -> None:
        self.open_file = open_file
        self.exists = exists
        self.where = where

    @classmethod
    def directory(cls, root: str) -> Blobs:
        def open_file(path: str) -> IO[bytes]:
            try:
                return open(os.path.join(root, path), "rb")
            except FileNotFoundError:
                raise BlobMissing(f"{path} in {root}", message="file does not exist") from None
            except OSError as exc:
                raise InvalidImageSource(
                    f"opening {path} in {root}", message=exc.strerror or str(exc)
                ) from None

        return cls(open_file, lambda path: os.path.isfile(os.path.join(root, path)), root)

    @classmethod
    def archive(cls, index: TarIndex) -> Blobs:
        return cls(index.open, index.exists, index.path)

    @staticmethod
    def blob_path(digest: str) -> str:
        algorithm, hexpart = digests.split(digest)
        return f"blobs/{algorithm}/{hexpart}"

    def read_document(self, path: str, limit: int) -> bytes:
        with self.open_file(path) as f:
            return read_limited(f, limit, f"{path} in {self.where}")

    def read_blob(self, desc: dict[str, Any], limit: int, what: str) -> bytes:
        digest = desc["digest"]
        try:
            data = self.read_document(self.blob_path(digest), limit)
        except BlobMissing:
            raise BlobMissing(f"{what} {digest}", message=f"blob not found in {self.where}") from None
        digests.check(data, digest, desc.get("size"), what)
        return data


def _ref_name(entry: dict[str, Any]) -> str:
    ann = entry.get("annotations")
    value = ann.get(mt.REF_NAME_ANNOTATION, "") if isinstance(ann, dict) else ""
    return value if isinstance(value, str) else ""


def _pick(entries: list[dict[str, Any]], ref: str, where: str, wanted: Platform) -> dict[str, Any]:
    """The ``index.json`` entry ``ref`` names (or the only one)."""
    if ref.startswith("@"):
        if not ref[1:].isdigit() or int(ref[1:]) >= len(entries):
            raise ImageNotFound(
                f"{where}", message=f"invalid index {ref!r}: the layout has {len(entries)} images"
            )
        return entries[int(ref[1:])]
    if ref:
        found = [e for e in entries if _ref_name(e) == ref]
        if len(found) == 1:
            return found[0]
        known = ", ".join(repr(_ref_name(e)) for e in entries if _ref_name(e)) or "none"
        if not found:
            raise ImageNotFound(where, message=f"no image called {ref!r}; the layout has: {known}")
        raise ImageNotFound(where, message=f"more than one image called {ref!r}")
    if len(entries) == 1:
        return entries[0]
    if not entries:
        raise ImageNotFound(where, message="the layout holds no image")
    plats = [manifests.platform_of(e) for e in entries]
    if all(p is not None for p in plats):
        return entries[choose(plats, wanted, f"{where}/index.json")]
    known = ", ".join(repr(_ref_name(e)) for e in entries if _ref_name(e)) or "none"
    raise ImageNotFound(where, message=f"more than one image in the layout, choose one by name ({known})")


def read(blobs: Blobs, ref: str, wanted: Platform) -> SourceImage:
    where = blobs.where
    try:
        layout = json.loads(blobs.read_document("oci-layout", 1 << 16))
    except BlobMissing:
        raise InvalidImageSource(where, message="not an OCI layout: oci-layout is missing") from None
    except ValueError as exc:
        raise InvalidImageSource(f"{where}: parsing oci-layout", message=str(exc)) from None
    if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != mt.OCI_LAYOUT_VERSION:
        raise InvalidImageSource(where, message=f"unsupported OCI layout version in oci-layout: {layout!r}")
    index_bytes = blobs.read_document("index.json", MAX_MANIFEST_SIZE)
    entry = _pick(manifests.parse_index(index_bytes, f"{where}/index.json"), ref, where, wanted)
    default_names: tuple[str, ...] = ()
    name = ref if ref and not ref.startswith("@") else _ref_name(entry)
    if name:
        try:
            default_names = (references.normalize(name),)
        except InvalidReference:
            pass  # a plain tag-like annotation that is not a name: the image stays unnamed

    toplevel: bytes | None = None
    toplevel_digest = ""
    for _ in range(_MAX_DEPTH):
        data = blobs.read_blob(entry, MAX_MANIFEST_SIZE, "manifest")
        kind = manifests.manifest_kind(data, entry.get("mediaType", ""), f"manifest {entry['digest']}")
        if kind in mt.INDEXES:
            if toplevel is None:
                toplevel, toplevel_digest = data, entry["digest"]
            listed = manifests.parse_index(data, f"index {entry['digest']}")
            plats = [manifests.platform_of(e) for e in listed]
            entry = listed[choose(plats, wanted, f"index {entry['digest']}")]
            continue
        return _image(blobs, data, kind, entry["digest"], toplevel, toplevel_digest, default_names)
    raise InvalidImageSource(where, message=f"indexes nested more than {_MAX_DEPTH} deep")


def _image(
    blobs: Blobs,
    data: bytes,
    kind: str,
    digest: str,
    toplevel: bytes | None,
    toplevel_digest: str,
    names: tuple[str, ...],
) -> SourceImage:
    doc = manifests.parse_manifest(data, f"manifest {digest}")
    config = blobs.read_blob(doc["config"], MAX_CONFIG_SIZE, "config")
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        raise InvalidImageSource(f"parsing config {doc['config']['digest']}", message=str(exc)) from None
    ids = diff_ids(parsed, f"config {doc['config']['digest']}")
    if len(ids) != len(doc["layers"]):
        raise InvalidImageSource(
            f"manifest {digest}",
            message=f"Inconsistent layer count: {len(doc['layers'])} in manifest, {len(ids)} in config",
        )
    layers = tuple(
        SourceLayer(layer["digest"], layer["size"], layer.get("mediaType", ""), diff_id)
        for layer, diff_id in zip(doc["layers"], ids, strict=True)
    )
    return SourceImage(
        manifest=data,
        manifest_type=kind,
        manifest_digest=digest,
        config=config,
        config_digest=doc["config"]["digest"],
        layers=layers,
        toplevel=toplevel,
        toplevel_digest=toplevel_digest,
        names=names,
        open_layer=lambda layer: blobs.open_file(Blobs.blob_path(layer.digest)),
        has_layer=lambda layer: blobs.exists(Blobs.blob_path(layer.digest)),
    )
