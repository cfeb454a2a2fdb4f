"""A corpus of valid layer diffs that ``check`` must find clean right after import.

``CASES`` maps a case name to a builder returning the chain of diffs (oldest first, each
imported on top of the previous one). Every case is something a real image may hold:
empty layers, whiteout-only and hard-link-only layers, device nodes and FIFOs, sparse
files in each tar dialect, symlinks (also ones pointing out of the layer, which the
applier confines), names without their parent directories, long names, xattrs, odd
modes, owners and times. Sparse files come from GNU tar (the only common writer of
them); :func:`needs` names what a case requires to be built or applied here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable

from .hostile import make_tar, member

Chain = list[bytes]

DIR, SYM, LNK = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def _t(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    return make_tar(members, fmt)


def _base() -> bytes:
    return _t(
        member("etc/", type=DIR, mode=0o755),
        member("etc/a", b"alpha\n"),
        member("etc/b", b"beta\n"),
        member("d/", type=DIR, mode=0o755),
        member("d/x", b"x\n"),
        member("f", b"file\n"),
    )


def _sparse(flags: list[str]) -> Chain:
    """A 3 MiB file with two data islands, archived by GNU tar with ``flags``."""
    with tempfile.TemporaryDirectory(prefix="cs-sparse-") as tmp:
        path = os.path.join(tmp, "sparse.img")
        with open(path, "wb") as f:
            f.truncate(3 << 20)
            f.seek(4096)
            f.write(b"island one" * 100)
            f.seek(2 << 20)
            f.write(b"island two" * 100)
        os.utime(path, (1_700_000_000, 1_700_000_000))
        out = subprocess.run(
            ["tar", "-c", "--sparse", *flags, "--owner=0", "--group=0", "--numeric-owner",
             "-C", tmp, "sparse.img"],
            capture_output=True, check=True,
        )  # fmt: skip
        return [out.stdout]


def _sparse_many_holes() -> Chain:
    with tempfile.TemporaryDirectory(prefix="cs-sparse-") as tmp:
        path = os.path.join(tmp, "holes.img")
        with open(path, "wb") as f:
            for i in range(40):  # more fragments than the old GNU header holds (extended blocks)
                f.seek(i * 65536)
                f.write(b"z" * 10)
            f.truncate(40 * 65536 + 4096)
        os.utime(path, (1_700_000_000, 1_700_000_000))
        out = subprocess.run(
            ["tar", "-c", "--sparse", "--format=gnu", "--owner=0", "--group=0", "--numeric-owner",
             "-C", tmp, "holes.img"],
            capture_output=True, check=True,
        )  # fmt: skip
        return [out.stdout]


CASES: dict[str, Callable[[], Chain]] = {}


def _case(name: str, *layers: Callable[[], bytes]) -> None:
    CASES[name] = lambda: [layer() for layer in layers]


def _members(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> Callable[[], bytes]:
    return lambda: _t(*members, fmt=fmt)


def _raw(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _dir(name: str, mode: int = 0o755, **kw: object) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, type=DIR, mode=mode, **kw)  # type: ignore[arg-type]


def _sym(name: str, target: str, mode: int = 0o777) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, type=SYM, linkname=target, mode=mode)


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, type=LNK, linkname=target)


# -- empty layers ---------------------------------------------------------------------
_case("empty-stream", _raw(b""))
_case("end-marker-only", _raw(bytes(1024)))
_case("no-entries", _members())
_case("root-entry-only", _members(_dir("./")))
_case("empty-child", _base, _raw(b""))
_case("empty-tar-child", _base, _members())
# -- whiteouts ------------------------------------------------------------------------
_case("whiteout-only-child", _base, _members(member("etc/.wh.a")))
_case("whiteout-of-a-directory", _base, _members(member(".wh.d")))
_case("opaque-only-child", _base, _members(member("d/.wh..wh..opq")))
_case("opaque-with-its-directory", _base, _members(_dir("d/"), member("d/.wh..wh..opq")))
_case("whiteout-only-base", _members(member(".wh.nothing")))
_case("whiteout-then-recreate", _base, _members(member(".wh.f"), _dir("f/", 0o700)))
# -- hard links -----------------------------------------------------------------------
_case("hard-links", _members(member("f", b"one\n"), _link("g", "f"), _link("h", "f")))
_case("hard-link-in-a-directory",
      _members(_dir("a/"), member("a/f", b"1"), _dir("b/"), _link("b/g", "a/f")))  # fmt: skip
_case("hard-link-to-a-symlink", _members(_sym("s", "target"), _link("t", "s")))
_case("hard-link-only-child", _base, _members(member("f2", b"new\n"), _link("f3", "f2")))
# -- special files --------------------------------------------------------------------
_case("device-nodes-and-fifo", _members(
    _dir("dev/"),
    member("dev/null", type=tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
    member("dev/loop9", type=tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=9),
    member("dev/pipe", type=tarfile.FIFOTYPE, mode=0o600),
))  # fmt: skip
# -- sparse files ---------------------------------------------------------------------
CASES["sparse-gnu"] = lambda: _sparse(["--format=gnu"])
CASES["sparse-gnu-extended-map"] = _sparse_many_holes
CASES["sparse-pax-0.0"] = lambda: _sparse(["--format=posix", "--sparse-version=0.0"])
CASES["sparse-pax-0.1"] = lambda: _sparse(["--format=posix", "--sparse-version=0.1"])
CASES["sparse-pax-1.0"] = lambda: _sparse(["--format=posix", "--sparse-version=1.0"])
# -- symlinks -------------------------------------------------------------------------
_case("symlinks", _members(_dir("lib/"), member("lib/real", b"r"), _sym("lib/abs", "/lib/real"),
                           _sym("lib/rel", "real"), _sym("dangling", "/no/such/file")))  # fmt: skip
_case("symlink-modes-as-written", _members(_sym("s644", "x", 0o644), _sym("s755", "x", 0o755)))
_case("symlink-escape-then-file", _members(_sym("escape", "/", 0o644), member("escape/file", b"hello\n")))
_case("symlink-escape-then-directory",
      _members(_sym("escape", "/"), _dir("escape/sub/", 0o750), member("escape/sub/f", b"s")))  # fmt: skip
_case("symlink-relative-escape", _members(_sym("up", "../../.."), _dir("up/etc/"), member("up/etc/x", b"x")))
_case("symlink-to-a-directory-of-the-parent", _base, _members(_sym("link", "d"), member("link/y", b"y")))
_case("symlink-chain",
      _members(_dir("real/"), _sym("one", "two"), _sym("two", "/real"), member("one/f", b"f")))  # fmt: skip
# -- names ----------------------------------------------------------------------------
_case("files-without-parent-directories", _members(member("a/b/c/file", b"deep\n", mode=0o600)))
_case("dot-slash-names", _members(_dir("./"), _dir("./etc/"), member("./etc/passwd", b"root\n")))
_case("long-names-gnu", _members(_dir("n" * 150 + "/"), member("n" * 150 + "/" + "m" * 150, b"long"),
                                 _sym("l", "t" * 200), fmt=tarfile.GNU_FORMAT))  # fmt: skip
_case("long-names-pax", _members(_dir("p" * 150 + "/"), member("p" * 150 + "/" + "q" * 150, b"long")))
_case("unicode-names", _members(_dir("ünï/"), member("ünï/цвет", b"c")))
_case("ustar-format", _members(_dir("u/"), member("u/f", b"u"), fmt=tarfile.USTAR_FORMAT))
# -- replacing across layers ----------------------------------------------------------
_case("directory-replaced-by-file", _base, _members(member("d", b"now a file\n")))
_case("file-replaced-by-directory", _base, _members(_dir("f/"), member("f/inside", b"i")))
_case("file-replaced-by-symlink", _base, _members(_sym("etc/a", "b")))
# -- attributes -----------------------------------------------------------------------
_case("setuid-setgid-sticky", _members(_dir("bin/"), member("bin/su", b"su", mode=0o4755),
                                       member("bin/wall", b"w", mode=0o2755),
                                       _dir("tmp/", 0o1777)))  # fmt: skip
_case("mode-zero", _members(_dir("locked/", 0o000), member("locked/f", b"z", mode=0)))
_case("owners", _members(_dir("home/"), _dir("home/user/", 0o700, uid=1000, gid=1000),
                         member("home/user/f", b"u", uid=1000, gid=2000),
                         member("nobody", b"n", uid=65534, gid=65534)))  # fmt: skip
_case("xattrs", _members(member("x", b"x", pax={"SCHILY.xattr.user.note": "hello"})))
_case("sub-second-times", _members(member("t", b"t", pax={"mtime": "1700000000.987654321"}),
                                   _dir("d/", pax={"mtime": "1600000000.5"})))  # fmt: skip
# (a future zfs-fuse can store: it keeps 32-bit seconds)
_case("epoch-and-future-times", _members(member("old", b"o", mtime=0),
                                         member("future", b"f", mtime=2_100_000_000)))  # fmt: skip


def needs(name: str) -> str | None:
    """Why the case cannot be built or applied here, or None."""
    if name.startswith("sparse") and shutil.which("tar") is None:
        return "GNU tar is not installed (it writes the sparse files)"
    if name == "device-nodes-and-fifo" and os.geteuid() != 0:
        return "device nodes need root"
    return None
