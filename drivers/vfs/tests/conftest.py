from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from containers_storage.drivers.api import DriverConfig
from containers_storage_vfs.driver import VFSDriver


@pytest.fixture
def driver_factory(tmp_path: Path) -> Iterator[Callable[..., VFSDriver]]:
    made = 0

    def factory(options: Sequence[str] = ()) -> VFSDriver:
        nonlocal made
        made += 1
        root = tmp_path / f"graph{made}"
        run = tmp_path / f"run{made}"
        return VFSDriver(DriverConfig("vfs", str(root), str(run), options=tuple(options)))

    yield factory
