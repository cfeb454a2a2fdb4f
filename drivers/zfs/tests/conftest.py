"""A real ZFS for the tests: a pool on a sparse file, made once per session (starting the
zfs-fuse daemon when nothing answers, stopping it afterwards if we started it) and
destroyed in the finalizer however the tests end. Each test gets its own dataset under the
pool, mounted where its graph roots live, so that the driver finds its parent dataset
through the mount table as it does in production."""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest

from containers_storage.drivers.api import DriverConfig
from containers_storage.idtools import IDMappings
from containers_storage_zfs.command import Zfs
from containers_storage_zfs.driver import ZfsDriver
from containers_storage_zfs.scratch import (
    Unavailable,
    destroy_dataset,
    scratch_pool,
    unavailable_reason,
    zfs_service,
)

DriverFactory = Callable[..., ZfsDriver]


@dataclass(frozen=True)
class Pool:
    zfs: Zfs
    name: str
    mountdir: str


@pytest.fixture(scope="session")
def zfs_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no real ZFS to test on: {reason}")
    workdir = str(tmp_path_factory.mktemp("zfs-pool"))
    try:
        with zfs_service() as zfs, scratch_pool(zfs, workdir, "4G") as (name, mountdir):
            _require_xattrs(mountdir)
            yield Pool(zfs, name, mountdir)
    except Unavailable as e:
        pytest.skip(f"no real ZFS to test on: {e}")


def _require_xattrs(mountdir: str) -> None:
    """A zfs-fuse daemon started without ``--enable-xattr`` refuses every xattr, which
    layers must keep; say so once instead of letting scenarios fail with ENOTSUP."""
    try:
        os.setxattr(mountdir, "user.cstest", b"1")
        os.removexattr(mountdir, "user.cstest")
    except OSError as e:
        if e.errno != errno.ENOTSUP:
            raise
        pytest.fail(
            "the running zfs-fuse daemon has extended attributes off: restart it with "
            "--enable-xattr (or stop it and let the tests start their own)"
        )


_counter = itertools.count()


@pytest.fixture
def zfs_dataset(zfs_pool: Pool) -> Iterator[tuple[str, str]]:
    """A fresh dataset (name, mount directory), destroyed with everything in it afterwards."""
    n = next(_counter)
    name = f"{zfs_pool.name}/t{n}"
    mountdir = os.path.join(zfs_pool.mountdir, f"t{n}")
    zfs_pool.zfs.run("create", "-o", f"mountpoint={mountdir}", name)
    yield name, mountdir
    destroy_dataset(zfs_pool.zfs, name)


@pytest.fixture
def driver_factory(zfs_dataset: tuple[str, str], tmp_path: os.PathLike[str]) -> Iterator[DriverFactory]:
    """Builds drivers on fresh graph roots in the test's dataset (run roots off ZFS);
    every driver built is cleaned up and its mounts released afterwards."""
    _, mountdir = zfs_dataset
    built: list[ZfsDriver] = []
    n = itertools.count()

    def make(
        options: Sequence[str] = (), root: str | None = None, id_mappings: IDMappings = IDMappings()
    ) -> ZfsDriver:
        i = next(n)
        graph = root or os.path.join(mountdir, f"graph{i}")
        run = os.path.join(str(tmp_path), f"run{i}")
        os.makedirs(graph, exist_ok=True)
        os.makedirs(run, exist_ok=True)
        config = DriverConfig(
            requested_name="zfs", root=graph, run_root=run, options=tuple(options), id_mappings=id_mappings
        )
        driver = ZfsDriver(config)
        built.append(driver)
        return driver

    yield make
    for driver in built:
        driver.cleanup()
        for id in list(driver._mount_counts):
            driver._mount_counts[id] = 1
            driver.put(id)
