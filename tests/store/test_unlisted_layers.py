"""A driver that cannot enumerate its layers (the driver API lets it answer
DriverNotSupported, as upstream's zfs does): check and GC skip the unaccounted-layer pass
instead of failing, as upstream's do."""

from __future__ import annotations

import pytest

from containers_storage.errors import DriverNotSupported
from containers_storage.store import CheckOptions, Store


def test_check_and_gc_skip_the_unaccounted_pass(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = store.create_layer()
    store.create_image(layer=layer.id)
    store.driver.create("f" * 64, None)  # unaccounted, but the driver will not say so

    def cannot_list() -> list[str]:
        raise DriverNotSupported("this driver cannot tell its layers from other things")

    monkeypatch.setattr(store.driver, "list_layers", cannot_list)
    report = store.check(CheckOptions(layer_unreferenced_maximum_age=0))
    assert (report.layers, report.images, report.containers) == ({}, {}, {})
    store.garbage_collect()
    assert store.driver.exists("f" * 64)
    monkeypatch.undo()
    assert "f" * 64 in store.check(CheckOptions()).layers
