"""Entry point of the vfs distribution: offers the driver, imports it only on use."""

from __future__ import annotations

from containers_storage.drivers.api import Driver, DriverInfo
from containers_storage.hookspecs import hookimpl


def _load() -> type[Driver]:
    from .driver import VFSDriver

    return VFSDriver


@hookimpl
def cstorage_drivers() -> list[DriverInfo]:
    return [
        DriverInfo(name="vfs", load=_load, priority=100, description="full copy per layer; runs anywhere")
    ]
