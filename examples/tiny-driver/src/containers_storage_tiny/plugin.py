"""The entry point: offers the ``tiny`` driver; the class is imported only when used."""

from __future__ import annotations

from containers_storage.drivers.api import Driver, DriverInfo
from containers_storage.hookspecs import hookimpl


def _load() -> type[Driver]:
    from .driver import TinyDriver

    return TinyDriver


@hookimpl
def cstorage_drivers() -> list[DriverInfo]:
    return [DriverInfo(name="tiny", load=_load, priority=90, description="example driver")]
