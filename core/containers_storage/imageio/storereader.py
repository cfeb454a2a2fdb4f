"""An image of the store as export needs it: its manifest, its config and its layers
bottom-up, checked against each other (the layer chain must be the manifest's)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import StorageError
from . import digests, manifests
from . import mediatypes as mt
from .errors import InvalidImageSource
from .platforms import host
from .sources import diff_ids

if TYPE_CHECKING:
    from ..records.model import Image, Layer
    from ..store import Store


@dataclass(frozen=True, slots=True)
class StoredImage:
    image: Image
    #: the stored manifest bytes, b"" when the image has none (made from bare layers)
    manifest: bytes
    #: the parsed manifest (generated for an image without one)
    doc: dict[str, Any]
    kind: str
    config: bytes
    config_digest: str
    #: bottom-up, one per manifest layer
    layers: tuple[Layer, ...]
    diff_ids: tuple[str, ...]


def _chain(store: Store, top: str) -> list[Layer]:
    out: list[Layer] = []
    seen: set[str] = set()
    layer_id = top
    while layer_id:
        if layer_id in seen:
            raise InvalidImageSource(f"layer {layer_id}", message="the store's layers form a loop")
        seen.add(layer_id)
        rec = store.layer(layer_id)
        out.append(rec)
        layer_id = rec.parent
    out.reverse()
    return out


def _synthesized(img: Image, layers: list[Layer]) -> tuple[bytes, dict[str, Any]]:
    """A config and manifest for an image that never had them (made with create-image):
    the store's layers as they are, for the host's platform."""
    from ..gojson import dumps

    plat = host()
    config: dict[str, Any] = {"created": img.created.rfc3339nano(), "architecture": plat.architecture}
    if plat.variant:
        config["variant"] = plat.variant
    config["os"] = plat.os
    config["config"] = {}
    config["rootfs"] = {"type": "layers", "diff_ids": [rec.uncompressed_digest for rec in layers]}
    data = dumps(config).encode()
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": digests.of(data), "size": len(data)},
        "layers": [
            {"mediaType": mt.OCI_LAYER, "digest": rec.uncompressed_digest, "size": rec.uncompressed_size}
            for rec in layers
        ],
    }
    return data, doc


def find(store: Store, ref: str) -> Image:
    """The image ``ref`` names: as the store knows it (ID, ID prefix, name), else as a
    short name podman would complete (``app`` is ``localhost/app:latest``, then
    ``docker.io/library/app:latest``)."""
    from ..errors import ImageUnknown
    from . import references
    from .errors import InvalidReference

    try:
        return store.image(ref)
    except ImageUnknown:
        for domain in (references.LOCAL_DOMAIN, references.DOCKER_DOMAIN):
            try:
                full = references.normalize(ref, default_domain=domain)
            except InvalidReference:
                break
            if full != ref:
                try:
                    return store.image(full)
                except ImageUnknown:
                    continue
        raise


def load(store: Store, ref: str) -> StoredImage:
    img = find(store, ref)
    layers = _chain(store, img.top_layer)
    for rec in layers:
        if not rec.uncompressed_digest:
            raise InvalidImageSource(
                f"layer {rec.id}", message="the store has no DiffID for it (it has no content)"
            )
    if "manifest" not in img.big_data_names:
        config, doc = _synthesized(img, layers)
        return StoredImage(
            img,
            b"",
            doc,
            mt.OCI_MANIFEST,
            config,
            doc["config"]["digest"],
            tuple(layers),
            tuple(rec.uncompressed_digest for rec in layers),
        )
    manifest = store.image_big_data(img.id, "manifest")
    kind = manifests.manifest_kind(manifest, "", f"manifest of image {img.id}")
    if kind not in mt.MANIFESTS:
        raise InvalidImageSource(
            f"image {img.id}", message=f"its manifest is a {kind}, not an image manifest"
        )
    doc = manifests.parse_manifest(manifest, f"manifest of image {img.id}")
    config_digest = doc["config"]["digest"]
    try:
        config = store.image_big_data(img.id, config_digest)
    except StorageError:
        raise InvalidImageSource(
            f"image {img.id}", message=f"its config {config_digest} is not stored"
        ) from None
    digests.check(config, config_digest, doc["config"].get("size"), "config")
    try:
        ids = diff_ids(json.loads(config), f"config {config_digest}")
    except ValueError as exc:
        raise InvalidImageSource(f"parsing config {config_digest}", message=str(exc)) from None
    if not len(ids) == len(doc["layers"]) == len(layers):
        raise InvalidImageSource(
            f"image {img.id}",
            message=f"{len(layers)} layers in the store, {len(doc['layers'])} in the manifest, "
            f"{len(ids)} in the config",
        )
    for rec, want in zip(layers, ids, strict=True):
        if rec.uncompressed_digest != want:
            raise InvalidImageSource(
                f"layer {rec.id}", message=f"has DiffID {rec.uncompressed_digest}, the config says {want}"
            )
    return StoredImage(img, manifest, doc, kind, config, config_digest, tuple(layers), tuple(ids))
