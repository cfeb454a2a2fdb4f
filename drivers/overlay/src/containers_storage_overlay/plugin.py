"""Entry point of the overlay driver distribution (kept light: the driver loads lazily)."""

from __future__ import annotations

from containers_storage.drivers.api import Driver, DriverInfo
from containers_storage.hookspecs import hookimpl


def _load() -> type[Driver]:
    from .driver import OverlayDriver

    return OverlayDriver


@hookimpl
def cstorage_drivers() -> list[DriverInfo]:
    return [
        DriverInfo(
            name="overlay",
            load=_load,
            aliases=("overlay2",),
            priority=10,
            description="kernel overlayfs, or a FUSE mount program such as fuse-overlayfs",
        )
    ]
