"""Helpers for the archive tests: tarball builders (including raw, hand-made headers for
hostile input) and a small directory-backed graph driver."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from containers_storage.drivers.api import CreateOpts, Driver, DriverConfig, MountOpts

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def member(
    name: str,
    data: bytes = b"",
    type: bytes = tarfile.REGTYPE,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = 1_700_000_000,
    linkname: str = "",
    pax: dict[str, str] | None = None,
    devmajor: int = 0,
    devminor: int = 0,
) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.mtime = mtime
    ti.size = len(data) if type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    ti.linkname = linkname
    ti.devmajor, ti.devminor = devmajor, devminor
    if pax:
        ti.pax_headers = dict(pax)
    return ti, data


def make_tar(members: Iterable[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


def raw_header(
    name: bytes, typeflag: bytes = b"0", size: int = 0, linkname: bytes = b"", mode: int = 0o644
) -> bytes:
    """A ustar header block with any bytes as name (no validation at all)."""
    b = bytearray(512)
    b[0 : len(name[:100])] = name[:100]
    b[100:108] = b"%07o\x00" % mode
    b[108:116] = b"0000000\x00"
    b[116:124] = b"0000000\x00"
    b[124:136] = b"%011o\x00" % size
    b[136:148] = b"%011o\x00" % 1_700_000_000
    b[156:157] = typeflag
    b[157 : 157 + len(linkname)] = linkname
    b[257:265] = b"ustar\x0000"
    b[148:156] = b"        "
    b[148:156] = b"%06o\x00 " % sum(b)
    return bytes(b)


def raw_file(name: bytes, data: bytes = b"", **kw: object) -> bytes:
    return raw_header(name, size=len(data), **kw) + data + bytes((-len(data)) % 512)  # type: ignore[arg-type]


END = bytes(1024)


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
