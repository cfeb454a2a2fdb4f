"""Extraction of every entry kind, whiteouts per format, ID maps, force_mask — compared
with GNU tar where it applies."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage.archive.apply import ApplyOptions, apply_tar
from containers_storage.drivers.api import WhiteoutFormat
from containers_storage.errors import UnmappableID
from containers_storage.idtools import IDMap, IDMappings

from .conftest import make_tar, member, needs_root, snapshot

CAP = bytes.fromhex("0100000200100000000000000000000000000000")  # cap_net_raw, v2


def rich_tar() -> bytes:
    long_dir = "/".join(f"directory-number-{i:02d}" for i in range(8))
    return make_tar(
        [
            member("./", type=tarfile.DIRTYPE, mode=0o755),
            member("bin/", type=tarfile.DIRTYPE, mode=0o755),
            member("bin/tool", b"#!/bin/sh\necho hi\n", mode=0o4755),
            member("bin/hard", type=tarfile.LNKTYPE, linkname="bin/tool", mode=0o4755),
            member("bin/sym", type=tarfile.SYMTYPE, linkname="tool", mode=0o777),
            member("tmp/", type=tarfile.DIRTYPE, mode=0o1777),
            member("srv/", type=tarfile.DIRTYPE, mode=0o2750, uid=1000, gid=1000),
            member("srv/owned", b"x" * 5000, mode=0o640, uid=1000, gid=1001, mtime=1_600_000_000),
            member("dev/", type=tarfile.DIRTYPE),
            member("dev/fifo", type=tarfile.FIFOTYPE, mode=0o600),
            member("dev/null", type=tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
            member("dev/loop9", type=tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=9),
            member("x/", type=tarfile.DIRTYPE, mode=0o750),
            member(
                "x/attr",
                b"data",
                pax={"SCHILY.xattr.user.test": "1", "SCHILY.xattr.security.selinux": "ignored"},
            ),
            member(
                "x/cap",
                b"\x7fELF",
                mode=0o755,
                pax={"SCHILY.xattr.security.capability": CAP.decode("latin-1")},
            ),
            member(f"{long_dir}/a-file-with-a-rather-long-name.txt", b"deep"),
            member("ünïcode name.txt", b"u"),
            member("x/frac", b"t", pax={"mtime": "1700000000.123456789"}),
        ]
    )


@needs_root
@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_matches_gnu_tar(tmp_path: Path, fmt: str) -> None:
    data = rich_tar()
    if fmt == "gnu":  # re-encode with GNU long names instead of PAX records
        data = subprocess.run(
            ["tar", "--format=gnu", "--xattrs", "--xattrs-include=*", "-cf", "-", "--files-from=/dev/null"],
            capture_output=True,
            check=True,
        ).stdout
        src = tmp_path / "src"
        src.mkdir()
        apply_tar(io.BytesIO(rich_tar()), str(src))
        data = subprocess.run(
            [
                "tar",
                "--format=gnu",
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "-C",
                str(src),
                "-cf",
                "-",
                ".",
            ],
            capture_output=True,
            check=True,
        ).stdout
    gnu, ours = tmp_path / "gnu", tmp_path / "ours"
    gnu.mkdir()
    ours.mkdir()
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", str(gnu)],
        input=data,
        check=True,
    )
    apply_tar(io.BytesIO(data), str(ours))
    a, b = snapshot(gnu), snapshot(ours)
    for snap in (a, b):  # parents made implicitly get the current time in both
        # (GNU tar also leaves "x" with the current time; upstream sets directory times last)
        for key in [
            k for k in snap if k == "x" or (k.startswith("directory-number") and not k.endswith(".txt"))
        ]:
            snap[key] = (*snap[key][:3], None, *snap[key][4:])
    if fmt == "pax":  # GNU tar restores security.selinux; upstream (and we) ignore it
        a = {k: (*v[:5], [x for x in v[5] if x[0] != "security.selinux"], v[6]) for k, v in a.items()}  # type: ignore[attr-defined]
    assert a == b
    assert os.stat(ours / "bin/tool").st_mode & 0o7777 == 0o4755
    assert os.stat(ours / "bin/tool").st_ino == os.stat(ours / "bin/hard").st_ino
    assert os.getxattr(ours / "x/cap", "security.capability") == CAP
    assert stat.S_ISCHR(os.lstat(ours / "dev/null").st_mode)


@needs_root
def test_returns_sum_of_sizes_and_subsecond_mtime(tmp_path: Path) -> None:
    size = apply_tar(io.BytesIO(rich_tar()), str(tmp_path))
    assert size == len(b"#!/bin/sh\necho hi\n") + 5000 + 4 + 4 + 4 + 1 + 1
    assert os.stat(tmp_path / "x/frac").st_mtime_ns == 1_700_000_000_123_456_789
    assert os.stat(tmp_path / "srv/owned").st_mtime_ns == 1_600_000_000 * 10**9
    assert os.stat(tmp_path / "srv").st_mtime_ns == 1_700_000_000 * 10**9  # dir times applied last


def test_sparse_gnu(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(1 << 20)
        f.write(b"middle")
        f.seek(3 << 20)
        f.write(b"end")
    for fmt in ("gnu", "posix"):
        data = subprocess.run(
            ["tar", f"--format={fmt}", "-S", "-C", str(src), "-cf", "-", "sparse"],
            capture_output=True,
            check=True,
        ).stdout
        out = tmp_path / fmt
        out.mkdir()
        size = apply_tar(io.BytesIO(data), str(out))
        assert (out / "sparse").read_bytes() == (src / "sparse").read_bytes()
        assert size == (3 << 20) + 3
        assert os.stat(out / "sparse").st_blocks * 512 < (1 << 20)


def base_layer(root: Path) -> None:
    apply_tar(
        io.BytesIO(
            make_tar(
                [
                    member("keep", b"k"),
                    member("gone", b"g"),
                    member("dir/", type=tarfile.DIRTYPE),
                    member("dir/sub/", type=tarfile.DIRTYPE),
                    member("dir/sub/deep", b"d"),
                    member("opq/", type=tarfile.DIRTYPE),
                    member("opq/old", b"o"),
                ]
            )
        ),
        str(root),
    )


CHILD = make_tar(
    [
        member(".wh.gone"),
        member(".wh.dir"),
        member("opq/", type=tarfile.DIRTYPE),
        member("opq/.wh..wh..opq"),
        member("opq/new", b"n"),
        member(".wh..wh.plnk/", type=tarfile.DIRTYPE),
        member("new/.wh.nothing"),
    ]
)


def test_whiteouts_delete(tmp_path: Path) -> None:
    base_layer(tmp_path)
    apply_tar(io.BytesIO(CHILD), str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["keep", "new", "opq"]
    assert os.listdir(tmp_path / "opq") == ["new"]
    assert os.listdir(tmp_path / "new") == []


@needs_root
def test_whiteouts_overlay(tmp_path: Path) -> None:
    apply_tar(io.BytesIO(CHILD), str(tmp_path), ApplyOptions(whiteout_format=WhiteoutFormat.OVERLAY))
    for name in ("gone", "dir", "new/nothing"):
        st = os.lstat(tmp_path / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(tmp_path / "opq", "trusted.overlay.opaque") == b"y"
    assert os.listdir(tmp_path / "opq") == ["new"]
    assert not (tmp_path / ".wh..wh.plnk").exists()


def test_whiteouts_aufs_kept_as_files(tmp_path: Path) -> None:
    apply_tar(io.BytesIO(CHILD), str(tmp_path), ApplyOptions(whiteout_format=WhiteoutFormat.AUFS))
    assert (tmp_path / ".wh.gone").is_file()
    assert (tmp_path / "opq/.wh..wh..opq").is_file()


def test_aufs_hardlink_sources(tmp_path: Path) -> None:
    data = make_tar(
        [
            member(".wh..wh.plnk/", type=tarfile.DIRTYPE),
            member(".wh..wh.plnk/123", b"shared content", mode=0o600),
            member("a", type=tarfile.LNKTYPE, linkname=".wh..wh.plnk/123"),
            member("b", type=tarfile.LNKTYPE, linkname=".wh..wh.plnk/123"),
        ]
    )
    apply_tar(io.BytesIO(data), str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
    assert (tmp_path / "a").read_bytes() == b"shared content"
    assert os.stat(tmp_path / "a").st_mode & 0o777 == 0o600


def test_replace_and_merge(tmp_path: Path) -> None:
    base_layer(tmp_path)
    data = make_tar(
        [
            member("keep/", type=tarfile.DIRTYPE, mode=0o700),  # file replaced by a directory
            member("dir", b"now a file"),  # directory replaced by a file
            member("opq/", type=tarfile.DIRTYPE, mode=0o711),  # merged
        ]
    )
    apply_tar(io.BytesIO(data), str(tmp_path))
    assert (tmp_path / "keep").is_dir() and (tmp_path / "dir").read_bytes() == b"now a file"
    assert os.listdir(tmp_path / "opq") == ["old"]
    assert os.stat(tmp_path / "opq").st_mode & 0o777 == 0o711


@needs_root
def test_id_mappings(tmp_path: Path) -> None:
    maps = IDMappings(uids=(IDMap(0, 100000, 65536),), gids=(IDMap(0, 200000, 65536),))
    data = make_tar([member("f", b"1", uid=0, gid=0), member("g", b"2", uid=1000, gid=5)])
    apply_tar(io.BytesIO(data), str(tmp_path), ApplyOptions(id_mappings=maps))
    assert (os.lstat(tmp_path / "f").st_uid, os.lstat(tmp_path / "f").st_gid) == (100000, 200000)
    assert (os.lstat(tmp_path / "g").st_uid, os.lstat(tmp_path / "g").st_gid) == (101000, 200005)
    with pytest.raises(UnmappableID, match="Container ID 70000 cannot be mapped"):
        apply_tar(
            io.BytesIO(make_tar([member("h", uid=70000)])), str(tmp_path), ApplyOptions(id_mappings=maps)
        )


@needs_root
def test_force_mask(tmp_path: Path) -> None:
    data = make_tar(
        [
            member("d/", type=tarfile.DIRTYPE, mode=0o755, uid=7),
            member("d/f", b"x", mode=0o4711, uid=7, gid=8),
        ]
    )
    apply_tar(io.BytesIO(data), str(tmp_path), ApplyOptions(force_mask=0o700))
    assert os.stat(tmp_path / "d/f").st_mode & 0o7777 == 0o700
    assert os.getxattr(tmp_path / "d/f", "user.containers.override_stat") == b"7:8:04711"


def _as_nobody(fn: object) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            fn()  # type: ignore[operator]
            os._exit(0)
        except BaseException as exc:  # report the failure kind through the exit status
            os._exit(3 if "Chown" in type(exc).__name__ or "Operation not permitted" in str(exc) else 4)
    return os.waitpid(pid, 0)[1] >> 8


@pytest.fixture
def public_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir="/var/tmp"))
    os.chmod(path, 0o755)
    yield path / "layer"
    shutil.rmtree(path)


@needs_root
def test_unprivileged_chown_errors(public_dir: Path) -> None:
    """Not root and not in a user namespace: chown to other owners fails unless
    ignore_chown_errors; device nodes cannot be made (a clear error)."""
    tmp_path = public_dir
    tmp_path.mkdir()
    os.chown(tmp_path, 65534, 65534)
    data = make_tar([member("f", b"x", uid=0, gid=0)])
    assert _as_nobody(lambda: apply_tar(io.BytesIO(data), str(tmp_path), ApplyOptions(in_userns=False))) == 3
    os.unlink(tmp_path / "f")
    ok = _as_nobody(
        lambda: apply_tar(
            io.BytesIO(data), str(tmp_path), ApplyOptions(ignore_chown_errors=True, in_userns=False)
        )
    )
    assert ok == 0 and (tmp_path / "f").read_bytes() == b"x"
    dev = make_tar([member("null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)])
    assert (
        _as_nobody(
            lambda: apply_tar(
                io.BytesIO(dev), str(tmp_path), ApplyOptions(ignore_chown_errors=True, in_userns=False)
            )
        )
        == 3
    )
    assert not (tmp_path / "null").exists()
    skipped = _as_nobody(lambda: apply_tar(io.BytesIO(dev), str(tmp_path), ApplyOptions(in_userns=True)))
    assert skipped == 0 and not (tmp_path / "null").exists()
