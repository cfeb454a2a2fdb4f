"""driver-api.md §7 against zfs on a real pool."""

from __future__ import annotations

import pytest

from containers_storage.drivers.api import Driver
from containers_storage.errors import DriverNotSupported
from containers_storage.testing.conformance import DriverConformance, add_many_files, create_base


class TestConformance(DriverConformance):
    #: with zfs-fuse every layer of the chain is written and then cloned at once, which
    #: costs a second per layer (file times are whole seconds: the driver starts a child
    #: in the second after its parent's last write); clone chains have no depth limit
    #: to find, and upstream runs this scenario for zfs not at all
    deep_layers = 64
    supports_quota = True

    def test_list_layers(self, driver: Driver) -> None:
        """Upstream's zfs cannot enumerate (other datasets may share the parent)."""
        create_base(driver, "base")
        add_many_files(driver, "base", 20, 3)
        driver.create("mid", "base")
        with pytest.raises(DriverNotSupported, match="driver not supported"):
            driver.list_layers()
