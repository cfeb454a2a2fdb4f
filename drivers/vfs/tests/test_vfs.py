"""vfs specifics beyond the conformance kit: options, layout, additional stores,
copy fidelity, crash leftovers and unprivileged use."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from containers_storage.drivers.api import CreateOpts, DriverConfig, MountOpts
from containers_storage.errors import DriverLayerUnknown, InvalidOption
from containers_storage.idtools import IDMap, IDMappings
from containers_storage.testing.conformance import describe_tree, populate_every_kind
from containers_storage_vfs.driver import VFSDriver

Factory = Callable[..., VFSDriver]


def test_layout_is_upstreams(driver_factory: Factory) -> None:
    d = driver_factory()
    d.create("abc", None)
    assert os.path.isdir(os.path.join(d.config.root, "vfs", "dir", "abc"))
    assert stat.S_IMODE(os.stat(os.path.join(d.config.root, "vfs", "dir")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(d.config.root, "vfs")).st_mode) == 0o700
    assert d.get("abc") == os.path.join(d.config.root, "vfs", "dir", "abc")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("vfs.mountopt=nodev", "vfs driver does not support mount options"),
        ("vfs.size=1G", "vfs driver does not support vfs.size options"),
        ("VFS.Foo=1", "vfs driver does not support vfs.foo options"),
        ("novalue", "unable to parse key/value option: novalue"),
        ("vfs.ignore_chown_errors=maybe", "strconv.ParseBool"),
    ],
)
def test_bad_options(driver_factory: Factory, option: str, message: str) -> None:
    with pytest.raises(InvalidOption, match=message):
        driver_factory([option])


def test_accepted_options(driver_factory: Factory, tmp_path: Path) -> None:
    d = driver_factory([f".imagestore={tmp_path}/a,{tmp_path}/b", "vfs.ignore_chown_errors=true"])
    assert d.additional_image_stores() == [f"{tmp_path}/a", f"{tmp_path}/b"]
    assert d.ignore_chown_errors


def test_mount_options_other_than_ro_are_refused(driver_factory: Factory) -> None:
    d = driver_factory()
    d.create("l", None)
    assert d.get("l", MountOpts(options=("ro",)))
    with pytest.raises(InvalidOption, match="vfs driver does not support mount options"):
        d.get("l", MountOpts(options=("nodev",)))


def test_per_layer_storage_options_are_refused(driver_factory: Factory) -> None:
    with pytest.raises(InvalidOption, match="--storage-opt is not supported for vfs"):
        driver_factory().create("l", None, CreateOpts(storage_opt={"size": "1G"}))


def test_layers_in_additional_image_stores_are_found(driver_factory: Factory, tmp_path: Path) -> None:
    ro = driver_factory()
    ro.create("shared", None)
    Path(ro.get("shared"), "f").write_text("from the read-only store")
    d = driver_factory([f"vfs.imagestore={ro.config.root}"])
    assert d.exists("shared") and "shared" not in d.list_layers()
    d.create("child", "shared")
    assert Path(d.get("child"), "f").read_text() == "from the read-only store"


def test_root_owner_follows_id_mappings(driver_factory: Factory) -> None:
    d = driver_factory()
    maps = IDMappings((IDMap(0, 100000, 65536),), (IDMap(0, 200000, 65536),))
    d.create("mapped", None, CreateOpts(id_mappings=maps))
    st = os.stat(d.get("mapped"))
    assert (st.st_uid, st.st_gid) == (100000, 200000)
    d.create("child", "mapped")
    st = os.stat(d.get("child"))
    assert (st.st_uid, st.st_gid) == (100000, 200000)


def test_copy_keeps_everything(driver_factory: Factory) -> None:
    d = driver_factory()
    d.create("src", None)
    populate_every_kind(d.get("src"), os.geteuid() == 0)
    d.create("dst", "src")
    src, dst = d.get("src"), d.get("dst")
    assert describe_tree(dst) == describe_tree(src)
    # mtimes of directories survive too, and hard links stay links, not copies
    assert os.stat(os.path.join(dst, "dir")).st_mtime_ns == os.stat(os.path.join(src, "dir")).st_mtime_ns
    assert os.stat(os.path.join(dst, "hardlink")).st_ino == os.stat(os.path.join(dst, "dir/file")).st_ino
    assert os.stat(os.path.join(dst, "hardlink")).st_ino != os.stat(os.path.join(src, "hardlink")).st_ino


def test_crash_leftovers_do_not_block_create(driver_factory: Factory) -> None:
    d = driver_factory()
    os.makedirs(os.path.join(d.dir, ".creating-x", "junk"))
    os.makedirs(os.path.join(d.dir, "x", "old"))
    d.create("x", None)
    assert os.listdir(d.get("x")) == []
    assert d.list_layers() == ["x"]


def test_failed_create_leaves_nothing(driver_factory: Factory) -> None:
    d = driver_factory()
    with pytest.raises(DriverLayerUnknown):
        d.create("orphan", "no-such-parent")
    assert not d.exists("orphan")
    assert os.listdir(d.dir) == []


def test_remove_is_idempotent(driver_factory: Factory) -> None:
    d = driver_factory()
    d.remove("never-existed")
    d.create("l", None)
    d.remove("l")
    d.remove("l")
    assert not d.exists("l")


UNPRIVILEGED = """
import os, sys
from containers_storage.drivers.api import DriverConfig
from containers_storage_vfs.driver import VFSDriver
root = sys.argv[1]
d = VFSDriver(DriverConfig("vfs", root + "/graph", root + "/run", options=("vfs.ignore_chown_errors=true",)))
d.create("base", None)
base = d.get("base")
os.chmod(base, 0o755)
os.makedirs(base + "/ro-dir/inner")
open(base + "/ro-dir/inner/f", "w").write("x")
os.chmod(base + "/ro-dir/inner", 0o555)
os.chmod(base + "/ro-dir", 0o555)
os.chmod(base, 0o555)
d.create("child", "base")
assert open(d.get("child") + "/ro-dir/inner/f").read() == "x"
d.remove("child")
d.remove("base")
print(sorted(d.list_layers()))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_unprivileged_user() -> None:
    """As 'nobody': layers with read-only directories are created, copied and removed."""
    import shutil
    import tempfile

    work = tempfile.mkdtemp(prefix="cs-vfs-nobody-")  # pytest's own tmp dirs are 0700 root
    try:
        os.chown(work, 65534, 65534)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        result = subprocess.run(
            [*cmd, sys.executable, "-c", UNPRIVILEGED, work],
            capture_output=True,
            text=True,
            env={**os.environ, "HOME": work},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"
    finally:
        shutil.rmtree(work)


def test_config_home_uses_requested_name(tmp_path: Path) -> None:
    d = VFSDriver(DriverConfig("vfs", str(tmp_path / "g"), str(tmp_path / "r")))
    assert d.home == str(tmp_path / "g" / "vfs")


def test_diff_getter_stays_inside_the_layer(driver_factory: Factory, tmp_path: Path) -> None:
    """tar-split replay reads files by name; a symlink in the layer must not lead out."""
    outside = tmp_path / "secret"
    outside.write_text("host data")
    d = driver_factory()
    d.create("l", None)
    root = d.get("l")
    Path(root, "f").write_text("layer data")
    os.symlink(str(outside), os.path.join(root, "escape"))
    getter = d.diff_getter("l")
    try:
        with getter.open("f") as fh:
            assert fh.read() == b"layer data"
        with pytest.raises(OSError):
            getter.open("escape").close()
    finally:
        getter.close()
