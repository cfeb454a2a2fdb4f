"""Safe extraction of an uncompressed tar stream into a layer directory.

Every path is resolved from a directory file descriptor of the layer root, one
component at a time, never following a symlink with the kernel: symlinks met in the
*parent* part of a name are resolved by hand and confined to the root (as upstream's
chrooted extraction does), and the final component is never followed.  Names that climb
above the root and hard links to targets above it are refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from ..errors import ArchiveError, UnmappableID, UnsafeArchive, UnsupportedTarEntry
from ..idtools import IDMappings, to_host
from . import tarheader as th
from .paths import layer_parts
from .rooted import RootedDir, remove_all
from .tarreader import Source, TarReader
from .types import WhiteoutFormat

WHITEOUT_PREFIX = b".wh."
WHITEOUT_META_PREFIX = b".wh..wh."
WHITEOUT_OPAQUE = b".wh..wh..opq"
WHITEOUT_LINK_DIR = b".wh..wh.plnk"

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_IGNORED_XATTRS = frozenset({"security.selinux"})
#: overlayfs's own control attributes (redirects, metacopy, opaque, origin): set by a
#: diff they would make the kernel look up other layers' files. Upstream applies them;
#: here they are dropped (opaque directories come from ``.wh..wh..opq`` entries)
_IGNORED_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
OVERRIDE_XATTR = "user.containers.override_stat"


def in_user_namespace() -> bool:
    """True when running in a user namespace other than the initial one (rootless)."""
    try:
        with open("/proc/self/uid_map", "rb") as f:
            fields = f.read().split()
    except OSError:
        return os.geteuid() != 0
    return fields != [b"0", b"0", b"4294967295"]


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    whiteout_format: WhiteoutFormat = WhiteoutFormat.DELETE
    #: container -> host mapping of the owners in the tar
    id_mappings: IDMappings = IDMappings()
    ignore_chown_errors: bool = False
    #: permission bits forced on everything but symlinks; the real owner and mode go
    #: into the ``user.containers.override_stat`` xattr
    force_mask: int | None = None
    #: name of the overlay opaque-directory xattr (``user.overlay.opaque`` with userxattr)
    opaque_xattr: str = "trusted.overlay.opaque"
    #: skip device nodes (rootless); None detects a user namespace
    in_userns: bool | None = None


def apply_tar(stream: IO[bytes], root: str, options: ApplyOptions = ApplyOptions()) -> int:
    """Extract the tar in ``stream`` into ``root``; returns the sum of the entries' sizes."""
    ex = _Extractor(root, options)
    try:
        return ex.run(TarReader(Source(stream)))
    finally:
        ex.close()


#: Creates a regular file's content as ``name`` in the directory ``dir_fd`` and returns
#: its open descriptor for the metadata to be applied, or None when it linked a file
#: whose metadata must stay as it is.
ContentPlacer = Callable[[int, bytes, th.Entry], "int | None"]


#: Applies to an open regular file what the extractor applies after its content (owner
#: through the ID maps, xattrs, mode, times); safe to call from other threads.
FileFinisher = Callable[[int, th.Entry], None]


def apply_entries(
    entries: Iterable[tuple[th.Entry, ContentPlacer | None]],
    root: str,
    options: ApplyOptions = ApplyOptions(),
    started: Callable[[FileFinisher], None] | None = None,
) -> int:
    """Create ``entries`` (headers with no tar stream behind them) in ``root`` exactly as
    :func:`apply_tar` would; each regular file with a placer gets its content from it,
    one without is created empty. ``started`` is given the extractor's
    :data:`FileFinisher` first, for placers that create files elsewhere (in threads)
    and return None."""
    ex = _Extractor(root, options)
    if started is not None:
        started(ex.finish_regular)
    try:
        return ex.run(_EntryFeed(entries, ex))
    finally:
        ex.close()


class _EntryFeed(TarReader):
    """The extractor's reader for :func:`apply_entries`: entries without content."""

    def __init__(self, entries: Iterable[tuple[th.Entry, ContentPlacer | None]], ex: _Extractor) -> None:
        super().__init__(Source(io.BytesIO()))
        self._entries = entries
        self._ex = ex

    def __iter__(self) -> Iterator[th.Entry]:
        for entry, placer in self._entries:
            self._ex.placer = placer
            yield entry
        self._ex.placer = None

    def read(self, limit: int = 0) -> bytes:
        return b""


class _Extractor:
    def __init__(self, root: str, options: ApplyOptions) -> None:
        self.opts = options
        self.placer: ContentPlacer | None = None
        self.userns = in_user_namespace() if options.in_userns is None else options.in_userns
        self.tree = RootedDir(root)
        self.root_fd = self.tree.root_fd
        #: cleaned names written so far, for opaque whiteouts (one bytes object per entry:
        #: the extractor's memory grows with the entry count, by about name + 60 bytes)
        self.unpacked: set[bytes] = set()
        self.dir_times: list[tuple[tuple[bytes, ...], bytes, int, int]] = []
        self.root_times: tuple[int, int] | None = None
        self.plnk_dir: bytes | None = None
        self.plnk: dict[bytes, th.Entry] = {}

    def close(self) -> None:
        if self.plnk_dir is not None:
            with contextlib.suppress(OSError):
                remove_all(self.root_fd, self.plnk_dir)
        self.tree.close()

    # -- the loop --------------------------------------------------------------------
    def run(self, reader: TarReader) -> int:
        total = 0
        for entry in reader:
            total += entry.size
            if entry.typeflag == th.PAX_GLOBAL:
                continue
            self.tree.settle()
            try:
                self._entry(entry, reader)
            except ArchiveError:
                raise
            except OSError as exc:
                raise ArchiveError(
                    f"extracting {entry.name.decode('utf-8', 'replace')!r}", message=str(exc)
                ) from exc
        for real, base, atime, mtime in self.dir_times:
            with contextlib.suppress(FileNotFoundError):
                os.utime(base, ns=(atime, mtime), dir_fd=self.tree.fd(real), follow_symlinks=False)
        if self.root_times is not None:
            os.utime(self.root_fd, ns=self.root_times)
        return total

    def _entry(self, entry: th.Entry, reader: TarReader) -> None:
        fmt = self.opts.whiteout_format
        flag = entry.typeflag
        parts = layer_parts(entry.name)
        if flag in (th.CHAR, th.BLOCKDEV) and self.userns:
            return  # device nodes cannot be created in a user namespace
        if not parts:
            if flag != th.DIR:
                raise UnsafeArchive(
                    f"{entry.name!r}", message="the layer root would be replaced by a non-directory"
                )
            self._metadata_dir(self.root_fd, entry, root=True)
            return
        if fmt == WhiteoutFormat.DELETE and parts[0].startswith(WHITEOUT_META_PREFIX):
            if parts[0] == WHITEOUT_LINK_DIR and len(parts) == 2 and flag in (th.REG, th.CONT):
                self._plnk_source(parts[1], entry, reader)
            if parts != (WHITEOUT_OPAQUE,):
                return
        base = parts[-1]
        parent = parts[:-1]
        if fmt != WhiteoutFormat.AUFS and base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base, entry)
            return
        preal = self.tree.resolve(parent, create=True)
        pfd = self.tree.fd(preal)
        if flag == th.LINK:
            link_parts = layer_parts(entry.linkname)
            if not link_parts:
                raise UnsafeArchive(f"{entry.name!r}", message="hard link to the layer root")
            if fmt == WhiteoutFormat.DELETE and link_parts[0] == WHITEOUT_LINK_DIR:
                self._plnk_copy(pfd, base, link_parts[-1])
                self.unpacked.add(b"/".join(parts))
                return
        self._create(pfd, preal, base, entry, reader)
        self.unpacked.add(b"/".join(parts))

    # -- whiteouts -------------------------------------------------------------------
    def _whiteout(self, parent: tuple[bytes, ...], base: bytes, entry: th.Entry) -> None:
        overlay = self.opts.whiteout_format == WhiteoutFormat.OVERLAY
        if base in (b".wh..", b".wh..."):
            raise UnsafeArchive(f"{entry.name!r}", message="whiteout of a directory by its own dot entry")
        try:
            preal = self.tree.resolve(parent, create=True)
        except NotADirectoryError:
            if overlay:
                return  # parent already whited out as a device
            raise
        pfd = self.tree.fd(preal)
        if overlay:
            if base == WHITEOUT_OPAQUE:
                fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=pfd) if preal else os.dup(self.root_fd)
                try:
                    os.setxattr(fd, self.opts.opaque_xattr, b"y")
                finally:
                    os.close(fd)
            elif not base.startswith(WHITEOUT_META_PREFIX):
                name = base[len(WHITEOUT_PREFIX) :]
                try:
                    os.mknod(name, stat.S_IFCHR | 0o000, 0, dir_fd=pfd)
                except NotADirectoryError:
                    return
                uid, gid = self._host_ids(entry)
                self._chown(lambda: os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False))
            return
        if base == WHITEOUT_OPAQUE:
            self._opaque(parent, pfd)
        elif not base.startswith(WHITEOUT_META_PREFIX):
            name = base[len(WHITEOUT_PREFIX) :]
            if name:
                self._remove(pfd, name)

    def _opaque(self, logical: tuple[bytes, ...], dfd: int) -> None:
        """Remove everything under the directory not written by this tar so far."""
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dfd)
        try:
            for child in os.listdir(fd):
                assert isinstance(child, str)
                name = os.fsencode(child)
                path = (*logical, name)
                if b"/".join(path) not in self.unpacked:
                    self._remove(fd, name)
                else:
                    st = os.lstat(name, dir_fd=fd)
                    if stat.S_ISDIR(st.st_mode):
                        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                        try:
                            self._opaque(path, sub)
                        finally:
                            os.close(sub)
        finally:
            os.close(fd)

    def _remove(self, dfd: int, name: bytes) -> None:
        try:
            st = os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            return
        remove_all(dfd, name, st)
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            # cached descriptors below the removed entry are stale; ``dfd`` itself may be
            # one of the cached ones, so only drop them once it is no longer needed
            self.tree.forget()

    # -- AUFS hard-link sources ------------------------------------------------------
    def _plnk_source(self, base: bytes, entry: th.Entry, reader: TarReader) -> None:
        if self.plnk_dir is None:
            self.plnk_dir = b".dockerplnk" + secrets.token_hex(6).encode()
            os.mkdir(self.plnk_dir, 0o700, dir_fd=self.root_fd)
        tfd = os.open(self.plnk_dir, _DIR_FLAGS, dir_fd=self.root_fd)
        try:
            self._create(tfd, None, base, entry, reader)
        finally:
            os.close(tfd)
        self.plnk[base] = entry

    def _plnk_copy(self, pfd: int, base: bytes, source: bytes) -> None:
        src = self.plnk.get(source)
        if src is None or self.plnk_dir is None:
            raise ArchiveError(f"{base!r}", message="invalid aufs hardlink")
        tfd = os.open(self.plnk_dir, _DIR_FLAGS, dir_fd=self.root_fd)
        try:
            rfd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tfd)
        finally:
            os.close(tfd)
        with os.fdopen(rfd, "rb") as f:
            copy = dataclasses.replace(src, sparse=None, data_size=src.size)
            self._remove(pfd, base)
            self._create(pfd, None, base, copy, TarReader.of_content(f, copy.size))

    # -- entries -----------------------------------------------------------------------
    def _host_ids(self, entry: th.Entry) -> tuple[int, int]:
        maps = self.opts.id_mappings
        uid = to_host(entry.uid, maps.uids)
        gid = to_host(entry.gid, maps.gids)
        if uid is None:
            raise UnmappableID(message=f"Container ID {entry.uid} cannot be mapped to a host ID")
        if gid is None:
            raise UnmappableID(message=f"Container ID {entry.gid} cannot be mapped to a host ID")
        return uid, gid

    def _chown(self, call: Callable[[], None]) -> None:
        try:
            call()
        except OSError as exc:
            if not self.opts.ignore_chown_errors:
                raise
            print(f"Chown error detected. Ignoring due to ignoreChownErrors flag: {exc}", file=sys.stderr)

    def _create(
        self, pfd: int, preal: tuple[bytes, ...] | None, base: bytes, entry: th.Entry, reader: TarReader
    ) -> None:
        flag = entry.typeflag
        mode = entry.mode & 0o7777
        uid, gid = self._host_ids(entry)
        for attempt in (0, 1):
            try:
                if flag in (th.REG, th.CONT):
                    self._regular(pfd, base, entry, reader, uid, gid)
                    return
                if flag == th.DIR:
                    os.mkdir(base, 0o700, dir_fd=pfd)
                elif flag == th.SYMLINK:
                    os.symlink(entry.linkname, base, dir_fd=pfd)
                elif flag == th.LINK:
                    self._hardlink(pfd, base, entry)
                    return
                elif flag in (th.FIFO, th.CHAR, th.BLOCKDEV):
                    kind = {th.FIFO: stat.S_IFIFO, th.CHAR: stat.S_IFCHR, th.BLOCKDEV: stat.S_IFBLK}[flag]
                    os.mknod(base, kind | 0o600, os.makedev(entry.devmajor, entry.devminor), dir_fd=pfd)
                else:
                    raise UnsupportedTarEntry(
                        f"{entry.name.decode('utf-8', 'replace')!r}",
                        message=f"unhandled tar header type {flag}",
                    )
                break
            except FileExistsError:
                if attempt:
                    raise
                st = os.lstat(base, dir_fd=pfd)
                if flag == th.DIR and stat.S_ISDIR(st.st_mode):
                    break  # merge: only the metadata is applied
                if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    self.tree.forget()
                    if preal is not None:
                        pfd = self.tree.fd(preal)
                remove_all(pfd, base, st)
        if flag == th.DIR:
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                self._metadata_fd(fd, entry, uid, gid, mode)
            finally:
                os.close(fd)
            if preal is not None:
                self.dir_times.append((preal, base, *self._times(entry)))
            return
        if flag == th.SYMLINK:
            self._chown(lambda: os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False))
            self._xattrs(f"/proc/self/fd/{pfd}/{os.fsdecode(base)}", entry)
        else:
            self._chown(lambda: os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False))
            self._xattrs(f"/proc/self/fd/{pfd}/{os.fsdecode(base)}", entry)
            self._override(f"/proc/self/fd/{pfd}/{os.fsdecode(base)}", entry)
            os.chmod(base, self._mode(mode), dir_fd=pfd)
        os.utime(base, ns=self._times(entry), dir_fd=pfd, follow_symlinks=False)

    def _regular(self, pfd: int, base: bytes, entry: th.Entry, reader: TarReader, uid: int, gid: int) -> None:
        if self.placer is not None:
            placed = self.placer(pfd, base, entry)
            if placed is not None:
                try:
                    self.finish_regular(placed, entry)
                finally:
                    os.close(placed)
            return
        fd = os.open(
            base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd
        )
        try:
            if entry.sparse is None:
                while data := reader.read():
                    _write_all(fd, data)
            else:
                for off, length in entry.sparse:
                    os.lseek(fd, off, os.SEEK_SET)
                    left = length
                    while left:
                        data = reader.read(left)
                        if not data:
                            break
                        _write_all(fd, data)
                        left -= len(data)
                os.ftruncate(fd, entry.size)
            self._metadata_fd(fd, entry, uid, gid, entry.mode & 0o7777)
            os.utime(fd, ns=self._times(entry))
        finally:
            os.close(fd)

    def finish_regular(self, fd: int, entry: th.Entry) -> None:
        uid, gid = self._host_ids(entry)
        self._metadata_fd(fd, entry, uid, gid, entry.mode & 0o7777)
        os.utime(fd, ns=self._times(entry))

    def _hardlink(self, pfd: int, base: bytes, entry: th.Entry) -> None:
        target = layer_parts(entry.linkname)
        treal = self.tree.resolve(target[:-1], create=False)
        os.link(target[-1], base, src_dir_fd=self.tree.fd(treal), dst_dir_fd=pfd, follow_symlinks=False)

    def _metadata_dir(self, fd: int, entry: th.Entry, root: bool) -> None:
        uid, gid = self._host_ids(entry)
        self._metadata_fd(fd, entry, uid, gid, entry.mode & 0o7777)
        if root:
            self.root_times = self._times(entry)

    def _metadata_fd(self, fd: int, entry: th.Entry, uid: int, gid: int, mode: int) -> None:
        self._chown(lambda: os.chown(fd, uid, gid))
        self._xattrs(fd, entry)
        self._override(fd, entry)
        os.chmod(fd, self._mode(mode))

    def _mode(self, mode: int) -> int:
        return mode if self.opts.force_mask is None else self.opts.force_mask

    def _override(self, target: int | str, entry: th.Entry) -> None:
        if self.opts.force_mask is not None:
            value = f"{entry.uid}:{entry.gid}:0{entry.mode & 0o7777:o}".encode()
            os.setxattr(target, OVERRIDE_XATTR, value, follow_symlinks=isinstance(target, int))

    def _xattrs(self, target: int | str, entry: th.Entry) -> None:
        for key, value in entry.xattrs.items():
            if key in _IGNORED_XATTRS or key.startswith(_IGNORED_XATTR_PREFIXES):
                continue
            try:
                os.setxattr(target, key, value, follow_symlinks=isinstance(target, int))
            except OSError as exc:
                if exc.errno == errno.ENOTSUP or (exc.errno == errno.EPERM and self.userns):
                    continue
                raise OSError(exc.errno, f"{exc.strerror} (setting xattr {key})") from None

    @staticmethod
    def _times(entry: th.Entry) -> tuple[int, int]:
        atime = entry.atime_ns if entry.atime_ns is not None else entry.mtime_ns
        return max(atime, entry.mtime_ns), entry.mtime_ns


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
