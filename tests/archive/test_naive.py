"""The generic driver diff operations, through a real directory-backed driver."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from containers_storage.drivers.api import ApplyDiffOpts, Change, ChangeKind
from containers_storage.idtools import IDMap, IDMappings

from .conftest import DirDriver, make_tar, member, needs_root

BASE = make_tar(
    [
        member("etc/", type=tarfile.DIRTYPE),
        member("etc/conf", b"v1"),
        member("gone", b"bye"),
        member("dir/", type=tarfile.DIRTYPE),
        member("dir/inner", b"i"),
    ]
)
CHILD = make_tar(
    [
        member("etc/", type=tarfile.DIRTYPE),
        member("etc/conf", b"v2!"),
        member(".wh.gone"),
        member("new", b"added"),
    ]
)


def layers(driver: DirDriver) -> None:
    driver.create("base", None)
    assert driver.apply_diff("base", None, ApplyDiffOpts(diff=io.BytesIO(BASE))) == 6
    driver.create("child", "base")
    assert driver.apply_diff("child", "base", ApplyDiffOpts(diff=io.BytesIO(CHILD))) == 8
    assert all(n == 0 for n in driver.mounts.values())


def test_changes_and_size(driver: DirDriver) -> None:
    layers(driver)
    found = sorted(driver.changes("child", IDMappings(), "base", IDMappings()))
    assert found == [
        Change("/etc", ChangeKind.MODIFY),
        Change("/etc/conf", ChangeKind.MODIFY),
        Change("/gone", ChangeKind.DELETE),
        Change("/new", ChangeKind.ADD),
    ]
    assert driver.diff_size("child", IDMappings(), "base", IDMappings()) == 3 + 5
    assert sorted(driver.changes("base", IDMappings(), "", IDMappings()))[0] == Change("/dir", ChangeKind.ADD)
    assert all(n == 0 for n in driver.mounts.values())


def test_diff_stream_holds_mounts_until_closed(driver: DirDriver) -> None:
    layers(driver)
    stream = driver.diff("child", IDMappings(), "base", IDMappings())
    assert driver.mounts == {"base": 0, "child": 1} or driver.mounts["child"] == 1
    data = stream.read()
    stream.close()
    assert all(n == 0 for n in driver.mounts.values())
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert [m.name for m in tf] == ["etc", "etc/conf", ".wh.gone", "new"]
    whole = driver.diff("base", IDMappings(), None, IDMappings())
    with whole, tarfile.open(fileobj=whole, mode="r|") as tf:
        assert [m.name for m in tf] == [
            "dir",
            "dir/inner",
            "etc",
            "etc/conf",
            "gone",
        ]
    assert all(n == 0 for n in driver.mounts.values())


@needs_root
def test_update_layer_id_map(driver: DirDriver) -> None:
    driver.create("l", None)
    cap = bytes.fromhex("0100000200100000000000000000000000000000")
    data = make_tar(
        [
            member(
                "suid",
                b"x",
                mode=0o4755,
                uid=0,
                gid=0,
                pax={"SCHILY.xattr.security.capability": cap.decode("latin-1")},
            ),
            member("hard", type=tarfile.LNKTYPE, linkname="suid"),
            member("user", b"u", uid=1000, gid=1000),
            member("sym", type=tarfile.SYMTYPE, linkname="suid", uid=5, gid=5),
        ]
    )
    driver.apply_diff("l", None, ApplyDiffOpts(diff=io.BytesIO(data)))
    new = IDMappings(uids=(IDMap(0, 200000, 2000),), gids=(IDMap(0, 300000, 2000),))
    driver.update_layer_id_map("l", IDMappings(), new)
    root = Path(driver.get("l"))
    st = os.lstat(root / "suid")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (200000, 300000, 0o4755)
    assert os.getxattr(root / "suid", "security.capability") == cap
    assert (os.lstat(root / "user").st_uid, os.lstat(root / "user").st_gid) == (201000, 301000)
    assert (os.lstat(root / "sym").st_uid, os.lstat(root / "sym").st_gid) == (200005, 300005)
    assert os.lstat(root).st_uid == 200000
    # and back, through container IDs; IDs outside the new maps get the overflow ID
    driver.update_layer_id_map("l", new, IDMappings(uids=(IDMap(0, 0, 1000),), gids=(IDMap(0, 0, 1000),)))
    assert os.lstat(root / "suid").st_uid == 0 and os.lstat(root / "user").st_uid == 65534
    driver.put("l")
