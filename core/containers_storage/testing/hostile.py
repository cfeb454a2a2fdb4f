"""Tarballs for tests, down to hand-made raw headers, and a corpus of hostile and broken
layer diffs shared by the archive tests and the every-driver reliability suite.

``REFUSED`` maps a case name to (tar bytes, the error class applying it must raise);
``CONFINED`` maps a case name to (tar bytes, files the layer holds afterwards: what an
escape attempt turned into when it is kept inside the layer). Applying any of them must
create or change nothing outside the layer.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable

from ..errors import (
    ArchiveError,
    InvalidTarHeader,
    StorageError,
    UnexpectedEOF,
    UnsafeArchive,
)


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


REFUSED: dict[str, tuple[bytes, type[StorageError]]] = {
    "dotdot": (make_tar([member("../outside/evil", b"x")]), UnsafeArchive),
    "dotdot-deep": (make_tar([member("a/b/../../../outside/evil", b"x")]), UnsafeArchive),
    "dotdot-dir": (make_tar([member("../outside/newdir/", type=tarfile.DIRTYPE)]), UnsafeArchive),
    "hardlink-out": (
        make_tar([member("h", type=tarfile.LNKTYPE, linkname="../outside/precious")]),
        UnsafeArchive,
    ),
    "hardlink-out-deep": (
        make_tar(
            [
                member("d/", type=tarfile.DIRTYPE),
                member("d/h", type=tarfile.LNKTYPE, linkname="d/../../outside/precious"),
            ]
        ),
        UnsafeArchive,
    ),
    "whiteout-out": (make_tar([member("../outside/.wh.precious")]), UnsafeArchive),
    "nul-in-pax-path": (
        raw_file(b"./PaxHeaders/x", b"22 path=a\x00/../../b\n", typeflag=b"x") + raw_file(b"x", b"1") + END,
        InvalidTarHeader,
    ),
    "pax-garbage": (
        raw_file(b"./PaxHeaders/x", b"99 path=a\n", typeflag=b"x") + raw_file(b"x") + END,
        InvalidTarHeader,
    ),
    "bad-checksum": (
        raw_header(b"f")[:148] + b"0000000\x00" + raw_header(b"f")[156:] + END,
        InvalidTarHeader,
    ),
    "zero-then-garbage": (bytes(512) + raw_header(b"f") + END, InvalidTarHeader),
    "truncated-header": (raw_header(b"f")[:300], UnexpectedEOF),
    "truncated-content": (raw_header(b"f", size=5000) + b"x" * 100, UnexpectedEOF),
    "garbage": (b"this is not a tar file at all" * 40, InvalidTarHeader),
    "unknown-type": (raw_file(b"vol", typeflag=b"V") + END, ArchiveError),
    "root-as-file": (make_tar([member(".", b"x")]), UnsafeArchive),
    "whiteout-dot": (make_tar([member("d/", type=tarfile.DIRTYPE), member("d/.wh..")]), UnsafeArchive),
    "whiteout-dotdot": (make_tar([member(".wh...")]), UnsafeArchive),
}


CONFINED: dict[str, tuple[bytes, dict[str, bytes]]] = {
    # absolute names are taken relative to the layer root, as upstream joins them onto it
    "absolute": (make_tar([member("/outside/evil", b"x")]), {"outside/evil": b"x"}),
    # a symlink pointing out, then written through: resolved inside the root (chroot-like)
    "symlink-then-write": (
        make_tar([member("lnk", type=tarfile.SYMTYPE, linkname="../outside"), member("lnk/evil", b"x")]),
        {"outside/evil": b"x"},
    ),
    "absolute-symlink-then-write": (
        make_tar([member("lnk", type=tarfile.SYMTYPE, linkname="/tmp"), member("lnk/evil", b"x")]),
        {"tmp/evil": b"x"},
    ),
    # several entries deep: a chain of symlinks, the last climbing far above the root
    "symlink-chain": (
        make_tar(
            [
                member("a/", type=tarfile.DIRTYPE),
                member("a/b", type=tarfile.SYMTYPE, linkname="../c"),
                member("c", type=tarfile.SYMTYPE, linkname="d/../../../../../.."),
                member("a/b/outside/evil", b"x"),
            ]
        ),
        {"outside/evil": b"x"},
    ),
    # a directory replaced by a symlink, then files written "into" the directory
    "dir-replaced-by-symlink": (
        make_tar(
            [
                member("d/", type=tarfile.DIRTYPE),
                member("d/f", b"1"),
                member("d", type=tarfile.SYMTYPE, linkname="../../outside"),
                member("d/precious", b"overwritten?"),
            ]
        ),
        {"outside/precious": b"overwritten?"},
    ),
    # the final component is never followed: a symlink named like the target is replaced
    "symlink-replaced-not-followed": (
        make_tar([member("p", type=tarfile.SYMTYPE, linkname="../outside/precious"), member("p", b"new")]),
        {"p": b"new"},
    ),
    "hardlink-through-symlink": (
        make_tar(
            [
                member("s", type=tarfile.SYMTYPE, linkname="../outside"),
                member("h", type=tarfile.LNKTYPE, linkname="s/precious"),
            ]
        ),
        {},
    ),
    "whiteout-through-symlink": (
        make_tar([member("s", type=tarfile.SYMTYPE, linkname="../outside"), member("s/.wh.precious")]),
        {},
    ),
    "opaque-through-symlink": (
        make_tar([member("s", type=tarfile.SYMTYPE, linkname="/../outside"), member("s/.wh..wh..opq")]),
        {},
    ),
    "invalid-utf8-name": (raw_file(b"caf\xe9\xff", b"bytes") + END, {"caf\udce9\udcff": b"bytes"}),
}
