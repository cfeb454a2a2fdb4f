"""Split image store (on-disk.md §9.2): the graph root becomes an additional store whose
images stay writable while its layers are read-only; gc works on the image-store root."""

from __future__ import annotations

import io
from pathlib import Path

from containers_storage.store import CheckOptions, get_store

from .conftest import options, tar_bytes


def test_graph_root_images_stay_writable_in_split_mode(tmp_path: Path) -> None:
    root = tmp_path / "main"
    with get_store(options(root)) as s:  # first used without an image store
        layer, _ = s.put_layer(names=["old-layer"], diff=io.BytesIO(tar_bytes({"a/": b"", "a/f": b"f"})))
        old = s.create_image(names=["old"], layer=layer.id)
        s.set_image_big_data(old.id, "manifest", b"{}")
    (root / "graph" / "vfs-images" / old.id / "manifest").write_bytes(b"{ }")  # wrong size
    with get_store(options(root, image_store=str(tmp_path / "images"))) as s:
        img = s.image("old")
        assert not img.read_only and s.layer("old-layer").read_only
        report = s.check(CheckOptions.most())
        assert list(report.images) == [old.id] and report.ro_images == {}
        assert report.ro_layers == {}
        # new layers may sit on the graph root's read-only layers
        child = s.create_layer(parent=layer.id)
        assert (tmp_path / "images" / "vfs" / "dir" / child.id).is_dir()
        # its images can be deleted; its layers stay (they are read-only here)
        assert s.delete_image("old") == []  # the child above keeps its layer anyway
        assert not s.exists("old") and s.exists("old-layer")
        assert not (root / "graph" / "vfs-images" / old.id).exists()


def test_gc_in_split_mode(tmp_path: Path) -> None:
    images = tmp_path / "images"
    with get_store(options(tmp_path / "main", image_store=str(images))) as s:
        keep = s.create_layer()
        ctr = s.create_container()
        s.set_container_big_data(ctr.id, "cfg", b"{}")
        stray_image = images / "vfs-images" / ("a" * 64)
        stray_image.mkdir()
        stray_ctr = Path(s.graph_root) / "vfs-containers" / ("b" * 64)
        stray_ctr.mkdir()
        s.driver.create("c" * 64, None)
        assert (images / "vfs" / "dir" / ("c" * 64)).is_dir()
        s.garbage_collect()
        assert not stray_image.exists() and not stray_ctr.exists()
        assert not (images / "vfs" / "dir" / ("c" * 64)).exists()
        assert {x.id for x in s.layers()} == {keep.id, ctr.layer_id}
        assert s.container_big_data(ctr.id, "cfg") == b"{}"
