"""btrfs-specific behaviour on a real loop-mounted btrfs: layout, snapshots, removal of
nested subvolumes, options, probing, the private home mount, status."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from importlib.metadata import entry_points

import pytest

from containers_storage.drivers.api import CreateOpts, DriverConfig, MountOpts
from containers_storage.drivers.mounts import find_mount, is_mounted
from containers_storage.errors import DriverPrerequisites, InvalidOption
from containers_storage.idtools import IDMap, IDMappings
from containers_storage_btrfs.driver import BtrfsDriver, progs_version_pairs
from containers_storage_btrfs.ioctl import FIRST_FREE_OBJECTID

DriverFactory = Callable[..., BtrfsDriver]


def btrfs(*args: str) -> str:
    return subprocess.run(["btrfs", *args], capture_output=True, text=True, check=True).stdout


def subvolume_field(path: str, field: str) -> str:
    for line in btrfs("subvolume", "show", path).splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == field:
            return value.strip()
    raise AssertionError(f"{field} not in `btrfs subvolume show {path}`")


def is_subvolume(path: str) -> bool:
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_ino == FIRST_FREE_OBJECTID


# -- probing ----------------------------------------------------------------------------
def test_probe_refuses_graph_root_not_on_btrfs(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(tmp_path, "graph")
    config = DriverConfig(requested_name="btrfs", root=root, run_root=os.path.join(tmp_path, "run"))
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True).stdout
    assert "btrfs" not in fs
    with pytest.raises(DriverPrerequisites) as exc:
        BtrfsDriver.probe(config)
    assert "is not on a btrfs filesystem" in str(exc.value)
    assert root in str(exc.value)
    assert not os.path.exists(root), "probing must not create anything"
    with pytest.raises(DriverPrerequisites):
        BtrfsDriver(config)
    assert not os.path.exists(os.path.join(root, "btrfs"))


def test_probe_accepts_missing_graph_root_on_btrfs_without_creating_it(btrfs_dir: str) -> None:
    root = os.path.join(btrfs_dir, "not", "yet")
    BtrfsDriver.probe(DriverConfig(requested_name="btrfs", root=root, run_root=root))
    assert not os.path.exists(os.path.join(btrfs_dir, "not"))


def test_plugin_offers_the_driver() -> None:
    (ep,) = [e for e in entry_points(group="containers_storage.drivers") if e.name == "btrfs"]
    (info,) = ep.load().cstorage_drivers()
    assert (info.name, info.priority) == ("btrfs", 30)
    assert info.load() is BtrfsDriver


# -- layout -----------------------------------------------------------------------------
def test_layout_base_layer_is_a_new_subvolume(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    assert d.home == os.path.join(d.config.root, "btrfs")
    assert stat.S_IMODE(os.stat(d.subvolumes).st_mode) == 0o700
    d.create("base", None)
    path = os.path.join(d.home, "subvolumes", "base")
    assert is_subvolume(path)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o555
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert subvolume_field(path, "Parent UUID") == "-"
    assert d.get("base") == path
    d.put("base")
    assert not os.path.exists(d.quotas), "no quota files without the size option"


def test_child_layer_is_a_writable_snapshot_of_its_parent(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    d.create("base", None)
    base = d.get("base")
    with open(os.path.join(base, "f"), "w") as f:
        f.write("parent")
    os.mkdir(os.path.join(base, "dir"), 0o705)
    d.create("child", "base")
    child = d.get("child")
    assert is_subvolume(child)
    assert subvolume_field(child, "Parent UUID") == subvolume_field(base, "UUID")
    assert subvolume_field(child, "Flags") == "-", "the snapshot must be writable"
    with open(os.path.join(child, "f")) as f:
        assert f.read() == "parent"
    with open(os.path.join(child, "f"), "w") as f:
        f.write("child")
    os.rmdir(os.path.join(child, "dir"))
    with open(os.path.join(base, "f")) as f:
        assert f.read() == "parent"
    assert os.path.isdir(os.path.join(base, "dir"))


def test_create_from_template_snapshots_the_template(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    d.create("base", None)
    d.create("tmpl", "base")
    with open(os.path.join(d.get("tmpl"), "t"), "w") as f:
        f.write("x")
    d.create_from_template("copy", "tmpl", IDMappings(), "base", IDMappings(), None, read_write=False)
    assert subvolume_field(d.get("copy"), "Parent UUID") == subvolume_field(d.get("tmpl"), "UUID")
    assert os.listdir(d.get("copy")) == ["t"]


def test_create_with_missing_parent_fails_and_creates_nothing(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    with pytest.raises(FileNotFoundError):
        d.create("orphan", "nope")
    assert not d.exists("orphan")
    assert d.list_layers() == []


def test_create_existing_id_fails(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    d.create("a", None)
    with pytest.raises(FileExistsError):
        d.create("a", None)
    assert d.exists("a")


def test_base_layer_owned_by_mapped_root(driver_factory: DriverFactory) -> None:
    maps = IDMappings(uids=(IDMap(0, 100000, 65536),), gids=(IDMap(0, 200000, 65536),))
    d = driver_factory(id_mappings=maps)
    st = os.stat(d.subvolumes)
    assert (st.st_uid, st.st_gid) == (100000, 200000)
    d.create("base", None)
    st = os.stat(d.get("base"))
    assert (st.st_uid, st.st_gid) == (100000, 200000)
    own = IDMappings(uids=(IDMap(0, 300000, 10),), gids=(IDMap(0, 400000, 10),))
    d.create("own", None, CreateOpts(id_mappings=own))
    st = os.stat(d.get("own"))
    assert (st.st_uid, st.st_gid) == (300000, 400000)


# -- get / put / exists / list -----------------------------------------------------------
def test_get_accepts_only_ro(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    d.create("a", None)
    assert d.get("a", MountOpts(options=("ro",))) == d.get("a")
    with pytest.raises(InvalidOption, match="btrfs driver does not support mount options"):
        d.get("a", MountOpts(options=("nodev",)))
    with pytest.raises(FileNotFoundError):
        d.get("missing")


def test_exists_and_list_layers(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    assert d.list_layers() == []
    d.create("a", None)
    d.create("b", "a")
    d.create("c", "b")
    assert sorted(d.list_layers()) == ["a", "b", "c"]
    assert d.exists("b") and not d.exists("z")


def test_read_write_disk_usage(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    d.create("a", None)
    with open(os.path.join(d.get("a"), "f"), "wb") as f:
        f.write(b"x" * 12345)
    os.mkdir(os.path.join(d.get("a"), "dir"))
    usage = d.read_write_disk_usage("a")
    assert (usage.size, usage.inodes) == (12345, 2)


# -- removal ----------------------------------------------------------------------------
def test_remove_destroys_the_subvolume(driver_factory: DriverFactory, btrfs_fs: object) -> None:
    d = driver_factory()
    d.create("a", None)
    d.create("b", "a")
    d.remove("a")
    assert not d.exists("a")
    assert d.exists("b"), "a snapshot does not depend on its source"
    listed = btrfs("subvolume", "list", "-o", d.subvolumes)
    assert "subvolumes/a\n" not in listed + "\n"
    assert "subvolumes/b" in listed
    with pytest.raises(FileNotFoundError):
        d.remove("a")


def test_remove_deletes_nested_subvolumes(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    d.create_read_write("ctr", None)
    root = d.get("ctr")
    os.makedirs(os.path.join(root, "var/lib"))
    btrfs("subvolume", "create", os.path.join(root, "top"))
    btrfs("subvolume", "create", os.path.join(root, "top", "inner"))
    btrfs("subvolume", "create", os.path.join(root, "var/lib", "deep"))
    os.makedirs(os.path.join(root, "top", "inner", "x", "y"))
    btrfs("subvolume", "create", os.path.join(root, "top", "inner", "x", "y", "deepest"))
    with open(os.path.join(root, "top", "inner", "x", "file"), "w") as f:
        f.write("data")
    d.put("ctr")
    d.remove("ctr")
    assert not d.exists("ctr")
    assert btrfs("subvolume", "list", "-o", d.subvolumes).strip() == ""


def test_remove_of_snapshot_with_nested_subvolume_placeholder(driver_factory: DriverFactory) -> None:
    # a snapshot shows a nested subvolume of its source as an empty directory
    d = driver_factory()
    d.create("a", None)
    btrfs("subvolume", "create", os.path.join(d.get("a"), "sub"))
    d.create("b", "a")
    assert os.listdir(os.path.join(d.get("b"), "sub")) == []
    assert not is_subvolume(os.path.join(d.get("b"), "sub"))
    d.remove("b")
    d.remove("a")
    assert d.list_layers() == []


# -- options ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("btrfs.mountopt=nodev", "btrfs driver does not support mount options"),
        ("btrfs.frobnicate=1", 'unknown option btrfs.frobnicate ("btrfs.frobnicate=1")'),
        ("Btrfs.Other = x", 'unknown option btrfs.other ("Btrfs.Other = x")'),
        ("novalue", "unable to parse key/value option: novalue"),
        ("btrfs.min_space=lots", "invalid size"),
    ],
)
def test_bad_driver_options_are_refused_before_touching_disk(
    driver_factory: DriverFactory, btrfs_dir: str, option: str, message: str
) -> None:
    root = os.path.join(btrfs_dir, "g")
    with pytest.raises(InvalidOption) as exc:
        driver_factory([option], root=root)
    assert message in str(exc.value)
    assert not os.path.exists(os.path.join(root, "btrfs"))


@pytest.mark.parametrize(
    ("storage_opt", "message"),
    [
        ({"size": "0"}, "btrfs: invalid storage size: 0B"),
        ({"size": "junk"}, "invalid size"),
        ({"inodes": "10"}, 'unknown option inodes (map["inodes":"10"])'),
    ],
)
def test_bad_size_options_create_nothing(
    driver_factory: DriverFactory, storage_opt: dict[str, str], message: str
) -> None:
    d = driver_factory()
    with pytest.raises(InvalidOption) as exc:
        d.create("a", None, CreateOpts(storage_opt=storage_opt))
    assert message in str(exc.value)
    assert d.list_layers() == []


# -- the private home mount -------------------------------------------------------------
def test_home_is_a_private_bind_mount_until_cleanup(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    m = find_mount(d.home)
    assert m is not None
    assert not any(o.startswith(("shared:", "master:")) for o in m.optional)
    again = driver_factory(root=d.config.root)  # a second driver on the same home
    assert find_mount(d.home) == m, "no second bind mount stacked on the first"
    again.cleanup()
    assert not is_mounted(d.home)
    d.cleanup()  # idempotent


def test_cleanup_leaves_a_foreign_mount_at_the_home_alone(
    driver_factory: DriverFactory, btrfs_dir: str
) -> None:
    root = os.path.join(btrfs_dir, "g")
    home = os.path.join(root, "btrfs")
    os.makedirs(home)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", home], check=True)
    try:
        # the home's filesystem is now tmpfs (the probe looks at the graph root), so the
        # driver runs; at cleanup it must not unmount what the admin mounted
        d = driver_factory(root=root)
        d.cleanup()
        assert find_mount(home) is not None and find_mount(home).fstype == "tmpfs"  # type: ignore[union-attr]
    finally:
        subprocess.run(["umount", "-R", home], check=True)


# -- status -----------------------------------------------------------------------------
def test_status_reports_progs_versions_when_the_header_is_there(tmp_path: os.PathLike[str]) -> None:
    header = os.path.join(tmp_path, "version.h")
    with open(header, "w") as f:
        f.write(
            '#ifndef __BUILD_VERSION\n#define BTRFS_BUILD_VERSION "Btrfs v6.2"\n'
            "#define BTRFS_LIB_MAJOR 0\n#define BTRFS_LIB_MINOR 1\n#define BTRFS_LIB_PATCHLEVEL 2\n"
        )
    assert progs_version_pairs(header) == [("Build Version", "Btrfs v6.2"), ("Library Version", "102")]
    assert progs_version_pairs(os.path.join(tmp_path, "missing.h")) == []


def test_status_of_a_driver(driver_factory: DriverFactory) -> None:
    pairs = driver_factory().status()
    assert [k for k, _ in pairs] in ([], ["Build Version"], ["Build Version", "Library Version"])


def _nested_layout(root: str) -> set[str]:
    os.makedirs(os.path.join(root, "var/lib"))
    made = ["top", "top/inner", "var/lib/deep", "top/inner/x/y/deepest", "name with space"]
    for rel in made:
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        btrfs("subvolume", "create", os.path.join(root, rel))
    return {os.path.join(root, rel) for rel in made}


def test_nested_subvolumes_found_by_kernel_search_and_by_walk(driver_factory: DriverFactory) -> None:
    from containers_storage_btrfs.subvolumes import nested_subvolumes, walk_nested

    d = driver_factory()
    d.create("a", None)
    want = _nested_layout(d.get("a"))
    found = nested_subvolumes(d.get("a"))
    assert set(found) == want
    depth = [p.count("/") for p in found]
    assert depth == sorted(depth, reverse=True), "deepest first"
    assert set(walk_nested(d.get("a"))) == want


def test_remove_without_privilege_for_tree_search_walks(
    driver_factory: DriverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from containers_storage_btrfs import subvolumes

    def refuse(fd: int) -> list[str]:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(subvolumes, "child_subvolumes", refuse)
    d = driver_factory()
    d.create("a", None)
    _nested_layout(d.get("a"))
    d.remove("a")
    assert btrfs("subvolume", "list", "-o", d.subvolumes).strip() == ""


def test_remove_with_a_mount_left_inside_the_layer(driver_factory: DriverFactory) -> None:
    d = driver_factory()
    d.create_read_write("ctr", None)
    proc_dir = os.path.join(d.get("ctr"), "proc")
    os.mkdir(proc_dir)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", proc_dir], check=True)
    try:
        d.remove("ctr")
        assert not d.exists("ctr")
        assert not is_mounted(proc_dir)
    finally:
        if is_mounted(proc_dir):
            subprocess.run(["umount", "-l", proc_dir], check=False)


_ROOTLESS_SCRIPT = """
import os, sys
from containers_storage.drivers.api import CreateOpts, DriverConfig
from containers_storage.errors import NotSupported
from containers_storage_btrfs import ioctl
from containers_storage_btrfs.driver import BtrfsDriver

root = sys.argv[1]
d = BtrfsDriver(DriverConfig("btrfs", root, root + "-run"))
d.create("base", None)
p = d.get("base")
with open(os.path.join(p, "f"), "w") as f:
    f.write("x")
with ioctl.open_dir(p) as fd:
    ioctl.create_subvolume(fd, "nested")
d.create("child", "base")
assert sorted(os.listdir(d.get("child"))) == ["f", "nested"]
try:
    d.create("q", None, CreateOpts(storage_opt={"size": "10M"}))
    raise SystemExit("quota enabled without privilege")
except NotSupported as e:
    print("quota:", e)
d.remove("child")
d.remove("base")
assert d.list_layers() == [], d.list_layers()
d.cleanup()
print("ok")
"""


def test_unprivileged_in_a_user_namespace(btrfs_dir: str) -> None:
    """As rootless podman runs it: root of a user namespace, no capability in the initial
    one (no tree search, no subvolume destroy ioctl, no quotas): removal walks and rmdirs."""
    import shutil
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces unavailable: {probe.stderr.decode().strip()}")
    root = os.path.join(btrfs_dir, "rootless")
    os.makedirs(root)
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c", _ROOTLESS_SCRIPT, root],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cannot enable quotas" in proc.stdout and "Operation not permitted" in proc.stdout
    assert proc.stdout.strip().endswith("ok")
    assert btrfs("subvolume", "list", "-o", os.path.join(root, "btrfs", "subvolumes")).strip() == ""


def test_destroy_falls_back_to_the_v1_request_on_old_kernels(
    driver_factory: DriverFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from containers_storage_btrfs import driver, ioctl

    # a request number no kernel knows answers ENOTTY, as SNAP_DESTROY_V2 does before 5.7
    monkeypatch.setattr(ioctl, "SNAP_DESTROY_V2", ioctl._ioc(1, 250, 4096))

    def no_fallback(path: str) -> None:
        assert not os.path.lexists(path), "the v1 request should have destroyed it"

    monkeypatch.setattr(driver, "remove_tree", no_fallback)
    d = driver_factory()
    d.create("a", None)
    btrfs("subvolume", "create", os.path.join(d.get("a"), "nested"))
    d.remove("a")
    assert btrfs("subvolume", "list", "-o", d.subvolumes).strip() == ""
