"""Small things a Python caller expects of the Store: a mount for a block, close and
shutdown that may be called in any order, a repr that says what the store is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from containers_storage.store import Store, get_store

from .conftest import options


def test_mounting_mounts_for_the_block(store: Store) -> None:
    layer = store.create_layer(writeable=True).id
    with store.mounting(layer) as path:
        assert os.path.isdir(path)
        assert store.mounted(layer) == 1
        with store.mounting(layer) as again:  # counted, as mount is
            assert again == path and store.mounted(layer) == 2
        assert store.mounted(layer) == 1
    assert store.mounted(layer) == 0


def test_mounting_unmounts_when_the_block_raises(store: Store) -> None:
    layer = store.create_layer(writeable=True).id
    with pytest.raises(KeyError, match="inside"), store.mounting(layer):
        raise KeyError("inside")
    assert store.mounted(layer) == 0


def test_mounting_a_missing_layer_mounts_nothing(store: Store) -> None:
    with pytest.raises(LookupError), store.mounting("nonexist"):
        pytest.fail("the block must not run")


def test_mounted_still_returns_upstreams_count(store: Store) -> None:
    layer = store.create_layer(writeable=True).id
    assert store.mounted(layer) == 0
    store.mount(layer)
    assert store.mounted(layer) == 1
    store.unmount(layer)


@pytest.mark.parametrize(
    "calls",
    [
        ("close", "close"),
        ("shutdown", "shutdown"),
        ("close", "shutdown"),
        ("shutdown", "close"),
        ("shutdown", "close", "shutdown", "close"),
    ],
)
def test_close_and_shutdown_are_idempotent_in_any_order(store_root: Path, calls: tuple[str, ...]) -> None:
    s = get_store(options(store_root))
    s.create_layer()
    for call in calls:
        result = getattr(s, call)()
        assert result in (None, [])
    with s:  # and the context manager's close after them
        pass
    with get_store(options(store_root)) as again:
        assert len(again.layers()) == 1


def test_repr_says_driver_roots_and_state(store_root: Path) -> None:
    s = get_store(options(store_root))
    text = repr(s)
    assert text.startswith("<Store ") and "driver='vfs'" in text
    assert f"graph_root={str(store_root / 'graph')!r}" in text
    assert f"run_root={str(store_root / 'run')!r}" in text
    assert text.endswith(" open>")
    s.close()
    assert repr(s).endswith(" closed>")


def test_the_docstring_states_thread_and_process_safety() -> None:
    doc = Store.__doc__ or ""
    assert "Threads" in doc and "Processes" in doc
