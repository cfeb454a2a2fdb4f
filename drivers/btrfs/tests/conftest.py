"""A real btrfs for the tests: a sparse image, formatted and loop-mounted once per session,
taken apart in the finalizer however the tests end. Each test gets fresh graph and run
roots on it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence

import pytest

from containers_storage.drivers.api import DriverConfig
from containers_storage.drivers.fsutil import remove_tree
from containers_storage.idtools import IDMappings
from containers_storage.testing.loopdev import LoopFilesystem, loop_filesystem, loop_unavailable
from containers_storage_btrfs.driver import BtrfsDriver

#: big enough for the 100 MiB quota write and the deep-layer scenarios
IMAGE_SIZE = 2 << 30

DriverFactory = Callable[..., BtrfsDriver]


@pytest.fixture(scope="session")
def btrfs_fs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopFilesystem]:
    reason = loop_unavailable("btrfs", "mkfs.btrfs")
    if reason:
        pytest.skip(f"no real btrfs to test on: {reason}")
    workdir = str(tmp_path_factory.mktemp("btrfs-loop"))
    with loop_filesystem(workdir, "btrfs", IMAGE_SIZE, ["mkfs.btrfs", "-q", "-f"]) as fs:
        yield fs


_counter = itertools.count()


@pytest.fixture
def btrfs_dir(btrfs_fs: LoopFilesystem) -> Iterator[str]:
    """A fresh directory on the btrfs, removed (with any subvolumes left in it) afterwards."""
    base = os.path.join(btrfs_fs.mountpoint, f"t{next(_counter)}")
    os.makedirs(base)
    yield base
    remove_tree(base)


@pytest.fixture
def fresh_btrfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopFilesystem]:
    """A btrfs of the test's own, for state that is filesystem-wide (quotas, read-only)."""
    reason = loop_unavailable("btrfs", "mkfs.btrfs")
    if reason:
        pytest.skip(f"no real btrfs to test on: {reason}")
    workdir = str(tmp_path_factory.mktemp("btrfs-own"))
    with loop_filesystem(workdir, "btrfs", 1 << 30, ["mkfs.btrfs", "-q", "-f"]) as fs:
        yield fs


def _factory(base: str) -> tuple[DriverFactory, list[BtrfsDriver]]:
    built: list[BtrfsDriver] = []
    runs: dict[str, str] = {}
    n = itertools.count()

    def make(
        options: Sequence[str] = (), root: str | None = None, id_mappings: IDMappings = IDMappings()
    ) -> BtrfsDriver:
        if root is None:
            i = next(n)
            root = os.path.join(base, f"graph{i}")
            runs[root] = os.path.join(base, f"run{i}")
            os.makedirs(root)
            os.makedirs(runs[root])
        graph, run = root, runs.get(root, root)
        config = DriverConfig(
            requested_name="btrfs",
            root=graph,
            run_root=run,
            options=tuple(options),
            id_mappings=id_mappings,
        )
        driver = BtrfsDriver(config)
        built.append(driver)
        return driver

    return make, built


@pytest.fixture
def driver_factory(btrfs_dir: str) -> Iterator[DriverFactory]:
    """Builds drivers, each on fresh graph and run roots unless ``root`` names a graph root
    to open again; every driver built is cleaned up afterwards."""
    make, built = _factory(btrfs_dir)
    yield make
    for driver in built:
        driver.cleanup()


@pytest.fixture
def fresh_driver_factory(fresh_btrfs: LoopFilesystem) -> Iterator[DriverFactory]:
    """Like ``driver_factory``, on a btrfs of the test's own."""
    make, built = _factory(fresh_btrfs.mountpoint)
    yield make
    for driver in built:
        driver.cleanup()
