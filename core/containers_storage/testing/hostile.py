"""Tarballs for tests, down to hand-made raw headers, and a corpus of hostile and broken
layer diffs shared by the archive tests and the every-driver reliability suite.

``REFUSED`` maps a case name to (tar bytes, the error class applying it must raise);
``CONFINED`` maps a case name to (tar bytes, files the layer holds afterwards: what an
escape attempt turned into when it is kept inside the layer). ``ATTACKS`` goes further:
diffs on top of hostile parent layers, header-format abuse, huge sizes and offsets,
deep trees, long paths and xattrs, each with the outcome ours must give
(:mod:`.attackrun` runs them through any ``containers-storage`` tool, so upstream's
results can be set beside ours). Applying any of them must create or change nothing
outside the layer.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field

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


# -- attacks across layers, on the header formats and on the file system (issue 18) ------
@dataclass(frozen=True)
class Attack:
    """A hostile diff (``layers[-1]``), applied on top of ``layers[:-1]`` (each a child of
    the one before). Whatever happens, nothing outside the layer changes. ``refused``:
    the error class applying it raises; otherwise it is applied, confined: the layer
    then ``holds`` these files (content, or None for "exists") and ``lacks`` these."""

    what: str
    layers: tuple[bytes, ...]
    refused: type[StorageError] | None = None
    holds: dict[str, bytes | None] = field(default_factory=dict)
    lacks: tuple[str, ...] = ()
    #: xattrs the named file must not carry afterwards
    no_xattrs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: applied as an unprivileged user in a user namespace (rootless)
    rootless: bool = False
    #: why upstream's tool is not to be given this one (what it did when it was)
    upstream_unsafe: str = ""


def pax_file(
    records: dict[bytes, bytes],
    name: bytes,
    data: bytes = b"",
    typeflag: bytes = b"0",
    linkname: bytes = b"",
    size: int | None = None,
) -> bytes:
    """A raw PAX extended header with ``records`` (any keys and values), then the entry."""
    body = b"".join(pax_record(k, v) for k, v in records.items())
    head = raw_file(b"PaxHeaders/" + name[-80:], body, typeflag=b"x")
    entry = raw_header(name[:100], typeflag, size=len(data) if size is None else size, linkname=linkname)
    return head + entry + data + bytes((-len(data)) % 512)


def pax_record(key: bytes, value: bytes) -> bytes:
    """``"<length> <key>=<value>\\n"``, the length counting its own digits."""
    body = b" %s=%s\n" % (key, value)
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return b"%d%s" % (n, body)


def gnu_long(kind: bytes, value: bytes) -> bytes:
    """A GNU ``L`` (long name) or ``K`` (long link name) entry carrying ``value``."""
    return raw_file(b"././@LongLink", value + b"\x00", typeflag=kind)


def _size_256(n: int) -> bytes:
    """A header whose size field holds ``n`` in GNU base-256 (beyond octal's 8 GiB)."""
    b = bytearray(raw_header(b"huge", size=0))
    b[124:136] = b"\x80" + n.to_bytes(11, "big")
    b[148:156] = b"        "
    b[148:156] = b"%06o\x00 " % sum(b)
    return bytes(b)


def _symlink_chain(n: int) -> bytes:
    links = [member(f"l{i}", type=tarfile.SYMTYPE, linkname=f"l{i + 1}") for i in range(n)]
    return make_tar(
        [*links, member(f"l{n}", type=tarfile.SYMTYPE, linkname="../outside"), member("l0/evil", b"x")]
    )


_DEEP = 2000
#: struct vfs_cap_data, revision 2, effective; permitted = CAP_SETUID (bit 7)
_CAP_SETUID = bytes.fromhex("0100000280000000000000000000000000000000")

ATTACKS: dict[str, Attack] = {
    "symlink-loop": Attack(
        "a -> b, b -> a, then a file written through a/",
        (
            make_tar(
                [
                    member("a", type=tarfile.SYMTYPE, linkname="b"),
                    member("b", type=tarfile.SYMTYPE, linkname="a"),
                    member("a/x", b"x"),
                ]
            ),
        ),
        refused=ArchiveError,
    ),
    "symlink-chain-50": Attack(
        "50 chained symlinks ending at ../outside, written through",
        (_symlink_chain(50),),
        refused=ArchiveError,
    ),
    "dir-replaces-parent-symlink": Attack(
        "the parent layer has d -> ../outside; the child has a directory d/ and d/evil",
        (
            make_tar([member("d", type=tarfile.SYMTYPE, linkname="../outside")]),
            make_tar([member("d/", type=tarfile.DIRTYPE), member("d/evil", b"x")]),
        ),
        holds={"d/evil": b"x"},
    ),
    "write-through-parent-symlink": Attack(
        "the parent layer has d -> /; the child writes d/outside/evil",
        (
            make_tar([member("d", type=tarfile.SYMTYPE, linkname="/")]),
            make_tar([member("d/outside/evil", b"x")]),
        ),
        holds={"outside/evil": b"x"},
    ),
    "whiteout-through-parent-symlink": Attack(
        "the parent layer has s -> ../outside; the child whites out s/precious",
        (
            make_tar([member("s", type=tarfile.SYMTYPE, linkname="../outside")]),
            make_tar([member("s/.wh.precious")]),
        ),
    ),
    "opaque-through-parent-symlink": Attack(
        "the parent layer has s -> ../../outside; the child makes s opaque",
        (
            make_tar([member("s", type=tarfile.SYMTYPE, linkname="../../outside")]),
            make_tar([member("s/.wh..wh..opq")]),
        ),
    ),
    "whiteout-absolute-dotdot": Attack(
        "a whiteout named /../outside/.wh.precious",
        (make_tar([member("/../outside/.wh.precious")]),),
    ),
    "whiteout-of-root-parent": Attack(
        "a whiteout .wh.. at the top", (make_tar([member(".wh..")]),), refused=UnsafeArchive
    ),
    "pax-path-dotdot": Attack(
        "a PAX path record ../outside/evil on a harmless ustar name",
        (pax_file({b"path": b"../outside/evil"}, b"harmless", b"x") + END,),
        refused=UnsafeArchive,
    ),
    "pax-linkpath-out": Attack(
        "a hard link whose PAX linkpath is ../outside/precious",
        (pax_file({b"linkpath": b"../outside/precious"}, b"h", typeflag=b"1") + END,),
        refused=UnsafeArchive,
    ),
    "pax-header-over-1mib": Attack(
        "a PAX extended header of 2 MiB",
        (pax_file({b"comment": b"x" * (2 << 20)}, b"f", b"x") + END,),
        refused=InvalidTarHeader,
    ),
    "pax-many-headers": Attack(
        "2,000 PAX headers stacked before one entry (the last path wins)",
        (
            b"".join(
                raw_file(b"PaxHeaders/f", pax_record(b"path", b"p%d" % i), typeflag=b"x") for i in range(2000)
            )
            + raw_file(b"f", b"x")
            + END,
        ),
    ),
    "gnu-longname-dotdot": Attack(
        "a GNU long name ../outside/evil",
        (gnu_long(b"L", b"../outside/evil") + raw_file(b"harmless", b"x") + END,),
        refused=UnsafeArchive,
    ),
    "gnu-longlink-out": Attack(
        "a hard link whose GNU long link name is ../outside/precious",
        (gnu_long(b"K", b"../outside/precious") + raw_header(b"h", b"1") + END,),
        refused=UnsafeArchive,
    ),
    "gnu-longname-nul": Attack(
        "a GNU long name with a NUL: ok\\0../../outside/evil",
        (gnu_long(b"L", b"ok\x00../../outside/evil") + raw_file(b"harmless", b"x") + END,),
        holds={"ok": b"x"},
    ),
    "gnu-longname-huge": Attack(
        "a GNU long name of 2 MiB",
        (gnu_long(b"L", b"a/" * (1 << 20)) + raw_file(b"harmless", b"x") + END,),
        refused=InvalidTarHeader,
    ),
    "sparse-offset-2^62": Attack(
        "a PAX 0.1 sparse map with a fragment at offset 2^62",
        (
            pax_file(
                {
                    b"GNU.sparse.major": b"0",
                    b"GNU.sparse.minor": b"1",
                    b"GNU.sparse.size": b"%d" % (2**62 + 1),
                    b"GNU.sparse.map": b"%d,1" % 2**62,
                },
                b"sparse",
                b"x",
            )
            + END,
        ),
        refused=ArchiveError,
    ),
    "sparse-realsize-1tib": Attack(
        "a PAX 1.0 sparse file of 1 TiB holding one byte",
        (
            pax_file(
                {
                    b"GNU.sparse.major": b"1",
                    b"GNU.sparse.minor": b"0",
                    b"GNU.sparse.name": b"sparse",
                    b"GNU.sparse.realsize": b"%d" % (1 << 40),
                },
                b"sparse",
                (b"1\n%d\n1\n" % ((1 << 40) - 1)).ljust(512, b"\x00") + b"x",
            )
            + END,
        ),
        holds={"sparse": None},
        upstream_unsafe="writes the terabyte of zeros for real (13.9 GB in its first minute)",
    ),
    "size-1tib-short": Attack(
        "a header claiming 1 TiB followed by 10 bytes",
        (raw_header(b"f", size=1 << 40) + b"x" * 10,),
        refused=UnexpectedEOF,
    ),
    "size-base256-2^80": Attack(
        "a base-256 size of 2^80", (_size_256(1 << 80) + END,), refused=InvalidTarHeader
    ),
    "size-base256-2^62": Attack(
        "a base-256 size of 2^62 and no data", (_size_256(1 << 62) + END,), refused=UnexpectedEOF
    ),
    "deep-2000": Attack(
        f"{_DEEP} nested directories, one file at the bottom (paths past PATH_MAX)",
        (make_tar([member("d/" * (_DEEP) + "f", b"deep")]),),
        holds={"d/d/d/d": None},
    ),
    "path-4kb": Attack(
        "a 4 KB path of 200-byte components",
        (make_tar([member("/".join(["c" * 200] * 20) + "/f", b"x")]),),
        holds={"/".join(["c" * 200] * 20) + "/f": b"x"},
    ),
    "component-300-bytes": Attack(
        "one name component of 300 bytes", (make_tar([member("n" * 300, b"x")]),), refused=ArchiveError
    ),
    "xattr-value-128k": Attack(
        "a user xattr value of 128 KiB (XATTR_SIZE_MAX is 64 KiB)",
        (make_tar([member("f", b"x", pax={"SCHILY.xattr.user.big": "v" * (128 << 10)})]),),
        refused=ArchiveError,
    ),
    "xattr-overlay-redirect": Attack(
        "trusted.overlay.redirect/opaque/metacopy and user.overlay.* on entries",
        (
            make_tar(
                [
                    member(
                        "d/",
                        type=tarfile.DIRTYPE,
                        pax={
                            "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                            "SCHILY.xattr.trusted.overlay.opaque": "y",
                        },
                    ),
                    member(
                        "f",
                        b"x",
                        pax={
                            "SCHILY.xattr.trusted.overlay.metacopy": "",
                            "SCHILY.xattr.user.overlay.redirect": "/etc/shadow",
                        },
                    ),
                ]
            ),
        ),
        holds={"f": b"x"},
        no_xattrs={
            "d": ("trusted.overlay.redirect", "trusted.overlay.opaque"),
            "f": ("trusted.overlay.metacopy", "user.overlay.redirect"),
        },
    ),
    "xattr-security-capability": Attack(
        "security.capability cap_setuid=ep on a file (as ping's cap_net_raw: kept)",
        (pax_file({b"SCHILY.xattr.security.capability": _CAP_SETUID}, b"f", b"x") + END,),
        holds={"f": b"x"},
    ),
    "device-nodes-as-root": Attack(
        "a block device 8:0 and a character device 1:1 (/dev/mem) as root",
        (
            make_tar(
                [
                    member("sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0),
                    member("mem", type=tarfile.CHRTYPE, devmajor=1, devminor=1),
                ]
            ),
        ),
        holds={"sda": None, "mem": None},
    ),
    "device-nodes-rootless": Attack(
        "the same device nodes, applied in a user namespace (skipped there)",
        (
            make_tar(
                [
                    member("sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0),
                    member("mem", type=tarfile.CHRTYPE, devmajor=1, devminor=1),
                    member("ok", b"x"),
                ]
            ),
        ),
        holds={"ok": b"x"},
        lacks=("sda", "mem"),
        rootless=True,
    ),
    "setuid-root-rootless": Attack(
        "a setuid-root file applied in a user namespace (owned by the mapped user there)",
        (make_tar([member("su", b"#!/bin/sh\n", mode=0o4755)]),),
        holds={"su": b"#!/bin/sh\n"},
        rootless=True,
    ),
}
