"""Reading a ``docker save`` archive: ``manifest.json`` names each image's config and
layer tarballs (in the legacy per-layer directories or, from newer docker, in
``blobs/sha256``); links between members are followed inside the archive.

As containers/image does, the image gets a generated schema 2 manifest whose layers are
named by their DiffIDs: layers are handed to the store uncompressed (a compressed layer
file is decompressed on the way), so each is verified against its DiffID while it is
applied.
"""

from __future__ import annotations

import json
from typing import IO, Any

from ..archive.compression import Compression, decompressed_chunks
from ..archive.ingest import IterReader
from . import digests, manifests, references
from . import mediatypes as mt
from .errors import ImageNotFound, InvalidImageSource, InvalidReference
from .sources import MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, SourceImage, SourceLayer, diff_ids, read_limited
from .tarindex import TarIndex, clean


def _items(archive: TarIndex) -> list[dict[str, Any]]:
    if not archive.exists("manifest.json"):
        raise InvalidImageSource(
            archive.path, message="no manifest.json: not a docker archive (or one older than docker 1.10)"
        )
    with archive.open("manifest.json") as f:
        data = read_limited(f, MAX_MANIFEST_SIZE, "manifest.json")
    try:
        items = json.loads(data)
    except ValueError as exc:
        raise InvalidImageSource(f"{archive.path}: parsing manifest.json", message=str(exc)) from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidImageSource(archive.path, message="manifest.json is not a list of objects")
    return items


def _repo_tags(item: dict[str, Any]) -> list[str]:
    tags = item.get("RepoTags") or []
    out = []
    for tag in tags if isinstance(tags, list) else []:
        try:
            out.append(references.normalize(str(tag), default_domain=references.DOCKER_DOMAIN))
        except InvalidReference:
            continue  # docker itself would not load it under that name either
    return out


def _pick(items: list[dict[str, Any]], ref: str, where: str) -> dict[str, Any]:
    if ref.startswith("@"):
        if not ref[1:].isdigit() or int(ref[1:]) >= len(items):
            raise ImageNotFound(where, message=f"invalid index {ref!r}: the archive has {len(items)} images")
        return items[int(ref[1:])]
    if ref:
        want = references.normalize(ref, default_domain=references.DOCKER_DOMAIN)
        for item in items:
            if want in _repo_tags(item):
                return item
        known = ", ".join(t for item in items for t in _repo_tags(item)) or "none"
        raise ImageNotFound(where, message=f"no image tagged {want!r}; the archive has: {known}")
    if len(items) != 1:
        raise ImageNotFound(where, message=f"the archive holds {len(items)} images, choose one by tag or @N")
    return items[0]


def _layer_size(archive: TarIndex, path: str) -> int:
    """The uncompressed size of a layer file (decompressing it when it is compressed)."""
    with archive.open(path) as f:
        kind, chunks = decompressed_chunks(f)
        if kind == Compression.NONE:
            return archive.size(path)
        return sum(len(c) for c in chunks)


def _open_uncompressed(archive: TarIndex, path: str) -> IO[bytes]:
    f = archive.open(path)
    kind, chunks = decompressed_chunks(f)
    if kind == Compression.NONE:
        f.close()
        return archive.open(path)
    return IterReader(chunks)  # type: ignore[return-value]


def read(archive: TarIndex, ref: str) -> SourceImage:
    where = archive.path
    item = _pick(_items(archive), ref, where)
    config_path, layer_paths = item.get("Config"), item.get("Layers")
    if (
        not isinstance(config_path, str)
        or not isinstance(layer_paths, list)
        or not all(isinstance(p, str) for p in layer_paths)
    ):
        raise InvalidImageSource(where, message="manifest.json: an item without Config or Layers")
    with archive.open(config_path) as f:
        config = read_limited(f, MAX_CONFIG_SIZE, f"config {config_path}")
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        raise InvalidImageSource(f"decoding tar config {config_path!r}", message=str(exc)) from None
    ids = diff_ids(parsed, f"config {config_path}")
    if len(ids) != len(layer_paths):
        raise InvalidImageSource(
            where, message=f"Inconsistent layer count: {len(layer_paths)} in manifest, {len(ids)} in config"
        )
    paths: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for diff_id, raw_path in zip(ids, layer_paths, strict=True):
        path = clean(raw_path, "layer")
        if diff_id in paths:
            continue  # the same layer twice: one file serves both (docker links them)
        if path in paths.values():
            raise InvalidImageSource(
                where, message=f"Layer tarfile {path!r} used for two different DiffID values"
            )
        paths[diff_id] = path
        sizes[diff_id] = _layer_size(archive, path)
    config_digest = digests.of(config)
    doc = {
        "config": {"mediaType": mt.DOCKER_CONFIG, "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": mt.DOCKER_LAYER, "size": sizes[d], "digest": d} for d in ids],
    }
    manifest = manifests.encode(manifests.schema2_manifest(doc))
    layers = tuple(SourceLayer(d, sizes[d], mt.DOCKER_LAYER, d) for d in ids)
    return SourceImage(
        manifest=manifest,
        manifest_type=mt.DOCKER_MANIFEST,
        manifest_digest=digests.of(manifest),
        config=config,
        config_digest=config_digest,
        layers=layers,
        toplevel=None,
        toplevel_digest="",
        names=tuple(_repo_tags(item)),
        open_layer=lambda layer: _open_uncompressed(archive, paths[layer.diff_id]),
        has_layer=lambda layer: layer.diff_id in paths,
    )
