"""The core's conformance kit (driver-api.md §7) on real kernel overlay mounts."""

from __future__ import annotations

import pytest

from containers_storage.drivers.api import Driver
from containers_storage.testing.conformance import DriverConformance, create_base, write_file


class TestOverlayConformance(DriverConformance):
    deep_layers = 200
    diff_apply_files = 10

    def test_remove_with_children(self, driver: Driver) -> None:
        """Overlay children read through their parent's ``diff`` (as upstream): removing a
        parent is refused by the store, and if done anyway the child's mount fails with a
        clear not-found error naming the missing lower instead of showing partial data."""
        create_base(driver, "parent")
        driver.create("child", "parent")
        write_file(driver, "child", "mine", b"child data")
        driver.remove("parent")
        assert not driver.exists("parent")
        assert driver.exists("child")
        with pytest.raises(FileNotFoundError, match="can't stat lower layer"):
            driver.get("child")
