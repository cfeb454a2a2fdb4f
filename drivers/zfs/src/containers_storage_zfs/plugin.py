"""Entry point of the zfs driver; kept light so that discovery imports nothing heavy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from containers_storage.drivers.api import DriverInfo
from containers_storage.hookspecs import hookimpl

if TYPE_CHECKING:
    from containers_storage.drivers.api import Driver


def _load() -> type[Driver]:
    from .driver import ZfsDriver

    return ZfsDriver


@hookimpl
def cstorage_drivers() -> list[DriverInfo]:
    return [
        DriverInfo(
            name="zfs",
            load=_load,
            priority=40,
            description="layers as ZFS datasets; children are clones of snapshots (OpenZFS or zfs-fuse)",
        )
    ]
