"""Export to OCI layouts, OCI archives and docker archives, and back in."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from containers_storage.imageio import DigestMismatch, InvalidReference, export_image, import_image
from containers_storage.store import Store, get_store

from .conftest import Roots
from .layouts import Image, docker_archive, oci_layout, sha256, standard_layers


def blobs(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "blobs" / "sha256").iterdir()}


def index(root: Path) -> list[dict[str, object]]:
    return json.loads((root / "index.json").read_text())["manifests"]  # type: ignore[no-any-return]


def manifest(root: Path, i: int = 0) -> dict[str, object]:
    return json.loads((root / "blobs" / "sha256" / str(index(root)[i]["digest"])[7:]).read_bytes())  # type: ignore[no-any-return]


def test_round_trip_is_byte_identical(tmp_path: Path, store: Store) -> None:
    image = Image(standard_layers(("none", "none", "none")))
    src = oci_layout(tmp_path / "src", image, ref="v1").root
    import_image(store, src, names=["example.com/app:1"])
    done = export_image(store, "example.com/app:1", f"oci:{tmp_path / 'out'}:v1")
    assert done.manifest_digest == sha256(image.manifest)
    assert blobs(tmp_path / "out") == blobs(src)
    assert index(tmp_path / "out") == json.loads((src / "index.json").read_text())["manifests"]
    assert (tmp_path / "out" / "oci-layout").read_bytes() == b'{"imageLayoutVersion": "1.0.0"}'


def test_compressed_layers_come_back_uncompressed(tmp_path: Path, roots: Roots, store: Store) -> None:
    image = Image(standard_layers(("gzip", "none", "zstd")))
    img = import_image(store, oci_layout(tmp_path / "src", image).root)
    done = export_image(store, img.id, tmp_path / "out")
    doc = manifest(tmp_path / "out")
    assert doc["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": sha256(image.config),
        "size": len(image.config),
    }
    assert doc["layers"] == [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer.diff_id,
            "size": len(layer.tar),
        }
        for layer in image.layers
    ]
    assert done.layer_digests == tuple(layer.diff_id for layer in image.layers)
    out = blobs(tmp_path / "out")
    assert all(out[layer.diff_id[7:]] == layer.tar for layer in image.layers)
    with get_store(Roots(tmp_path / "g2", roots.run.parent / "r2").options()) as other:
        again = import_image(other, tmp_path / "out")
        assert again.id == img.id
        assert again.top_layer == img.top_layer  # same DiffIDs, same chain IDs


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_export(tmp_path: Path, roots: Roots, store: Store, compression: str) -> None:
    image = Image(standard_layers(("none", "gzip")))
    img = import_image(store, oci_layout(tmp_path / "src", image).root)
    export_image(store, img.id, tmp_path / "out", compression=compression)
    doc = manifest(tmp_path / "out")
    assert [d["mediaType"] for d in doc["layers"]] == [  # type: ignore[union-attr]
        f"application/vnd.oci.image.layer.v1.tar+{compression}"
    ] * 2
    with get_store(Roots(tmp_path / "g2", roots.run.parent / "r2").options()) as other:
        again = import_image(other, tmp_path / "out")
        assert again.id == img.id
        assert [other.layer(lid).compression for lid in (again.top_layer,)] == [
            2 if compression == "gzip" else 4
        ]


def test_oci_archive_export(tmp_path: Path, roots: Roots, store: Store) -> None:
    image = Image(standard_layers(("gzip", "none")))
    img = import_image(store, oci_layout(tmp_path / "src", image).root)
    export_image(store, img.id, f"oci-archive:{tmp_path / 'a.tar'}:v2")
    export_image(store, img.id, tmp_path / "b.tar", format="oci-archive")
    export_image(store, img.id, f"oci-archive:{tmp_path / 'c.tar'}:v2")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "c.tar").read_bytes()  # reproducible
    with tarfile.open(tmp_path / "a.tar") as tf:
        names = tf.getnames()
    assert names[:2] == ["blobs", "blobs/sha256"] and names[-2:] == ["index.json", "oci-layout"]
    with get_store(Roots(tmp_path / "g2", roots.run.parent / "r2").options()) as other:
        again = import_image(other, f"oci-archive:{tmp_path / 'a.tar'}:v2")
        assert (again.id, again.names) == (img.id, ("localhost/v2:latest",))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]


def test_export_into_an_existing_layout(tmp_path: Path, store: Store) -> None:
    a, b = Image(standard_layers(("none",))), Image(standard_layers(("none", "gzip")))
    for image, name in ((a, "a"), (b, "b")):
        import_image(store, oci_layout(tmp_path / name, image).root, names=[name])
    out = tmp_path / "out"
    export_image(store, "localhost/a:latest", f"oci:{out}:one")
    export_image(store, "localhost/b:latest", f"oci:{out}:two")
    assert [e["annotations"] for e in index(out)] == [  # type: ignore[index]
        {"org.opencontainers.image.ref.name": "one"},
        {"org.opencontainers.image.ref.name": "two"},
    ]
    export_image(store, "localhost/b:latest", f"oci:{out}:one")  # a name says which entry it replaces
    assert [(e["annotations"], e["digest"]) for e in index(out)] == [
        ({"org.opencontainers.image.ref.name": "two"}, index(out)[1]["digest"]),
        ({"org.opencontainers.image.ref.name": "one"}, index(out)[1]["digest"]),
    ]
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    with pytest.raises(Exception, match="not an OCI layout"):
        export_image(store, "localhost/a:latest", tmp_path / "junk")


def test_docker_archive_export(tmp_path: Path, roots: Roots, store: Store) -> None:
    image = Image(standard_layers(("gzip", "none", "zstd")))
    img = import_image(store, oci_layout(tmp_path / "src", image).root, names=["example.com/app:1", "app:2"])
    done = export_image(store, img.id, f"docker-archive:{tmp_path / 'd.tar'}")
    assert done.manifest_digest == "" and done.config_digest == sha256(image.config)
    with tarfile.open(tmp_path / "d.tar") as tf:
        items = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert items == [
            {
                "Config": f"{image.id}.json",
                "RepoTags": ["example.com/app:1", "localhost/app:2"],
                "Layers": [f"{layer.diff_id[7:]}.tar" for layer in image.layers],
            }
        ]
        assert tf.extractfile(f"{image.id}.json").read() == image.config  # type: ignore[union-attr]
        for layer in image.layers:
            assert tf.extractfile(f"{layer.diff_id[7:]}.tar").read() == layer.tar  # type: ignore[union-attr]
        repositories = json.loads(tf.extractfile("repositories").read())  # type: ignore[union-attr]
        assert set(repositories) == {"example.com/app", "localhost/app"}
        top = repositories["example.com/app"]["1"]
        legacy = json.loads(tf.extractfile(f"{top}/json").read())  # type: ignore[union-attr]
        assert legacy["id"] == top and legacy["os"] == "linux" and "parent" in legacy
        assert tf.getmember(f"{top}/layer.tar").linkname == f"../{image.layers[-1].diff_id[7:]}.tar"
    with get_store(Roots(tmp_path / "g2", roots.run.parent / "r2").options()) as other:
        again = import_image(other, tmp_path / "d.tar")
        assert again.id == img.id
        assert again.names == ("example.com/app:1", "localhost/app:2")


def test_docker_archive_needs_a_tag_and_no_compression(tmp_path: Path, store: Store) -> None:
    img = import_image(store, oci_layout(tmp_path / "src", Image(standard_layers(("none",)))).root)
    with pytest.raises(InvalidReference, match="uncompressed"):
        export_image(store, img.id, f"docker-archive:{tmp_path / 'd.tar'}", compression="gzip")
    with pytest.raises(InvalidReference, match="needs a tag"):
        export_image(store, img.id, f"docker-archive:{tmp_path / 'd.tar'}:x@sha256:{'0' * 64}")
    assert not (tmp_path / "d.tar").exists()


def test_docker_image_to_oci(tmp_path: Path, store: Store) -> None:
    image = Image(standard_layers(("none", "none")))
    img = import_image(store, docker_archive(tmp_path / "d.tar", image))
    export_image(store, img.id, tmp_path / "out")
    doc = manifest(tmp_path / "out")
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": sha256(image.config),
        "size": len(image.config),
    }
    assert [d["mediaType"] for d in doc["layers"]] == ["application/vnd.oci.image.layer.v1.tar"] * 2  # type: ignore[union-attr]
    assert blobs(tmp_path / "out")[image.id] == image.config  # the very config: same image ID


def test_image_without_manifest(tmp_path: Path, store: Store) -> None:
    """An image made from bare layers gets a config and manifest made up on export."""
    import io

    from .layouts import TREES, tree_tar

    layer, _ = store.put_layer(diff=io.BytesIO(tree_tar(TREES[0], "json")))
    img = store.create_image(layer=layer.id, names=["bare"])
    done = export_image(store, img.id, tmp_path / "out")
    doc = manifest(tmp_path / "out")
    assert [d["digest"] for d in doc["layers"]] == [layer.uncompressed_digest]  # type: ignore[union-attr]
    config = json.loads(blobs(tmp_path / "out")[done.config_digest[7:]])
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.uncompressed_digest]}
    again = import_image(store, tmp_path / "out")
    assert again.id == done.config_digest[7:]
    assert again.top_layer == layer.uncompressed_digest[7:]  # a base layer's chain ID: its DiffID


def test_changed_layer_content_fails_and_writes_nothing(tmp_path: Path, roots: Roots, store: Store) -> None:
    image = Image(standard_layers(("none", "none")))
    img = import_image(store, oci_layout(tmp_path / "src", image).root)
    # without its tar-split the layer's diff is regenerated from the files: other bytes
    (roots.graph / "vfs-layers" / f"{img.top_layer}.tar-split.gz").unlink()
    with pytest.raises(DigestMismatch):
        export_image(store, img.id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DigestMismatch):
        export_image(store, img.id, f"docker-archive:{tmp_path / 'd.tar'}")
    with pytest.raises(DigestMismatch):
        export_image(store, img.id, f"oci-archive:{tmp_path / 'o.tar'}")
    assert sorted(os.listdir(tmp_path)) == ["graph", "src"]
