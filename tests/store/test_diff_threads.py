"""A diff stream may be closed by any thread, and no path leaves a lock held."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from containers_storage.locks.api import InProcessRWLock
from containers_storage.store import Store, get_store

from .conftest import options, tar_bytes

TIMEOUT = 30.0


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a daemon thread; fail (rather than hang) if it does not finish."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(TIMEOUT)
    assert not t.is_alive(), f"{fn} blocked for {TIMEOUT}s: a lock was left held"
    if errors:
        raise errors[0]
    return out[0]


def _layer(store: Store) -> str:
    import io

    layer, _ = store.put_layer(diff=io.BytesIO(tar_bytes({"f": b"data"})))
    return layer.id


def test_a_diff_closed_in_a_pool_thread_frees_the_layers(store: Store, store_root: Path) -> None:
    layer = _layer(store)
    d = store.diff("", layer)
    with ThreadPoolExecutor(1) as pool:
        data = pool.submit(d.read).result(TIMEOUT)
        pool.submit(d.close).result(TIMEOUT)
    assert data.startswith(b"f\0")
    # a write from the main thread, from a fresh thread and through a new store
    in_thread(lambda: store.create_layer())
    in_thread(lambda: store.set_names(layer, ["after"]))
    with get_store(options(store_root)) as again:
        in_thread(lambda: again.create_layer())


def test_a_diff_opened_in_a_pool_thread_closed_in_the_main_thread(store: Store) -> None:
    layer = _layer(store)
    with ThreadPoolExecutor(1) as pool:
        d = pool.submit(store.diff, "", layer).result(TIMEOUT)
        # the opening thread may still use the store while its stream is open
        assert pool.submit(store.create_layer).result(TIMEOUT).id
    d.read()
    d.close()
    in_thread(lambda: store.create_layer())


def test_other_threads_wait_while_the_stream_is_open(store: Store) -> None:
    layer = _layer(store)
    d = store.diff("", layer)
    with ThreadPoolExecutor(1) as pool:
        writer = pool.submit(store.create_layer)
        with pytest.raises(TimeoutError):
            writer.result(0.5)
        d.close()
        assert writer.result(TIMEOUT).id


def test_the_opening_thread_may_write_with_a_stream_open(store: Store) -> None:
    layer = _layer(store)
    with store.diff("", layer) as d:
        copy, _ = store.put_layer(diff=d)
    assert copy.uncompressed_digest == store.layer(layer).uncompressed_digest
    in_thread(lambda: store.create_layer())


def test_a_failed_diff_leaves_no_lock_held(store: Store) -> None:
    with pytest.raises(LookupError):
        store.diff("", "nonexist")
    in_thread(lambda: store.create_layer())


def test_a_release_by_a_thread_holding_nothing_changes_nothing() -> None:
    rw = InProcessRWLock()
    rw.acquire(True)
    with ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError):
        pool.submit(rw.release).result(TIMEOUT)
    assert rw.held_exclusive_by_me
    rw.release()
    assert not rw.held


def test_a_file_lock_refuses_an_unlock_by_a_thread_that_holds_nothing(tmp_path: Path) -> None:
    from containers_storage.locks.api import acting_for, lock_owner
    from containers_storage.locks.posix import get_lock

    lk = get_lock(str(tmp_path / "x.lock"))
    lk.lock()
    me = lock_owner()
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(RuntimeError):
            pool.submit(lk.unlock).result(TIMEOUT)
        assert lk.locked and lk.locked_for_writing  # nothing changed

        def for_me() -> None:
            with acting_for(me):
                lk.unlock()

        pool.submit(for_me).result(TIMEOUT)
    assert not lk.locked
    in_thread(lambda: (lk.lock(), lk.unlock()))
