"""Broken and hostile sources: a clear error, and the store exactly as it was (no image,
no layer, no layer directory, no tar-split file, no image data left behind)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from containers_storage.errors import DuplicateID
from containers_storage.imageio import (
    BlobMissing,
    DigestMismatch,
    InvalidImageSource,
    PlatformNotFound,
    UnsafeArchivePath,
    UnsupportedMediaType,
    import_image,
    ocilayout,
)
from containers_storage.imageio.platforms import host
from containers_storage.imageio.sources import SourceLayer
from containers_storage.imageio.storewriter import StoreWriter
from containers_storage.store import ImageOptions, Store
from containers_storage.testing.hostile import REFUSED

from .conftest import Roots, snapshot
from .layouts import (
    TREES,
    Image,
    Layer,
    Layout,
    compress,
    docker_archive,
    oci_layout,
    sha256,
    standard_layers,
    tree_tar,
)


@pytest.fixture
def seeded(tmp_path: Path, store: Store) -> Store:
    """A store that already holds an image (of a tree the test images do not use, so
    that none of their layers is found in the store), so 'nothing changed' is not
    trivially true."""
    seed = Image([Layer(tree_tar(TREES[3], "usr/lib/python/urllib"))])
    import_image(store, oci_layout(tmp_path / "seed", seed).root, names=["seed"])
    return store


def assert_refused(
    roots: Roots, run: Callable[[], object], error: type[BaseException], match: str = ""
) -> None:
    before = snapshot(roots)
    with pytest.raises(error, match=match or None):
        run()
    assert snapshot(roots) == before


def blob_path(layout: Layout, descriptor: dict[str, object]) -> Path:
    return layout.root / "blobs" / "sha256" / str(descriptor["digest"])[7:]


def test_missing_layer_blob(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    image = Image(standard_layers())
    layout = oci_layout(tmp_path / "lay", image)
    blob_path(layout, image.layers[2].descriptor).unlink()
    assert_refused(roots, lambda: import_image(seeded, layout.root), BlobMissing, "blob not found")


@pytest.mark.parametrize("index", [0, 2])
def test_wrong_digest_layer_blob(tmp_path: Path, roots: Roots, seeded: Store, index: int) -> None:
    layers = standard_layers()
    image = Image(layers)
    other = standard_layers(("zstd", "gzip", "none"))[index]
    # same size, other bytes: only the digest can tell
    layers[index].blob_override = (other.blob * 2)[: layers[index].descriptor["size"]]  # type: ignore[index]
    layout = oci_layout(tmp_path / "lay", image)
    # the store may stumble on the bytes first: the error still says the digest is wrong
    assert_refused(roots, lambda: import_image(seeded, layout.root), DigestMismatch, "Digest did not match")


def test_wrong_digest_is_a_digest_error(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    layers = standard_layers(("none",))
    tar = bytearray(layers[0].tar)
    content = (TREES[0] / "decoder.py").read_bytes()
    tar[tar.find(content) + 100] ^= 1  # inside a file's content: still a valid tar
    layers[0].blob_override = bytes(tar)
    layout = oci_layout(tmp_path / "lay", Image(layers))
    assert_refused(roots, lambda: import_image(seeded, layout.root), DigestMismatch, "Digest did not match")


def test_blob_longer_than_its_size(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    layers = standard_layers(("gzip", "none"))
    layers[1].blob_override = layers[1].blob + bytes(512)
    layout = oci_layout(tmp_path / "lay", Image(layers))
    assert_refused(roots, lambda: import_image(seeded, layout.root), DigestMismatch, "size mismatch")


def test_diff_id_not_matching_the_config(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    layers = standard_layers()
    image = Image(layers)
    wrong = json.loads(image.config)
    wrong["rootfs"]["diff_ids"][2] = sha256(b"something else")
    image.config_extra = {"rootfs": wrong["rootfs"]}
    layout = oci_layout(tmp_path / "lay", image)
    assert_refused(roots, lambda: import_image(seeded, layout.root), DigestMismatch, "DiffID")


def test_corrupt_manifest_and_config(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    image = Image(standard_layers(("none",)))
    layout = oci_layout(tmp_path / "lay", image)
    config = blob_path(layout, {"digest": sha256(image.config)})
    config.write_bytes(config.read_bytes().replace(b"amd64", b"arm64"))
    assert_refused(roots, lambda: import_image(seeded, layout.root), DigestMismatch, "config")
    manifest = blob_path(layout, {"digest": sha256(image.manifest)})
    manifest.write_bytes(manifest.read_bytes() + b" ")
    assert_refused(roots, lambda: import_image(seeded, layout.root), DigestMismatch, "manifest")


def _layout_with_manifest(tmp_path: Path, image: Image, edit: Callable[[dict[str, object]], None]) -> Layout:
    layout = Layout(tmp_path / "lay")
    layout.put_image(image)
    doc = json.loads(image.manifest)
    edit(doc)
    data = json.dumps(doc).encode()
    layout.add(
        {"mediaType": doc.get("mediaType", ""), "digest": layout.blob(data), "size": len(data)}, "latest"
    )
    return layout


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda d: d.update(
                mediaType="application/vnd.docker.distribution.manifest.v1+json", schemaVersion=1
            ),
            "unsupported MIME type for a manifest",
        ),
        (
            lambda d: d["layers"][0].update(
                mediaType="application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
            ),
            "unsupported MIME type for a layer",
        ),
        (
            lambda d: d["config"].update(mediaType="application/vnd.cncf.helm.config.v1+json"),
            "not a container image",
        ),
        (lambda d: d.update(mediaType="application/x-anything"), "unsupported MIME type for a manifest"),
    ],
)
def test_unsupported_media_types(
    tmp_path: Path, roots: Roots, seeded: Store, edit: Callable[[dict[str, object]], None], match: str
) -> None:
    layout = _layout_with_manifest(tmp_path, Image(standard_layers(("gzip", "none"))), edit)
    assert_refused(roots, lambda: import_image(seeded, layout.root), UnsupportedMediaType, match)


def test_layer_count_not_matching_the_config(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    layout = _layout_with_manifest(
        tmp_path, Image(standard_layers(("gzip", "none"))), lambda d: d["layers"].pop()
    )  # type: ignore[attr-defined]
    assert_refused(
        roots,
        lambda: import_image(seeded, layout.root),
        InvalidImageSource,
        "Inconsistent layer count: 1 in manifest, 2 in config",
    )


def test_absent_platform_lists_what_is_there(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    layers = standard_layers(("none",))
    layout = Layout(tmp_path / "multi")
    layout.add(
        layout.put_index(
            [Image(layers, architecture="amd64"), Image(layers, architecture="arm64", variant="v8")]
        ),
        "m",
    )
    assert_refused(
        roots,
        lambda: import_image(seeded, f"oci:{layout.root}:m", platform="linux/riscv64"),
        PlatformNotFound,
        r"no image for linux/riscv64 in index sha256:[0-9a-f]{64}; it has: linux/amd64, linux/arm64/v8",
    )


def test_not_a_layout(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    (tmp_path / "empty").mkdir()
    assert_refused(roots, lambda: import_image(seeded, tmp_path / "empty"), InvalidImageSource, "oci-layout")
    (tmp_path / "file").write_bytes(b"hello")
    assert_refused(roots, lambda: import_image(seeded, tmp_path / "file"), InvalidImageSource)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_layer_tar(tmp_path: Path, roots: Roots, seeded: Store, case: str) -> None:
    data, error = REFUSED[case]
    layers = [*standard_layers(("gzip", "none")), Layer(data, "gzip")]
    layout = oci_layout(tmp_path / "lay", Image(layers))
    assert_refused(roots, lambda: import_image(seeded, layout.root), error)
    assert sorted(os.listdir(tmp_path)) == sorted(["lay", "graph", "seed"])


def _archive(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    """A tar whose members are files (bytes) or symlinks (str target), names as given."""
    with tarfile.open(path, "w") as tf:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))
    return path


def _layout_members(layout: Layout) -> list[tuple[str, bytes | str]]:
    out: list[tuple[str, bytes | str]] = []
    for dirpath, _, files in os.walk(layout.root):
        for name in files:
            full = Path(dirpath) / name
            out.append((str(full.relative_to(layout.root)), full.read_bytes()))
    return out


@pytest.mark.parametrize(
    "hostile",
    [
        ("../evil", b"x"),
        ("/etc/evil", b"x"),
        ("blobs/../../evil", b"x"),
        ("blobs/sha256/link", "../../../outside"),
        ("blobs/sha256/abs", "/etc/passwd"),
    ],
)
def test_hostile_oci_archive_paths(
    tmp_path: Path, roots: Roots, seeded: Store, hostile: tuple[str, bytes | str]
) -> None:
    layout = oci_layout(tmp_path / "lay", Image(standard_layers(("none",))))
    archive = _archive(tmp_path / "a.tar", [*_layout_members(layout), hostile])
    assert_refused(roots, lambda: import_image(seeded, f"oci-archive:{archive}"), UnsafeArchivePath)
    assert not (tmp_path / "evil").exists()


def test_blob_symlinked_out_of_the_archive(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    image = Image(standard_layers(("none",)))
    layout = oci_layout(tmp_path / "lay", image)
    blob = f"blobs/sha256/{image.layers[0].descriptor['digest'][7:]}"  # type: ignore[index]
    members = [m for m in _layout_members(layout) if m[0] != blob]
    archive = _archive(tmp_path / "a.tar", [*members, (blob, "../../../../etc/hostname")])
    assert_refused(roots, lambda: import_image(seeded, f"oci-archive:{archive}"), UnsafeArchivePath)


def test_hostile_docker_manifest_paths(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    image = Image(standard_layers(("none",)))
    config = image.config
    for layer_path in ("../../etc/passwd", "/etc/passwd"):
        manifest = [{"Config": "c.json", "RepoTags": [], "Layers": [layer_path]}]
        archive = _archive(
            tmp_path / "d.tar", [("c.json", config), ("manifest.json", json.dumps(manifest).encode())]
        )
        assert_refused(
            roots, lambda a=archive: import_image(seeded, f"docker-archive:{a}"), UnsafeArchivePath
        )


def test_docker_archive_missing_layer(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    image = Image(standard_layers(("none", "none")))
    archive = docker_archive(tmp_path / "d.tar", image)
    with tarfile.open(archive) as tf:
        members = [(m.name, tf.extractfile(m).read()) for m in tf.getmembers() if m.isfile()]  # type: ignore[union-attr]
    kept = [(n, d) for n, d in members if not (n.endswith("layer.tar") and d == image.layers[1].tar)]
    broken = _archive(tmp_path / "broken.tar", kept)  # type: ignore[arg-type]
    assert_refused(roots, lambda: import_image(seeded, broken), BlobMissing)


def test_docker_layer_not_matching_its_diff_id(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    layers = standard_layers(("none", "none"))
    image = Image(layers)
    archive = docker_archive(tmp_path / "d.tar", image)
    data = bytearray(archive.read_bytes())
    data[data.find((TREES[1] / "message.py").read_bytes()) + 100] ^= 1  # file content of layer 2
    archive.write_bytes(bytes(data))
    assert_refused(roots, lambda: import_image(seeded, archive), DigestMismatch)


def test_existing_image_id_on_other_layers(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    image = Image(standard_layers())
    seed_top = seeded.images()[0].top_layer
    seeded.create_image(id=image.id, layer=seed_top, options=ImageOptions())
    layout = oci_layout(tmp_path / "lay", image)
    assert_refused(roots, lambda: import_image(seeded, layout.root), DuplicateID, "different top layer")


def test_interrupted_import_leaves_nothing(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    image = Image(standard_layers())
    layout = oci_layout(tmp_path / "lay", image)

    class Interrupt:
        def layer(self, index: int, count: int, digest: str, size: int, reused: bool) -> None:
            if index == 2:
                raise KeyboardInterrupt

        def advance(self, nbytes: int) -> None:
            pass

        def finish(self) -> None:
            pass

    assert_refused(roots, lambda: import_image(seeded, layout.root, progress=Interrupt()), KeyboardInterrupt)


def test_descriptor_contradicting_the_manifest(tmp_path: Path, roots: Roots, seeded: Store) -> None:
    image = Image(standard_layers(("none",)))
    layout = Layout(tmp_path / "lay")
    desc = layout.put_image(image)
    desc["mediaType"] = "application/vnd.oci.image.index.v1+json"
    layout.add(desc, "latest")
    assert_refused(
        roots, lambda: import_image(seeded, layout.root), InvalidImageSource, "its descriptor says"
    )


def test_export_of_an_image_missing_its_config(tmp_path: Path, seeded: Store) -> None:
    from containers_storage.imageio import export_image

    img = seeded.images()[0]
    config_key = next(k for k in img.big_data_names if k.startswith("sha256:"))
    seeded.set_image_big_data(img.id, config_key, b"{}")  # no longer the config's digest
    with pytest.raises(DigestMismatch, match="config"):
        export_image(seeded, img.id, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("index", [0, 2])
def test_blob_changed_after_its_check(tmp_path: Path, roots: Roots, seeded: Store, index: int) -> None:
    """The blob is checked ahead, then read again by the store: bytes that changed in
    between (same size, still a valid layer) are refused by the store's own digest."""
    layers = standard_layers(("gzip", "none", "none"))
    layout = oci_layout(tmp_path / "lay", Image(layers))
    src = ocilayout.read(ocilayout.Blobs.directory(str(layout.root)), "latest", host())
    tampered = bytearray(layers[index].tar)
    with tarfile.open(fileobj=io.BytesIO(layers[index].tar)) as tf:
        member = next(m for m in tf if m.isreg() and m.size > 100)
    tampered[member.offset_data + 50] ^= 1  # inside a file's content: still a valid tar
    blob = compress(bytes(tampered), layers[index].compression)
    opened: list[str] = []

    def open_layer(layer: SourceLayer) -> IO[bytes]:
        opened.append(layer.digest)
        if layer.digest == src.layers[index].digest and opened.count(layer.digest) == 2:
            return io.BytesIO(blob)  # the store's read, after the check's
        return src.open_layer(layer)

    changed = dataclasses.replace(src, open_layer=open_layer)
    assert_refused(roots, lambda: StoreWriter(seeded, changed).write(["x"]), DigestMismatch, "changed")
