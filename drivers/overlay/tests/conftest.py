"""Fixtures: overlay drivers on fresh graph/run roots in a temporary directory on the
host's real filesystem (ext4 here), with every mount below it undone afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

from containers_storage.drivers.api import Driver, DriverConfig
from containers_storage.drivers.fsutil import mountpoints_below
from containers_storage.drivers.mounts import MNT_DETACH, unmount
from containers_storage.idtools import IDMappings


def overlay_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "kernel overlay mounts in these tests need root"
    with open("/proc/filesystems", encoding="ascii") as f:
        if not any(line.split()[-1:] == ["overlay"] for line in f):
            return "the kernel has no overlay filesystem"
    return None


def undo_mounts(path: str) -> None:
    for mnt in mountpoints_below(path):
        try:
            unmount(mnt, MNT_DETACH)
        except OSError:
            pass


@pytest.fixture
def scratch_dir() -> Iterator[str]:
    """A temporary directory on a disk filesystem (not tmpfs), torn down with its mounts."""
    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    d = tempfile.mkdtemp(prefix="cs-overlay-", dir=base)
    try:
        yield d
    finally:
        undo_mounts(d)
        shutil.rmtree(d, ignore_errors=True)


if TYPE_CHECKING:
    from containers_storage_overlay.driver import OverlayDriver

DriverMaker = Callable[..., "OverlayDriver"]


@pytest.fixture
def driver_factory(scratch_dir: str) -> Iterator[DriverMaker]:
    reason = overlay_unavailable()
    if reason:
        pytest.skip(reason)
    from containers_storage_overlay.driver import OverlayDriver

    built: list[Driver] = []
    counter = iter(range(1_000_000))

    def make(
        options: Sequence[str] = (),
        *,
        name: str = "overlay",
        root: str | None = None,
        run_root: str | None = None,
        id_mappings: IDMappings = IDMappings(),
    ) -> OverlayDriver:
        n = next(counter)
        cfg = DriverConfig(
            requested_name=name,
            root=root or os.path.join(scratch_dir, f"graph{n}"),
            run_root=run_root or os.path.join(scratch_dir, f"run{n}"),
            options=tuple(options),
            id_mappings=id_mappings,
        )
        d = OverlayDriver(cfg)
        built.append(d)
        return d

    try:
        yield make
    finally:
        for d in built:
            try:
                d.cleanup()
            except Exception:
                pass
        undo_mounts(scratch_dir)
