"""Split image store (on-disk.md §9.2): the driver is rooted at ``I/overlay`` and each
layer keeps ``link``/``lower``/``empty`` there, while ``diff``/``work``/``merged`` live in
``G/overlay/<id>`` and ``I/overlay/l/<LINK>`` is an absolute link to that ``diff``. Real
kernel overlay mounts; every mount is undone by the fixtures."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from containers_storage.config import StoreOptions
from containers_storage.drivers.api import ApplyDiffOpts, Change, ChangeKind, MountOpts
from containers_storage.idtools import IDMap, IDMappings
from containers_storage.store import DiffOptions, LayerOptions, Store, get_store
from containers_storage.testing.backends import overlay_unavailable

from .conftest import DriverMaker

if TYPE_CHECKING:
    from containers_storage_overlay.driver import OverlayDriver

DATA = {"diff", "work", "merged"}


def _tar(entries: dict[str, bytes | None]) -> io.BytesIO:
    """Regular files (bytes) and AUFS whiteouts (None: ``.wh.<name>``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in entries.items():
            if data is None:
                head, tail = os.path.split(name)
                tf.addfile(tarfile.TarInfo(os.path.join(head, ".wh." + tail)), io.BytesIO(b""))
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name for m in tf.getmembers()}


def _overlay_mounts_below(path: str) -> list[str]:
    """Mount points of overlay filesystems below ``path`` (/proc/self/mountinfo)."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            target = fields[4].replace("\\040", " ")
            fstype = fields[fields.index("-") + 1]
            if fstype == "overlay" and (target + "/").startswith(path.rstrip("/") + "/"):
                out.append(target)
    return out


@pytest.fixture
def roots(scratch_dir: str) -> tuple[str, str, str]:
    """Graph root, run root and image store of one split store."""
    return (os.path.join(scratch_dir, "g"), os.path.join(scratch_dir, "r"), os.path.join(scratch_dir, "i"))


@pytest.fixture
def split_driver(driver_factory: DriverMaker, roots: tuple[str, str, str]) -> OverlayDriver:
    g, r, i = roots
    os.makedirs(os.path.join(g, "overlay"), 0o700)
    return driver_factory(root=i, run_root=r, image_store=g)


def _link_of(i: str, id: str) -> str:
    with open(os.path.join(i, "overlay", id, "link"), encoding="ascii") as f:
        return f.read()


# -- the driver alone --------------------------------------------------------------------
def test_create_splits_metadata_and_data(split_driver: OverlayDriver, roots: tuple[str, str, str]) -> None:
    d = split_driver
    g, _, i = roots
    d.create("base", None)
    d.create_read_write("child", "base")
    assert set(os.listdir(os.path.join(i, "overlay", "base"))) == {"link", "empty"}
    assert set(os.listdir(os.path.join(i, "overlay", "child"))) == {"link", "lower"}
    for id in ("base", "child"):
        assert set(os.listdir(os.path.join(g, "overlay", id))) == DATA
        link = os.path.join(i, "overlay", "l", _link_of(i, id))
        # absolute, to the data directory under the graph root
        assert os.readlink(link) == os.path.join(g, "overlay", id, "diff")
    with open(os.path.join(i, "overlay", "child", "lower"), encoding="ascii") as f:
        assert f.read() == "l/" + _link_of(i, "base")
    assert os.stat(os.path.join(g, "overlay", "base", "diff")).st_mode & 0o777 == 0o555
    assert sorted(d.list_layers()) == ["base", "child"]
    assert d.exists("child") and not d.exists("nope")
    meta = d.metadata("child")
    assert meta["UpperDir"] == os.path.join(g, "overlay", "child", "diff")
    assert meta["WorkDir"] == os.path.join(g, "overlay", "child", "work")
    assert meta["MergedDir"] == os.path.join(g, "overlay", "child", "merged")
    assert meta["LowerDir"] == os.path.join(g, "overlay", "base", "diff")


def test_mount_is_under_the_graph_root_and_put_unmounts_it(
    split_driver: OverlayDriver, roots: tuple[str, str, str], scratch_dir: str
) -> None:
    d = split_driver
    g, _, i = roots
    d.create("base", None)
    with open(os.path.join(g, "overlay", "base", "diff", "from-base"), "w") as f:
        f.write("base")
    d.create_read_write("child", "base")
    merged = os.path.join(g, "overlay", "child", "merged")
    assert d.get("child") == merged
    try:
        assert _overlay_mounts_below(scratch_dir) == [merged]
        with open(os.path.join(merged, "from-base")) as f:
            assert f.read() == "base"
        with open(os.path.join(merged, "new"), "w") as f:
            f.write("new")
        # nested gets are counted: the first put keeps the mount
        assert d.get("child") == merged
        d.put("child")
        assert _overlay_mounts_below(scratch_dir) == [merged]
    finally:
        d.put("child")
    # upstream's put targets I/overlay/child/merged and leaves this one mounted
    assert _overlay_mounts_below(scratch_dir) == []
    assert not os.path.exists(merged)
    assert not os.path.exists(os.path.join(i, "overlay", "child", "merged"))
    assert os.listdir(os.path.join(g, "overlay", "child", "diff")) == ["new"]


def test_read_only_mount_of_a_base_uses_its_empty_dir(
    split_driver: OverlayDriver, roots: tuple[str, str, str], scratch_dir: str
) -> None:
    d = split_driver
    g, _, _ = roots
    d.create("base", None)
    with open(os.path.join(g, "overlay", "base", "diff", "f"), "w") as f:
        f.write("x")
    root = d.get("base", MountOpts(options=("ro",)))
    try:
        assert os.listdir(root) == ["f"]
        with pytest.raises(OSError):
            open(os.path.join(root, "g"), "w").close()
    finally:
        d.put("base")
    assert _overlay_mounts_below(scratch_dir) == []


def test_native_apply_diff_changes_and_size_use_the_data_dirs(
    split_driver: OverlayDriver, roots: tuple[str, str, str]
) -> None:
    d = split_driver
    g, _, _ = roots
    d.create("base", None)
    size = d.apply_diff("base", None, ApplyDiffOpts(_tar({"a": b"aaa", "dir/b": b"bb"})))
    assert size == 5
    assert sorted(os.listdir(os.path.join(g, "overlay", "base", "diff"))) == ["a", "dir"]
    d.create("child", "base")
    d.apply_diff("child", "base", ApplyDiffOpts(_tar({"a": None, "c": b"cccc"})))
    assert d.native_diff_usable()
    changes = d.changes("child", IDMappings(), "base", IDMappings())
    assert sorted(changes) == [Change("/a", ChangeKind.DELETE), Change("/c", ChangeKind.ADD)]
    assert d.diff_size("child", IDMappings(), "base", IDMappings()) == 4
    with d.diff("child", IDMappings(), "base", IDMappings()) as f:
        assert _names(f.read()) == {".wh.a", "c"}
    getter = d.diff_getter("child")
    assert getter is not None
    try:
        with getter.open("dir/b") as f:  # found in the lower's data directory
            assert f.read() == b"bb"
    finally:
        getter.close()


def test_remove_cleans_both_directories_and_the_link(
    split_driver: OverlayDriver, roots: tuple[str, str, str], scratch_dir: str
) -> None:
    d = split_driver
    g, _, i = roots
    d.create("base", None)
    d.create_read_write("child", "base")
    link = os.path.join(i, "overlay", "l", _link_of(i, "child"))
    d.get("child")  # removal detaches what is still mounted
    d.remove("child")
    assert _overlay_mounts_below(scratch_dir) == []
    assert not os.path.lexists(os.path.join(i, "overlay", "child"))
    assert not os.path.lexists(os.path.join(g, "overlay", "child"))
    assert not os.path.lexists(link)
    assert d.list_layers() == ["base"]
    # a re-created layer with the same ID starts clean (stale data directory removed)
    os.makedirs(os.path.join(g, "overlay", "again", "diff", "stale"))
    d.create("again", "base")
    assert os.listdir(os.path.join(g, "overlay", "again", "diff")) == []


def test_lost_links_are_recovered_in_the_absolute_form(
    split_driver: OverlayDriver, roots: tuple[str, str, str], scratch_dir: str
) -> None:
    d = split_driver
    g, _, i = roots
    d.create("base", None)
    d.create("child", "base")
    link_dir = os.path.join(i, "overlay", "l")
    base_link = _link_of(i, "base")
    os.unlink(os.path.join(link_dir, base_link))  # the l/ symlink is lost
    os.unlink(os.path.join(i, "overlay", "child", "link"))  # and a link file
    root = d.get("child")  # resolving the lower triggers the recovery
    try:
        assert os.path.isdir(root)
    finally:
        d.put("child")
    assert os.readlink(os.path.join(link_dir, base_link)) == os.path.join(g, "overlay", "base", "diff")
    child_link = _link_of(i, "child")
    assert os.readlink(os.path.join(link_dir, child_link)) == os.path.join(g, "overlay", "child", "diff")
    # a link written by an unsplit home (relative) still names its layer
    os.unlink(os.path.join(link_dir, base_link))
    os.symlink("../base/diff", os.path.join(link_dir, base_link))
    os.unlink(os.path.join(i, "overlay", "base", "link"))
    d.layout.recreate_symlinks()
    assert _link_of(i, "base") == base_link
    assert _overlay_mounts_below(scratch_dir) == []


def test_update_layer_id_map_rotates_diffs_in_the_data_dir(
    split_driver: OverlayDriver, roots: tuple[str, str, str], scratch_dir: str
) -> None:
    d = split_driver
    g, _, i = roots
    maps = IDMappings(uids=(IDMap(0, 100000, 65536),), gids=(IDMap(0, 100000, 65536),))
    d.create("base", None)
    with open(os.path.join(g, "overlay", "base", "diff", "f"), "w") as f:
        f.write("f")
    d.create("mapped", "base")
    d.update_layer_id_map("mapped", IDMappings(), maps)
    data = os.path.join(g, "overlay", "mapped")
    assert {"diff", "diff1"} <= set(os.listdir(data))
    assert set(os.listdir(os.path.join(i, "overlay", "mapped"))) == {"link", "lower"}
    root = d.get("mapped", MountOpts(options=("ro",)))
    try:
        assert os.stat(os.path.join(root, "f"))[4:6] == (100000, 100000)
    finally:
        d.put("mapped")
    assert _overlay_mounts_below(scratch_dir) == []


def test_unsplit_home_keeps_relative_links(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    d.create("base", None)
    assert set(os.listdir(os.path.join(d.home, "base"))) == {"link", "empty", "diff", "work", "merged"}
    with open(os.path.join(d.home, "base", "link"), encoding="ascii") as f:
        assert os.readlink(os.path.join(d.home, "l", f.read())) == "../base/diff"


# -- through the Store -----------------------------------------------------------------
@pytest.fixture
def split_store(roots: tuple[str, str, str], scratch_dir: str) -> Iterator[Store]:
    reason = overlay_unavailable()
    if reason:
        pytest.skip(reason)
    g, r, i = roots
    with get_store(StoreOptions(graph_root=g, run_root=r, image_store=i, driver_name="overlay")) as s:
        try:
            yield s
        finally:
            s.shutdown(force=True)


def test_store_round_trip(split_store: Store, roots: tuple[str, str, str], scratch_dir: str) -> None:
    g, _, i = roots
    s = split_store
    s.put_layer("base", diff=_tar({"etc/hosts": b"127.0.0.1\n", "gone": b"x"}))
    child_tar = _tar({"gone": None, "bin/tool": b"#!/bin/sh\n"}).getvalue()
    s.put_layer("child", "base", diff=io.BytesIO(child_tar))
    assert os.path.isdir(os.path.join(i, "overlay-layers"))
    assert set(os.listdir(os.path.join(i, "overlay", "child"))) == {"link", "lower"}
    assert sorted(os.listdir(os.path.join(g, "overlay", "child", "diff"))) == ["bin", "gone"]
    assert os.path.isabs(os.readlink(os.path.join(i, "overlay", "l", _link_of(i, "child"))))

    assert sorted(s.changes("", "child")) == [
        Change("/bin", ChangeKind.ADD),
        Change("/bin/tool", ChangeKind.ADD),
        Change("/gone", ChangeKind.DELETE),
    ]
    # tar-split replay reads the contents from the data directory under the graph root
    with s.diff("", "child", DiffOptions(compression=0)) as f:
        assert f.read() == child_tar

    top = s.create_layer("top", "child", writeable=True)
    root = s.mount(top.id)
    assert root == os.path.join(g, "overlay", "top", "merged")
    try:
        assert sorted(os.listdir(root)) == ["bin", "etc"]
        with open(os.path.join(root, "etc", "hosts"), "rb") as f:
            assert f.read() == b"127.0.0.1\n"
        with open(os.path.join(root, "written"), "w") as f:
            f.write("w")
    finally:
        s.unmount(top.id)
    assert _overlay_mounts_below(scratch_dir) == []
    assert os.listdir(os.path.join(g, "overlay", "top", "diff")) == ["written"]

    # a layer from a template: overlay stacks it on the template (upstream's CreateFromTemplate)
    copy = s.create_layer("copy", "child", options=LayerOptions(template_layer="top"))
    assert set(os.listdir(os.path.join(i, "overlay", copy.id))) == {"link", "lower"}
    with open(os.path.join(i, "overlay", copy.id, "lower"), encoding="ascii") as f:
        assert f.read().split(":")[0] == "l/" + _link_of(i, "top")
    root = s.mount(copy.id)
    try:
        assert root == os.path.join(g, "overlay", copy.id, "merged")
        assert sorted(os.listdir(root)) == ["bin", "etc", "written"]
    finally:
        s.unmount(copy.id)
    assert _overlay_mounts_below(scratch_dir) == []

    for id in ("copy", "top", "child", "base"):
        s.delete_layer(id)
        assert not os.path.lexists(os.path.join(i, "overlay", id))
        assert not os.path.lexists(os.path.join(g, "overlay", id))
    assert os.listdir(os.path.join(i, "overlay", "l")) == []


# -- through the CLI -------------------------------------------------------------------
def test_cli_round_trip(roots: tuple[str, str, str], scratch_dir: str) -> None:
    reason = overlay_unavailable()
    if reason:
        pytest.skip(reason)
    g, r, i = roots
    base = [sys.executable, "-m", "containers_storage.cli"]
    base += ["--graph", g, "--run", r, "--image-store", i, "--storage-driver", "overlay"]

    def cs(*args: str, stdin: bytes | None = None) -> bytes:
        done = subprocess.run([*base, *args], input=stdin, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    try:
        cs("create-layer", "--id", "aaa")
        cs("applydiff", "aaa", stdin=_tar({"hello": b"world"}).getvalue())
        cs("create-layer", "--id", "bbb", "aaa")
        assert set(os.listdir(os.path.join(i, "overlay", "aaa"))) == {"link", "empty"}
        assert set(os.listdir(os.path.join(g, "overlay", "aaa"))) == DATA
        assert os.listdir(os.path.join(g, "overlay", "aaa", "diff")) == ["hello"]
        merged = os.path.join(g, "overlay", "bbb", "merged")
        assert cs("mount", "bbb").decode().strip() == merged
        assert _overlay_mounts_below(scratch_dir) == [merged]
        with open(os.path.join(merged, "hello")) as f:
            assert f.read() == "world"
        cs("unmount", "bbb")
        assert _overlay_mounts_below(scratch_dir) == []
        assert _names(cs("diff", "-u", "aaa")) == {"hello"}
        cs("delete-layer", "bbb")
        assert not os.path.lexists(os.path.join(i, "overlay", "bbb"))
        assert not os.path.lexists(os.path.join(g, "overlay", "bbb"))
    finally:
        subprocess.run([*base, "shutdown", "--force"], capture_output=True, check=False)
    assert _overlay_mounts_below(scratch_dir) == []
