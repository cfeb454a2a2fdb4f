"""Re-owning a layer's files from one set of ID maps to another (driver-api.md §3)."""

from __future__ import annotations

import contextlib
import os
import stat

from ..errors import UnmappableID
from ..idtools import OVERFLOW_ID, IDMappings, to_container, to_host

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

#: (st_dev, st_ino) of a multiply linked inode -> the name it was first met under, as
#: components below the root (the last one is the file's own name), or None when that
#: name needed no chown (so nothing can have split the link)
_Seen = dict[tuple[int, int], "tuple[bytes, ...] | None"]


def shift_ids(uid: int, gid: int, old: IDMappings, new: IDMappings, where: str = "") -> tuple[int, int]:
    """Host IDs under ``old`` maps -> container IDs -> host IDs under ``new`` maps.

    A pair with no container IDs is an error unless it is 0:0 (a parent layer that should
    have been mapped but was not); container IDs outside ``new`` get the overflow ID.
    """
    cuid, cgid = to_container(uid, old.uids), to_container(gid, old.gids)
    if cuid is None or cgid is None:
        if uid or gid:
            raise UnmappableID(message=f"mapping host ID pair {uid}:{gid} for {where!r} to container")
        cuid, cgid = uid, gid
    huid, hgid = to_host(cuid, new.uids), to_host(cgid, new.gids)
    return (OVERFLOW_ID if huid is None else huid), (OVERFLOW_ID if hgid is None else hgid)


def shift_tree(root: str, to_container_maps: IDMappings, to_host_maps: IDMappings) -> None:
    """Re-own every file below ``root``; setuid/setgid bits and ``security.capability``
    survive the chown.

    The root directory itself is left alone, as upstream's walk does: its owner is the
    layer's root, which the caller sets (a snapshot's root carries its parent's owner,
    which the old maps need not cover). A hard-linked inode is re-owned once; when that
    changed its owner, its other names are linked again to the re-owned one, because
    re-owning through an overlay mount copies up only the name it went through and
    would split the link.
    """
    seen: _Seen = {}
    fd = os.open(root, _OPEN_DIR)
    try:
        _shift_children(fd, fd, (), to_container_maps, to_host_maps, seen, root)
    finally:
        os.close(fd)


def _shift_children(
    root_fd: int,
    dfd: int,
    at: tuple[bytes, ...],
    old: IDMappings,
    new: IDMappings,
    seen: _Seen,
    where: str,
) -> None:
    with os.scandir(dfd) as it:
        children = [(os.fsencode(e.name), e.stat(follow_symlinks=False)) for e in it]
    for name, st in children:
        path = f"{where}/{os.fsdecode(name)}"
        key = (st.st_dev, st.st_ino)
        if key in seen:
            first = seen[key]
            if first is not None:
                _relink(root_fd, first, dfd, name)
            continue
        changed = _chown(dfd, name, st, old, new, path)
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            seen[key] = (*at, name) if changed else None
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _OPEN_DIR, dir_fd=dfd)
            try:
                _shift_children(root_fd, fd, (*at, name), old, new, seen, path)
            finally:
                os.close(fd)


def _chown(dfd: int, name: bytes, st: os.stat_result, old: IDMappings, new: IDMappings, where: str) -> bool:
    """Re-own one entry; whether its owner changed."""
    uid, gid = shift_ids(st.st_uid, st.st_gid, old, new, where)
    if (uid, gid) == (st.st_uid, st.st_gid):
        return False
    proc = f"/proc/self/fd/{dfd}/{os.fsdecode(name)}"
    try:
        cap: bytes | None = os.getxattr(proc, "security.capability", follow_symlinks=False)
    except OSError:
        cap = None
    os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dfd)
    if cap is not None:
        os.setxattr(proc, "security.capability", cap, follow_symlinks=False)
    return True


def _relink(root_fd: int, first: tuple[bytes, ...], dfd: int, name: bytes) -> None:
    """Make ``name`` (in ``dfd``) a hard link to ``first`` (below the root) again."""
    src_fd = root_fd
    opened: list[int] = []
    try:
        for part in first[:-1]:
            src_fd = os.open(part, _PATH_DIR, dir_fd=src_fd)
            opened.append(src_fd)
        tmp = b".cs-relink-" + os.urandom(8).hex().encode()
        os.link(first[-1], tmp, src_dir_fd=src_fd, dst_dir_fd=dfd, follow_symlinks=False)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        # rename() leaves both names when they already were one inode
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
    finally:
        for fd in opened:
            os.close(fd)
