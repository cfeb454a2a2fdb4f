"""The documented caps on what the store holds in memory (records/limits.py): refused
with InputTooLarge before anything is written; a layer's item is streamed instead."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from containers_storage.errors import InputTooLarge
from containers_storage.records import limits
from containers_storage.store import Store


def test_metadata_over_the_cap(store: Store) -> None:
    layer = store.create_layer()
    image = store.create_image(layer=layer.id)
    big = "x" * (limits.MAX_METADATA + 1)
    with pytest.raises(InputTooLarge, match="metadata is larger than the limit"):
        store.set_metadata(image.id, big)
    with pytest.raises(InputTooLarge):
        store.create_image(layer=layer.id, metadata=big)
    assert store.metadata(image.id) == ""
    assert [i.id for i in store.images()] == [image.id]


def test_image_and_container_items_over_the_cap(store: Store) -> None:
    layer = store.create_layer()
    image = store.create_image(layer=layer.id)
    ctr = store.create_container(image=image.id)
    big = bytes(limits.MAX_BIG_DATA + 1)
    with pytest.raises(InputTooLarge, match='big data item "k"'):
        store.set_image_big_data(image.id, "k", big)
    with pytest.raises(InputTooLarge):
        store.set_container_big_data(ctr.id, "k", big)
    assert store.list_image_big_data(image.id) == []
    assert store.list_container_big_data(ctr.id) == []


def test_layer_item_is_streamed_and_capped(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = store.create_layer()
    store.set_layer_big_data(layer.id, "k", io.BytesIO(b"abc" * 1_000_000))
    assert store.layer_big_data(layer.id, "k") == b"abc" * 1_000_000
    monkeypatch.setattr("containers_storage.records.layers.MAX_LAYER_BIG_DATA", 2 << 20)
    with pytest.raises(InputTooLarge):
        store.set_layer_big_data(layer.id, "k", io.BytesIO(bytes(3 << 20)))
    assert store.layer_big_data(layer.id, "k") == b"abc" * 1_000_000  # the old item stays
    with pytest.raises(InputTooLarge):
        store.set_layer_big_data(layer.id, "new", io.BytesIO(bytes(3 << 20)))
    assert store.list_layer_big_data(layer.id) == ["k"]
    dirs = list(Path(store.graph_root).rglob(".tmp-*"))
    assert dirs == []
