"""Fixtures: overlay drivers on fresh graph/run roots in a temporary directory on the
host's real filesystem (ext4 here), with every mount below it undone afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

from containers_storage.drivers.api import Driver, DriverConfig
from containers_storage.idtools import IDMappings
from containers_storage.testing.backends import disk_scratch_dir, overlay_unavailable, undo_mounts


@pytest.fixture
def scratch_dir() -> Iterator[str]:
    """A temporary directory on a disk filesystem (not tmpfs), torn down with its mounts."""
    with disk_scratch_dir("cs-overlay-") as d:
        yield d


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
        image_store: str = "",
    ) -> OverlayDriver:
        """``image_store`` is what a split store passes: the graph root, while ``root``
        is then the configured image store."""
        n = next(counter)
        cfg = DriverConfig(
            requested_name=name,
            root=root or os.path.join(scratch_dir, f"graph{n}"),
            run_root=run_root or os.path.join(scratch_dir, f"run{n}"),
            image_store=image_store,
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
