"""Expected versus actual layer trees, for the store check (cli.md §5.7 ``check``).

The expected tree of a layer is the replay of the tar headers of every diff down its
parent chain (whiteouts and opaque directories applied, hard links taking their target's
attributes); the actual tree is a walk of the mounted layer. Differences are reported in
upstream's notation: ``+/path``, ``-/path``, ``-/dir/``, ``/path(mode:0644￫0600,...)``.

The replay follows what applying a diff really does, so that a valid layer always checks
clean (upstream's replay does not, in each case below):

* symlinks met in the parent part of a name are followed inside the layer, with the
  layer's root as ``/``, as the applier confines them (``escape -> /``, then
  ``escape/file`` is ``/file``);
* a directory a diff changes without an entry of its own (a whiteout-only layer, a
  name whose parents the archive does not list, an opaque marker) has attributes the
  archive does not say: they are not compared (the applier makes missing parents 0755
  and the kernel sets the modification time);
* a symlink's permission bits are not compared (Linux has none to keep).
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from collections.abc import Iterable, Sequence

from ..idtools import IDMaps, to_container
from ..structs import dataclass, field, replace

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
REG, LINK, SYMLINK, CHAR, BLOCK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"
_ARROW = "\uffeb"
#: symlinks followed while resolving one name before giving up (the kernel's limit)
_MAX_SYMLINKS = 40


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
    #: a symlink's target (followed when a later name passes through it; never compared)
    linkname: str = ""
    #: False when the diffs do not say the attributes (a directory changed implicitly)
    known: bool = True


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

    # -- resolving names as the applier does ------------------------------------------
    def _node(self, real: Sequence[str]) -> Tree:
        node = self
        for part in real:
            node = node.dirs[part]
        return node

    def _walk(self, parts: Sequence[str], create: bool, touched: set[tuple[str, ...]] | None = None
              ) -> tuple[Tree, tuple[str, ...]] | None:  # fmt: skip
        """The directory named ``parts`` and its real path: symlinks on the way are
        followed inside the tree (the root is ``/``, ``..`` stops there). Missing
        directories are made (attributes unknown) when ``create``, else None."""
        real: list[str] = []
        node = self
        todo = list(parts)
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if real:
                    real.pop()
                    node = self._node(real)
                continue
            child = node.dirs.get(part)
            if child is None:
                info = node.files.get(part)
                if info is not None and info.typeflag == SYMLINK and hops < _MAX_SYMLINKS:
                    hops += 1
                    if info.linkname.startswith("/"):
                        real, node = [], self
                    todo[:0] = info.linkname.split("/")
                    continue
                if not create:
                    return None
                node.files.pop(part, None)
                child = node.dirs[part] = Tree(Info(DIR, 0, 0, 0, 0o755, 0, known=False))
                if touched is not None:
                    touched.add(tuple(real))
            node = child
            real.append(part)
        return node, tuple(real)

    def add(self, path: str, info: Info, touched: set[tuple[str, ...]] | None = None) -> tuple[str, ...]:
        """Put ``info`` at ``path``; returns its real path. Directories whose entries
        change are added to ``touched``."""
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == ".":
            parts = parts[1:]
        if info.typeflag != REG:
            info = replace(info, size=0)
        if info.typeflag == "g":
            return ()
        if not parts:
            self.info = replace(info, typeflag=DIR, size=self.info.size)
            return ()
        found = self._walk(parts[:-1], True, touched)
        assert found is not None
        node, real = found
        last = parts[-1]
        if touched is not None:
            touched.add(real)
        if info.typeflag == DIR:
            node.files.pop(last, None)
            existing = node.dirs.get(last)
            if existing is None:
                node.dirs[last] = Tree(info)
            else:  # directory entries merge
                existing.info = info
        else:
            node.dirs.pop(last, None)
            node.files[last] = info
        return (*real, last)

    def remove(self, path: str, touched: set[tuple[str, ...]] | None = None) -> None:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if not parts:
            return
        found = self._walk(parts[:-1], False)
        if found is None:
            return
        node, real = found
        if parts[-1] in node.dirs or parts[-1] in node.files:
            node.dirs.pop(parts[-1], None)
            node.files.pop(parts[-1], None)
            if touched is not None:
                touched.add(real)

    def _lookup(self, path: str) -> Info | None:
        parts = [p for p in posixpath.normpath(path).split("/") if p not in ("", ".", "..")]
        if not parts:
            return None
        found = self._walk(parts[:-1], False)
        return None if found is None else found[0].files.get(parts[-1])

    def _opaque(self, path: str, diff: _Diff) -> None:
        """Empty the directory of everything this diff has not written so far, as the
        applier does with an opaque marker (wherever it stands in the archive)."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        found = self._walk(parts, True, diff.touched)
        assert found is not None

        def clean(node: Tree, real: tuple[str, ...]) -> None:
            for name in list(node.dirs):
                if (*real, name) in diff.written:
                    clean(node.dirs[name], (*real, name))
                else:
                    del node.dirs[name]
            for name in list(node.files):
                if (*real, name) not in diff.written:
                    del node.files[name]

        clean(*found)
        diff.touched.add(found[1])

    def header(self, hdr: Header, diff: _Diff | None = None) -> None:
        name = posixpath.normpath(hdr.name)
        directory, base = posixpath.split(name)
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_WHITEOUT:
                self._opaque(directory, diff or _Diff())
            else:
                hidden = posixpath.join(directory, base[len(WHITEOUT_PREFIX) :])
                self.remove(hidden, diff.touched if diff else None)
            return
        info = Info(hdr.typeflag, hdr.uid, hdr.gid, hdr.size, hdr.mode, hdr.mtime, hdr.linkname)
        if hdr.typeflag == LINK:
            linked = self._lookup(hdr.linkname)
            if linked is not None:
                info = linked
        real = self.add(name, info, diff.touched if diff else None)
        if diff is not None:
            diff.written.add(real)
            if info.typeflag == DIR:
                diff.explicit.add(real)

    def headers(self, hdrs: Sequence[Header]) -> None:
        """Apply one diff in archive order, as the applier does. Directories whose
        entries changed without an entry of their own in this diff (and every such
        directory above them) end with unknown attributes."""
        diff = _Diff()
        for hdr in hdrs:
            self.header(hdr, diff)
        implicit = {real[:i] for real in diff.touched for i in range(1, len(real) + 1)} - diff.explicit
        for real in implicit:
            found = self._walk(real, False)
            if found is not None and found[1] == real:
                found[0].info = replace(found[0].info, known=False)


@dataclass(slots=True)
class _Diff:
    """What replaying one diff has done so far (real paths)."""

    #: directories whose entries changed
    touched: set[tuple[str, ...]] = field(default_factory=set)
    #: directories the diff has entries for
    explicit: set[tuple[str, ...]] = field(default_factory=set)
    #: everything the diff wrote
    written: set[tuple[str, ...]] = field(default_factory=set)


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
    """The actual tree below ``root`` (not following symlinks). Directories are opened
    by descriptor from their parent's, so paths longer than PATH_MAX are fine."""
    from ..archive.rooted import RootedDir

    tree = Tree.empty()
    tree.header(_header_of(".", os.lstat(root)))
    dirs = RootedDir(root)
    stack: list[tuple[str, tuple[bytes, ...]]] = [("", ())]
    try:
        while stack:
            rel_dir, parts = stack.pop()
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dirs.fd(parts))
            try:
                with os.scandir(fd) as it:
                    for entry in it:
                        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        tree.header(_header_of(rel, st))
                        if stat.S_ISDIR(st.st_mode):
                            stack.append((rel, (*parts, os.fsencode(entry.name))))
            finally:
                os.close(fd)
            dirs.settle()
    finally:
        dirs.close()
    return tree


def _compare_info(a: Info, b: Info, maps: tuple[IDMaps, IDMaps] | None, ignore: Ignore) -> str:
    out = []
    if a.typeflag != b.typeflag and not ignore.filetype:
        out.append(f"filetype:{ord(a.typeflag)}{_ARROW}{ord(b.typeflag)}")
    if not a.known:
        return ",".join(out)  # what the diffs do not say cannot differ
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
    symlink = a.typeflag == SYMLINK and b.typeflag == SYMLINK
    if (a.mode & 0o777) != (b.mode & 0o777) and not ignore.permissions and not symlink:
        out.append(f"mode:{a.mode:04o}{_ARROW}{b.mode:04o}")
    if a.mtime != b.mtime and not ignore.timestamps:
        out.append(f"mtime:{a.mtime:#x}{_ARROW}{b.mtime:#x}")
    return ",".join(out)


def _compare(
    top: Tree, other: Tree, maps: tuple[IDMaps, IDMaps] | None, ignore: Ignore
) -> list[str]:
    """The departures, unsorted; an explicit stack walks trees of any depth."""
    out: list[str] = []
    stack: list[tuple[str, Tree | None, Tree | None]] = [("", top, other)]
    while stack:
        path, a, b = stack.pop()
        a = a or Tree.empty()
        b = b or Tree.empty()
        for name, adir in a.dirs.items():
            bdir = b.dirs.get(name)
            if bdir is None:
                out.append(f"-{path}/{name}/")
                stack.append((f"{path}/{name}", adir, None))
            else:
                attrs = _compare_info(adir.info, bdir.info, maps, ignore)
                if attrs:
                    out.append(f"{path}/{name}({attrs})")
                stack.append((f"{path}/{name}", adir, bdir))
        for name, bdir in b.dirs.items():
            if name not in a.dirs:
                out.append(f"+{path}/{name}/")
                stack.append((f"{path}/{name}", None, bdir))
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
    return sorted(_compare(expected, actual, maps, ignore), key=lambda d: (d[1:], d[0] != "-"))


def expected_tree(diffs: Iterable[Sequence[Header]]) -> Tree:
    """The tree the diffs produce, oldest first."""
    tree = Tree.empty()
    for hdrs in diffs:
        tree.headers(hdrs)
    return tree
