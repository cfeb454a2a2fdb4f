"""The conformance kit (driver-api.md §7) on a real btrfs, each scenario on a filesystem of
its own, with the default configuration (quotas off until a layer asks for a size)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from containers_storage.testing.conformance import DriverConformance
from containers_storage_btrfs.driver import BtrfsDriver

DriverFactory = Callable[..., BtrfsDriver]


class TestBtrfsConformance(DriverConformance):
    deep_layers = 200
    diff_apply_files = 100
    supports_quota = True

    @pytest.fixture
    def driver_factory(self, fresh_driver_factory: DriverFactory) -> DriverFactory:
        return fresh_driver_factory

    # 11
    def test_subvol_delete(self, driver_factory: DriverFactory) -> None:
        d = driver_factory()
        try:
            d.create_read_write("test", None)
            nested = os.path.join(d.get("test"), "subvoltest")
            subprocess.run(["btrfs", "subvolume", "create", nested], check=True, capture_output=True)
            d.put("test")
            d.remove("test")
            assert not os.path.exists(nested)
            assert not d.exists("test")
        finally:
            d.cleanup()
