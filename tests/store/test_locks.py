"""Lock files shared with upstream: POSIX fcntl record locks seen by other processes,
the last-writer token, in-process counting and thread exclusion, the portable kind."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from containers_storage.errors import StoreIsReadOnly
from containers_storage.locks import portable, posix
from containers_storage.plugins import get_plugin_host

PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
kind = fcntl.LOCK_EX if sys.argv[2] == "ex" else fcntl.LOCK_SH
try:
    fcntl.lockf(fd, kind | fcntl.LOCK_NB)
    print("acquired")
except OSError:
    print("busy")
"""

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX if sys.argv[2] == "ex" else fcntl.LOCK_SH)
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def probe(path: Path, kind: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, str(path), kind], capture_output=True, text=True)
    return out.stdout.strip()


def test_exclusive_lock_is_seen_by_another_process(tmp_path: Path) -> None:
    lk = posix.get_lock(str(tmp_path / "a" / "layers.lock"))
    lk.lock()
    try:
        assert probe(tmp_path / "a" / "layers.lock", "sh") == "busy"
        assert probe(tmp_path / "a" / "layers.lock", "ex") == "busy"
    finally:
        lk.unlock()
    assert probe(tmp_path / "a" / "layers.lock", "ex") == "acquired"


def test_shared_lock_admits_readers_not_writers(tmp_path: Path) -> None:
    path = tmp_path / "images.lock"
    lk = posix.get_lock(str(path))
    lk.rlock()
    try:
        assert probe(path, "sh") == "acquired"
        assert probe(path, "ex") == "busy"
    finally:
        lk.unlock()


def test_we_wait_for_a_foreign_fcntl_holder(tmp_path: Path) -> None:
    path = tmp_path / "containers.lock"
    path.touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), "ex", "1.0"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    lk = posix.get_lock(str(path))
    assert lk.try_lock() is False
    start = time.monotonic()
    lk.rlock()
    waited = time.monotonic() - start
    lk.unlock()
    holder.wait()
    assert waited > 0.3


def test_nested_holds_keep_the_file_locked(tmp_path: Path) -> None:
    path = tmp_path / "n.lock"
    lk = posix.get_lock(str(path))
    assert posix.get_lock(str(path)) is lk  # one object, one descriptor per path
    lk.lock()
    lk.lock()
    lk.rlock()  # a writer may read
    lk.unlock()
    lk.unlock()
    assert probe(path, "sh") == "busy"
    lk.unlock()
    assert not lk.locked
    assert probe(path, "ex") == "acquired"


def test_threads_exclude_each_other(tmp_path: Path) -> None:
    lk = posix.get_lock(str(tmp_path / "t.lock"))
    order: list[str] = []
    lk.lock()

    def other() -> None:
        lk.lock()
        order.append("other")
        lk.unlock()

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.2)
    order.append("main")
    lk.unlock()
    t.join(5)
    assert order == ["main", "other"]


def test_token_layout_and_change_detection(tmp_path: Path) -> None:
    lk = posix.get_lock(str(tmp_path / "tok.lock"))
    lk.lock()
    try:
        assert lk.last_write() == b""  # never written
        token = lk.record_write()
        assert len(token) == 64 and lk.last_write() == token
        _ns, counter, pid = struct.unpack("<QQI", token[:20])
        assert pid == os.getpid() and counter >= 1
        assert not lk.modified_since(token)
        second = lk.record_write()
        assert second != token and lk.modified_since(token)
    finally:
        lk.unlock()
    assert (tmp_path / "tok.lock").read_bytes() == second


def test_record_write_needs_the_exclusive_lock(tmp_path: Path) -> None:
    lk = posix.get_lock(str(tmp_path / "w.lock"))
    lk.rlock()
    try:
        with pytest.raises(RuntimeError):
            lk.record_write()
    finally:
        lk.unlock()


def test_read_only_lock(tmp_path: Path) -> None:
    path = tmp_path / "ro" / "layers.lock"
    lk = posix.get_lock(str(path), read_only=True)
    with pytest.raises(StoreIsReadOnly):
        lk.lock()
    lk.rlock()
    assert path.exists()
    lk.unlock()


def test_hook_answers_by_kind(tmp_path: Path) -> None:
    host = get_plugin_host()
    assert isinstance(host.lock(str(tmp_path / "p.lock"), False, "posix"), posix.PosixLock)
    assert isinstance(host.lock(str(tmp_path / "q.lock"), False, "portable"), portable.PortableLock)


def test_portable_lock(tmp_path: Path) -> None:
    lk = portable.get_lock(str(tmp_path / "pl.lock"))
    lk.lock()
    token = lk.record_write()
    lk.unlock()
    lk.rlock()
    assert lk.last_write() == token
    lk.unlock()
    assert (tmp_path / "pl.lock").read_bytes() == token


def test_touch_and_modified(tmp_path: Path) -> None:
    a = posix.get_lock(str(tmp_path / "m.lock"))
    a.lock()
    try:
        a.touch()
        assert not a.modified()
        (tmp_path / "m.lock").write_bytes(b"x" * 64)  # another writer
        assert a.modified()
        assert not a.modified()
    finally:
        a.unlock()


def test_store_waits_for_a_foreign_writer_and_sees_its_change(tmp_path: Path) -> None:
    """Another process (as podman would) holds layers.lock, changes layers.json and
    writes a new token; our store blocks meanwhile and then reloads."""
    import json

    from containers_storage.config import StoreOptions
    from containers_storage.store import get_store

    opts = StoreOptions(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), driver_name="vfs")
    with get_store(opts) as s:
        s.create_layer(names=["ours"])
        assert [x.names for x in s.layers()] == [("ours",)]
        lock = tmp_path / "g" / "vfs-layers" / "layers.lock"
        records = tmp_path / "g" / "vfs-layers" / "layers.json"
        foreign = f"""
import fcntl, json, os, sys, time
fd = os.open({str(lock)!r}, os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(0.8)
recs = json.load(open({str(records)!r}))
recs[0]["names"] = ["renamed-by-other"]
os.pwrite(fd, os.urandom(64), 0)  # new last-writer token first
open({str(records)!r}, "w").write(json.dumps(recs, separators=(",", ":")))
"""
        p = subprocess.Popen([sys.executable, "-c", foreign], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "held"
        start = time.monotonic()
        names = [x.names for x in s.layers()]
        assert time.monotonic() - start > 0.4
        p.wait()
        assert names == [("renamed-by-other",)]
        assert json.loads(records.read_text())[0]["names"] == ["renamed-by-other"]
