"""Manifests and indexes: validation of what we import, and serialization in the field
order Go's ``encoding/json`` gives containers/image's structs (so a manifest we write
hashes like one skopeo writes for the same content)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import digests
from . import mediatypes as mt
from .errors import InvalidImageSource, UnsupportedMediaType
from .platforms import Platform


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidImageSource(f"parsing {what}", message=str(exc)) from None
    if not isinstance(doc, dict):
        raise InvalidImageSource(f"parsing {what}", message="not a JSON object")
    return doc


def descriptor(value: object, what: str) -> dict[str, Any]:
    """A descriptor with a valid digest, a size and a media type."""
    if not isinstance(value, dict):
        raise InvalidImageSource(message=f"{what}: descriptor is not a JSON object")
    digests.split(value.get("digest"))
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidImageSource(message=f"{what} {value.get('digest')}: invalid size {size!r}")
    if not isinstance(value.get("mediaType", ""), str):
        raise InvalidImageSource(message=f"{what} {value.get('digest')}: invalid media type")
    return value


def manifest_kind(data: bytes, declared: str, what: str) -> str:
    """The media type of a manifest or index: the one it declares, else the one its
    descriptor gave, else a guess from its shape; they must not contradict each other."""
    own = mt.guess(data)
    if declared and own and own != declared and own not in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED):
        raise InvalidImageSource(message=f"{what}: its descriptor says {declared!r} but it is {own!r}")
    kind = own or declared
    if kind not in mt.MANIFESTS and kind not in mt.INDEXES:
        raise UnsupportedMediaType(f"{what}", message=f"unsupported MIME type for a manifest: {kind!r}")
    return kind


def parse_index(data: bytes, what: str) -> list[dict[str, Any]]:
    doc = _object(data, what)
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise InvalidImageSource(message=f"{what}: manifests is not a list")
    return [descriptor(e, f"{what} entry") for e in entries]


def platform_of(entry: Mapping[str, Any]) -> Platform | None:
    return Platform.from_json(entry.get("platform"))


def parse_manifest(data: bytes, what: str) -> dict[str, Any]:
    """An image manifest whose config and layers we know how to store."""
    doc = _object(data, what)
    if doc.get("schemaVersion") != 2:
        raise UnsupportedMediaType(
            what, message=f"unsupported manifest schema version {doc.get('schemaVersion')!r}"
        )
    config = descriptor(doc.get("config"), f"{what} config")
    config_type = config.get("mediaType", "")
    if config_type not in mt.CONFIGS:
        raise UnsupportedMediaType(
            f"{what} config", message=f"unsupported MIME type {config_type!r} (not a container image)"
        )
    digests.sha256_hex(config["digest"], "config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidImageSource(message=f"{what}: layers is not a list")
    for layer in layers:
        descriptor(layer, f"{what} layer")
        if layer.get("mediaType", "") not in mt.LAYERS:
            raise UnsupportedMediaType(
                f"layer {layer['digest']}",
                message=f"unsupported MIME type for a layer: {layer.get('mediaType')!r}",
            )
    return doc


# --- Go field order -------------------------------------------------------------------
def _go_map(value: Any) -> dict[str, Any]:
    return {k: value[k] for k in sorted(value)} if isinstance(value, dict) else value


def _oci_platform(p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"architecture": p.get("architecture", ""), "os": p.get("os", "")}
    for key in ("os.version", "os.features", "variant"):
        if p.get(key):
            out[key] = p[key]
    return out


def oci_descriptor(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.get("mediaType", ""), "digest": d["digest"], "size": d["size"]}
    if d.get("urls"):
        out["urls"] = d["urls"]
    if d.get("annotations"):
        out["annotations"] = _go_map(d["annotations"])
    if d.get("data"):
        out["data"] = d["data"]
    if d.get("platform"):
        out["platform"] = _oci_platform(d["platform"])
    if d.get("artifactType"):
        out["artifactType"] = d["artifactType"]
    return out


def oci_manifest(doc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"schemaVersion": doc.get("schemaVersion", 2)}
    if doc.get("mediaType"):
        out["mediaType"] = doc["mediaType"]
    if doc.get("artifactType"):
        out["artifactType"] = doc["artifactType"]
    out["config"] = oci_descriptor(doc["config"])
    out["layers"] = [oci_descriptor(layer) for layer in doc.get("layers") or []]
    if doc.get("subject"):
        out["subject"] = oci_descriptor(doc["subject"])
    if doc.get("annotations"):
        out["annotations"] = _go_map(doc["annotations"])
    return out


def oci_index(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """``index.json`` as containers/image writes it (no media type field)."""
    return {"schemaVersion": 2, "manifests": [oci_descriptor(m) for m in manifests]}


def schema2_descriptor(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.get("mediaType", ""), "size": d["size"], "digest": d["digest"]}
    if d.get("urls"):
        out["urls"] = d["urls"]
    return out


def schema2_manifest(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": schema2_descriptor(doc["config"]),
        "layers": [schema2_descriptor(layer) for layer in doc.get("layers") or []],
    }


def encode(doc: Any) -> bytes:
    from ..gojson import dumps

    return dumps(doc).encode()
