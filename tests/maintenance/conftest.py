"""Maintenance test helpers: fresh stores on vfs (and overlay when root), layer tarballs
with owners, and a cleanup that unmounts whatever a test left mounted."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage.config import StoreOptions
from containers_storage.store import Store, get_store

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mounts)")


def options(root: Path, driver: str = "vfs", **kw: object) -> StoreOptions:
    return StoreOptions(
        graph_root=str(root / "graph"),
        run_root=str(root / "run"),
        driver_name=driver,
        **kw,  # type: ignore[arg-type]
    )


def tar_bytes(files: dict[str, bytes], owners: dict[str, tuple[int, int]] | None = None) -> bytes:
    """An uncompressed tar of ``files`` (names ending in ``/`` are directories), with
    optional ``(uid, gid)`` owners per name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1700000000
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            else:
                info.size = len(data)
                info.mode = 0o644
            info.uid, info.gid = (owners or {}).get(name, (0, 0))
            tf.addfile(info, None if name.endswith("/") else io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def release_mounts(store: Store) -> None:
    """Drop every mount the store still counts (tests that mount undo it)."""
    try:
        for layer in store.layers():
            if layer.mount_count:
                store.unmount(layer.id, force=True)
    except Exception:
        pass


def overlay_available() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/filesystems") as f:
            return "overlay" in f.read()
    except OSError:
        return False


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_root: Path) -> Iterator[Store]:
    s = get_store(options(store_root))
    try:
        yield s
    finally:
        release_mounts(s)
        s.close()
