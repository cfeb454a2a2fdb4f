"""Import of OCI layouts, OCI archives and docker archives: what lands in the store."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from containers_storage.imageio import ImageNotFound, InvalidReference, Platform, import_image
from containers_storage.store import Store

from .conftest import Roots, snapshot
from .layouts import TREES, Image, Layer, Layout, docker_archive, oci_layout, sha256, standard_layers, tar_dir


def chain(image: Image) -> list[str]:
    out, parent = [], ""
    for layer in image.layers:
        hexpart = layer.diff_id[7:]
        parent = hashlib.sha256(f"{parent}+{hexpart}".encode()).hexdigest() if parent else hexpart
        out.append(parent)
    return out


@pytest.fixture
def image() -> Image:
    return Image(standard_layers())


def test_oci_layout_records(tmp_path: Path, store: Store, image: Image) -> None:
    oci_layout(tmp_path / "lay", image)
    img = import_image(store, f"oci:{tmp_path / 'lay'}:latest", names=["example.com/ns/app:1"])
    manifest_digest = sha256(image.manifest)
    assert img.id == image.id
    assert img.digest == manifest_digest
    assert img.names == ("example.com/ns/app:1",)
    assert img.names_history == ("example.com/ns/app:1",)
    assert img.created.rfc3339nano() == "2024-05-06T07:08:09.123456789Z"
    assert img.big_data_names == (
        f"sha256:{image.id}",
        f"manifest-{manifest_digest}",
        "manifest",
        f"signature-{manifest_digest[7:]}",
    )
    assert store.image_big_data(img.id, "manifest") == image.manifest
    assert store.image_big_data(img.id, f"sha256:{image.id}") == image.config
    assert store.image_big_data(img.id, f"signature-{manifest_digest[7:]}") == b""
    assert json.loads(img.metadata) == {"signatures-sizes": {manifest_digest: []}}
    ids = chain(image)
    assert img.top_layer == ids[-1]
    for layer, layer_id, parent, compression in zip(image.layers, ids, ["", *ids], (2, 0, 4), strict=False):
        rec = store.layer(layer_id)
        assert rec.parent == parent
        assert rec.compressed_digest == layer.descriptor["digest"]
        assert rec.compressed_size == layer.descriptor["size"]
        assert rec.uncompressed_digest == layer.diff_id
        assert rec.uncompressed_size == len(layer.tar)
        assert rec.compression == compression
        assert rec.names == ()


def test_layer_contents(tmp_path: Path, roots: Roots, store: Store, image: Image) -> None:
    oci_layout(tmp_path / "lay", image)
    img = import_image(store, tmp_path / "lay")
    top = roots.graph / "vfs" / "dir" / img.top_layer / "usr" / "lib" / "python"
    assert (top / "json" / "decoder.py").read_bytes() == (TREES[0] / "decoder.py").read_bytes()
    assert (top / "email" / "message.py").read_bytes() == (TREES[1] / "message.py").read_bytes()
    assert (top / "dom" / "minidom.py").is_file()
    assert not (top / "json" / "tool.py").exists()  # whited out by the third layer
    from containers_storage.store import DiffOptions

    with store.diff("", img.top_layer, DiffOptions(compression=0)) as d:
        assert d.read() == image.layers[2].tar  # the very bytes of the blob, from the tar-split


def test_default_names_and_normalization(tmp_path: Path, store: Store, image: Image) -> None:
    layout = Layout(tmp_path / "lay")
    desc = layout.put_image(image)
    layout.add(desc, "latest")
    layout.add(desc, "example.com/x/y:2")
    layout.add(desc, "Not A Name")
    assert import_image(store, f"oci:{layout.root}:latest").names == ("localhost/latest:latest",)
    assert "example.com/x/y:2" in import_image(store, f"oci:{layout.root}:example.com/x/y:2").names
    assert import_image(store, f"oci:{layout.root}:@2", names=[]).names == (
        "example.com/x/y:2",
        "localhost/latest:latest",
    )
    assert import_image(store, f"oci:{layout.root}:@0", names=["app", "other/app:3"]).names[:2] == (
        "localhost/app:latest",
        "localhost/other/app:3",
    )
    before = snapshot_names(store)
    with pytest.raises(InvalidReference, match="must be lowercase"):
        import_image(store, f"oci:{layout.root}:@0", names=["App"])
    assert snapshot_names(store) == before


def snapshot_names(store: Store) -> list[tuple[str, tuple[str, ...]]]:
    return [(i.id, i.names) for i in store.images()]


def test_unnamed_layout_entry_gets_no_name(tmp_path: Path, store: Store, image: Image) -> None:
    oci_layout(tmp_path / "lay", image, ref=None)
    img = import_image(store, tmp_path / "lay")
    assert img.names == ()


def test_layers_already_stored_are_reused_without_reading(tmp_path: Path, roots: Roots, store: Store) -> None:
    base = standard_layers(("gzip", "none"))
    first = Image(base)
    import_image(store, oci_layout(tmp_path / "a", first).root, names=["first"])
    created = {rec.id: rec.created for rec in store.layers()}
    second = Image([*base, Layer(_small_tar("extra", b"data"), "gzip")], created="2024-06-01T00:00:00Z")
    layout = oci_layout(tmp_path / "b", second)
    for layer in base:  # the layout lacks the shared blobs: they must not be needed
        (layout.root / "blobs" / "sha256" / layer.descriptor["digest"][7:]).unlink()  # type: ignore[index]
    seen: list[tuple[int, bool]] = []

    class Watch:
        def layer(self, index: int, count: int, digest: str, size: int, reused: bool) -> None:
            seen.append((index, reused))

        def advance(self, nbytes: int) -> None:
            pass

        def finish(self) -> None:
            pass

    img = import_image(store, layout.root, names=["second"], progress=Watch())
    assert seen == [(0, True), (1, True), (2, False)]
    layers = {rec.id: rec for rec in store.layers()}
    assert len(layers) == 3
    assert all(layers[k].created == v for k, v in created.items())
    assert layers[img.top_layer].parent in created


def _small_tar(name: str, data: bytes) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_same_image_again_adds_names_only(tmp_path: Path, roots: Roots, store: Store, image: Image) -> None:
    root = oci_layout(tmp_path / "lay", image).root
    import_image(store, root, names=["one"])
    before = snapshot(roots)
    img = import_image(store, root, names=["two"])
    assert img.names == ("localhost/two:latest", "localhost/one:latest")  # new names first, as upstream
    after = snapshot(roots)
    assert after["vfs-layers/layers.json"] == before["vfs-layers/layers.json"]
    assert after["vfs/dir/"] == before["vfs/dir/"]


def test_a_name_moves_from_the_image_that_had_it(tmp_path: Path, store: Store) -> None:
    a = Image(standard_layers(("none",)))
    b = Image(standard_layers(("gzip",)), created="2020-01-01T00:00:00Z")
    import_image(store, oci_layout(tmp_path / "a", a).root, names=["app:1"])
    import_image(store, oci_layout(tmp_path / "b", b).root, names=["app:1"])
    assert store.image(a.id).names == ()
    assert store.image(b.id).names == ("localhost/app:1",)


def _multi(tmp_path: Path) -> tuple[Layout, dict[str, object], list[Image]]:
    layers = standard_layers(("gzip",))
    images = [
        Image(layers, architecture="arm64", variant="v8"),
        Image(layers, architecture="amd64"),
        Image(layers, architecture="s390x"),
    ]
    layout = Layout(tmp_path / "multi")
    desc = layout.put_index(images)
    layout.add(desc, "multi")
    return layout, desc, images


def test_nested_index_platform_choice(tmp_path: Path, store: Store) -> None:
    layout, index_desc, images = _multi(tmp_path)
    img = import_image(store, f"oci:{layout.root}:multi", platform="linux/arm64")
    assert img.id == images[0].id
    index_digest = index_desc["digest"]
    manifest_digest = sha256(images[0].manifest)
    assert img.digest == index_digest  # the list's digest first, as containers/image stores it
    assert img.digests == (index_digest, manifest_digest)
    assert img.big_data_names == (
        f"sha256:{images[0].id}",
        f"manifest-{index_digest}",
        f"manifest-{manifest_digest}",
        "manifest",
        f"signature-{manifest_digest[7:]}",
    )
    assert json.loads(img.metadata) == {"signatures-sizes": {manifest_digest: []}}
    s390 = import_image(store, f"oci:{layout.root}:multi", platform=Platform("linux", "s390x"))
    assert s390.id == images[2].id
    assert s390.top_layer == img.top_layer  # one layer serves both platforms


def test_host_platform_is_the_default(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import containers_storage.imageio.api as api

    layout, _, images = _multi(tmp_path)
    monkeypatch.setattr(api, "host", lambda: Platform("linux", "amd64"))
    assert import_image(store, f"oci:{layout.root}:multi").id == images[1].id
    monkeypatch.setattr(api, "host", lambda: Platform("linux", "arm64", "v8"))
    assert import_image(store, f"oci:{layout.root}:multi").id == images[0].id


def test_index_json_listing_platforms(tmp_path: Path, store: Store) -> None:
    layers = standard_layers(("none",))
    arm, amd = Image(layers, architecture="arm", variant="v6"), Image(layers, architecture="amd64")
    layout = Layout(tmp_path / "lay")
    for image in (arm, amd):
        desc = layout.put_image(image)
        desc["platform"] = image.platform
        layout.add(desc)
    assert import_image(store, layout.root, platform="linux/arm/v7").id == arm.id  # v7 runs v6
    img = import_image(store, layout.root, platform="linux/amd64")
    assert img.id == amd.id
    assert img.digests == (sha256(amd.manifest),)


def test_choosing_by_reference(tmp_path: Path, store: Store) -> None:
    a, b = Image(standard_layers(("none",))), Image(standard_layers(("gzip",)))
    layout = Layout(tmp_path / "lay")
    layout.add(layout.put_image(a), "a")
    layout.add(layout.put_image(b), "b")
    assert import_image(store, f"oci:{layout.root}:b").id == b.id
    with pytest.raises(ImageNotFound, match="no image called 'c'; the layout has: 'a', 'b'"):
        import_image(store, f"oci:{layout.root}:c")
    with pytest.raises(ImageNotFound, match="more than one image"):
        import_image(store, layout.root)


@pytest.mark.parametrize("compressed", [False, True])
def test_oci_archive(tmp_path: Path, store: Store, image: Image, compressed: bool) -> None:
    layout = oci_layout(tmp_path / "lay", image, ref="v1")
    archive = tar_dir(layout.root, tmp_path / "image.tar")
    if compressed:
        archive.with_suffix(".tar.gz").write_bytes(gzip.compress(archive.read_bytes()))
        archive = archive.with_suffix(".tar.gz")
    for source in (f"oci-archive:{archive}:v1", str(archive)):
        img = import_image(store, source)
        assert img.id == image.id
        assert img.names == ("localhost/v1:latest",)
        assert store.image_big_data(img.id, "manifest") == image.manifest


@pytest.mark.parametrize(("links", "compress_layers"), [(False, False), (True, False), (False, True)])
def test_docker_archive(tmp_path: Path, store: Store, links: bool, compress_layers: bool) -> None:
    image = Image(standard_layers(("none", "none", "none")))
    archive = docker_archive(
        tmp_path / "d.tar",
        image,
        ["busybox", "example.com/a/b:2"],
        compress_layers=compress_layers,
        links=links,
    )
    img = import_image(store, f"docker-archive:{archive}")
    assert img.id == image.id
    assert img.names == ("docker.io/library/busybox:latest", "example.com/a/b:2")
    manifest = json.loads(store.image_big_data(img.id, "manifest"))
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(image.config),
            "digest": sha256(image.config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": len(layer.tar),
                "digest": layer.diff_id,
            }
            for layer in image.layers
        ],
    }
    for layer, layer_id in zip(image.layers, chain(image), strict=True):
        rec = store.layer(layer_id)
        assert (rec.compressed_digest, rec.uncompressed_digest, rec.compression) == (
            layer.diff_id,
            layer.diff_id,
            0,
        )
    assert import_image(store, str(archive)).id == image.id  # recognised without the transport


def test_docker_archive_choosing(tmp_path: Path, store: Store) -> None:
    image = Image(standard_layers(("none",)))
    archive = docker_archive(tmp_path / "d.tar", image, ["example.com/a/b:2"])
    assert import_image(store, f"docker-archive:{archive}:example.com/a/b:2").id == image.id
    assert import_image(store, f"docker-archive:{archive}:@0").id == image.id
    with pytest.raises(ImageNotFound, match="no image tagged 'docker.io/library/other:latest'"):
        import_image(store, f"docker-archive:{archive}:other")


def test_progress_counts_every_byte(tmp_path: Path, store: Store, image: Image) -> None:
    events: list[tuple[str, int]] = []

    class Record:
        def layer(self, index: int, count: int, digest: str, size: int, reused: bool) -> None:
            events.append((digest, size))

        def advance(self, nbytes: int) -> None:
            events.append(("bytes", nbytes))

        def finish(self) -> None:
            events.append(("finish", 0))

    import_image(store, oci_layout(tmp_path / "lay", image).root, progress=Record())
    starts = [e for e in events if e[0].startswith("sha256:")]
    assert starts == [(layer.descriptor["digest"], layer.descriptor["size"]) for layer in image.layers]
    assert sum(n for k, n in events if k == "bytes") == sum(len(layer.blob) for layer in image.layers)
    assert events[-1] == ("finish", 0)


def test_blob_missing_from_the_source_comes_from_a_store_layer(tmp_path: Path, store: Store) -> None:
    """A layer with the DiffID is in the store but on another parent: its diff serves."""
    shared = Layer(_small_tar("shared", b"same content"))
    import_image(store, oci_layout(tmp_path / "a", Image([shared])).root, names=["a"])
    b = Image([Layer(_small_tar("base", b"other base"), "gzip"), shared])
    layout = oci_layout(tmp_path / "b", b)
    (layout.root / "blobs" / "sha256" / shared.descriptor["digest"][7:]).unlink()  # type: ignore[index]
    img = import_image(store, layout.root, names=["b"])
    top = store.layer(img.top_layer)
    assert top.id == chain(b)[1] and top.uncompressed_digest == shared.diff_id
    assert top.parent == chain(b)[0]


def test_a_layer_imported_meanwhile_by_another_process_is_used(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from containers_storage.imageio.storewriter import StoreWriter

    image = Image(standard_layers(("gzip", "none")))
    root = oci_layout(tmp_path / "lay", image).root
    import_image(store, root)
    store.delete_image(image.id)  # frees the top layer
    import_image(store, oci_layout(tmp_path / "base", Image(image.layers[:1])).root)
    # the first look finds nothing, as if another process created the layer after it
    real = StoreWriter._existing
    calls: list[str] = []

    def racing(self: StoreWriter, layer_id: str, layer: Layer) -> object:  # type: ignore[override]
        calls.append(layer_id)
        return None if len(calls) == 1 else real(self, layer_id, layer)  # type: ignore[arg-type]

    monkeypatch.setattr(StoreWriter, "_existing", racing)
    img = import_image(store, root, names=["raced"])
    assert img.id == image.id
    assert len(store.layers()) == 2


def test_a_stored_layer_with_the_chain_id_but_other_content(
    tmp_path: Path, roots: Roots, store: Store
) -> None:
    import io

    from containers_storage.imageio import InvalidImageSource

    image = Image(standard_layers(("none",)))
    store.put_layer(id=image.layers[0].diff_id[7:], diff=io.BytesIO(_small_tar("x", b"impostor")))
    before = snapshot(roots)
    with pytest.raises(InvalidImageSource, match="the store's layer has DiffID"):
        import_image(store, oci_layout(tmp_path / "lay", image).root)
    assert snapshot(roots) == before
