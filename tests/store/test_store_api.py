"""The Store API on a fresh vfs store: records, names, cascades, big data, mounts."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from containers_storage import errors
from containers_storage.store import (
    ContainerOptions,
    DiffOptions,
    ImageOptions,
    LayerOptions,
    Store,
    get_store,
)

from .conftest import options, tar_bytes


def test_layer_create_and_lookup(store: Store, store_root: Path) -> None:
    base = store.create_layer(names=["base", "base"])
    assert len(base.id) == 64 and not base.id[:12].isdigit()
    assert base.names == ("base",)
    child = store.create_layer(parent="base", names=["child"])
    assert child.parent == base.id
    assert store.layer("child").id == child.id
    assert store.layer(child.id[:10]).id == child.id
    assert store.lookup("base") == base.id
    with pytest.raises(errors.DuplicateName):
        store.create_layer(names=["base"])
    with pytest.raises(errors.DuplicateID):
        store.create_layer(id=base.id)
    with pytest.raises(errors.LayerUnknown):
        store.create_layer(parent="nope")
    raw = json.loads((store_root / "graph" / "vfs-layers" / "layers.json").read_text())
    assert [r["id"] for r in raw] == [base.id, child.id]
    assert "flags" not in raw[0]  # the incomplete flag is gone once created
    assert os.path.isdir(store_root / "graph" / "vfs" / "dir" / child.id)


def test_ambiguous_prefix_is_not_found(store: Store) -> None:
    a = store.create_layer(id="abc1")
    store.create_layer(id="abc2")
    assert store.layer("abc1").id == a.id
    with pytest.raises(errors.LayerUnknown):
        store.layer("abc")


def test_put_layer_records_digests(store: Store, store_root: Path) -> None:
    import gzip
    import hashlib

    tar = tar_bytes({"hello.txt": b"hello\n", "dir/x": b"x\n"})
    blob = gzip.compress(tar)
    layer, _size = store.put_layer(names=["l"], diff=io.BytesIO(blob))
    assert layer.compressed_digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.compressed_size == len(blob)
    assert layer.uncompressed_digest == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert layer.uncompressed_size == len(tar)
    assert layer.compression == 2
    assert (store_root / "graph" / "vfs" / "dir" / layer.id / "hello.txt").read_bytes() == b"hello\n"
    assert (store_root / "graph" / "vfs-layers" / f"{layer.id}.tar-split.gz").exists()
    with store.diff("", layer.id, DiffOptions(compression=0)) as f:
        assert f.read() == tar
    assert [x.id for x in store.layers_by_uncompressed_digest(layer.uncompressed_digest)] == [layer.id]
    assert [x.id for x in store.layers_by_compressed_digest(layer.compressed_digest)] == [layer.id]
    assert store.layer_size(layer.id) == len(tar)


def test_failed_put_leaves_nothing(store: Store, store_root: Path) -> None:
    with pytest.raises(errors.StorageError):
        store.put_layer(names=["bad"], diff=io.BytesIO(b"\x1f\x8b\x08garbage that is not gzip"))
    assert store.layers() == []
    assert os.listdir(store_root / "graph" / "vfs" / "dir") == []
    store.create_layer(names=["bad"])  # the name was released


def test_images_names_history_and_move(store: Store) -> None:
    layer = store.create_layer()
    one = store.create_image(names=["a", "b"], layer=layer.id, metadata="m")
    two = store.create_image(names=["c"], layer=layer.id)
    assert one.names_history == ()
    store.add_names(two.id, ["b", "d"])  # "b" moves from image one
    assert store.image(one.id).names == ("a",)
    assert store.image(two.id).names == ("b", "d", "c")
    assert store.image(two.id).names_history == ("c", "d", "b")
    store.set_names(two.id, ["x", "x", "y"])
    assert store.image(two.id).names == ("x", "y")
    assert store.image(two.id).names_history[:2] == ("y", "x")
    store.remove_names(two.id, ["x"])
    assert store.names(two.id) == ["y"]
    assert store.metadata(one.id) == "m"
    store.set_metadata(one.id, "n")
    assert store.metadata(one.id) == "n"
    with pytest.raises(errors.DuplicateName):
        store.create_image(names=["a"])


def test_image_big_data_and_digests(store: Store, store_root: Path) -> None:
    img = store.create_image(names=["i"], options=ImageOptions(big_data={"config.json": b"{}"}))
    store.set_image_big_data(img.id, "manifest", b'{"m":1}')
    store.set_image_big_data(img.id, "Other/Key", b"zz")
    got = store.image(img.id)
    assert got.big_data_names == ("config.json", "manifest", "Other/Key")
    assert got.digest == got.big_data_digests["manifest"]
    assert got.digests == (got.big_data_digests["manifest"],)
    assert [i.id for i in store.images_by_digest(got.digest)] == [img.id]
    assert store.image_big_data(img.id, "Other/Key") == b"zz"
    assert store.image_big_data_size(img.id, "manifest") == 7
    assert (store_root / "graph" / "vfs-images" / img.id / "=T3RoZXIvS2V5").read_bytes() == b"zz"
    with pytest.raises(errors.InvalidBigDataName):
        store.set_image_big_data(img.id, "", b"")
    with pytest.raises(errors.StorageError):
        store.images_by_digest("not-a-digest")


def test_delete_image_cascade_and_dry_run(store: Store) -> None:
    base = store.create_layer()
    shared = store.create_layer(parent=base.id)
    top = store.create_layer(parent=shared.id)
    other = store.create_layer(parent=shared.id)
    img = store.create_image(layer=top.id)
    store.create_image(layer=other.id)
    assert store.delete_image(img.id, commit=False) == [top.id]
    assert store.image(img.id).id == img.id
    assert store.delete_image(img.id) == [top.id]
    with pytest.raises(errors.ImageUnknown):
        store.image(img.id)
    assert {x.id for x in store.layers()} == {base.id, shared.id, other.id}


def test_delete_layer_safety(store: Store) -> None:
    base = store.create_layer()
    child = store.create_layer(parent=base.id)
    with pytest.raises(errors.LayerHasChildren):
        store.delete_layer(base.id)
    img = store.create_image(layer=child.id)
    with pytest.raises(errors.LayerUsedByImage):
        store.delete_layer(child.id)
    store.delete_image(img.id)
    assert store.layers() == []


def test_containers(store: Store, store_root: Path) -> None:
    base = store.create_layer(names=["base"])
    img = store.create_image(names=["img"], layer=base.id)
    ctr = store.create_container(
        names=["c1"], image="img", metadata="meta", options=ContainerOptions(big_data={"state.json": b"{}"})
    )
    assert ctr.image_id == img.id
    assert ctr.flags == {"MountLabel": "", "ProcessLabel": ""}
    layer = store.layer(ctr.layer_id)
    assert layer.parent == base.id
    assert store.container_by_layer(ctr.layer_id).id == ctr.id
    assert store.container(ctr.layer_id).id == ctr.id  # lookup by the container's layer
    with pytest.raises(errors.ParentIsContainer):
        store.create_layer(parent=ctr.layer_id)
    with pytest.raises(errors.ImageUsedByContainer):
        store.delete_image(img.id)
    store.set_container_directory_file("c1", "sub/f.txt", b"data")
    assert store.from_container_directory("c1", "sub/f.txt") == b"data"
    assert store.container_directory("c1") == str(
        store_root / "graph" / "vfs-containers" / ctr.id / "userdata"
    )
    store.set_container_run_directory_file("c1", "r.txt", b"run")
    assert store.from_container_run_directory("c1", "r.txt") == b"run"
    assert store.container_big_data_digest("c1", "state.json").startswith("sha256:")
    store.delete_container("c1")
    assert store.containers() == []
    assert not (store_root / "graph" / "vfs-containers" / ctr.id).exists()
    assert not (store_root / "run" / "vfs-containers" / ctr.id).exists()
    with pytest.raises(errors.LayerUnknown):
        store.layer(ctr.layer_id)


def test_volatile_container_goes_to_volatile_files(store: Store, store_root: Path) -> None:
    ctr = store.create_container(names=["v"], options=ContainerOptions(volatile=True))
    vol = json.loads((store_root / "graph" / "vfs-containers" / "volatile-containers.json").read_text())
    assert [c["id"] for c in vol] == [ctr.id] and vol[0]["flags"]["Volatile"] is True
    vlayers = json.loads((store_root / "graph" / "vfs-layers" / "volatile-layers.json").read_text())
    assert [x["id"] for x in vlayers] == [ctr.layer_id]
    assert store.layer(ctr.layer_id).volatile


def test_transient_store_layout(store_root: Path) -> None:
    with get_store(options(store_root, transient_store=True)) as s:
        ctr = s.create_container()
    assert (store_root / "run" / "vfs-containers" / "containers.lock").exists()
    assert ctr.id in (store_root / "run" / "vfs-containers" / "volatile-containers.json").read_text()
    assert ctr.layer_id in (store_root / "run" / "vfs-layers" / "volatile-layers.json").read_text()


def test_mount_counts_are_shared(store: Store, store_root: Path) -> None:
    layer = store.create_layer()
    p1 = store.mount(layer.id)
    p2 = store.mount(layer.id)
    assert p1 == p2 and store.mounted(layer.id) == 2
    mp = json.loads((store_root / "run" / "vfs-layers" / "mountpoints.json").read_text())
    assert mp == [{"id": layer.id, "path": p1, "count": 2}]
    with get_store(options(store_root)) as other:  # another handle sees the count
        assert other.mounted(layer.id) == 2
        assert other.layer(layer.id).mount_point == p1
    assert store.unmount(layer.id) is True
    assert store.unmount(layer.id) is False
    assert store.mounted(layer.id) == 0
    assert json.loads((store_root / "run" / "vfs-layers" / "mountpoints.json").read_text()) == []
    store.mount(layer.id)
    with pytest.raises(errors.LayerUsedByContainer):
        store.shutdown()
    store.unmount(layer.id, force=True)


def test_layer_big_data_and_template(store: Store) -> None:
    layer, _ = store.put_layer(
        names=["t"],
        diff=io.BytesIO(tar_bytes({"f": b"1"})),
        options=LayerOptions(big_data={"notes.txt": b"n"}),
    )
    assert store.list_layer_big_data("t") == ["notes.txt"]
    assert store.layer_big_data("t", "notes.txt") == b"n"
    copy = store.create_layer(options=LayerOptions(template_layer=layer.id))
    assert copy.uncompressed_digest == layer.uncompressed_digest
    with store.diff("", copy.id, DiffOptions(compression=0)) as f:
        assert f.read() == tar_bytes({"f": b"1"})


def test_unknown_fields_survive_rewrite(store: Store, store_root: Path) -> None:
    store.create_layer(names=["a"])
    path = store_root / "graph" / "vfs-layers" / "layers.json"
    recs = json.loads(path.read_text())
    recs[0]["future-field"] = {"x": [1, 2]}
    path.write_text(json.dumps(recs))
    with get_store(options(store_root)) as s:
        s.create_layer(names=["b"])
        s.add_names("a", ["a2"])
    recs = json.loads(path.read_text())
    assert recs[0]["future-field"] == {"x": [1, 2]} and recs[0]["names"] == ["a2", "a"]


def test_duplicate_name_on_load_goes_to_later_record(store: Store, store_root: Path) -> None:
    a = store.create_layer(names=["n"])
    b = store.create_layer(names=["m"])
    path = store_root / "graph" / "vfs-layers" / "layers.json"
    recs = json.loads(path.read_text())
    recs[1]["names"] = ["m", "n"]
    path.write_text(json.dumps(recs))
    with get_store(options(store_root)) as s:
        assert s.layer("n").id == b.id
        assert s.layer(a.id).names == ()
    assert "names" not in json.loads(path.read_text())[0]  # repaired on disk


def test_corrupt_json_is_reported_and_kept(store: Store, store_root: Path) -> None:
    store.create_image(names=["i"])
    path = store_root / "graph" / "vfs-images" / "images.json"
    bad = path.read_bytes()[:-5]
    path.write_bytes(bad)
    with get_store(options(store_root)) as s:
        with pytest.raises(errors.LoadError, match="images.json"):
            s.images()
        with pytest.raises(errors.LoadError, match="images.json"):
            s.create_image(names=["j"])
    assert path.read_bytes() == bad


def test_wrong_field_type_is_a_load_error(store: Store, store_root: Path) -> None:
    store.create_layer()
    path = store_root / "graph" / "vfs-layers" / "layers.json"
    path.write_text('[{"id":"x","names":5,"created":"2024-01-01T00:00:00Z"}]')
    with get_store(options(store_root)) as s, pytest.raises(errors.LoadError, match="layers.json"):
        s.layers()


def test_incomplete_layer_is_removed_by_next_writer(store: Store, store_root: Path) -> None:
    keep = store.create_layer(names=["keep"])
    half = store.create_layer(names=["half"])
    path = store_root / "graph" / "vfs-layers" / "layers.json"
    recs = json.loads(path.read_text())
    recs[1]["flags"] = {"incomplete": True}
    path.write_text(json.dumps(recs))
    with get_store(options(store_root)) as s:
        assert [x.id for x in s.layers()] == [keep.id]
    assert not (store_root / "graph" / "vfs" / "dir" / half.id).exists()
    assert [r["id"] for r in json.loads(path.read_text())] == [keep.id]


def test_delete_and_wipe(store: Store) -> None:
    layer = store.create_layer(names=["l"])
    store.create_image(names=["i"], layer=layer.id)
    ctr = store.create_container(names=["c"], image="i")
    store.delete("c")
    with pytest.raises(errors.ContainerUnknown):
        store.container(ctr.id)
    store.delete("i")
    store.delete("l")
    with pytest.raises(errors.LayerUnknown):
        store.delete("l")
    store.create_container(image=store.create_image(layer=store.create_layer().id).id)
    store.wipe()
    assert (store.layers(), store.images(), store.containers()) == ([], [], [])


def test_exists_and_not_an_id(store: Store) -> None:
    assert not store.exists("nothing")
    with pytest.raises(errors.NotAnID):
        store.metadata("nothing")
    with pytest.raises(errors.NotAnID):
        store.set_metadata("nothing", "x")


def test_digest_lock_and_shutdown(store: Store, store_root: Path) -> None:
    d = "sha256:" + "a" * 64
    lk = store.get_digest_lock(d)
    lk.lock()
    lk.unlock()
    assert (store_root / "run" / "vfs-locks" / d).exists()
    token = (store_root / "graph" / "storage.lock").read_bytes()
    assert store.shutdown() == []
    assert (store_root / "graph" / "storage.lock").read_bytes() != token


def test_reload_only_when_changed(store: Store, store_root: Path) -> None:
    store.create_layer(names=["a"])
    loads = []
    orig = type(store._layers).load

    def counting(self):  # type: ignore[no-untyped-def]
        if self is store._layers:
            loads.append(1)
        orig(self)

    type(store._layers).load = counting  # type: ignore[method-assign]
    try:
        store.layers()
        store.layers()
        assert loads == []
        with get_store(options(store_root)) as other:
            other.create_layer(names=["b"])
        assert {n for x in store.layers() for n in x.names} == {"a", "b"}
        assert loads == [1]
    finally:
        type(store._layers).load = orig  # type: ignore[method-assign]


def test_compact_split_keeps_source_text(tmp_path: Path) -> None:
    from containers_storage.records.files import read_json_array

    path = tmp_path / "a.json"
    text = '[{"id":"a","x":"},{\\"id\\":\\"no"},{"id":"b","flags":{"k":[1]}}]'
    path.write_text(text)
    values, sources = read_json_array(str(path))
    assert [v["id"] for v in values] == ["a", "b"]
    assert sources == ['a","x":"},{\\"id\\":\\"no"', 'b","flags":{"k":[1]}']
    nested = '[{"id":"a","extra":[{"q":1},{"id":"inner"}]},{"id":"b"}]'
    path.write_text(nested)
    values, sources = read_json_array(str(path))
    assert len(values) == 2 and sources is None  # ambiguous split: re-encode instead
    path.write_text('[ {"id": "a"} ]')
    assert read_json_array(str(path)) == ([{"id": "a"}], None)


def test_filled_digest_is_persisted(store: Store, store_root: Path) -> None:
    img = store.create_image(names=["i"])
    store.set_image_big_data(img.id, "manifest", b"{}")
    path = store_root / "graph" / "vfs-images" / "images.json"
    recs = json.loads(path.read_text())
    del recs[0]["digest"]
    path.write_text(json.dumps(recs, separators=(",", ":")))
    with get_store(options(store_root)) as s:
        assert s.image(img.id).digest.startswith("sha256:")
        s.create_image(names=["j"])
    assert json.loads(path.read_text())[0]["digest"] == recs[0]["big-data-digests"]["manifest"]


@pytest.mark.skipif(os.geteuid() != 0, reason="re-owning files needs root")
def test_container_with_id_maps_gets_a_mapped_top_layer(store: Store, store_root: Path) -> None:
    from containers_storage.idtools import IDMap
    from containers_storage.store import IDMappingOptions

    layer, _ = store.put_layer(names=["l"], diff=io.BytesIO(tar_bytes({"f": b"1"})))
    img = store.create_image(names=["i"], layer=layer.id)
    maps = (IDMap(0, 100000, 65536),)
    ctr = store.create_container(
        names=["c"],
        image="i",
        options=ContainerOptions(id_mapping=IDMappingOptions(uid_map=maps, gid_map=maps)),
    )
    mapped = store.image(img.id).mapped_top_layers
    assert len(mapped) == 1
    copy = store.layer(mapped[0])
    assert copy.uid_map == maps and copy.uncompressed_digest == layer.uncompressed_digest
    st = os.stat(store_root / "graph" / "vfs" / "dir" / copy.id / "f")
    assert (st.st_uid, st.st_gid) == (100000, 100000)
    assert store.layer(ctr.layer_id).parent == copy.id
    assert store.container(ctr.id).uid_map == maps
    # a second container with the same maps reuses the copy
    store.create_container(
        image="i", options=ContainerOptions(id_mapping=IDMappingOptions(uid_map=maps, gid_map=maps))
    )
    assert store.image(img.id).mapped_top_layers == mapped
    store.delete_container("c")
    for c in store.containers():
        store.delete_container(c.id)
    assert set(store.delete_image(img.id)) == {copy.id, layer.id}
    assert store.layers() == []


def test_open_creates_upstream_layout(store: Store, store_root: Path) -> None:
    g, r = store_root / "graph", store_root / "run"
    for p in (
        g / "storage.lock",
        g / "userns.lock",
        g / "vfs-layers" / "layers.lock",
        g / "vfs-images" / "images.lock",
        g / "vfs-containers" / "containers.lock",
        r / "vfs-layers" / "mountpoints.lock",
    ):
        assert p.is_file(), p
        assert p.stat().st_mode & 0o777 == 0o644
    for d in (g / "vfs", r / "vfs-containers", r / "vfs-locks"):
        assert d.is_dir() and d.stat().st_mode & 0o777 == 0o700
    store.create_image(names=["x"])
    assert (g / "vfs-images" / "images.json").stat().st_mode & 0o777 == 0o600


def test_name_change_on_image_does_not_decode_layers(store_root: Path) -> None:
    with get_store(options(store_root)) as s:
        layer = s.create_layer(names=["lay"])
        s.create_image(names=["img"], layer=layer.id)
    with get_store(options(store_root)) as s:
        s.add_names("img", ["img2"])
        assert not s._layers._loaded  # proved absent from the raw bytes
        assert s.names("lay") == ["lay"]  # and a layer name still finds the layer
        assert s.lookup(layer.id[:6]) == layer.id  # so does an ID prefix


def test_non_canonical_files_are_decoded_for_lookups(store_root: Path) -> None:
    with get_store(options(store_root)) as s:
        layer = s.create_layer(names=["é-name"])
    path = store_root / "graph" / "vfs-layers" / "layers.json"
    path.write_text(json.dumps(json.loads(path.read_text()), indent=1))  # spaces and \\u escapes
    with get_store(options(store_root)) as s:
        assert s.lookup("é-name") == layer.id
        s.add_names("é-name", ["other"])
        assert s.layer(layer.id).names == ("other", "é-name")


def test_error_texts_match_upstream(store: Store) -> None:
    """The CLI prints these texts; they are upstream's."""
    layer = store.create_layer(names=["l"])
    img = store.create_image(names=["i"], layer=layer.id)
    ctr = store.create_container(names=["c"])
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: store.layer("nope"), "layer not known"),
        (lambda: store.image("nope"), 'locating image with ID "nope": image not known'),
        (lambda: store.container("nope"), "container not known"),
        (lambda: store.metadata("nope"), "identifier is not a layer, image, or container"),
        (lambda: store.delete_image("nope"), "identifier is not an image"),
        (lambda: store.delete_container("nope"), "identifier is not a container"),
        (lambda: store.delete_layer("nope"), "identifier is not a layer"),
        (lambda: store.image_big_data_size(img.id, "k"), "size is not known"),
        (lambda: store.image_big_data_digest(img.id, "k"), "could not compute digest of item"),
        (lambda: store.images_by_digest("bad"), "invalid checksum digest format"),
        (lambda: store.create_layer(names=["l"]), 'layer name "l" is in use: that name is already in use'),
        (lambda: store.create_layer(parent="x"), 'layer "x": layer not known'),
        (
            lambda: store.image_big_data("i", "k"),
            'locating item named "k" for image with ID "i" (consider removing the image to resolve the issue)'
            ": file does not exist",
        ),
        (
            lambda: store.layer_big_data("l", "k"),
            'locating item named "k" for layer with ID "l": file does not exist',
        ),
        (
            lambda: store.delete_layer("l"),
            f"layer {layer.id} used by image {img.id}: layer is in use by an image",
        ),
    ]
    for call, text in cases:
        with pytest.raises(errors.StorageError) as info:
            call()
        assert str(info.value) == text
    with pytest.raises(errors.StorageError) as info:
        store.container_big_data(ctr.id, "k")
    assert str(info.value).startswith("open ") and str(info.value).endswith(": no such file or directory")


def test_diff_in_bzip2_is_refused_like_upstream(store: Store) -> None:
    import bz2

    layer, _ = store.put_layer(diff=io.BytesIO(bz2.compress(tar_bytes({"f": b"1"}))))
    assert layer.compression == 1
    with pytest.raises(errors.StorageError, match="unsupported compression format tar.bz2"):
        store.diff("", layer.id)
    with store.diff("", layer.id, DiffOptions(compression=2)) as f:
        import gzip

        assert gzip.decompress(f.read()) == tar_bytes({"f": b"1"})


def test_missing_roots_are_reported(tmp_path: Path) -> None:
    """A Store needs both roots; ``get_store`` takes missing ones from the configuration."""
    from containers_storage.config import StoreOptions
    from containers_storage.store import Store

    cases = [
        (StoreOptions(), "no storage runroot or graphroot specified"),
        (StoreOptions(graph_root=str(tmp_path)), "no storage runroot specified"),
        (StoreOptions(run_root=str(tmp_path)), "no storage graphroot specified"),
    ]
    for opts, text in cases:
        with pytest.raises(errors.IncompleteOptions) as info:
            Store(opts)
        assert str(info.value) == f"{text}: missing necessary StoreOptions"


def test_get_store_completes_options_from_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As upstream's GetStore: no option at all opens storage.conf's store; a missing root
    is storage.conf's; a driver alone is an error."""
    from containers_storage.config import StoreOptions

    conf = tmp_path / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path}/g"\nrunroot = "{tmp_path}/r"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    with get_store(StoreOptions()) as store:
        assert (store.graph_root, store.run_root) == (f"{tmp_path}/g", f"{tmp_path}/r")
        assert store.graph_driver_name == "vfs"
    with get_store(StoreOptions(graph_root=str(tmp_path / "g2"), driver_name="vfs")) as store:
        assert (store.graph_root, store.run_root) == (f"{tmp_path}/g2", f"{tmp_path}/r")
    with pytest.raises(errors.IncompleteOptions):
        get_store(StoreOptions(driver_name="vfs"))


def test_portable_lock_kind_store(store_root: Path) -> None:
    from containers_storage.locks.portable import PortableLock

    with get_store(options(store_root, lock_kind="portable")) as s:
        assert isinstance(s._layers.lock, PortableLock)
        layer = s.create_layer(names=["p"])
        s.create_image(names=["i"], layer=layer.id)
        assert s.lookup("p") == layer.id
    assert (store_root / "graph" / "vfs-layers" / "layers.lock.flock").exists()


def test_temp_files_of_dead_writers_are_swept(store: Store, store_root: Path) -> None:
    store.create_layer(names=["a"])
    stale = store_root / "graph" / "vfs-layers" / ".tmp-layers.json12345"
    stale.write_text("[{")
    with get_store(options(store_root)) as s:
        s.create_layer(names=["b"])
    assert not stale.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="ID-mapped layers need root to re-own")
def test_parent_owners(store: Store) -> None:
    from containers_storage.idtools import IDMap
    from containers_storage.store import IDMappingOptions

    plain = store.create_layer()
    assert store.layer_parent_owners(plain.id) == ([], [])
    maps = (IDMap(0, 200000, 65536),)
    mapped = store.create_layer(options=LayerOptions(id_mapping=IDMappingOptions(uid_map=maps, gid_map=maps)))
    with pytest.raises(errors.LayerNotMounted):
        store.layer_parent_owners(mapped.id)
    store.mount(mapped.id)
    try:
        uids, gids = store.layer_parent_owners(mapped.id)
        assert 0 in uids and 0 in gids  # root-owned directories above the mount point
    finally:
        store.unmount(mapped.id)
    ctr = store.create_container(
        options=ContainerOptions(id_mapping=IDMappingOptions(uid_map=maps, gid_map=maps))
    )
    with pytest.raises(errors.LayerNotMounted):
        store.container_parent_owners(ctr.id)
    store.mount(ctr.id)
    try:
        assert 0 in store.container_parent_owners(ctr.id)[0]
    finally:
        store.unmount(ctr.id)
