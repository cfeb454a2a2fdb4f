"""The overlay store written by upstream's tool (shared fixtures): our driver mounts its
layers, reads them, and computes the same native changes and diff sizes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage.drivers.api import ApplyDiffOpts, Driver, MountOpts
from containers_storage.drivers.mounts import is_mounted
from containers_storage.idtools import IDMappings

from .conftest import DriverMaker

FIXTURES = str(Path(__file__).resolve().parents[3].parent / "shared" / "fixtures")
PACK = os.path.join(FIXTURES, "go-store-overlay.tar.zst")
BASE_GZ = "d6db310b17f0ac4411be77be1bfcdc91cab10f92d6e4caf3b9348f8c5609de1f"
BASE_ZST = "43458635120adb3dbca4cbe6c6afca712b3862e4ee239116844dc952e5a769af"
CHILD = "fa9f98554f8c17c5c8b3150bb38b1c23e812ee2d7e6720c269045ca65a89b096"
MOD = "5025cf7e9c8063ccf01b116914921c8ec5b113d3ceac30a7b2ce359b6065593b"


def _unavailable() -> str | None:
    if not os.path.exists(PACK):
        return f"{PACK} is missing"
    if os.geteuid() != 0:
        return "restoring the fixture (device nodes, trusted.* xattrs) needs root"
    for tool in ("tar", "zstd"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    return None


@pytest.fixture
def store(scratch_dir: str) -> str:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    zstd = subprocess.Popen(["zstd", "-dc", PACK], stdout=subprocess.PIPE)
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", scratch_dir],
        stdin=zstd.stdout,
        check=True,
    )
    assert zstd.wait() == 0
    return scratch_dir


@pytest.fixture
def driver(store: str, driver_factory: DriverMaker) -> Iterator[Driver]:
    d = driver_factory(root=os.path.join(store, "graph"), run_root=os.path.join(store, "run"))
    yield d
    d.cleanup()


def _layers(store: str) -> list[dict[str, object]]:
    with open(os.path.join(store, "graph", "overlay-layers", "layers.json"), encoding="utf-8") as f:
        return list(json.load(f))


def _expected() -> dict[str, dict[str, object]]:
    with open(os.path.join(FIXTURES, "expected-overlay.json"), encoding="utf-8") as f:
        return dict(json.load(f))


def test_fixture_layers_are_listed(driver: Driver, store: str) -> None:
    ids = {str(layer["id"]) for layer in _layers(store)}
    assert set(driver.list_layers()) == ids
    assert all(driver.exists(i) for i in ids)
    with open(os.path.join(store, "graph", "overlay", ".has-mount-program")) as f:
        assert f.read() == "false"


def test_native_changes_and_sizes_match_upstream(driver: Driver, store: str) -> None:
    expected = _expected()
    checked = 0
    for layer in _layers(store):
        lid = str(layer["id"])
        parent = str(layer["parent"]) if layer.get("parent") else None
        got = driver.changes(lid, IDMappings(), parent, IDMappings())
        want = json.loads(str(expected[f"changes --json {lid}"]["stdout"]))
        assert Counter((c.path, int(c.kind)) for c in got) == Counter((w["Path"], w["Kind"]) for w in want), (
            lid
        )
        size = driver.diff_size(lid, IDMappings(), parent, IDMappings())
        assert f"{size}\n" == expected[f"diffsize {lid}"]["stdout"], lid
        checked += 1
    assert checked == 5


def _tree(root: str) -> dict[str, tuple[int, int, int, str]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            extra = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    extra = str(hash(f.read()))
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, extra)
    return out


def test_mount_every_layer(driver: Driver, store: str) -> None:
    trees = {}
    for layer in _layers(store):
        lid = str(layer["id"])
        root = driver.get(lid, MountOpts(options=("ro",)))
        try:
            assert is_mounted(root)
            trees[lid] = _tree(root)
        finally:
            driver.put(lid)
        assert not is_mounted(root)
    base = trees[BASE_GZ]
    assert trees[BASE_ZST] == base
    assert stat.S_IMODE(base["etc/setuid-tool"][0]) == 0o4755
    assert base["bin/tool-symlink"][3] == "tool"
    assert base["home/app/owned"][1:3] == (1000, 1000)
    child = trees[CHILD]
    assert "remove-me" not in child and "remove-dir" not in child
    assert sorted(k for k in child if k.startswith("opaque-dir/")) == ["opaque-dir/new"]
    mod = trees[MOD]
    assert stat.S_IMODE(mod["etc/config"][0]) == 0o640
    assert mod["mod/link-to-config"][3] == "/etc/config"
    assert mod["mod/subdir/owned-by-1000"][1:3] == (1000, 1000)
    ctr = next(str(la["id"]) for la in _layers(store) if la.get("parent") == MOD)
    top = trees[ctr]
    assert "container-file" in top and "home/app" not in top and "home" in top


def test_container_layer_mounts_read_write(driver: Driver, store: str) -> None:
    ctr = next(str(la["id"]) for la in _layers(store) if la.get("parent") == MOD)
    root = driver.get(ctr)
    try:
        with open(os.path.join(root, "opaque-dir", "new"), "rb") as f:
            assert f.read()
        with open(os.path.join(root, "written-by-python"), "w") as f:
            f.write("ours")
        os.unlink(os.path.join(root, "modify-me"))
    finally:
        driver.put(ctr)
    got = {(c.path, int(c.kind)) for c in driver.changes(ctr, IDMappings(), MOD, IDMappings())}
    assert ("/written-by-python", 1) in got and ("/modify-me", 2) in got
    diff = os.path.join(store, "graph", "overlay", ctr, "diff")
    st = os.lstat(os.path.join(diff, "modify-me"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def test_diff_getter_reads_through_lowers(driver: Driver) -> None:
    getter = driver.diff_getter(MOD)
    assert getter is not None
    with getter.open("bin/tool") as f:  # from base-gz, two lowers down
        data = f.read()
    with getter.open("mod/new-file") as f:
        assert f.read()
    getter.close()
    root = driver.get(MOD, MountOpts(options=("ro",)))
    try:
        with open(os.path.join(root, "bin", "tool"), "rb") as f:
            assert f.read() == data
    finally:
        driver.put(MOD)
    with pytest.raises(FileNotFoundError):
        getter.open("no/such/file")


def test_lost_links_are_recovered(driver: Driver, store: str) -> None:
    home = os.path.join(store, "graph", "overlay")
    for name in os.listdir(os.path.join(home, "l")):
        os.unlink(os.path.join(home, "l", name))
    root = driver.get(MOD, MountOpts(options=("ro",)))
    try:
        assert os.path.exists(os.path.join(root, "bin", "tool"))
    finally:
        driver.put(MOD)
    assert len(os.listdir(os.path.join(home, "l"))) == 5
    for lid in (BASE_GZ, CHILD, MOD):
        os.unlink(os.path.join(home, lid, "link"))
    from containers_storage_overlay.layout import Layout

    Layout(home, "overlay").recreate_symlinks()
    for lid in (BASE_GZ, CHILD, MOD):
        with open(os.path.join(home, lid, "link")) as f:
            assert os.readlink(os.path.join(home, "l", f.read())) == f"../{lid}/diff"


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return list(tf)


def _diff_bytes(driver: Driver, lid: str, parent: str | None) -> bytes:
    with driver.diff(lid, IDMappings(), parent, IDMappings()) as stream:
        return stream.read()


def test_native_diff_is_byte_identical_to_upstream(driver: Driver, store: str) -> None:
    """Layers without tar-split (mod-layer, the container's layer) diff from their files:
    the native diff (read from ``diff/``, kernel whiteouts converted) hashes exactly as
    upstream's ``diff -u``, and equals the core's generic export of the mounted layers."""
    from containers_storage.archive.changes import changes as tree_changes
    from containers_storage.archive.export import tar_changes

    expected = _expected()
    ctr = next(str(la["id"]) for la in _layers(store) if la.get("parent") == MOD)
    for lid, parent in ((MOD, CHILD), (ctr, MOD)):
        data = _diff_bytes(driver, lid, parent)
        new = driver.get(lid, MountOpts(options=("ro",)))
        old = driver.get(parent, MountOpts(options=("ro",)))
        try:
            found = tree_changes(new, IDMappings(), old, IDMappings())
            generic = b"".join(tar_changes(new, found))
        finally:
            driver.put(parent)
            driver.put(lid)
        want = str(expected[f"diff -u {lid} | sha256sum"]["stdout"]).split()[0]
        assert hashlib.sha256(data).hexdigest() == want, lid
        if lid == MOD:  # the ctr layer's generic export stamps its whiteout with "now"
            assert data == generic, lid
        names = [m.name + ("/" if m.isdir() else "") for m in _members(data)]
        assert (
            names
            == str(expected[f"diff -u {lid} | tar --quoting-style=literal -tf -"]["stdout"]).splitlines()
        )


def test_native_diff_converts_kernel_whiteouts(driver: Driver) -> None:
    """child-whiteouts holds kernel whiteouts and an opaque dir; its native diff (what a
    store without tar-split would produce) has the same entries as upstream's tar."""
    expected = _expected()
    data = _diff_bytes(driver, CHILD, BASE_GZ)
    members = _members(data)
    names = [m.name + ("/" if m.isdir() else "") for m in members]
    want = str(expected[f"diff -u {CHILD} | tar --quoting-style=literal -tf -"]["stdout"]).splitlines()
    assert sorted(names) == sorted(want)
    wh = next(m for m in members if m.name == ".wh.remove-me")
    assert wh.isreg() and wh.size == 0 and wh.mode == 0
    # applying it natively to a new layer on the same parent recreates the whiteouts
    driver.create("reapplied", BASE_GZ)
    driver.apply_diff("reapplied", BASE_GZ, ApplyDiffOpts(diff=io.BytesIO(data)))
    got = driver.changes("reapplied", IDMappings(), BASE_GZ, IDMappings())
    assert sorted((c.path, int(c.kind)) for c in got) == sorted(
        (c.path, int(c.kind)) for c in driver.changes(CHILD, IDMappings(), BASE_GZ, IDMappings())
    )
    driver.remove("reapplied")


def test_diff_getter_refuses_names_outside_the_layer(driver: Driver, store: str) -> None:
    getter = driver.diff_getter(MOD)
    assert getter is not None
    for name in ("../../../../etc/passwd", "/etc/passwd", "mod/../../x"):
        with pytest.raises(FileNotFoundError):
            getter.open(name)
    os.symlink("/etc/passwd", os.path.join(store, "graph", "overlay", MOD, "diff", "escape"))
    with pytest.raises(FileNotFoundError):
        getter.open("escape")
