"""Deep lower chains: every mount technique, 500 lowers (upstream's maximum)."""

from __future__ import annotations

import errno
import os

import pytest

from containers_storage.drivers import mounts
from containers_storage.drivers.api import MountOpts
from containers_storage.errors import DriverError
from containers_storage_overlay import layout, mounting

from .conftest import DriverMaker


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _chain(driver, depth: int) -> list[str]:  # type: ignore[no-untyped-def]
    """A base plus ``depth`` layers, layer k adding ``f<k>`` (written straight into diff)."""
    ids = [f"{k:064x}" for k in range(depth + 1)]
    driver.create(ids[0], None)
    for k in range(1, depth + 1):
        driver.create(ids[k], ids[k - 1])
        with open(os.path.join(driver.home, ids[k], "diff", f"f{k}"), "w") as f:
            f.write(str(k))
    return ids


#: (technique, depth): each technique at a depth where the ones before it cannot work
CASES = [("mount", 40), ("relative", 130), ("fsconfig", 500), ("fd", 500)]


@pytest.mark.parametrize(("technique", "depth"), CASES)
def test_each_mount_technique(driver_factory: DriverMaker, technique: str, depth: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    d = driver_factory()
    ids = _chain(d, depth)
    original = mounting.mount_overlay
    used: list[str] = []

    def forced(spec, target, home, technique_=None):  # type: ignore[no-untyped-def]
        if technique != "mount":
            # the plain mount(2) data of this stack exceeds a page
            with pytest.raises(OSError) as info:
                original(spec, target, home, "mount")
            assert info.value.errno == errno.E2BIG
        used.append(original(spec, target, home, technique))
        return used[-1]

    monkeypatch.setattr(mounting, "mount_overlay", forced)
    top = d.get(ids[-1])
    try:
        assert mounts.is_mounted(top)
        assert sorted(os.listdir(top)) == sorted(f"f{k}" for k in range(1, depth + 1))
        assert _read(os.path.join(top, "f1")) == "1"
        with open(os.path.join(top, "new"), "w") as f:
            f.write("x")
    finally:
        d.put(ids[-1])
    assert used == [technique]
    assert not mounts.is_mounted(top) and not os.path.exists(top)
    assert os.path.exists(os.path.join(d.home, ids[-1], "diff", "new"))


def test_default_technique_choice(driver_factory: DriverMaker) -> None:
    d = driver_factory()
    ids = _chain(d, 150)
    spec = mounting.OverlaySpec(
        [os.path.join(d.home, "l", e[2:]) for e in _read(os.path.join(d.home, ids[-1], "lower")).split(":")]
    )
    target = os.path.join(d.home, ids[-1], "merged")
    assert mounting.mount_overlay(spec, target, d.home) == "fsconfig"
    mounts.unmount(target)


def test_500_lowers_mount_and_501_is_refused(driver_factory: DriverMaker) -> None:
    """500 lowers mount read-write (the kernel's stack limit is 500 lowers besides the
    upper); read-only mounts put the layer's own diff on the stack too, so 499."""
    d = driver_factory()
    ids = _chain(d, 500)
    top = d.get(ids[-1])
    try:
        names = os.listdir(top)
        assert len(names) == 500 and "f250" in names
    finally:
        d.put(ids[-1])
    ro = d.get(ids[-2], MountOpts(options=("ro",)))
    try:
        assert len(os.listdir(ro)) == 499
        with pytest.raises(OSError), open(os.path.join(ro, "x"), "w"):
            pass
    finally:
        d.put(ids[-2])
    lowers = _read(os.path.join(d.home, ids[-1], "lower")).split(":")
    assert len(lowers) == 500
    assert all(e.startswith("l/") and len(e) == 2 + layout.ID_LENGTH for e in lowers)
    with pytest.raises(DriverError, match="max depth exceeded"):
        d.create("f" * 64, ids[-1])
    assert not d.exists("f" * 64)
