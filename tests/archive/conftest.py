"""Helpers for the archive tests: tarball builders (including raw, hand-made headers for
hostile input, from containers_storage.testing.hostile) and a small directory-backed graph driver."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from containers_storage.drivers.api import CreateOpts, Driver, DriverConfig, MountOpts
from containers_storage.testing.hostile import END, make_tar, member, raw_file, raw_header

__all__ = ["END", "DirDriver", "make_tar", "member", "raw_file", "raw_header", "snapshot"]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


class DirDriver(Driver):
    """A real, minimal directory-per-layer driver (copies the parent), counting mounts."""

    name = "testdir"

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        os.makedirs(os.path.join(self.home, "dir"), exist_ok=True)
        self.mounts: dict[str, int] = {}

    def _dir(self, id: str) -> str:
        return os.path.join(self.home, "dir", id)

    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        if parent:
            shutil.copytree(self._dir(parent), self._dir(id), symlinks=True)
        else:
            os.mkdir(self._dir(id), 0o555)

    def remove(self, id: str) -> None:
        shutil.rmtree(self._dir(id), ignore_errors=True)

    def get(self, id: str, opts: MountOpts | None = None) -> str:
        if not os.path.isdir(self._dir(id)):
            raise FileNotFoundError(self._dir(id))
        self.mounts[id] = self.mounts.get(id, 0) + 1
        return self._dir(id)

    def put(self, id: str) -> None:
        self.mounts[id] -= 1

    def exists(self, id: str) -> bool:
        return os.path.isdir(self._dir(id))

    def list_layers(self) -> list[str]:
        return sorted(os.listdir(os.path.join(self.home, "dir")))


@pytest.fixture
def driver(tmp_path: Path) -> DirDriver:
    return DirDriver(
        DriverConfig(requested_name="testdir", root=str(tmp_path / "graph"), run_root=str(tmp_path / "run"))
    )


def snapshot(root: str | Path) -> dict[str, tuple[object, ...]]:
    """Everything about a tree that a tar can carry, by relative path."""
    out: dict[str, tuple[object, ...]] = {}
    root = str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            try:
                xattrs = sorted(
                    (k, os.getxattr(p, k, follow_symlinks=False))
                    for k in os.listxattr(p, follow_symlinks=False)
                )
            except OSError:
                xattrs = []
            content: object = None
            if os.path.islink(p):
                content = os.readlink(p)
            elif os.path.isfile(p):
                content = Path(p).read_bytes()
            mtime = None if os.path.islink(p) else st.st_mtime_ns
            out[os.path.relpath(p, root)] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                mtime,
                st.st_rdev,
                xattrs,
                content,
            )
    return out
