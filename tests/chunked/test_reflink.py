"""The reflink dedup path for real: a store on a loop-mounted XFS (``reflink=1``) or
btrfs, a layer pulled twice; the second layer's files share the first one's extents
(FIEMAP says so), are separate files, and the layer's diff is the tar."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from containers_storage.errors import LayerUsedByContainer
from containers_storage.store import get_store
from containers_storage.testing.loopdev import LoopFilesystem, loop_filesystem, loop_unavailable

from .conftest import Blob, make_tar, pull, store_options

_FS_IOC_FIEMAP = 0xC020660B
_FIEMAP_FLAG_SYNC = 1
_EXTENT_SHARED = 0x2000
_EXTENTS = 64
FILESYSTEMS = {
    "xfs": (["mkfs.xfs", "-q", "-f", "-m", "reflink=1"], 320 << 20),
    "btrfs": (["mkfs.btrfs", "-q", "-f"], 256 << 20),
}


def extents(path: str) -> list[tuple[int, int]]:
    """(physical offset, flags) of each extent of the file."""
    header = struct.pack("=QQLLLL", 0, 1 << 62, _FIEMAP_FLAG_SYNC, 0, _EXTENTS, 0)
    buf = bytearray(header + bytes(56 * _EXTENTS))
    with open(path, "rb") as f:
        fcntl.ioctl(f.fileno(), _FS_IOC_FIEMAP, buf)
    count = struct.unpack_from("=L", buf, 20)[0]
    out = []
    for i in range(count):
        _logical, physical, _length, _r1, _r2, flags = struct.unpack_from("=QQQQQL", buf, 32 + 56 * i)
        out.append((physical, flags))
    return out


@pytest.fixture(params=sorted(FILESYSTEMS))
def reflink_fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LoopFilesystem]:
    fstype = request.param
    mkfs, size = FILESYSTEMS[fstype]
    reason = loop_unavailable(fstype, mkfs[0])
    if reason:
        pytest.skip(reason)
    with loop_filesystem(str(tmp_path / "loop"), fstype, size, mkfs) as fs:
        yield fs


@pytest.mark.parametrize("driver", ["vfs", "overlay"])
def test_second_pull_reflinks_the_first_layers_files(
    reflink_fs: LoopFilesystem, driver: str, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    if driver == "overlay":
        from containers_storage.testing.backends import overlay_unavailable

        if reason := overlay_unavailable():
            pytest.skip(reason)
    tar = make_tar(tree_v1)
    blob = write_blob(tar, "ours")
    with get_store(store_options(Path(reflink_fs.mountpoint), driver)) as s:
        try:
            first, _ = pull(s, blob)
            second, out = pull(s, blob)
            assert out.stats.files_reflinked >= 5 and out.stats.bytes_missing == 0
            for name in ("big", "lib/a.so", "lib/b.so"):
                a = os.path.join(s.mount(first), name)
                b = os.path.join(s.mount(second), name)
                assert os.stat(a).st_ino != os.stat(b).st_ino
                ea, eb = extents(a), extents(b)
                assert ea and [p for p, _f in ea] == [p for p, _f in eb], name
                assert all(f & _EXTENT_SHARED for _p, f in eb), name
                assert Path(a).read_bytes() == Path(b).read_bytes()
            s.unmount(first)
            s.unmount(second)
            assert s.diff("", second).read() == tar
        finally:
            with contextlib.suppress(LayerUsedByContainer):
                s.shutdown(force=True)  # unmounts everything, then says what was mounted
