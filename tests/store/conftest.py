"""Store test fixtures: fresh vfs stores and restored copies of upstream's fixture store."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage.config import StoreOptions
from containers_storage.store import Store, get_store

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


def unpack_fixture(driver: str, dest: Path) -> Path:
    """Restore ``go-store-<driver>.tar.zst`` under ``dest`` with GNU tar (xattrs kept)."""
    dest.mkdir(parents=True, exist_ok=True)
    zstd = subprocess.Popen(
        ["zstd", "-dc", str(FIXTURES / f"go-store-{driver}.tar.zst")], stdout=subprocess.PIPE
    )
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", str(dest)],
        stdin=zstd.stdout,
        check=True,
    )
    assert zstd.wait() == 0
    return dest


def options(root: Path, **kw: object) -> StoreOptions:
    return StoreOptions(
        graph_root=str(root / "graph"),
        run_root=str(root / "run"),
        driver_name="vfs",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_root: Path) -> Iterator[Store]:
    with get_store(options(store_root)) as s:
        yield s


@pytest.fixture
def fixture_root(tmp_path: Path) -> Path:
    return unpack_fixture("vfs", tmp_path / "fx")


@pytest.fixture
def fixture_store(fixture_root: Path) -> Iterator[Store]:
    with get_store(options(fixture_root)) as s:
        yield s


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """A small uncompressed tar holding ``files`` (for put_layer)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (real processes, not threads)."""
    import sys

    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
