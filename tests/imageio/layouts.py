"""Images for the tests, built here from real directory trees of this machine: layer
tarballs (uncompressed, gzip or zstd), a config and a manifest, laid out as an OCI
layout, an OCI archive or a docker archive (written by hand, the way ``docker save``
does, independently of the code under test)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

STDLIB = Path(os.path.dirname(json.__file__)).parent
#: small real trees, stable while the tests run (byte-code caches left out)
TREES = (STDLIB / "json", STDLIB / "email", STDLIB / "xml" / "dom", STDLIB / "urllib")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2024-05-06T07:08:09.123456789Z"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tree_tar(root: Path, prefix: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A tarball of the real tree ``root`` under ``prefix`` (sorted, owners as on disk),
    plus ``extra`` files (whiteouts, for instance)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        parts = prefix.strip("/").split("/")
        for i in range(1, len(parts)):
            info = tarfile.TarInfo("/".join(parts[:i]) + "/")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tf.addfile(info)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            rel = os.path.relpath(dirpath, root)
            arc = prefix if rel == "." else f"{prefix}/{rel}"
            tf.add(dirpath, arc, recursive=False)
            for name in sorted(filenames):
                tf.add(os.path.join(dirpath, name), f"{arc}/{name}", recursive=False)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(tar: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(tar, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(tar)
    return tar


@dataclass
class Layer:
    tar: bytes
    compression: str = "none"
    #: a blob to write instead of the real one (for broken layouts)
    blob_override: bytes | None = None

    @property
    def blob(self) -> bytes:
        return compress(self.tar, self.compression)

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)

    @property
    def descriptor(self) -> dict[str, object]:
        blob = self.blob
        return {"mediaType": LAYER_TYPES[self.compression], "digest": sha256(blob), "size": len(blob)}


def standard_layers(compressions: Sequence[str] = ("gzip", "none", "zstd")) -> list[Layer]:
    """Three layers from three real trees, the last one also deleting a file of the first."""
    out = []
    for i, kind in enumerate(compressions):
        tree = TREES[i % len(TREES)]
        extra = {"usr/lib/python/json/.wh.tool.py": b""} if i == 2 else None
        out.append(Layer(tree_tar(tree, f"usr/lib/python/{tree.name}", extra), kind))
    return out


@dataclass
class Image:
    layers: list[Layer]
    architecture: str = "amd64"
    os: str = "linux"
    variant: str = ""
    created: str = CREATED
    config_extra: dict[str, object] = field(default_factory=dict)

    @property
    def config(self) -> bytes:
        doc: dict[str, object] = {"created": self.created, "architecture": self.architecture}
        if self.variant:
            doc["variant"] = self.variant
        doc.update(
            {
                "os": self.os,
                "config": {
                    "Env": ["PATH=/usr/bin:/bin"],
                    "Cmd": ["/bin/sh"],
                    "Labels": {"test": "<imageio>"},
                },
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]},
                "history": [
                    {"created": self.created, "created_by": f"layer {i}"} for i in range(len(self.layers))
                ],
            }
        )
        doc.update(self.config_extra)
        return json.dumps(doc, indent=2).encode()

    @property
    def manifest(self) -> bytes:
        config = self.config
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [layer.descriptor for layer in self.layers],
        }
        return json.dumps(doc, indent=1).encode()

    @property
    def id(self) -> str:
        return sha256(self.config)[7:]

    @property
    def platform(self) -> dict[str, str]:
        p = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p


class Layout:
    """An OCI layout directory being written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.entries: list[dict[str, object]] = []

    def blob(self, data: bytes) -> str:
        digest = sha256(data)
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return digest

    def put_image(self, image: Image) -> dict[str, object]:
        """The image's blobs; returns its manifest descriptor."""
        for layer in image.layers:
            data = layer.blob_override if layer.blob_override is not None else layer.blob
            (self.root / "blobs" / "sha256" / layer.descriptor["digest"][7:]).write_bytes(data)  # type: ignore[index]
        self.blob(image.config)
        manifest = image.manifest
        return {"mediaType": OCI_MANIFEST, "digest": self.blob(manifest), "size": len(manifest)}

    def add(self, descriptor: dict[str, object], ref: str | None = None) -> None:
        entry = dict(descriptor)
        if ref is not None:
            entry["annotations"] = {REF_NAME: ref}
        self.entries.append(entry)
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.entries}))

    def put_index(self, images: Sequence[Image]) -> dict[str, object]:
        """A multi-platform index blob over ``images``; returns its descriptor."""
        manifests = []
        for image in images:
            desc = self.put_image(image)
            desc["platform"] = image.platform
            manifests.append(desc)
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
        return {"mediaType": OCI_INDEX, "digest": self.blob(data), "size": len(data)}


def oci_layout(root: Path, image: Image, ref: str | None = "latest") -> Layout:
    layout = Layout(root)
    layout.add(layout.put_image(image), ref)
    return layout


def tar_dir(root: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as tf:
        for name in sorted(os.listdir(root)):
            tf.add(root / name, name)
    return out


def docker_archive(
    out: Path,
    image: Image,
    repo_tags: Sequence[str] = ("example.com/test/app:1",),
    compress_layers: bool = False,
    links: bool = False,
) -> Path:
    """A ``docker save`` archive of ``image``: one directory per layer holding
    ``layer.tar``, ``json`` and ``VERSION`` (legacy layout); with ``links`` each
    ``layer.tar`` is a symlink to ``blobs/sha256/<hex>``, as newer docker writes."""
    config = image.config
    config_name = sha256(config)[7:] + ".json"
    with tarfile.open(out, "w") as tf:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))

        paths = []
        parent = ""
        for i, layer in enumerate(image.layers):
            layer_id = hashlib.sha256(f"{parent} {layer.diff_id} {i}".encode()).hexdigest()
            info = tarfile.TarInfo(layer_id)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)
            add(f"{layer_id}/VERSION", b"1.0")
            add(f"{layer_id}/json", json.dumps({"id": layer_id, "parent": parent}).encode())
            data = gzip.compress(layer.tar, mtime=0) if compress_layers else layer.tar
            if links:
                add(f"blobs/sha256/{sha256(data)[7:]}", data)
                info = tarfile.TarInfo(f"{layer_id}/layer.tar")
                info.type, info.linkname = tarfile.SYMTYPE, f"../blobs/sha256/{sha256(data)[7:]}"
                tf.addfile(info)
            else:
                add(f"{layer_id}/layer.tar", data)
            paths.append(f"{layer_id}/layer.tar")
            parent = layer_id
        add(config_name, config)
        manifest = [{"Config": config_name, "RepoTags": list(repo_tags), "Layers": paths}]
        add("manifest.json", json.dumps(manifest).encode())
        add("repositories", json.dumps({}).encode())
    return out
