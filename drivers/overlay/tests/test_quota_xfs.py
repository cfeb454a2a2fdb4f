"""Per-layer size quotas on XFS with project quotas (a loop-mounted image), the whole
conformance kit on XFS, and the errors elsewhere."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from containers_storage.drivers.api import CreateOpts, Driver
from containers_storage.errors import InvalidOption
from containers_storage.testing.conformance import create_base
from containers_storage.testing.loopdev import loop_filesystem, loop_unavailable
from containers_storage_overlay.driver import OverlayDriver

from . import test_conformance
from .conftest import DriverMaker, overlay_unavailable

#: whether this kernel's XFS enforces project quotas (CONFIG_XFS_QUOTA)
QUOTA: dict[str, bool] = {}


@pytest.fixture
def xfs_root(scratch_dir: str) -> Iterator[str]:
    """A loop-mounted XFS, with ``prjquota`` when the kernel's XFS has quota support."""
    reason = overlay_unavailable() or loop_unavailable("xfs", "mkfs.xfs")
    if reason:
        pytest.skip(reason)
    for n, opts in enumerate(("prjquota", "")):
        try:
            with loop_filesystem(
                os.path.join(scratch_dir, f"xfs{n}"), "xfs", 512 << 20, ["mkfs.xfs", "-q"], opts
            ) as fs:
                QUOTA["xfs"] = bool(opts)
                yield fs.mountpoint
                return
        except OSError as e:
            if e.errno != errno.EINVAL or not opts:
                raise


def _need_quota() -> None:
    if not QUOTA.get("xfs"):
        pytest.skip(
            "this kernel's XFS has no quota support (mount -o prjquota: EINVAL, CONFIG_XFS_QUOTA off)"
        )


@pytest.fixture
def xfs_driver_factory(xfs_root: str, driver_factory: DriverMaker) -> DriverMaker:
    counter = iter(range(1000))

    def make(options: tuple[str, ...] = (), **kw: object) -> OverlayDriver:
        n = next(counter)
        return driver_factory(options, root=f"{xfs_root}/graph{n}", run_root=f"{xfs_root}/run{n}", **kw)

    return make


class TestOverlayOnXfsConformance(test_conformance.TestOverlayConformance):
    deep_layers = 130
    supports_quota = True

    @pytest.fixture
    def driver_factory(self, xfs_driver_factory: DriverMaker) -> DriverMaker:  # type: ignore[override]
        return xfs_driver_factory

    def test_set_quota(self, driver: Driver) -> None:
        _need_quota()
        super().test_set_quota(driver)


def test_default_size_option_limits_rw_layers(xfs_driver_factory: DriverMaker) -> None:
    _need_quota()
    d = xfs_driver_factory(("overlay.size=10M",))
    assert d.status()[0] == ("Backing Filesystem", "xfs")
    create_base(d, "base")
    d.create_read_write("ctr", "base")
    root = d.get("ctr")
    try:
        with pytest.raises(OSError) as info, open(os.path.join(root, "big"), "wb") as f:
            for _ in range(20):
                f.write(b"\1" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
        assert info.value.errno == errno.EDQUOT
    finally:
        d.put("ctr")
    # read-only layers get no quota: the same write fits there
    d.create("image", "base")
    with pytest.raises(InvalidOption, match="only supported for ReadWrite Layers"):
        d.create("bad", "base", CreateOpts(storage_opt={"size": "1M"}))
    for layer in ("ctr", "image", "base"):
        d.remove(layer)
    d.cleanup()


def test_size_option_needs_xfs(driver_factory: DriverMaker) -> None:
    with pytest.raises(InvalidOption, match="only supported for backingFS XFS. Found extfs"):
        driver_factory(("overlay.size=10M",))
    d = driver_factory()
    with pytest.raises(InvalidOption, match="supported only for overlay over xfs with 'pquota'"):
        d.create_read_write("x", None, CreateOpts(storage_opt={"size": "10M"}))
    assert not d.exists("x")


def test_xfs_without_project_quotas_refuses_size(xfs_driver_factory: DriverMaker) -> None:
    if QUOTA.get("xfs"):
        pytest.skip("this XFS enforces project quotas")
    with pytest.raises(InvalidOption, match="Filesystem does not support Project Quota"):
        xfs_driver_factory(("overlay.size=10M",))
    d = xfs_driver_factory()
    assert ("Backing Filesystem", "xfs") in d.status()
    with pytest.raises(InvalidOption, match="supported only for overlay over xfs with 'pquota'"):
        d.create_read_write("x", None, CreateOpts(storage_opt={"size": "10M"}))
