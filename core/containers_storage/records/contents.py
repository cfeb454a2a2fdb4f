"""Expected versus actual layer trees, for the store check (cli.md §5.7 ``check``).

The expected tree of a layer is the replay of the tar headers of every diff down its
parent chain (whiteouts and opaque directories applied, hard links taking their target's
attributes); the actual tree is a walk of the mounted layer. Differences are reported in
upstream's notation: ``+/path``, ``-/path``, ``-/dir/``, ``/path(mode:0644￫0600,...)``.
"""

from __future__ import annotations

import functools
import os
import posixpath
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..idtools import IDMaps, to_container

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
REG, LINK, SYMLINK, CHAR, BLOCK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"
_ARROW = "\uffeb"


@dataclass(frozen=True, slots=True)
class Header:
    """What the comparison needs of a tar header (or of a file's status)."""

    name: str
    typeflag: str
    uid: int
    gid: int
    size: int
    #: permission bits plus setuid/setgid/sticky as tar stores them (0o4000 ...)
    mode: int
    #: whole seconds
    mtime: int
    linkname: str = ""


@dataclass(frozen=True, slots=True)
class Info:
    typeflag: str
    uid: int
    gid: int
    size: int
    mode: int
    mtime: int


@dataclass(frozen=True, slots=True)
class Ignore:
    """Differences not to report (ownership with ignore_chown_errors, ...)."""

    ownership: bool = False
    timestamps: bool = False
    permissions: bool = False
    filetype: bool = False


@dataclass(slots=True)
class Tree:
    info: Info
    dirs: dict[str, Tree] = field(default_factory=dict)
    files: dict[str, Info] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Tree:
        return cls(Info(DIR, 0, 0, 0, 0o555, int(time.time())))

    def add(self, path: str, info: Info) -> None:
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == ".":
            parts = parts[1:]
        if info.typeflag != REG:
            info = replace(info, size=0)
        node = self
        for part in parts[:-1]:
            child = node.dirs.get(part)
            if child is None:
                # a parent the archive did not list takes the child's attributes (as upstream)
                child = node.dirs[part] = Tree(replace(info, typeflag=DIR))
            node = child
        if not parts:
            self.info = replace(info, typeflag=DIR, size=self.info.size)
            return
        last = parts[-1]
        if info.typeflag == DIR:
            node.files.pop(last, None)
            existing = node.dirs.get(last)
            if existing is None:
                node.dirs[last] = Tree(info)
            else:  # directory entries merge
                existing.info = info
        elif info.typeflag == "g":
            return
        else:
            node.dirs.pop(last, None)
            node.files[last] = info

    def remove(self, path: str) -> None:
        head, _, rest = path.partition("/")
        if not rest:
            self.dirs.pop(head, None)
            self.files.pop(head, None)
            return
        child = self.dirs.get(head)
        if child is not None:
            child.remove(rest)

    def _lookup(self, path: str) -> Info | None:
        node = self
        for part in posixpath.normpath(path).split("/"):
            if part in ("", ".", ".."):
                continue
            if part in node.dirs:
                node = node.dirs[part]
                continue
            return node.files.get(part)
        return None

    def header(self, hdr: Header) -> None:
        name = posixpath.normpath(hdr.name)
        directory, base = posixpath.split(name)
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_WHITEOUT:
                target = posixpath.normpath(directory)
                self.remove(target)
                self.add(target, Info(DIR, hdr.uid, hdr.gid, hdr.size, hdr.mode, hdr.mtime))
            else:
                self.remove(posixpath.join(directory, base[len(WHITEOUT_PREFIX) :]))
            return
        info = Info(hdr.typeflag, hdr.uid, hdr.gid, hdr.size, hdr.mode, hdr.mtime)
        if hdr.typeflag == LINK:
            linked = self._lookup(hdr.linkname)
            if linked is not None:
                info = linked
        self.add(name, info)

    def headers(self, hdrs: Sequence[Header]) -> None:
        """Apply one diff: whiteouts before content of the same directory, links last."""
        for hdr in sorted(hdrs, key=functools.cmp_to_key(_order)):
            self.header(hdr)


def _less(a: Header, b: Header) -> bool:
    if a.typeflag != LINK and b.typeflag == LINK:
        return True
    if a.typeflag == LINK and b.typeflag != LINK:
        return False
    adir, afile = posixpath.split(a.name)
    bdir, bfile = posixpath.split(b.name)
    if adir != bdir:
        return a.name < b.name
    if afile == OPAQUE_WHITEOUT:
        return True
    return afile.startswith(WHITEOUT_PREFIX) and not bfile.startswith(WHITEOUT_PREFIX)


def _order(a: Header, b: Header) -> int:
    return -1 if _less(a, b) else (1 if _less(b, a) else 0)


_TYPES = (
    (stat.S_ISDIR, DIR),
    (stat.S_ISREG, REG),
    (stat.S_ISLNK, SYMLINK),
    (stat.S_ISCHR, CHAR),
    (stat.S_ISBLK, BLOCK),
    (stat.S_ISFIFO, FIFO),
)


def _header_of(rel: str, st: os.stat_result) -> Header:
    for test, flag in _TYPES:
        if test(st.st_mode):
            typeflag = flag
            break
    else:
        raise OSError(f"archive/tar: sockets not supported: {rel}")
    return Header(
        rel,
        typeflag,
        st.st_uid,
        st.st_gid,
        st.st_size if typeflag == REG else 0,
        stat.S_IMODE(st.st_mode),
        int(st.st_mtime),
    )


def scan(root: str) -> Tree:
    """The actual tree below ``root`` (not following symlinks)."""
    tree = Tree.empty()
    tree.header(_header_of(".", os.lstat(root)))
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
            for entry in it:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                tree.header(_header_of(rel, st))
                if stat.S_ISDIR(st.st_mode):
                    stack.append(rel)
    return tree


def _compare_info(a: Info, b: Info, maps: tuple[IDMaps, IDMaps] | None, ignore: Ignore) -> str:
    out = []
    if a.typeflag != b.typeflag and not ignore.filetype:
        out.append(f"filetype:{ord(a.typeflag)}{_ARROW}{ord(b.typeflag)}")
    buid, bgid = b.uid, b.gid
    if maps is not None and (maps[0] or maps[1]):
        cu, cg = to_container(buid, maps[0]), to_container(bgid, maps[1])
        if cu is None or cg is None:
            return f"container ID for host ID {buid if cu is None else bgid} not found"
        buid, bgid = cu, cg
    if a.uid != buid and not ignore.ownership:
        out.append(f"uid:{a.uid}{_ARROW}{buid}")
    if a.gid != bgid and not ignore.ownership:
        out.append(f"gid:{a.gid}{_ARROW}{bgid}")
    if a.size != b.size:
        out.append(f"size:{a.size}{_ARROW}{b.size}")
    if (a.mode & 0o777) != (b.mode & 0o777) and not ignore.permissions:
        out.append(f"mode:{a.mode:04o}{_ARROW}{b.mode:04o}")
    if a.mtime != b.mtime and not ignore.timestamps:
        out.append(f"mtime:{a.mtime:#x}{_ARROW}{b.mtime:#x}")
    return ",".join(out)


def _compare(
    path: str, a: Tree | None, b: Tree | None, maps: tuple[IDMaps, IDMaps] | None, ignore: Ignore
) -> list[str]:
    a = a or Tree.empty()
    b = b or Tree.empty()
    out: list[str] = []
    for name, adir in a.dirs.items():
        bdir = b.dirs.get(name)
        if bdir is None:
            out.append(f"-{path}/{name}/")
            out += _compare(f"{path}/{name}", adir, None, maps, ignore)
        else:
            attrs = _compare_info(adir.info, bdir.info, maps, ignore)
            if attrs:
                out.append(f"{path}/{name}({attrs})")
            out += _compare(f"{path}/{name}", adir, bdir, maps, ignore)
    for name, bdir in b.dirs.items():
        if name not in a.dirs:
            out.append(f"+{path}/{name}/")
            out += _compare(f"{path}/{name}", None, bdir, maps, ignore)
    for name, afile in a.files.items():
        bfile = b.files.get(name)
        if bfile is None:
            out.append(f"-{path}/{name}")
        else:
            attrs = _compare_info(afile, bfile, maps, ignore)
            if attrs:
                out.append(f"{path}/{name}({attrs})")
    for name, bfile in b.files.items():
        older = a.files.get(name)
        if older is None:
            out.append(f"+{path}/{name}")
            continue
        # upstream reports a changed non-directory from this side too
        attrs = _compare_info(older, bfile, maps, ignore)
        if attrs:
            out.append(f"+{path}/{name}({attrs})")
    return out


def compare(expected: Tree, actual: Tree, maps: tuple[IDMaps, IDMaps] | None, ignore: Ignore) -> list[str]:
    """Every departure of ``actual`` from ``expected``, sorted by path."""
    return sorted(_compare("", expected, actual, maps, ignore), key=lambda d: (d[1:], d[0] != "-"))


def expected_tree(diffs: Iterable[Sequence[Header]]) -> Tree:
    """The tree the diffs produce, oldest first."""
    tree = Tree.empty()
    for hdrs in diffs:
        tree.headers(hdrs)
    return tree
