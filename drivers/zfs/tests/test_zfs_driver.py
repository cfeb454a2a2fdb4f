"""zfs-specific behaviour on a real pool: layout, probing, options, quotas, recovery."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from containers_storage.drivers import mounts
from containers_storage.drivers.api import ApplyDiffOpts, CreateOpts, DriverConfig, MountOpts
from containers_storage.errors import (
    PROBE_SKIPPABLE,
    DriverError,
    DriverLayerUnknown,
    DriverPrerequisites,
    InvalidOption,
)
from containers_storage.idtools import IDMap, IDMappings
from containers_storage_zfs.command import ZfsCommandError
from containers_storage_zfs.driver import ZfsDriver
from containers_storage_zfs.scratch import STATE_DIR
from containers_storage_zfs.site import DEV_ZFS

from .conftest import DriverFactory, Pool


def _props(driver: ZfsDriver, name: str, *props: str) -> dict[str, str]:
    return driver.zfs.get([name], props)[name]


def _datasets(driver: ZfsDriver) -> dict[str, str]:
    """Every dataset (snapshots too) below the parent, with its type."""
    return {n: p["type"] for n, p in driver.zfs.get([driver.fsname], ["type"], recursive=True).items()}


def _config(root: str, run: str, *options: str) -> DriverConfig:
    return DriverConfig(requested_name="zfs", root=root, run_root=run, options=options)


# -- plugin ------------------------------------------------------------------------------
def test_entry_point_offers_zfs() -> None:
    (ep,) = [e for e in entry_points(group="containers_storage.drivers") if e.name == "zfs"]
    (info,) = ep.load().cstorage_drivers()
    assert (info.name, info.priority) == ("zfs", 40)
    assert info.load() is ZfsDriver


# -- probing ---------------------------------------------------------------------------
def test_probe_without_zfs_command(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DriverPrerequisites, match="'zfs' command is not available"):
        ZfsDriver.probe(_config(str(tmp_path), str(tmp_path)))


def test_probe_graph_root_not_on_zfs(zfs_pool: Pool, tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(DriverPrerequisites, match="is not on a zfs filesystem") as info:
        ZfsDriver.probe(_config(str(tmp_path), str(tmp_path)))
    assert isinstance(info.value, PROBE_SKIPPABLE)


def test_probe_finds_dataset_from_mount_and_changes_nothing(
    zfs_dataset: tuple[str, str], tmp_path: os.PathLike[str]
) -> None:
    name, mountdir = zfs_dataset
    root = os.path.join(mountdir, "not", "yet")
    ZfsDriver.probe(_config(root, str(tmp_path)))
    assert not os.path.exists(os.path.join(mountdir, "not"))
    os.makedirs(root)
    driver = ZfsDriver(_config(root, str(tmp_path)))
    assert driver.fsname == name
    assert os.path.isdir(os.path.join(root, "zfs"))


def test_fsname_option_needs_no_zfs_graph_root(
    zfs_dataset: tuple[str, str], tmp_path: os.PathLike[str]
) -> None:
    name, _ = zfs_dataset
    root = os.path.join(str(tmp_path), "graph")
    driver = ZfsDriver(_config(root, str(tmp_path), f"zfs.fsname={name}"))
    driver.create("l", None)
    assert driver.get("l") == os.path.join(root, "zfs", "graph", "l")
    assert _datasets(driver)[f"{name}/l"] == "filesystem"
    driver.put("l")
    driver.remove("l")


def test_missing_fsname_is_a_clear_error(zfs_pool: Pool, tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(DriverError, match=f"cannot find root filesystem {zfs_pool.name}/nope"):
        ZfsDriver(_config(str(tmp_path), str(tmp_path), f"zfs.fsname={zfs_pool.name}/nope"))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("zfs.bogus=1", "unknown option zfs.bogus"),
        # storage.conf's [storage.options.zfs] size becomes zfs.size, which upstream rejects
        ("zfs.size=10G", "unknown option zfs.size"),
        ("zfs.fsname", "unable to parse key/value option"),
    ],
)
def test_bad_driver_options(
    zfs_dataset: tuple[str, str], tmp_path: os.PathLike[str], option: str, message: str
) -> None:
    with pytest.raises(InvalidOption, match=message):
        ZfsDriver(_config(zfs_dataset[1], str(tmp_path), option))


# -- layout ----------------------------------------------------------------------------
def test_layout_clone_of_deferred_snapshot(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    driver.create("base", None)
    driver.create("child", "base")
    base, child = driver.dataset("base"), driver.dataset("child")
    props = _props(driver, child, "origin", "mountpoint")
    snapshot = props["origin"]
    parent_ds, _, nanos = snapshot.partition("@")
    assert parent_ds == base and nanos.isdigit() and int(nanos) < 1_000_000_000
    assert props["mountpoint"] == "legacy"
    assert _props(driver, snapshot, "defer_destroy")["defer_destroy"] == "on"
    assert _props(driver, base, "mountpoint")["mountpoint"] == "legacy"
    driver.remove("child")
    # the deferred snapshot went with its last clone
    assert [n for n, t in _datasets(driver).items() if t == "snapshot"] == []
    driver.remove("base")
    assert _datasets(driver) == {driver.fsname: "filesystem"}


def test_datasets_at_rest_are_never_mounted_by_the_daemon(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    driver.create("l", None)
    driver.get("l")
    driver.put("l")
    props = _props(driver, driver.dataset("l"), "mountpoint", "mounted", "canmount")
    assert (props["mountpoint"], props["mounted"]) == ("legacy", "no")
    if driver.mounter.kind == "fuse":
        assert props["canmount"] == "noauto"
    assert not os.path.exists(driver.mount_path("l"))
    driver.remove("l")


def test_base_root_owned_by_mapped_root(driver_factory: DriverFactory) -> None:
    maps = IDMappings(uids=(IDMap(0, 100000, 65536),), gids=(IDMap(0, 200000, 65536),))
    driver = driver_factory()
    driver.create("mapped", None, CreateOpts(id_mappings=maps))
    driver.create("default", None)
    for layer, owner in (("mapped", (100000, 200000)), ("default", (0, 0))):
        st = os.stat(driver.get(layer))
        driver.put(layer)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (*owner, 0o555)
        driver.remove(layer)


# -- quotas ----------------------------------------------------------------------------
def test_size_option_sets_quota(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    driver.create("base", None, CreateOpts(storage_opt={"size": "1.5GiB"}))
    driver.create("child", "base", CreateOpts(storage_opt={"Size": "50M"}))
    assert _props(driver, driver.dataset("base"), "quota")["quota"] == str(3 << 29)
    assert _props(driver, driver.dataset("child"), "quota")["quota"] == str(50 << 20)
    driver.remove("child")
    driver.remove("base")


def test_quota_write_fails_with_edquot_in_base_layer(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    driver.create("small", None, CreateOpts(storage_opt={"size": "8M"}))
    root = driver.get("small")
    try:
        with pytest.raises(OSError) as info, open(os.path.join(root, "big"), "wb") as f:
            for _ in range(32):
                f.write(b"\1" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
        assert info.value.errno == errno.EDQUOT
    finally:
        driver.put("small")
    driver.remove("small")


@pytest.mark.parametrize(
    ("opt", "message"), [({"size": "lots"}, "invalid size"), ({"inodes": "10"}, "unknown option inodes")]
)
def test_bad_layer_options_leave_nothing(
    driver_factory: DriverFactory, opt: dict[str, str], message: str
) -> None:
    driver = driver_factory()
    before = _datasets(driver)
    with pytest.raises(InvalidOption, match=message):
        driver.create("bad", None, CreateOpts(storage_opt=opt))
    assert not driver.exists("bad")
    assert _datasets(driver) == before


# -- failures and recovery -------------------------------------------------------------
def test_unknown_parent_leaves_nothing(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    before = _datasets(driver)
    with pytest.raises(DriverLayerUnknown, match="does not exist"):
        driver.create("orphan", "no-such-parent")
    assert _datasets(driver) == before
    assert not driver.exists("orphan")


def test_leftover_dataset_is_replaced(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    driver.create("base", None)
    # an aborted earlier run left the dataset behind, unknown to this driver
    driver.zfs.run("create", "-o", "mountpoint=legacy", driver.dataset("stale"))
    driver.create("stale", "base")
    assert _props(driver, driver.dataset("stale"), "origin")["origin"].startswith(
        driver.dataset("base") + "@"
    )
    driver.remove("stale")
    driver.remove("base")


def test_remove_is_tolerant_of_missing_datasets(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    driver.create("l", None)
    driver.zfs.run("destroy", "-r", driver.dataset("l"))
    driver.remove("l")
    driver.remove("never-existed")
    assert not driver.exists("l")


def test_remove_while_mounted(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    driver.create("l", None)
    path = driver.get("l")
    driver.remove("l")
    assert not mounts.is_mounted(path)
    assert not driver.exists("l")


def test_command_errors_carry_stderr(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    with pytest.raises(ZfsCommandError, match="dataset does not exist") as info:
        driver.zfs.run("get", "-H", "-p", "type", driver.dataset("nothing"))
    assert info.value.returncode != 0 and "does not exist" in info.value.stderr
    assert isinstance(info.value, DriverError)


def test_get_unknown_layer(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    with pytest.raises(DriverLayerUnknown):
        driver.get("nothing")
    assert not os.path.exists(driver.mount_path("nothing"))
    driver.put("nothing")  # an unbalanced put is harmless, as upstream


# -- several instances -----------------------------------------------------------------
def test_second_instance_sees_new_layers_and_mounts(driver_factory: DriverFactory) -> None:
    first = driver_factory()
    second = driver_factory(root=first.config.root)
    first.create("late", None)
    assert second.exists("late")
    path = first.get("late")
    with open(os.path.join(path, "f"), "w") as f:
        f.write("shared")
    # the second instance adopts the existing mount instead of mounting again
    assert second.get("late") == path
    with open(os.path.join(path, "f")) as f:
        assert f.read() == "shared"
    second.put("late")
    assert mounts.is_mounted(path)
    first.put("late")
    assert not mounts.is_mounted(path)
    third = driver_factory(root=first.config.root)
    first.remove("late")
    assert not first.exists("late")
    # positive answers are cached (as upstream); mounting then reports the dataset missing
    assert third.exists("late")
    with pytest.raises(ZfsCommandError, match="does not exist"):
        third.get("late")
    assert not os.path.exists(path)


# -- mounting --------------------------------------------------------------------------
def test_read_only_mount(driver_factory: DriverFactory) -> None:
    driver = driver_factory()
    driver.create("l", None)
    path = driver.get("l", MountOpts(options=("ro",)))
    try:
        with pytest.raises(OSError) as info:
            open(os.path.join(path, "x"), "w").close()
        assert info.value.errno == errno.EROFS
    finally:
        driver.put("l")
    path = driver.get("l")
    open(os.path.join(path, "x"), "w").close()
    driver.put("l")
    driver.remove("l")


def test_mountopt_option_applies(driver_factory: DriverFactory) -> None:
    driver = driver_factory(["zfs.mountopt=noatime"])
    driver.create("l", None)
    path = driver.get("l")
    try:
        found = mounts.find_mount(path)
        assert found is not None and "noatime" in found.options.split(",")
    finally:
        driver.put("l")
    driver.remove("l")


def test_status_and_metadata(driver_factory: DriverFactory, zfs_pool: Pool) -> None:
    driver = driver_factory()
    status = dict(driver.status())
    assert [k for k, _ in driver.status()] == [
        "Zpool",
        "Zpool Health",
        "Parent Dataset",
        "Space Used By Parent",
        "Space Available",
        "Parent Quota",
        "Compression",
    ]
    assert status["Zpool"] == zfs_pool.name and status["Zpool Health"] == "ONLINE"
    assert status["Parent Dataset"] == driver.fsname and status["Parent Quota"] == "no"
    assert int(status["Space Used By Parent"]) > 0 and int(status["Space Available"]) > 0
    assert status["Compression"] == "off"
    driver.zfs.run("set", "quota=1G", driver.fsname)
    assert dict(driver.status())["Parent Quota"] == str(1 << 30)
    assert driver.metadata("x") == {
        "Mountpoint": os.path.join(driver.home, "graph", "x"),
        "Dataset": f"{driver.fsname}/x",
    }


def test_probe_when_the_zfs_fuse_daemon_does_not_answer(zfs_dataset: tuple[str, str], tmp_path: Path) -> None:
    """Hide the daemon's socket in a private mount namespace and probe from there."""
    if os.path.exists(DEV_ZFS):
        pytest.skip("kernel OpenZFS has no daemon")
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    script = (
        "from containers_storage.drivers.api import DriverConfig\n"
        "from containers_storage_zfs.driver import ZfsDriver\n"
        "from containers_storage.errors import DriverPrerequisites\n"
        "try:\n"
        f"    ZfsDriver.probe(DriverConfig(requested_name='zfs', root={zfs_dataset[1]!r}, run_root='/x'))\n"
        "except DriverPrerequisites as e:\n"
        "    print(e)\n"
    )
    socket_dir = os.path.realpath("/var/run/zfs")
    shell = f'mount -t tmpfs tmpfs "{socket_dir}" && exec "$0" -c "$1"'
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", shell, sys.executable, script],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "zfs-fuse daemon does not answer" in proc.stdout
    assert "Please make sure that the zfs-fuse daemon is running" in proc.stdout


def test_probe_without_any_pool(zfs_pool: Pool, tmp_path: Path) -> None:
    """A second zfs-fuse daemon, private to a mount namespace, that has no pool."""
    _needs_private_daemon()
    script = (
        "from containers_storage.drivers.api import DriverConfig\n"
        "from containers_storage_zfs.driver import ZfsDriver\n"
        "from containers_storage_zfs.scratch import zfs_service\n"
        "from containers_storage.errors import DriverPrerequisites\n"
        "with zfs_service():\n"
        "    try:\n"
        f"        ZfsDriver.probe(DriverConfig(requested_name='zfs', root={str(tmp_path)!r}, run_root=''))\n"
        "    except DriverPrerequisites as e:\n"
        "        print(e)\n"
    )
    (line,) = _run_with_private_daemon(script)
    assert line.startswith("no ZFS pool is imported (zpool list shows none)")


def test_layer_left_mounted_by_a_killed_process(driver_factory: DriverFactory) -> None:
    """A process that dies between get and put leaves a mounted layer; a new driver
    instance adopts the mount, and removal unmounts and destroys it."""
    first = driver_factory()
    root = first.config.root
    script = (
        "import os\n"
        "from containers_storage.drivers.api import DriverConfig\n"
        "from containers_storage_zfs.driver import ZfsDriver\n"
        f"d = ZfsDriver(DriverConfig(requested_name='zfs', root={root!r}, run_root=''))\n"
        "d.create('crashed', None)\n"
        "p = d.get('crashed')\n"
        "open(os.path.join(p, 'data'), 'w').write('written before the crash')\n"
        "os._exit(9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    driver = driver_factory(root=root)
    path = driver.mount_path("crashed")
    assert driver.exists("crashed") and mounts.is_mounted(path)
    assert driver.get("crashed") == path
    with open(os.path.join(path, "data")) as f:
        assert f.read() == "written before the crash"
    driver.put("crashed")
    driver.remove("crashed")
    assert not mounts.is_mounted(path) and not driver.exists("crashed")
    assert driver.zfs.dataset_type(driver.dataset("crashed")) is None


def test_same_size_rewrite_in_a_child_is_a_change(driver_factory: DriverFactory) -> None:
    """Whole-second file times (zfs-fuse) must not hide a rewrite done right after the
    parent was written: the child starts in a later second."""
    driver = driver_factory()
    for attempt in range(3):
        base, child = f"base{attempt}", f"child{attempt}"
        driver.create(base, None)
        path = driver.get(base)
        with open(os.path.join(path, "f"), "wb") as f:
            f.write(b"a" * 100)
        driver.put(base)
        driver.create(child, base)
        path = driver.get(child)
        with open(os.path.join(path, "f"), "wb") as f:
            f.write(b"b" * 100)
        driver.put(child)
        changes = driver.changes(child, IDMappings(), base, IDMappings())
        assert [(c.path, int(c.kind)) for c in changes] == [("/f", 0)]
        driver.remove(child)
        driver.remove(base)


def test_no_wait_for_a_child_of_an_unwritten_parent(driver_factory: DriverFactory) -> None:
    """New base layers, read-only mounts and applied diffs do not delay a child."""
    import io
    import tarfile

    driver = driver_factory()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("f")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    for i in range(3):
        driver.create(f"p{i}", None)
    driver.get("p1", MountOpts(options=("ro",)))
    driver.put("p1")
    buf.seek(0)
    driver.apply_diff("p2", None, ApplyDiffOpts(diff=buf))
    # nothing recorded as written, so creating children does not wait for the next second
    assert not {"p0", "p1", "p2"} & driver._released.keys()
    for i in range(3):
        driver.create(f"c{i}", f"p{i}")
    for i in range(3):
        driver.remove(f"c{i}")
        driver.remove(f"p{i}")


_RESTART_SCRIPT = """
import os, signal, sys, time, tempfile
from containers_storage.drivers import mounts
from containers_storage.drivers.api import DriverConfig
from containers_storage_zfs.driver import ZfsDriver
from containers_storage_zfs.scratch import STATE_DIR, _start_daemon, scratch_pool, zfs_service

work = sys.argv[1]
with zfs_service() as zfs, scratch_pool(zfs, work, "1G", name="restartpool") as (pool, mnt):
    root = os.path.join(work, "graph")  # off ZFS, so that only the layer mount goes stale
    driver = ZfsDriver(DriverConfig(requested_name="zfs", root=root, run_root="",
                                    options=(f"zfs.fsname={pool}",)))
    driver.create("l", None)
    path = driver.get("l")
    with open(os.path.join(path, "kept"), "w") as f:
        f.write("on disk")
        f.flush()
        os.fsync(f.fileno())  # what a dying daemon has not committed is lost, as on power loss
    pidfile = os.path.join(STATE_DIR, "zfs-fuse.pid")
    pid = int(open(pidfile).read())
    os.kill(pid, signal.SIGKILL)
    while os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)
    try:
        os.listdir(path)
        print("mount still alive")
    except OSError as e:
        print("stale", e.errno)
    os.unlink(pidfile)
    os.unlink("/run/zfs/zfs_socket")
    _start_daemon(zfs, pidfile)
    driver.put("l")
    print("mounted after put", mounts.is_mounted(path))
    path = driver.get("l")
    print("content", open(os.path.join(path, "kept")).read())
    driver.put("l")
    driver.remove("l")
    print("exists", driver.exists("l"))
"""


def test_layer_mounted_when_the_zfs_fuse_daemon_died(zfs_pool: Pool, tmp_path: Path) -> None:
    """A private zfs-fuse daemon is killed while a layer is mounted and started again: put
    detaches the dead mount, and the layer mounts and goes as usual afterwards."""
    _needs_private_daemon()
    lines = _run_with_private_daemon(_RESTART_SCRIPT, str(tmp_path))
    assert lines == ["stale 107", "mounted after put False", "content on disk", "exists False"]


def _run_with_private_daemon(script: str, *args: str) -> list[str]:
    """Run ``script`` in a mount namespace where the host's zfs-fuse state (pool cache,
    socket, lock, scratch users) is hidden, so that it starts a daemon of its own; returns
    its output lines."""
    hidden = [os.path.realpath(p) for p in ("/var/lib/zfs", "/var/run/zfs", "/var/lock/zfs", STATE_DIR)]
    shell = " && ".join(f'mkdir -p "{p}" && mount -t tmpfs tmpfs "{p}"' for p in hidden)
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{shell} && exec "$0" "$@"', sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def _needs_private_daemon() -> None:
    if os.path.exists(DEV_ZFS) or shutil.which("zfs-fuse") is None:
        pytest.skip("needs zfs-fuse (a second, private daemon)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
