"""Debian's skopeo and podman against our stores: they read what we import as their own,
and what skopeo writes is what we write.

The strongest check is differential: the same source imported by skopeo (containers/
image's storage destination) and by us into two fresh stores gives byte-identical
``images.json`` and the same layer records (except each layer's creation time).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from containers_storage.imageio import export_image, import_image
from containers_storage.store import Store, get_store

from .conftest import Clients, Roots, storage_ref
from .layouts import Image, Layout, docker_archive, oci_layout, sha256, standard_layers


def _records(roots: Roots) -> tuple[bytes, list[dict[str, object]]]:
    images = (roots.graph / "vfs-images" / "images.json").read_bytes()
    layers = json.loads((roots.graph / "vfs-layers" / "layers.json").read_text())
    for rec in layers:
        rec.pop("created")
    return images, layers


def _by_skopeo(tmp_path: Path, skopeo: Clients, source: str, name: str) -> Roots:
    theirs = Roots(tmp_path / "theirs-graph", tmp_path / "theirs-run")
    skopeo.skopeo("copy", "-q", source, storage_ref(theirs, name))
    return theirs


def _image_dir_files(roots: Roots, image_id: str) -> dict[str, bytes]:
    d = roots.graph / "vfs-images" / image_id
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.parametrize("compressions", [("gzip", "none", "zstd"), ("none", "none")])
def test_same_records_as_skopeo_oci(
    tmp_path: Path, roots: Roots, store: Store, skopeo: Clients, compressions: tuple[str, ...]
) -> None:
    image = Image(standard_layers(compressions))
    layout = oci_layout(tmp_path / "lay", image)
    import_image(store, f"oci:{layout.root}:latest", names=["example.com/app:1"])
    theirs = _by_skopeo(tmp_path, skopeo, f"oci:{layout.root}:latest", "example.com/app:1")
    assert _records(roots) == _records(theirs)
    assert _image_dir_files(roots, image.id) == _image_dir_files(theirs, image.id)


def test_same_records_as_skopeo_multi_platform(
    tmp_path: Path, roots: Roots, store: Store, skopeo: Clients
) -> None:
    layers = standard_layers(("gzip", "none"))
    layout = Layout(tmp_path / "multi")
    layout.add(layout.put_index([Image(layers, architecture="arm64", variant="v8"), Image(layers)]), "m")
    import_image(store, f"oci:{layout.root}:m", names=["example.com/multi:1"], platform="linux/amd64")
    theirs = _by_skopeo(tmp_path, skopeo, f"oci:{layout.root}:m", "example.com/multi:1")
    assert _records(roots) == _records(theirs)


def test_same_records_as_skopeo_docker_archive(
    tmp_path: Path, roots: Roots, store: Store, skopeo: Clients
) -> None:
    image = Image(standard_layers(("none", "none", "none")))
    # (skopeo 1.9 takes a symlinked layer.tar for an empty file: plain files here)
    archive = docker_archive(tmp_path / "d.tar", image, ["example.com/d:1"])
    import_image(store, f"docker-archive:{archive}")
    theirs = _by_skopeo(tmp_path, skopeo, f"docker-archive:{archive}", "example.com/d:1")
    assert _records(roots) == _records(theirs)


def test_podman_and_skopeo_see_our_image(
    tmp_path: Path, roots: Roots, store: Store, skopeo: Clients, podman: Clients
) -> None:
    image = Image(standard_layers())
    img = import_image(store, oci_layout(tmp_path / "lay", image).root, names=["example.com/ns/app:1"])
    size = store.image_size(img.id)
    store.close()
    listing = podman.podman(
        roots, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}"
    ).stdout
    assert listing.split() == ["example.com/ns/app:1", image.id[:12], sha256(image.manifest)]
    inspect = json.loads(podman.podman(roots, "image", "inspect", "example.com/ns/app:1").stdout)[0]
    assert inspect["Id"] == img.id
    assert inspect["Digest"] == sha256(image.manifest)
    assert inspect["RepoTags"] == ["example.com/ns/app:1"]
    assert inspect["RepoDigests"] == [f"example.com/ns/app@{sha256(image.manifest)}"]
    assert inspect["Created"] == "2024-05-06T07:08:09.123456789Z"
    assert inspect["RootFS"]["Layers"] == [layer.diff_id for layer in image.layers]
    assert inspect["Config"]["Labels"] == {"test": "<imageio>"}
    assert (
        inspect["Size"]
        == size
        == sum(len(layer.tar) for layer in image.layers) + len(image.config) + 2 * len(image.manifest)
    )
    seen = json.loads(skopeo.skopeo("inspect", storage_ref(roots, "example.com/ns/app:1")).stdout)
    assert seen["Digest"] == sha256(image.manifest)
    assert seen["Layers"] == [layer.descriptor["digest"] for layer in image.layers]
    assert seen["Created"] == "2024-05-06T07:08:09.123456789Z"
    config = json.loads(
        skopeo.skopeo("inspect", "--config", storage_ref(roots, "example.com/ns/app:1")).stdout
    )
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]


def _blobs(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "blobs" / "sha256").iterdir()}


def _manifest(root: Path) -> tuple[str, dict[str, object]]:
    digest = json.loads((root / "index.json").read_text())["manifests"][0]["digest"]
    return digest, json.loads((root / "blobs" / "sha256" / digest[7:]).read_bytes())


def test_skopeo_copies_our_image_back_out(
    tmp_path: Path, roots: Roots, store: Store, skopeo: Clients
) -> None:
    """skopeo reading our store gives the original blobs (uncompressed image: the very
    layout), and the same compressed blobs as when it reads a store it wrote itself."""
    plain = Image(standard_layers(("none", "none")))
    mixed = Image(standard_layers(("gzip", "none", "zstd")))
    for image, name in ((plain, "plain"), (mixed, "mixed")):
        import_image(store, oci_layout(tmp_path / name, image).root, names=[f"example.com/{name}:1"])
    store.close()
    out = tmp_path / "out-plain"
    skopeo.skopeo(
        "copy",
        "-q",
        "--dest-oci-accept-uncompressed-layers",
        storage_ref(roots, "example.com/plain:1"),
        f"oci:{out}",
    )
    assert _blobs(out) == _blobs(tmp_path / "plain")
    out = tmp_path / "out-mixed"
    skopeo.skopeo(
        "copy",
        "-q",
        "--dest-oci-accept-uncompressed-layers",
        storage_ref(roots, "example.com/mixed:1"),
        f"oci:{out}",
    )
    _, manifest = _manifest(out)
    assert manifest["config"]["digest"] == sha256(mixed.config)  # type: ignore[index]
    assert [d["digest"] for d in manifest["layers"]] == [layer.diff_id for layer in mixed.layers]  # type: ignore[index,union-attr]
    # the gzip skopeo makes of our layers is the one it makes of layers it stored itself
    theirs = _by_skopeo(tmp_path, skopeo, f"oci:{tmp_path / 'mixed'}:latest", "example.com/mixed:1")
    ours_gz, theirs_gz = tmp_path / "ours-gz", tmp_path / "theirs-gz"
    skopeo.skopeo("copy", "-q", storage_ref(roots, "example.com/mixed:1"), f"oci:{ours_gz}")
    skopeo.skopeo("copy", "-q", storage_ref(theirs, "example.com/mixed:1"), f"oci:{theirs_gz}")
    assert _blobs(ours_gz) == _blobs(theirs_gz)


def test_our_export_of_a_store_skopeo_wrote(tmp_path: Path, skopeo: Clients) -> None:
    plain = Image(standard_layers(("none", "none", "none")))
    mixed = Image(standard_layers(("gzip", "zstd")))
    for image, name in ((plain, "plain"), (mixed, "mixed")):
        theirs = _by_skopeo(
            tmp_path, skopeo, f"oci:{oci_layout(tmp_path / name, image).root}:latest", f"example.com/{name}:1"
        )
    with get_store(theirs.options()) as s:
        export_image(s, "example.com/plain:1", tmp_path / "ours-plain")
        export_image(s, "example.com/mixed:1", tmp_path / "ours-mixed")
    assert _blobs(tmp_path / "ours-plain") == _blobs(tmp_path / "plain")
    assert _manifest(tmp_path / "ours-plain")[0] == sha256(plain.manifest)
    skopeo.skopeo(
        "copy",
        "-q",
        "--dest-oci-accept-uncompressed-layers",
        storage_ref(theirs, "example.com/mixed:1"),
        f"oci:{tmp_path / 'skopeo-mixed'}",
    )
    ours, theirs_doc = _manifest(tmp_path / "ours-mixed")[1], _manifest(tmp_path / "skopeo-mixed")[1]
    assert ours["config"] == theirs_doc["config"]
    assert [d["digest"] for d in ours["layers"]] == [d["digest"] for d in theirs_doc["layers"]]  # type: ignore[union-attr]
    assert [d["mediaType"] for d in ours["layers"]] == ["application/vnd.oci.image.layer.v1.tar"] * 2  # type: ignore[union-attr]
    blobs = _blobs(tmp_path / "ours-mixed")
    assert {k: v for k, v in blobs.items() if k != _manifest(tmp_path / "ours-mixed")[0][7:]} == {
        k: v
        for k, v in _blobs(tmp_path / "skopeo-mixed").items()
        if k != _manifest(tmp_path / "skopeo-mixed")[0][7:]
    }


def test_docker_archive_like_skopeos(tmp_path: Path, roots: Roots, store: Store, skopeo: Clients) -> None:
    image = Image(standard_layers(("gzip", "none")))
    import_image(store, oci_layout(tmp_path / "lay", image).root, names=["example.com/app:1"])
    export_image(store, "example.com/app:1", f"docker-archive:{tmp_path / 'ours.tar'}:example.com/app:1")
    store.close()
    skopeo.skopeo(
        "copy",
        "-q",
        storage_ref(roots, "example.com/app:1"),
        f"docker-archive:{tmp_path / 'theirs.tar'}:example.com/app:1",
    )
    assert (tmp_path / "ours.tar").read_bytes() == (tmp_path / "theirs.tar").read_bytes()


def test_podman_creates_a_container_from_our_image(
    tmp_path: Path, roots: Roots, store: Store, podman: Clients
) -> None:
    image = Image(standard_layers(("gzip", "none")))
    img = import_image(store, oci_layout(tmp_path / "lay", image).root, names=["example.com/run:1"])
    store.close()
    podman.podman(roots, "create", "--name", "c1", "example.com/run:1", "/bin/sh")
    with get_store(roots.options()) as s:
        (ctr,) = s.containers()
        assert (ctr.names, ctr.image_id) == (("c1",), img.id)
        assert s.layer(ctr.layer_id).parent == img.top_layer
        tree = Path(s.mount(ctr.id))
        try:
            assert (tree / "usr" / "lib" / "python" / "email" / "message.py").is_file()
        finally:
            s.unmount(ctr.id)
