"""Re-owning layers for new ID maps (on-disk.md §13.5) and generic-path applies."""

from __future__ import annotations

import io
import os
import tarfile

from containers_storage.drivers.api import ApplyDiffOpts, MountOpts
from containers_storage.idtools import IDMap, IDMappings

from .conftest import DriverMaker

MAPS = IDMappings(uids=(IDMap(0, 100000, 65536),), gids=(IDMap(0, 100000, 65536),))


def test_update_layer_id_map_rotates_diff(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    d.create("base", None)
    root = d.get("base")
    for name, owner in (("root-file", (0, 0)), ("user-file", (1000, 1000))):
        with open(os.path.join(root, name), "w") as f:
            f.write(name)
        os.chown(os.path.join(root, name), *owner)
    d.put("base")
    d.create("mapped", "base")
    d.update_layer_id_map("mapped", IDMappings(), MAPS)
    layer = os.path.join(d.home, "mapped")
    assert os.path.isdir(os.path.join(layer, "diff1")) and os.listdir(os.path.join(layer, "diff")) == []
    st = os.stat(os.path.join(layer, "diff"))
    assert (st.st_uid, st.st_gid) == (100000, 100000) and st.st_mode & 0o777 == 0o555
    root = d.get("mapped", MountOpts(options=("ro",)))
    try:
        assert os.stat(os.path.join(root, "root-file"))[4:6] == (100000, 100000)
        assert os.stat(os.path.join(root, "user-file"))[4:6] == (101000, 101000)
    finally:
        d.put("mapped")
    # the base layer is untouched, and the mapped layer's changes still resolve
    assert os.stat(os.path.join(d.home, "base", "diff", "user-file"))[4:6] == (1000, 1000)
    # a second re-owning shifts diff1 to diff2
    d.update_layer_id_map("mapped", MAPS, IDMappings())
    assert sorted(n for n in os.listdir(layer) if n.startswith("diff")) == ["diff", "diff1", "diff2"]
    root = d.get("mapped")
    try:
        assert os.stat(os.path.join(root, "user-file"))[4:6] == (1000, 1000)
    finally:
        d.put("mapped")
    # a child of the re-owned layer stacks its diff generations too
    d.create("child", "mapped")
    root = d.get("child")
    try:
        assert sorted(os.listdir(root)) == ["root-file", "user-file"]
    finally:
        d.put("child")


def test_apply_against_non_direct_parent_goes_through_the_mount(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    d.create("a", None)
    root = d.get("a")
    with open(os.path.join(root, "gone"), "w") as f:
        f.write("x")
    d.put("a")
    d.create("b", "a")
    d.create("c", "b")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.addfile(tarfile.TarInfo(".wh.gone"), io.BytesIO(b""))
        info = tarfile.TarInfo("new")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"new"))
    buf.seek(0)
    d.apply_diff("c", "a", ApplyDiffOpts(diff=buf))  # "a" is not c's direct parent
    root = d.get("c")
    try:
        assert sorted(os.listdir(root)) == ["new"]
    finally:
        d.put("c")


def test_shifting_with_idmapped_lowers(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    if not d.supports_shifting():
        import pytest

        pytest.skip("the kernel cannot use ID-mapped mounts as overlay lowers")
    assert dict(d.status())["Supports shifting"] == "true"
    assert "idmapped-lower-dir-true" in os.listdir(d.run_home)
    d.create("base", None)
    root = d.get("base")
    with open(os.path.join(root, "user-file"), "w") as f:
        f.write("u")
    os.chown(os.path.join(root, "user-file"), 1000, 1000)
    d.put("base")
    d.create_read_write("ctr", "base")
    root = d.get("ctr", MountOpts(id_mappings=MAPS))
    try:
        # layers stay stored unshifted; the mount shows them through the maps
        assert os.stat(os.path.join(root, "user-file"))[4:6] == (101000, 101000)
        with open(os.path.join(root, "new"), "w") as f:
            f.write("n")
    finally:
        d.put("ctr")
    assert os.stat(os.path.join(d.home, "base", "diff", "user-file"))[4:6] == (1000, 1000)
    assert os.path.exists(os.path.join(d.home, "ctr", "diff", "new"))
    mapped = os.path.join(d.home, "ctr", "mapped")
    assert all(not os.path.ismount(os.path.join(mapped, n)) for n in os.listdir(mapped))
    # disable_shifting shows the stored owners
    root = d.get("ctr", MountOpts(id_mappings=MAPS, disable_shifting=True))
    try:
        assert os.stat(os.path.join(root, "user-file"))[4:6] == (1000, 1000)
    finally:
        d.put("ctr")


def _split(host: int) -> IDMappings:
    """Container 0-9 at ``host``, 10-109 on themselves."""
    maps = (IDMap(0, host, 10), IDMap(10, 10, 100))
    return IDMappings(uids=maps, gids=maps)


def test_reowning_keeps_hard_links_and_copies_up_only_what_changes(driver_factory: DriverMaker) -> None:
    """A chown through the merged view copies up only the name it went through: the other
    names of the inode are linked to the copy again (as upstream); links whose owner the
    new maps keep are neither copied up nor relinked."""
    d = driver_factory()
    d.create("base", None)
    root = d.get("base")
    for name, owner in (("moved", 100001), ("kept", 50)):
        os.makedirs(os.path.join(root, f"{name}-dir"))
        with open(os.path.join(root, name), "w") as f:
            f.write(name)
        os.chown(os.path.join(root, name), owner, owner)
        os.link(os.path.join(root, name), os.path.join(root, f"{name}-dir", "link"))
        os.link(os.path.join(root, name), os.path.join(root, f"{name}-2"))
    d.put("base")
    d.create("mapped", "base")
    d.update_layer_id_map("mapped", _split(100000), _split(200000))
    root = d.get("mapped", MountOpts(options=("ro",)))
    try:
        for name, owner in (("moved", 200001), ("kept", 50)):
            seen = set()
            for n in (name, f"{name}-2", f"{name}-dir/link"):
                st = os.lstat(os.path.join(root, n))
                seen.add((st.st_ino, st.st_uid, st.st_gid))
            assert seen == {(os.lstat(os.path.join(root, name)).st_ino, owner, owner)}, name
    finally:
        d.put("mapped")
    upper = os.path.join(d.home, "mapped", "diff1")
    inodes = {os.lstat(os.path.join(upper, n)).st_ino for n in ("moved", "moved-2", "moved-dir/link")}
    assert len(inodes) == 1
    assert not any(os.path.lexists(os.path.join(upper, n)) for n in ("kept", "kept-2", "kept-dir/link"))
