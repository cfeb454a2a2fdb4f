"""Store-level counterparts of upstream's package API (README, Python API): GetStore's
shared stores with Free, LayerBigData as a stream, image big data with own digests."""

from __future__ import annotations

from pathlib import Path

import pytest

from containers_storage import errors
from containers_storage.store import ImageBigData, ImageOptions, Store, get_store

from .conftest import options


def test_shared_stores_per_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = get_store(options(tmp_path / "a"), shared=True)
    try:
        assert get_store(options(tmp_path / "a"), shared=True) is first
        relative = options(tmp_path / "a")
        relative.graph_root = "a/graph"
        assert get_store(relative, shared=True) is first  # compared as absolute paths
        unnamed = options(tmp_path / "a")
        unnamed.driver_name = ""
        assert get_store(unnamed, shared=True) is first  # no driver named: any matches
        with get_store(options(tmp_path / "a")) as fresh:  # not shared: always a new one
            assert fresh is not first
        other_run = options(tmp_path / "a")
        other_run.run_root = str(tmp_path / "other-run")
        with get_store(other_run, shared=True) as other:
            assert other is not first
        first.free()
        again = get_store(options(tmp_path / "a"), shared=True)
        assert again is not first
        assert first.layers() == []  # freed, not closed
        again.close()  # a closed store is not handed out again
        last = get_store(options(tmp_path / "a"), shared=True)
        assert last is not again
        last.close()
    finally:
        first.close()


def test_open_layer_big_data_is_a_stream(store: Store) -> None:
    layer = store.create_layer()
    data = bytes(range(256)) * 4096
    store.set_layer_big_data(layer.id, "blob", data)
    with store.open_layer_big_data(layer.id, "blob") as f:
        assert f.read(256) == bytes(range(256))
        assert f.read() == data[256:]
    assert store.layer_big_data(layer.id, "blob") == data
    with pytest.raises(errors.StorageError, match='locating item named "nope" for layer with ID'):
        store.open_layer_big_data(layer.id, "nope")
    with pytest.raises(errors.LayerUnknown):
        store.open_layer_big_data("no-such-layer", "blob")


def test_image_big_data_items_with_their_own_digests(store: Store) -> None:
    given = "sha256:" + "12" * 32
    img = store.create_image(
        options=ImageOptions(
            big_data=[ImageBigData("manifest", b'{"schemaVersion":2}', given), ImageBigData("config", b"{}")]
        )
    )
    assert img.big_data_names == ("manifest", "config")
    assert store.image_big_data_digest(img.id, "manifest") == given
    assert store.image_big_data_digest(img.id, "config") == (
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert img.digest == given and img.digests == (given,)  # a manifest's digest is the image's
    assert [i.id for i in store.images_by_digest(given)] == [img.id]
