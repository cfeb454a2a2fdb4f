"""The lean entry-point reader agrees with importlib.metadata on what is installed."""

from __future__ import annotations

from importlib.metadata import entry_points as std_entry_points

from containers_storage.entrypoints import entry_points
from containers_storage.plugins import DRIVER_GROUP


def test_same_driver_entry_points_as_importlib_metadata() -> None:
    ours = {(e.name, e.value) for e in entry_points(DRIVER_GROUP)}
    theirs = {(e.name, e.value) for e in std_entry_points(group=DRIVER_GROUP)}
    assert ours == theirs
    assert ("vfs", "containers_storage_vfs.plugin") in ours


def test_distribution_names_are_shown_with_hyphens() -> None:
    vfs = next(e for e in entry_points(DRIVER_GROUP) if e.name == "vfs")
    assert (vfs.distribution, vfs.version) == ("containers-storage-vfs", "0.1.0")
    assert vfs.load().__name__ == "containers_storage_vfs.plugin"  # type: ignore[attr-defined]
