"""The generic tree comparison (driver-api.md §4.1) and diff size (§4.4)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from ..idtools import IDMappings, to_container
from .types import Change, ChangeKind

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class _Info:
    st: os.stat_result
    capability: bytes | None
    xattrs: dict[str, bytes]


def _info(dfd: int, name: bytes, st: os.stat_result) -> _Info:
    path = f"/proc/self/fd/{dfd}/{os.fsdecode(name)}"
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.ENODATA):
            raise
        names = []
    cap = None
    user: dict[str, bytes] = {}
    for key in names:
        if key == "security.capability":
            cap = os.getxattr(path, key, follow_symlinks=False)
        elif key.startswith("user."):
            user[key] = os.getxattr(path, key, follow_symlinks=False)
    return _Info(st, cap, user)


def _same_time(a: int, b: int) -> bool:
    sa, na = divmod(a, 1_000_000_000)
    sb, nb = divmod(b, 1_000_000_000)
    return sa == sb and (na == nb or na == 0 or nb == 0)


def _owner(st: os.stat_result, maps: IDMappings) -> tuple[int | None, int | None]:
    return to_container(st.st_uid, maps.uids), to_container(st.st_gid, maps.gids)


def _stat_different(
    old: os.stat_result, old_maps: IDMappings, new: os.stat_result, new_maps: IDMappings
) -> bool:
    uid, gid = new.st_uid, new.st_gid
    old_uid, old_gid = old.st_uid, old.st_gid
    cuid, cgid = _owner(new, new_maps)
    if cuid is not None and cgid is not None:
        uid, gid = cuid, cgid
        ouid, ogid = _owner(old, old_maps)
        if ouid is not None and ogid is not None:
            old_uid, old_gid = ouid, ogid
    if old.st_mode != new.st_mode or (uid, gid) != (old_uid, old_gid) or old.st_rdev != new.st_rdev:
        return True
    if old.st_mode & stat.S_IFDIR != stat.S_IFDIR:  # upstream's test (block devices too)
        return not _same_time(old.st_mtime_ns, new.st_mtime_ns) or old.st_size != new.st_size
    return False


def _listing(dfd: int) -> dict[bytes, os.stat_result]:
    out = {}
    with os.scandir(dfd) as it:
        for e in it:
            try:
                out[os.fsencode(e.name)] = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
    return out


class _Comparer:
    def __init__(self, new_maps: IDMappings, old_maps: IDMappings) -> None:
        self.new_maps = new_maps
        self.old_maps = old_maps
        self.out: list[Change] = []

    def dir(self, path: str, nfd: int, ofd: int | None, reported: bool) -> None:
        start = len(self.out)
        new = _listing(nfd)
        old = _listing(ofd) if ofd is not None else {}
        for name in sorted(new):
            nst = new[name]
            child = f"{path}/{os.fsdecode(name)}" if path != "/" else f"/{os.fsdecode(name)}"
            ost = old.pop(name, None)
            child_reported = False
            if ost is None:
                self.out.append(Change(child, ChangeKind.ADD))
                child_reported = True
            elif (ost.st_dev, ost.st_ino) == (nst.st_dev, nst.st_ino):
                continue  # the same inode on both sides: nothing below can differ
            else:
                assert ofd is not None
                ninfo, oinfo = _info(nfd, name, nst), _info(ofd, name, ost)
                if (
                    _stat_different(ost, self.old_maps, nst, self.new_maps)
                    or ninfo.capability != oinfo.capability
                    or ninfo.xattrs != oinfo.xattrs
                ):
                    self.out.append(Change(child, ChangeKind.MODIFY))
                    child_reported = True
            if stat.S_ISDIR(nst.st_mode):
                sub = os.open(name, _OPEN_DIR, dir_fd=nfd)
                osub = None
                try:
                    if ost is not None and stat.S_ISDIR(ost.st_mode):
                        assert ofd is not None
                        osub = os.open(name, _OPEN_DIR, dir_fd=ofd)
                    self.dir(child, sub, osub, child_reported)
                finally:
                    os.close(sub)
                    if osub is not None:
                        os.close(osub)
        for name in sorted(old):
            child = f"{path}/{os.fsdecode(name)}" if path != "/" else f"/{os.fsdecode(name)}"
            self.out.append(Change(child, ChangeKind.DELETE))
        if len(self.out) > start and not reported and path != "/":
            self.out.insert(start, Change(path, ChangeKind.MODIFY))


def changes(new_root: str, new_maps: IDMappings, old_root: str | None, old_maps: IDMappings) -> list[Change]:
    """Changes of the tree ``new_root`` relative to ``old_root`` (None: an empty tree)."""
    cmp = _Comparer(new_maps, old_maps)
    nfd = os.open(new_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    ofd = os.open(old_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if old_root else None
    try:
        cmp.dir("/", nfd, ofd, True)
    finally:
        os.close(nfd)
        if ofd is not None:
            os.close(ofd)
    return cmp.out


def changes_size(new_root: str, found: Sequence[Change]) -> int:
    """Bytes of added or modified non-directories, each hard-linked inode once."""
    from .paths import layer_parts
    from .rooted import RootedDir

    total = 0
    inodes: set[int] = set()
    tree = RootedDir(new_root)
    try:
        for change in found:
            if change.kind == ChangeKind.DELETE:
                continue
            parts = layer_parts(os.fsencode(change.path))
            if not parts:
                continue
            try:
                st = os.lstat(parts[-1], dir_fd=tree.fd(tree.resolve(parts[:-1])))
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if st.st_nlink > 1:
                if st.st_ino in inodes:
                    continue
                inodes.add(st.st_ino)
            total += st.st_size
    finally:
        tree.close()
    return total
