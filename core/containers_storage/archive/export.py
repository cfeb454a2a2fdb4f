"""Producing layer diffs from files (on-disk.md §16): a whole tree or a change list.

Headers follow upstream's rules: names relative with a trailing ``/`` for directories,
permission bits (with setuid/setgid/sticky, no file-type bits) as the mode, mtime
truncated to seconds, owners mapped host -> container, user and group names looked up
on the host (so the bytes depend on the host's user database, as upstream's do), hard
links as ``TypeLink`` to the first path seen,
``security.capability``, ``security.ima`` and ``user.*`` xattrs as PAX records,
sockets skipped, deletions as ``.wh.`` entries.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO

from ..errors import UnmappableID
from ..idtools import IDMappings, to_container
from . import tarheader as th
from .compression import Compression, compressor
from .ingest import IterReader
from .rooted import RootedDir
from .tarwriter import END_OF_ARCHIVE, Header, encode, padding
from .types import Change, ChangeKind

_CHUNK = 1 << 20
_SECURITY_XATTRS = ("security.capability", "security.ima")
_TYPE_BITS = {
    stat.S_IFREG: th.REG,
    stat.S_IFDIR: th.DIR,
    stat.S_IFLNK: th.SYMLINK,
    stat.S_IFCHR: th.CHAR,
    stat.S_IFBLK: th.BLOCKDEV,
    stat.S_IFIFO: th.FIFO,
}


class _Names:
    """Host user and group names by ID, cached (Go's tar.FileInfoHeader looks them up)."""

    def __init__(self) -> None:
        self._users: dict[int, bytes] = {}
        self._groups: dict[int, bytes] = {}

    def user(self, uid: int) -> bytes:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name.encode()
            except KeyError:
                self._users[uid] = b""
        return self._users[uid]

    def group(self, gid: int) -> bytes:
        if gid not in self._groups:
            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name.encode()
            except KeyError:
                self._groups[gid] = b""
        return self._groups[gid]


def _xattrs(path: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.ENODATA):
            return out
        raise
    for key in _SECURITY_XATTRS:
        if key in names:
            out[key] = os.getxattr(path, key, follow_symlinks=False)
    for key in names:
        if key.startswith("user."):
            out[key] = os.getxattr(path, key, follow_symlinks=False)
    return out


class TarBuilder:
    """Turns files (given by parent directory descriptor and name) into tar bytes."""

    def __init__(
        self,
        id_mappings: IDMappings = IDMappings(),
        overlay_whiteouts: bool = False,
        opaque_xattr: str = "trusted.overlay.opaque",
        opaque_wanted: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.maps = id_mappings
        self.names = _Names()
        self.seen: dict[int, bytes] = {}
        self.overlay_whiteouts = overlay_whiteouts
        self.opaque_xattr = opaque_xattr
        self.opaque_wanted = opaque_wanted

    def entry(self, dfd: int, base: bytes, name: bytes, st: os.stat_result | None = None) -> Iterator[bytes]:
        """Header and content of ``base`` in ``dfd``, stored as ``name`` (relative)."""
        if st is None:
            st = os.lstat(base, dir_fd=dfd)
        fmt = stat.S_IFMT(st.st_mode)
        flag = _TYPE_BITS.get(fmt)
        if flag is None:
            return  # sockets (and anything unknown) are skipped
        proc = f"/proc/self/fd/{dfd}/{os.fsdecode(base)}"
        h = Header(
            name=name + b"/" if flag == th.DIR and not name.endswith(b"/") else name,
            typeflag=flag,
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            size=st.st_size if flag == th.REG else 0,
            mtime=st.st_mtime_ns // 1_000_000_000,
            uname=self.names.user(st.st_uid),
            gname=self.names.group(st.st_gid),
        )
        if flag == th.SYMLINK:
            h.linkname = os.readlink(base, dir_fd=dfd)
        if flag in (th.CHAR, th.BLOCKDEV):
            h.devmajor, h.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        h.xattrs = _xattrs(proc)
        if flag != th.DIR and st.st_nlink > 1:
            first = self.seen.get(st.st_ino)
            if first is not None:
                h.typeflag, h.linkname, h.size = th.LINK, first, 0
            else:
                self.seen[st.st_ino] = h.name
        whiteout_dev = flag == th.CHAR and st.st_rdev == 0
        base_name = h.name.rstrip(b"/").rsplit(b"/", 1)[-1]
        if not whiteout_dev and not base_name.startswith(b".wh.") and not self.maps.empty:
            uid = to_container(st.st_uid, self.maps.uids)
            gid = to_container(st.st_gid, self.maps.gids)
            if uid is None or gid is None:
                raise UnmappableID(
                    message=f"host ID pair {st.st_uid}:{st.st_gid} of {name!r} has no container ID"
                )
            h.uid, h.gid = uid, gid
        extra: Header | None = None
        if self.overlay_whiteouts:
            if whiteout_dev:
                head, _, tail = h.name.rpartition(b"/")
                h.name = (head + b"/" if head else b"") + b".wh." + tail
                h.mode, h.typeflag, h.size, h.devmajor, h.devminor = 0, th.REG, 0, 0, 0
            elif (
                flag == th.DIR
                and _opaque(proc, self.opaque_xattr)
                and (self.opaque_wanted is None or self.opaque_wanted(name))
            ):
                extra = Header(
                    name=h.name + b".wh..wh..opq",
                    typeflag=th.REG,
                    mode=h.mode & 0o777,
                    uid=h.uid,
                    gid=h.gid,
                    uname=h.uname,
                    gname=h.gname,
                )
        yield encode(h)
        if h.typeflag == th.REG and h.size > 0:
            yield from self._content(dfd, base, h.size)
        if extra is not None:
            yield encode(extra)

    @staticmethod
    def _content(dfd: int, base: bytes, size: int) -> Iterator[bytes]:
        fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        left = size
        try:
            while left > 0:
                data = os.read(fd, min(_CHUNK, left))
                if not data:
                    break
                left -= len(data)
                yield data
        finally:
            os.close(fd)
        if left > 0:  # the file shrank meanwhile; keep the stream well-formed
            yield bytes(left)
        yield padding(size)


def _opaque(path: str, key: str) -> bool:
    try:
        return os.getxattr(path, key, follow_symlinks=False) == b"y"
    except OSError:
        return False


def whiteout_header(path: bytes, now: float | None = None) -> bytes:
    """Upstream's deletion entry for ``path`` (relative): ``dir/.wh.base``, times now."""
    head, _, tail = path.rpartition(b"/")
    name = (head + b"/" if head else b"") + b".wh." + tail
    return encode(Header(name=name, typeflag=th.REG, mtime=round(time.time() if now is None else now)))


def tar_tree(root: str, builder: TarBuilder | None = None) -> Iterator[bytes]:
    """Every entry below ``root`` (the root itself excluded), in Go's ``filepath.Walk``
    order (names sorted bytewise per directory, depth first)."""
    builder = builder or TarBuilder()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield from _walk(fd, b"", builder)
    finally:
        os.close(fd)
    yield END_OF_ARCHIVE


def _walk(top: int, prefix: bytes, builder: TarBuilder) -> Iterator[bytes]:
    """Depth first with an explicit stack (a tree thousands deep needs no recursion);
    one descriptor is open per level being walked."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    # per level: its descriptor (``top`` is the caller's), its name prefix, names left
    stack: list[tuple[int, bytes, list[bytes]]] = [(top, prefix, _sorted_names(top))]
    try:
        while stack:
            dfd, pre, names = stack[-1]
            if not names:
                stack.pop()
                if dfd != top:
                    os.close(dfd)
                continue
            base = names.pop()
            try:
                st = os.lstat(base, dir_fd=dfd)
            except FileNotFoundError:
                continue
            yield from builder.entry(dfd, base, pre + base, st)
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(base, flags, dir_fd=dfd)
                try:
                    stack.append((sub, pre + base + b"/", _sorted_names(sub)))
                except BaseException:
                    os.close(sub)
                    raise
    finally:
        for dfd, _pre, _names in stack:
            if dfd != top:
                os.close(dfd)


def _sorted_names(dfd: int) -> list[bytes]:
    """The directory's names, sorted bytewise and reversed (popped from the end)."""
    with os.scandir(dfd) as it:
        return sorted((os.fsencode(e.name) for e in it), reverse=True)


def tar_changes(root: str, changes: Sequence[Change], builder: TarBuilder | None = None) -> Iterator[bytes]:
    """Upstream's ExportChanges: changes sorted by path; deletions become whiteouts."""
    builder = builder or TarBuilder()
    tree = RootedDir(root)
    try:
        for change in sorted(changes, key=lambda c: os.fsencode(c.path)):
            rel = os.fsencode(change.path).lstrip(b"/")
            if not rel:
                continue
            if change.kind == ChangeKind.DELETE:
                yield whiteout_header(rel)
                continue
            parts = tuple(rel.split(b"/"))
            try:
                dfd = tree.fd(tree.resolve(parts[:-1]))
                yield from builder.entry(dfd, parts[-1], rel)
            except FileNotFoundError:
                continue  # vanished since the changes were computed, as upstream skips it
    finally:
        tree.close()
    yield END_OF_ARCHIVE


def compress_chunks(chunks: Iterable[bytes], kind: Compression = Compression.NONE) -> Iterator[bytes]:
    comp = compressor(kind)
    for chunk in chunks:
        out = comp.compress(chunk)
        if out:
            yield out
    tail = comp.flush()
    if tail:
        yield tail


class DiffStream(IterReader):
    """A tar stream whose :meth:`close` also runs ``on_close`` (releasing mounts)."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None] | None = None) -> None:
        super().__init__(chunks)
        self._on_close = on_close

    def close(self) -> None:
        if not self.closed:
            try:
                close = getattr(self._chunks, "close", None)
                if close is not None:
                    close()
            finally:
                super().close()
                if self._on_close is not None:
                    callback, self._on_close = self._on_close, None
                    callback()


def as_stream(chunks: Iterator[bytes], on_close: Callable[[], None] | None = None) -> IO[bytes]:
    return DiffStream(chunks, on_close)  # type: ignore[return-value]
