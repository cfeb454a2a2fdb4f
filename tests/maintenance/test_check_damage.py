"""check / repair against real damage on a fresh vfs store: files deleted, edited,
truncated, re-owned and re-moded in layers; big data missing or wrongly sized; records of
layers and images gone; a damaged read-only store reported apart and left alone."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from containers_storage import errors
from containers_storage.store import (
    CheckOptions,
    ContainerOptions,
    ImageOptions,
    RepairOptions,
    Store,
    get_store,
)

from .conftest import options, release_mounts, tar_bytes

BASE_FILES = {
    "etc/": b"",
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
    "etc/motd": b"hello\n",
    "bin/": b"",
    "bin/tool": b"#!/bin/sh\necho tool\n",
}
CHILD_FILES = {"app/": b"", "app/data": b"0123456789abcdef\n"}


@dataclass
class Built:
    store: Store
    graph: Path
    base: str
    child: str
    image: str
    container: str

    def layer_dir(self, layer: str) -> Path:
        return self.graph / "vfs" / "dir" / layer


def build(root: Path, **kw: object) -> Built:
    s = get_store(options(root, **kw))
    base, _ = s.put_layer(names=["base"], diff=io.BytesIO(tar_bytes(BASE_FILES)))
    child, _ = s.put_layer("", base.id, ["child"], diff=io.BytesIO(tar_bytes(CHILD_FILES)))
    img = s.create_image(
        names=["img"],
        layer=child.id,
        options=ImageOptions(big_data={"manifest": b'{"m":1}', "config": b"{}"}),
    )
    ctr = s.create_container(names=["ctr"], image=img.id, options=ContainerOptions(big_data={"state": b"ok"}))
    return Built(s, Path(s.graph_root), base.id, child.id, img.id, ctr.id)


@pytest.fixture
def built(tmp_path: Path) -> Iterator[Built]:
    b = build(tmp_path / "s")
    try:
        yield b
    finally:
        release_mounts(b.store)
        b.store.close()


def texts(errs: list[Exception]) -> list[str]:
    return [str(e) for e in errs]


def test_fresh_store_is_clean(built: Built) -> None:
    report = built.store.check(CheckOptions.everything())
    assert (report.layers, report.images, report.containers) == ({}, {}, {})


def test_deleted_file_fails_the_digest_and_taints_image_and_container(built: Built) -> None:
    os.unlink(built.layer_dir(built.base) / "etc" / "motd")
    report = built.store.check(CheckOptions.most())
    assert set(report.layers) == {built.base}
    assert report.layers[built.base] and all(
        e in report.images[built.image] for e in report.layers[built.base]
    )
    assert all(e in report.containers[built.container] for e in report.images[built.image])


def test_truncated_file_is_a_wrong_digest(built: Built) -> None:
    path = built.layer_dir(built.child) / "app" / "data"
    os.truncate(path, 4)
    report = built.store.check(CheckOptions.most())
    found = texts(report.layers[built.child])
    assert found and all(built.child in t for t in found), found
    assert built.base not in report.layers


def test_same_size_edit_is_a_checksum_failure(built: Built) -> None:
    (built.layer_dir(built.child) / "app" / "data").write_bytes(b"fedcba9876543210\n")
    found = texts(built.store.check(CheckOptions.most()).layers[built.child])
    assert any('file integrity checksum failed for "app/data"' in t for t in found), found


def test_owner_and_mode_changes_need_the_content_comparison(built: Built) -> None:
    """The diff replays from the tar-split (recorded headers), so only the comparison of
    the mounted tree with the replayed headers sees changed attributes."""
    passwd = built.layer_dir(built.base) / "etc" / "passwd"
    os.chmod(passwd, 0o600)
    os.chown(built.layer_dir(built.base) / "bin" / "tool", 1234, 0)
    etc = built.layer_dir(built.base) / "etc"
    before = etc.stat()
    (etc / "extra").write_text("x")
    os.utime(etc, ns=(before.st_atime_ns, before.st_mtime_ns))  # else /etc(mtime:…) too
    assert built.store.check(CheckOptions.most()).layers == {}
    report = built.store.check(CheckOptions.everything())
    base = sorted(texts(report.layers[built.base]))
    # a changed non-directory shows twice, plain and with "+", as upstream's comparison
    # walks both trees' files
    assert base == sorted(
        f"layer {built.base}: {entry}, layer content modified"
        for entry in (
            "/etc/passwd(mode:0644\uffeb0600)",
            "+/etc/passwd(mode:0644\uffeb0600)",
            "/bin/tool(uid:0\uffeb1234)",
            "+/bin/tool(uid:0\uffeb1234)",
            "+/etc/extra",
        )
    )
    # a vfs child is a full copy made at its creation: the damage is the base's alone
    assert built.child not in report.layers
    assert all(isinstance(e, errors.LayerContentModified) for e in report.layers[built.base])


def test_ignore_chown_errors_hides_owner_changes(tmp_path: Path) -> None:
    b = build(tmp_path / "s", driver_options=["vfs.ignore_chown_errors=true"])
    with b.store as s:
        os.chown(b.layer_dir(b.base) / "bin" / "tool", 1234, 1234)
        assert s.check(CheckOptions.everything()).layers == {}


def test_unmountable_layer(built: Built) -> None:
    import shutil

    shutil.rmtree(built.layer_dir(built.base))
    report = built.store.check(CheckOptions.most())
    digest_err, mount_err = texts(report.layers[built.base])
    # the replay fails on the layer directory or its first file, as Go words it
    assert digest_err.startswith(f"layer {built.base}: open {built.layer_dir(built.base)}")
    assert digest_err.endswith(": no such file or directory")
    assert mount_err == f"layer {built.base}: {built.base}: unknown layer"
    assert set(report.layers) == {built.base} and built.image in report.images


def test_big_data_missing_or_wrongly_sized(built: Built) -> None:
    s = built.store
    s.set_layer_big_data(built.base, "notes", b"layer notes")
    (built.graph / "vfs-layers" / built.base / "notes").unlink()
    (built.graph / "vfs-images" / built.image / "config").write_bytes(b"{ }")
    (built.graph / "vfs-images" / built.image / "manifest").unlink()
    (built.graph / "vfs-containers" / built.container / "state").write_bytes(b"not ok")
    report = s.check(CheckOptions.most())
    assert texts(report.layers[built.base]) == [
        f'layer {built.base}: data item "notes": layer data item is missing'
    ]
    assert texts(report.images[built.image])[:2] == [
        f'image {built.image}: data item "manifest": image data item is missing',
        f'image {built.image}: data item "config": image data item has incorrect size',
    ]
    assert f'container {built.container}: data item "state": container data item has incorrect size' in texts(
        report.containers[built.container]
    )
    # data checks are optional
    assert s.check(CheckOptions(layer_digests=True)).images == {}


def _drop_record(built: Built, path: Path, rid: str) -> None:
    """Lose a record behind the store's back, then reopen (records are reloaded when the
    lock says another writer changed them, which a hand edit does not)."""
    built.store.close()
    records = [r for r in json.loads(path.read_text()) if r["id"] != rid]
    path.write_text(json.dumps(records))
    built.store = get_store(options(built.graph.parent))


def test_missing_layer_record(built: Built) -> None:
    """The base's record is lost, its contents stay: the child's parent is missing, the
    image's chain is broken, the leftover driver layer is unaccounted for."""
    _drop_record(built, built.graph / "vfs-layers" / "layers.json", built.base)
    report = built.store.check(CheckOptions.most())
    assert f"layer {built.base}: layer is missing" in texts(report.layers[built.child])
    assert f"image {built.image}: layer {built.base}: image layer is missing" in texts(
        report.images[built.image]
    )
    assert texts(report.layers[built.base]) == [
        f"layer {built.base}: layer in lower level storage driver not accounted for"
    ]
    assert built.container in report.containers
    # without removing containers, the image in use and its layers stay (upstream's
    # delete errors are the repair's errors); the unaccounted contents go
    failures = built.store.repair(report, RepairOptions())
    assert [type(e.__cause__ or e).__name__ for e in failures] and all(
        "in use by a container" in str(e) or "has children" in str(e) for e in failures
    ), texts(failures)
    assert not built.layer_dir(built.base).exists()
    assert built.store.exists(built.image) and built.store.exists(built.container)
    assert (
        built.store.repair(built.store.check(CheckOptions.most()), RepairOptions(remove_containers=True))
        == []
    )
    assert built.store.containers() == [] and built.store.images() == [] and built.store.layers() == []


def test_container_whose_image_is_gone(built: Built) -> None:
    _drop_record(built, built.graph / "vfs-images" / "images.json", built.image)
    report = built.store.check(CheckOptions.most())
    assert texts(report.containers[built.container]) == [f"image {built.image}: image missing"]
    assert isinstance(report.containers[built.container][0], errors.ContainerImageMissing)
    built.store.repair(report, RepairOptions())
    assert built.store.exists(built.container)
    built.store.repair(built.store.check(CheckOptions.most()), RepairOptions(remove_containers=True))
    assert not built.store.exists(built.container)


def test_repair_removes_damaged_items_and_leaves_a_clean_store(built: Built) -> None:
    s = built.store
    other, _ = s.put_layer(names=["other"], diff=io.BytesIO(tar_bytes({"o/": b"", "o/f": b"o\n"})))
    s.create_image(names=["other-img"], layer=other.id)
    (built.layer_dir(built.child) / "app" / "data").write_bytes(b"fedcba9876543210\n")
    report = s.check(CheckOptions.everything())
    assert set(report.images) == {built.image} and built.container in report.containers
    # containers are removed only when asked: the image in use cannot go either
    assert s.repair(report, RepairOptions()) != []
    assert s.exists(built.container) and s.exists(built.image)
    assert s.repair(report, RepairOptions(remove_containers=True)) == []
    final = s.check(CheckOptions.everything())
    assert (final.layers, final.images, final.containers) == ({}, {}, {})
    assert {x.id for x in s.layers()} == {other.id}


def test_damaged_read_only_store_is_reported_apart_and_left_alone(tmp_path: Path) -> None:
    ro = build(tmp_path / "ro")
    ro.store.delete_container(ro.container)
    ro.store.close()
    (ro.layer_dir(ro.child) / "app" / "data").write_bytes(b"fedcba9876543210\n")
    (ro.graph / "vfs-images" / ro.image / "config").write_bytes(b"{   }")
    with get_store(options(tmp_path / "main", driver_options=[f"vfs.imagestore={ro.graph}"])) as s:
        report = s.check(CheckOptions.everything())
        assert report.layers == {} and report.images == {}
        assert set(report.ro_layers) == {ro.child}
        assert all(t.startswith(f"read-only layer {ro.child}") for t in texts(report.ro_layers[ro.child]))
        ro_img = texts(report.ro_images[ro.image])
        assert f'read-only image {ro.image}: data item "config": image data item has incorrect size' in ro_img
        assert s.repair(report, RepairOptions(remove_containers=True)) == []
        assert ro.layer_dir(ro.child).exists() and s.image(ro.image).read_only
        assert s.check(CheckOptions.everything()).ro_layers.keys() == {ro.child}
