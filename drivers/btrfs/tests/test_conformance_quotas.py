"""The conformance kit again with quotas on from the start (``btrfs.min_space``), which
changes how layers are removed (quota groups are looked up and dropped)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from containers_storage.testing.conformance import DriverConformance
from containers_storage_btrfs.driver import BtrfsDriver

DriverFactory = Callable[..., BtrfsDriver]


class TestBtrfsConformanceQuotasOn(DriverConformance):
    deep_layers = 200
    diff_apply_files = 100
    supports_quota = True

    @pytest.fixture
    def driver_factory(self, fresh_driver_factory: DriverFactory) -> Iterator[DriverFactory]:
        def make(options: Sequence[str] = ()) -> BtrfsDriver:
            return fresh_driver_factory(["btrfs.min_space=1M", *options])

        yield make
