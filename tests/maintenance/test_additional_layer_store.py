"""Additional layer stores (on-disk.md §14): the built-in directory-layout plugin and the
store's lookup / put-as, on a real directory tree."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage import als, errors
from containers_storage.hookspecs import hookimpl
from containers_storage.plugins import PluginHost
from containers_storage.store import CheckOptions, DiffOptions, Store, get_store

from .conftest import gzip_bytes, options, overlay_available, release_mounts, tar_bytes

REF = "registry.example/app:1"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_als_layer(store_dir: Path, files: dict[str, bytes], *, ref: str | None = REF) -> tuple[str, bytes]:
    """Lay out one layer as upstream's ALS expects; returns its digest and its tar."""
    plain = tar_bytes(files)
    blob = gzip_bytes(plain)
    digest = sha256(blob)
    base = store_dir / base64.standard_b64encode(ref.encode()).decode() if ref is not None else store_dir
    target = base / digest
    (target / "diff").mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(plain)) as tf:
        tf.extractall(target / "diff", filter="tar")
    info = {
        "id": "ignored",
        "names": ["ignored-too"],
        "compressed-diff-digest": digest,
        "compressed-size": len(blob),
        "diff-digest": sha256(plain),
        "diff-size": len(plain),
        "compression": 2,
    }
    (target / "info").write_text(json.dumps(info))
    (target / "blob").write_bytes(blob)
    return digest, plain


def test_plugin_finds_layers_by_digest_and_reference(tmp_path: Path) -> None:
    with_ref, without_ref = tmp_path / "a", tmp_path / "b"
    d1, _ = make_als_layer(with_ref, {"one": b"1"})
    d2, _ = make_als_layer(without_ref, {"two": b"2"}, ref=None)
    stores = [f"{with_ref}:ref", str(without_ref)]
    found = als.cstorage_additional_layer(d1, REF, stores)
    assert found is not None and found.path == str(with_ref / base64.b64encode(REF.encode()).decode() / d1)
    assert found.compressed_size == (with_ref / found.path / "blob").stat().st_size
    # the reference matters only for ":ref" stores
    assert als.cstorage_additional_layer(d1, "other/ref", stores) is None
    assert als.cstorage_additional_layer(d2, "any/ref", stores) is not None
    # all three parts are needed; hostile digests never become paths
    os.unlink(Path(found.path) / "blob")
    assert als.cstorage_additional_layer(d1, REF, stores) is None
    assert als.cstorage_additional_layer("sha256:../../etc", REF, stores) is None
    assert als.parse_stores(["relative/dir", f"{with_ref}:bogus", f"{with_ref}:ref,{without_ref}"]) == [
        als.LayerStoreDir(str(with_ref), True),
        als.LayerStoreDir(str(without_ref), False),
    ]


def test_unknown_layer_and_driver_without_stores(tmp_path: Path) -> None:
    with get_store(options(tmp_path / "s")) as s, pytest.raises(errors.LayerUnknown):
        s.lookup_additional_layer("sha256:" + "a" * 64, REF)


@pytest.fixture
def overlay_store(tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    if not overlay_available():
        pytest.skip("kernel overlayfs and root needed")
    als_dir = tmp_path / "als"
    als_dir.mkdir()
    s = get_store(
        options(tmp_path / "s", "overlay", driver_options=[f"overlay.additionallayerstore={als_dir}:ref"])
    )
    try:
        yield s, als_dir
    finally:
        release_mounts(s)
        s.close()


def test_overlay_uses_store_contents_in_place(overlay_store: tuple[Store, Path], tmp_path: Path) -> None:
    s, als_dir = overlay_store
    base_digest, base_tar = make_als_layer(als_dir, {"etc/": b"", "etc/os": b"als-os\n"})
    top_digest, top_tar = make_als_layer(als_dir, {"app/": b"", "app/run": b"#!/bin/true\n"})
    with s.lookup_additional_layer(base_digest, REF) as h:
        assert h.uncompressed_digest == sha256(base_tar) and h.compressed_size > 0
        base = h.put_as(names=["als-base"])
    with s.lookup_additional_layer(top_digest, REF) as h:
        top = h.put_as("", base.id, ["als-top"])
    assert (base.names, top.parent) == (("als-base",), base.id)
    assert base.compressed_digest == base_digest and base.uncompressed_size == len(base_tar)
    assert base.compression == 2 and not base.incomplete
    home = Path(s.graph_root) / "overlay"
    target = als_dir / base64.b64encode(REF.encode()).decode() / top_digest
    assert os.readlink(home / top.id / "diff") == str(target / "diff")
    assert (home / top.id / "additionallayer").read_text() == str(target)
    # a container on top sees both layers' files, and writes only to its own layer
    img = s.create_image(names=["app"], layer=top.id)
    ctr = s.create_container(image=img.id)
    root = Path(s.mount(ctr.id))
    try:
        assert (root / "etc/os").read_text() == "als-os\n" and (root / "app/run").exists()
        (root / "app/new").write_text("mine")
    finally:
        s.unmount(ctr.id)
    assert not (target / "diff" / "app" / "new").exists()
    # the diff of such a layer is the store's blob, decompressed on request
    with s.diff("", top.id) as d:
        assert d.read() == (target / "blob").read_bytes()
    with s.diff("", top.id, DiffOptions(compression=0)) as d:
        assert d.read() == top_tar
    assert s.layers_by_compressed_digest(top_digest)[0].id == top.id
    report = s.check(CheckOptions.everything())
    assert (report.layers, report.images, report.containers) == ({}, {}, {})
    s.delete_container(ctr.id)
    s.delete_image(img.id)
    assert s.layers() == []
    assert (target / "diff" / "app" / "run").exists()  # the store's contents are its own


def test_overlay_lookup_of_absent_layer(overlay_store: tuple[Store, Path]) -> None:
    s, _als = overlay_store
    with pytest.raises(errors.LayerUnknown):
        s.lookup_additional_layer("sha256:" + "b" * 64, REF)


class FixedDirPlugin:
    """A third-party additional layer store: the directory layout at a fixed place,
    whatever the store's options say."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @hookimpl
    def cstorage_additional_layer(
        self, digest: str, image_ref: str, stores: list[str]
    ) -> als.DirectoryLayer | None:
        target = als.find([als.LayerStoreDir(str(self.directory))], digest, image_ref)
        return als.DirectoryLayer(target) if target else None


def test_plugin_layers_on_a_driver_without_store_support(tmp_path: Path) -> None:
    """vfs cannot link a store's contents: the layer is built from the store's blob."""
    als_dir = tmp_path / "als"
    digest, plain = make_als_layer(als_dir, {"bin/": b"", "bin/tool": b"tool\n"}, ref=None)
    host = PluginHost()
    host.register(FixedDirPlugin(als_dir), name="fixed-dir")
    with get_store(options(tmp_path / "s"), plugins=host) as s:
        with s.lookup_additional_layer(digest, REF) as h:
            layer = h.put_as(names=["from-plugin"])
        assert layer.compressed_digest == digest and layer.uncompressed_digest == sha256(plain)
        assert (Path(s.graph_root) / "vfs" / "dir" / layer.id / "bin" / "tool").read_text() == "tool\n"
        with s.diff("", layer.id, DiffOptions(compression=0)) as d:
            assert d.read() == plain
        assert s.check(CheckOptions.everything()).layers == {}


def test_blob_that_does_not_match_its_record_is_refused(tmp_path: Path) -> None:
    als_dir = tmp_path / "als"
    digest, _plain = make_als_layer(als_dir, {"f": b"x"}, ref=None)
    info_path = als_dir / digest / "info"
    info = json.loads(info_path.read_text())
    info["diff-digest"] = "sha256:" + "0" * 64
    info_path.write_text(json.dumps(info))
    host = PluginHost()
    host.register(FixedDirPlugin(als_dir), name="fixed-dir")
    with get_store(options(tmp_path / "s"), plugins=host) as s:
        with s.lookup_additional_layer(digest, REF) as h, pytest.raises(errors.LayerIncorrectContentDigest):
            h.put_as(names=["bad"])
        assert s.layers() == [] and os.listdir(Path(s.graph_root) / "vfs" / "dir") == []
        info_path.write_text("[1, 2]")
        with pytest.raises(errors.StorageError, match="additional layer"):
            s.lookup_additional_layer(digest, REF)


def test_later_plugins_answer_before_the_builtin(tmp_path: Path) -> None:
    host = PluginHost()
    als_dir = tmp_path / "als"
    digest, _ = make_als_layer(als_dir, {"f": b"x"}, ref=None)
    assert host.additional_layer(digest, REF, []) is None  # built-in: nothing configured
    host.register(FixedDirPlugin(als_dir), name="fixed-dir")
    found = host.additional_layer(digest, REF, [])
    assert isinstance(found, als.DirectoryLayer)
    assert "als" in {p.name for p in host.installed()}


def test_put_as_refuses_what_a_new_layer_would(tmp_path: Path) -> None:
    als_dir = tmp_path / "als"
    digest, _ = make_als_layer(als_dir, {"f": b"x"}, ref=None)
    host = PluginHost()
    host.register(FixedDirPlugin(als_dir), name="fixed-dir")
    with get_store(options(tmp_path / "s"), plugins=host) as s:
        taken = s.create_layer(names=["taken"])
        ctr = s.create_container()
        with s.lookup_additional_layer(digest, REF) as h:
            with pytest.raises(errors.DuplicateName):
                h.put_as(names=["taken"])
            with pytest.raises(errors.DuplicateID):
                h.put_as(taken.id)
            with pytest.raises(errors.LayerUnknown):
                h.put_as(parent="no-such-parent")
            with pytest.raises(errors.ParentIsContainer):
                h.put_as(parent=ctr.layer_id)
            assert {x.id for x in s.layers()} == {taken.id, ctr.layer_id}
            child = h.put_as(parent=taken.id)
        assert s.layer(child.id).parent == taken.id
