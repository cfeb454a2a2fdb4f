"""Read-only additional image stores (on-disk.md §9.1): their layers and images are
visible and usable as parents, never written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from containers_storage import errors
from containers_storage.store import DiffOptions, ImageBigData, ImageOptions, Store, get_store

from .conftest import options, tar_bytes

#: a digest recorded as given, not the SHA-256 of the item
NOTES_DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def ro_root(tmp_path: Path) -> Path:
    root = tmp_path / "ro"
    with get_store(options(root)) as s:
        base, _ = s.put_layer(names=["ro-base"], diff=io.BytesIO(tar_bytes({"etc/ro": b"from ro\n"})))
        img = s.create_image(
            names=["ro-img"],
            layer=base.id,
            metadata="ro meta",
            options=ImageOptions(flags={"ro": True}, big_data=[ImageBigData("notes", b"n", NOTES_DIGEST)]),
        )
        s.set_image_big_data(img.id, "manifest", b'{"ro":1}')
    return root


@pytest.fixture
def combined(tmp_path: Path, ro_root: Path) -> Store:
    return get_store(options(tmp_path / "main", driver_options=[f"vfs.imagestore={ro_root / 'graph'}"]))


def test_read_only_records_are_visible(combined: Store, ro_root: Path) -> None:
    with combined as s:
        layer = s.layer("ro-base")
        img = s.image("ro-img")
        assert layer.read_only and img.read_only
        assert [x.id for x in s.layers()] == [layer.id]
        assert [x.id for x in s.images()] == [img.id]
        assert s.lookup("ro-img") == img.id and s.metadata("ro-img") == "ro meta"
        assert s.image_big_data("ro-img", "manifest") == b'{"ro":1}'
        assert [i.id for i in s.images_by_digest(img.digest)] == [img.id]
        assert [i.id for i in s.images_by_top_layer("ro-base")] == [img.id]
        with s.diff("", "ro-base", DiffOptions(compression=0)) as f:
            assert f.read() == tar_bytes({"etc/ro": b"from ro\n"})
        assert s.image_size("ro-img") == layer.uncompressed_size + len(b'{"ro":1}') + len(b"n")


def test_read_only_layers_are_parents_never_written(combined: Store, ro_root: Path, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in (ro_root / "graph").rglob("*.json")}
    with combined as s:
        child = s.create_layer(parent="ro-base", names=["child"])
        assert (
            tmp_path / "main" / "graph" / "vfs" / "dir" / child.id / "etc" / "ro"
        ).read_text() == "from ro\n"
        ctr = s.create_container(names=["c"], image="ro-img")
        assert s.layer(ctr.layer_id).parent == s.layer("ro-base").id
        with pytest.raises(errors.NotAnImage):
            s.delete_image("ro-img")
        with pytest.raises(errors.NotALayer):
            s.delete_layer("ro-base")
        with pytest.raises(errors.StoreIsReadOnly):
            s.mount("ro-base")
        s.delete_container("c")
    assert {p: p.read_bytes() for p in (ro_root / "graph").rglob("*.json")} == before


def test_naming_a_read_only_image_copies_the_whole_record_up(
    combined: Store, ro_root: Path, tmp_path: Path
) -> None:
    """As upstream's updateNames: the record with its names, names history, digests,
    metadata, flags, creation time and big data (each with its digest) is created in the
    primary store, then the names change there; the read-only store is not written."""
    ro_json = (ro_root / "graph" / "vfs-images" / "images.json").read_bytes()
    with combined as s:
        img = s.image("ro-img")
        s.add_names("ro-img", ["mine:latest", "second"])
        copy = s.image(img.id)
        assert not copy.read_only
        assert copy.names == ("mine:latest", "second", "ro-img")
        assert copy.names_history == ("ro-img", "second", "mine:latest")
        assert (copy.top_layer, copy.digest, copy.digests) == (img.top_layer, img.digest, img.digests)
        assert (copy.metadata, copy.created, copy.flags) == (img.metadata, img.created, {"ro": True})
        assert copy.big_data_names == ("notes", "manifest")
        assert s.image_big_data(img.id, "manifest") == b'{"ro":1}'
        assert s.image_big_data_digest(img.id, "notes") == NOTES_DIGEST
        s.remove_names(img.id, ["ro-img"])
        # the read-only store still holds the name, but the primary copy shadows it
        with pytest.raises(errors.ImageUnknown):
            s.image("ro-img")
        assert s.image("second").names == ("mine:latest", "second")
    primary = json.loads((tmp_path / "main" / "graph" / "vfs-images" / "images.json").read_text())
    assert [r["id"] for r in primary] == [img.id]
    assert (ro_root / "graph" / "vfs-images" / "images.json").read_bytes() == ro_json


def test_removing_a_name_of_a_read_only_image(combined: Store, ro_root: Path, tmp_path: Path) -> None:
    """upstream names.bats remove-names: ro-images: the first change of names is the
    removal of one the read-only store holds; a later store still cannot find it."""
    with combined as s:
        img = s.image("ro-img")
        s.remove_names(img.id, ["ro-img"])
        assert s.image(img.id).names == ()
    with get_store(options(tmp_path / "main", driver_options=[f"vfs.imagestore={ro_root / 'graph'}"])) as s:
        assert s.image(img.id).metadata == "ro meta"
        with pytest.raises(errors.ImageUnknown):
            s.image("ro-img")
        assert s.lookup("ro-img") == img.id  # the read-only store's record still has it


def test_creating_an_image_with_a_read_only_images_id(combined: Store, ro_root: Path) -> None:
    """As upstream's CreateImage: the read-only image's metadata, date, digests, names
    history and big data come first, the options override or add to them, and the new
    record gets the read-only image's names after the given ones."""
    with combined as s:
        img = s.image("ro-img")
        layer = s.create_layer()
        new = s.create_image(
            id=img.id,
            names=["mine"],
            layer=layer.id,
            options=ImageOptions(big_data=[ImageBigData("config", b"{}")], flags={"mine": 1}),
        )
        assert new.names == ("ro-img", "mine") and not new.read_only
        assert new.top_layer == layer.id  # the given layer, not the read-only image's
        assert (new.metadata, new.created, new.digest) == ("ro meta", img.created, img.digest)
        assert new.flags == {"mine": 1}  # upstream takes no flags from the read-only image
        assert new.big_data_names == ("notes", "manifest", "config")
        assert s.image_big_data_digest(img.id, "notes") == NOTES_DIGEST
        assert s.image_big_data(img.id, "config") == b"{}"
        with pytest.raises(errors.DuplicateID):
            s.create_image(id=img.id, names=["again"], layer=layer.id)
        other = s.create_image(id=img.id[:12], layer=layer.id, metadata="own")
        # only the exact ID copies (upstream also matches names and ID prefixes)
        assert (other.names, other.metadata, other.big_data_names) == ((), "own", ())


def test_check_covers_read_only_stores(combined: Store, ro_root: Path) -> None:
    from containers_storage.store import CheckOptions

    with combined as s:
        s.create_container(names=["c"], image="ro-img")
        report = s.check(CheckOptions.everything())
        assert (report.layers, report.ro_layers, report.images, report.ro_images, report.containers) == (
            {},
            {},
            {},
            {},
            {},
        )
        base = s.layer("ro-base").id
        (ro_root / "graph" / "vfs" / "dir" / base / "etc" / "ro").write_text("tampered\n")
        report = s.check(CheckOptions.everything())
        assert list(report.ro_layers) == [base]
        assert str(report.ro_layers[base][0]).startswith(f"read-only layer {base}: ")
        img = s.image("ro-img").id
        assert list(report.ro_images) == [img]
        assert list(report.containers) == [s.container("c").id]


def test_split_image_store_layout(tmp_path: Path) -> None:
    """With an image store, layers and images live under it, containers in the graph root."""
    image_root = tmp_path / "images"
    with get_store(options(tmp_path / "main", image_store=str(image_root))) as s:
        layer = s.create_layer(names=["l"])
        img = s.create_image(names=["i"], layer=layer.id)
        ctr = s.create_container(names=["c"], image=img.id)
    assert layer.id in (image_root / "vfs-layers" / "layers.json").read_text()
    assert img.id in (image_root / "vfs-images" / "images.json").read_text()
    assert ctr.id in (tmp_path / "main" / "graph" / "vfs-containers" / "containers.json").read_text()
    assert (image_root / "vfs" / "dir" / layer.id).is_dir()
    with pytest.raises(errors.IncompleteOptions):
        get_store(options(tmp_path / "x", image_store=str(tmp_path / "x" / "graph")))
