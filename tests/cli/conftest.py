"""Fixtures for the command-line tests: in-process runs and restored upstream stores."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


@dataclass
class Result:
    status: int
    out: bytes
    err: bytes

    @property
    def stdout(self) -> str:
        return self.out.decode("utf-8", "surrogateescape")

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "surrogateescape")


def run_main(*args: str, stdin: bytes = b"") -> Result:
    """``containers-storage ARGS`` in this process, with captured binary streams."""
    from containers_storage.cli.main import main

    out, err = io.BytesIO(), io.BytesIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        status = main(list(args), stdout=out, stderr=err)
    finally:
        sys.stdin = saved
    return Result(status, out.getvalue(), err.getvalue())


def run_process(
    *args: str, stdin: bytes = b"", env: dict[str, str] | None = None, argv0: list[str] | None = None
) -> Result:
    """The tool as a separate process (``python -m containers_storage.cli``)."""
    cmd = (argv0 or [sys.executable, "-m", "containers_storage.cli"]) + list(args)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=False, timeout=120)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Store:
    """A store's roots and the command-line prefix that opens it."""

    graph: str
    run: str
    driver: str

    @property
    def prefix(self) -> list[str]:
        return ["--graph", self.graph, "--run", self.run, "--storage-driver", self.driver]

    def __call__(self, *args: str, stdin: bytes = b"") -> Result:
        return run_main(*self.prefix, *args, stdin=stdin)


def driver_installed(name: str) -> bool:
    from containers_storage.plugins import get_plugin_host

    return get_plugin_host().driver_info(name) is not None


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="restoring the fixture stores needs root")


def unpack_fixture(driver: str, dest: Path) -> Store:
    """Restore ``go-store-<driver>.tar.zst`` under ``dest`` with owners and xattrs (GNU tar)."""
    pack = FIXTURES / f"go-store-{driver}.tar.zst"
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["zstd", "-dc", str(pack)], stdout=subprocess.PIPE) as unzstd:
        subprocess.run(
            ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", str(dest)],
            stdin=unzstd.stdout,
            check=True,
        )
    return Store(str(dest / "graph"), str(dest / "run"), driver)


def _cleanup_store(store: Store) -> None:
    """Unmount whatever a test left mounted below the roots, then remove them."""
    from containers_storage.drivers.mounts import mountinfo, unmount_if_mounted

    for root in (store.graph, store.run):
        points = sorted(
            (m.mount_point for m in mountinfo() if m.mount_point.startswith(root)), key=len, reverse=True
        )
        for point in points:
            unmount_if_mounted(point)
    shutil.rmtree(Path(store.graph).parent, ignore_errors=True)


@pytest.fixture(scope="module")
def shared_fixture_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Store]]:
    """One restored store per driver for a module whose commands only read (the expected
    answers): restoring 316 times would cost a minute."""
    made: dict[str, Store] = {}

    def get(driver: str) -> Store:
        if os.geteuid() != 0:
            pytest.skip("restoring the fixture stores needs root")
        if not driver_installed(driver):
            pytest.skip(f"the {driver} driver is not installed")
        if driver not in made:
            made[driver] = unpack_fixture(driver, tmp_path_factory.mktemp(f"fixture-{driver}"))
        return made[driver]

    yield get
    for store in made.values():
        _cleanup_store(store)


@pytest.fixture
def fixture_store_factory(tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    made: list[Store] = []

    def make(driver: str) -> Store:
        if os.geteuid() != 0:
            pytest.skip("restoring the fixture stores needs root")
        if not driver_installed(driver):
            pytest.skip(f"the {driver} driver is not installed")
        store = unpack_fixture(driver, tmp_path / f"fixture-{driver}-{len(made)}")
        made.append(store)
        return store

    yield make
    for store in made:
        _cleanup_store(store)


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh vfs store in temporary roots."""
    if not driver_installed("vfs"):
        pytest.skip("the vfs driver is not installed")
    store = Store(str(tmp_path / "graph"), str(tmp_path / "run"), "vfs")
    yield store
    _cleanup_store(store)
