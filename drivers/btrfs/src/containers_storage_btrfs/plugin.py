"""Entry point of the btrfs driver distribution; imports the driver only when it is used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from containers_storage.drivers.api import DriverInfo
from containers_storage.hookspecs import hookimpl

if TYPE_CHECKING:
    from containers_storage.drivers.api import Driver


def _load() -> type[Driver]:
    from .driver import BtrfsDriver

    return BtrfsDriver


@hookimpl
def cstorage_drivers() -> list[DriverInfo]:
    return [
        DriverInfo(
            name="btrfs",
            load=_load,
            priority=30,
            description="layers as btrfs subvolumes; children are snapshots (graph root on btrfs)",
        )
    ]
