"""Per-layer size limits through btrfs quota groups, each test on a btrfs of its own
(quotas are a filesystem-wide switch)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable

import pytest

from containers_storage.drivers.api import CreateOpts
from containers_storage.drivers.mounts import is_mounted
from containers_storage.errors import InvalidOption, NotSupported
from containers_storage.testing.loopdev import LoopFilesystem
from containers_storage_btrfs import ioctl
from containers_storage_btrfs.driver import BtrfsDriver

DriverFactory = Callable[..., BtrfsDriver]
MiB = 1 << 20


def quotas_on(path: str) -> bool:
    with ioctl.open_dir(path) as fd:
        return ioctl.quota_enabled(fd)


def max_referenced(path: str) -> str:
    """The referenced-bytes limit btrfs-progs reports for the subvolume at ``path``."""
    with ioctl.open_dir(path) as fd:
        qgroup = f"0/{ioctl.subvolume_id(fd)}"
    out = subprocess.run(
        ["btrfs", "qgroup", "show", "-r", "--raw", path], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == qgroup:
            return fields[3]
    raise AssertionError(f"qgroup {qgroup} not listed:\n{out}")


def write_until_error(path: str, total: int) -> OSError | None:
    chunk = b"\xa5" * MiB
    with open(path, "wb") as f:
        try:
            for _ in range(total // MiB):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        except OSError as e:
            return e
    return None


def test_size_enables_quotas_on_demand_and_limits_the_layer(fresh_driver_factory: DriverFactory) -> None:
    d = fresh_driver_factory()
    assert not quotas_on(d.home), "quotas are enabled only when asked for"
    d.create("base", None)
    assert not quotas_on(d.home)
    d.create("q", "base", CreateOpts(storage_opt={"size": "50M"}))
    assert quotas_on(d.home)
    with open(os.path.join(d.home, "quotas", "q")) as f:
        assert f.read() == str(50 * MiB)
    path = d.get("q")
    assert max_referenced(path) == str(50 * MiB)
    err = write_until_error(os.path.join(path, "big"), 100 * MiB)
    assert err is not None and err.errno == errno.EDQUOT, err
    d.put("q")
    # layers without a size are not limited
    assert write_until_error(os.path.join(d.get("base"), "big"), 100 * MiB) is None
    assert max_referenced(d.get("base")) == "none"


def test_limit_is_reapplied_on_every_mount(fresh_driver_factory: DriverFactory) -> None:
    d = fresh_driver_factory()
    d.create("q", None, CreateOpts(storage_opt={"Size": "20m"}))
    path = d.get("q")
    subprocess.run(["btrfs", "qgroup", "limit", "none", path], check=True)
    assert max_referenced(path) == "none"
    d.get("q")
    assert max_referenced(path) == str(20 * MiB)
    # a driver opened later (another process) re-applies it too
    subprocess.run(["btrfs", "qgroup", "limit", "none", path], check=True)
    again = fresh_driver_factory(root=d.config.root)
    again.get("q")
    assert max_referenced(path) == str(20 * MiB)


def test_min_space_enables_quotas_at_init_and_bounds_sizes(fresh_driver_factory: DriverFactory) -> None:
    d = fresh_driver_factory(["btrfs.min_space=10M"])
    assert quotas_on(d.home)
    with pytest.raises(InvalidOption, match=r"btrfs: storage size cannot be less than 10.49MB"):
        d.create("small", None, CreateOpts(storage_opt={"size": "5M"}))
    assert d.list_layers() == []
    d.create("ok", None, CreateOpts(storage_opt={"size": "10M"}))
    assert max_referenced(d.get("ok")) == str(10 * MiB)


def test_invalid_create_does_not_turn_quotas_on(fresh_driver_factory: DriverFactory) -> None:
    d = fresh_driver_factory()
    with pytest.raises(FileNotFoundError):
        d.create("q", "missing-parent", CreateOpts(storage_opt={"SIZE": "20M"}))
    with pytest.raises(InvalidOption):
        d.create("q", None, CreateOpts(storage_opt={"size": "0"}))
    assert not quotas_on(d.home)
    assert d.list_layers() == []


def test_remove_with_quotas_on_also_removes_nested_subvolumes(fresh_driver_factory: DriverFactory) -> None:
    d = fresh_driver_factory()
    d.create("q", None, CreateOpts(storage_opt={"size": "30M"}))
    root = d.get("q")
    subprocess.run(
        ["btrfs", "subvolume", "create", os.path.join(root, "nested")], check=True, capture_output=True
    )
    d.remove("q")
    assert not d.exists("q")
    assert not os.path.exists(os.path.join(d.home, "quotas", "q"))
    listed = subprocess.run(
        ["btrfs", "subvolume", "list", "-o", d.subvolumes], capture_output=True, text=True, check=True
    ).stdout
    assert listed.strip() == ""


def test_quotas_that_cannot_be_enabled_give_a_clear_error(
    fresh_driver_factory: DriverFactory, fresh_btrfs: LoopFilesystem
) -> None:
    d = fresh_driver_factory()
    d.create("base", None)
    d.cleanup()
    subprocess.run(["mount", "-o", "remount,ro", fresh_btrfs.mountpoint], check=True)
    try:
        with pytest.raises(NotSupported) as exc:
            fresh_driver_factory(["btrfs.min_space=1M"], root=d.config.root)
        text = str(exc.value)
        assert "cannot enable quotas" in text and "btrfs.min_space" in text
        assert "Read-only file system" in text
        assert not is_mounted(d.home), "a failed init leaves no bind mount behind"
        ro = fresh_driver_factory(root=d.config.root)
        with pytest.raises(NotSupported, match="cannot enable quotas .*size=20M"):
            ro.create("q", "base", CreateOpts(storage_opt={"size": "20M"}))
        assert ro.list_layers() == ["base"]
    finally:
        subprocess.run(["mount", "-o", "remount,rw", fresh_btrfs.mountpoint], check=True)


def fill(path: str) -> None:
    """Allocate data until the filesystem has no room left."""
    with open(path, "wb") as f:
        size = 0
        step = 64 * MiB
        while step >= MiB:
            try:
                os.posix_fallocate(f.fileno(), size, step)
                size += step
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                step //= 2


def test_full_filesystem_layers_still_created_and_removed(fresh_driver_factory: DriverFactory) -> None:
    """A full disk fails writes with ENOSPC, but creating a snapshot needs no data space and
    removing layers gives the space back."""
    d = fresh_driver_factory()
    d.create("hog", None)
    fill(os.path.join(d.get("hog"), "filler"))
    err = write_until_error(os.path.join(d.get("hog"), "more"), 16 * MiB)
    assert err is not None and err.errno == errno.ENOSPC, err
    d.create("child", "hog")
    assert os.path.exists(os.path.join(d.get("child"), "filler"))
    d.remove("child")
    d.remove("hog")
    d.create("after", None)
    # the kernel's cleaner frees the extents in the background, woken by commits
    for _ in range(100):
        subprocess.run(["btrfs", "filesystem", "sync", d.home], check=True, capture_output=True)
        if write_until_error(os.path.join(d.get("after"), "data"), 64 * MiB) is None:
            break
    else:
        raise AssertionError("removing the layers did not give the space back")
