"""Re-owning a layer's files from one set of ID maps to another (driver-api.md §3)."""

from __future__ import annotations

import os
import stat

from ..errors import UnmappableID
from ..idtools import OVERFLOW_ID, IDMappings, to_container, to_host

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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
    """Re-own every file below ``root`` (the root included); hard links are handled once,
    setuid/setgid bits and ``security.capability`` survive the chown."""
    seen: set[tuple[int, int]] = set()
    parent = os.path.dirname(os.path.abspath(root)) or "/"
    pfd = os.open(parent, _OPEN_DIR)
    try:
        base = os.fsencode(os.path.basename(os.path.abspath(root)))
        _shift(pfd, base, os.lstat(base, dir_fd=pfd), to_container_maps, to_host_maps, seen, root)
    finally:
        os.close(pfd)


def _shift(
    dfd: int,
    name: bytes,
    st: os.stat_result,
    old: IDMappings,
    new: IDMappings,
    seen: set[tuple[int, int]],
    where: str,
) -> None:
    key = (st.st_dev, st.st_ino)
    if key not in seen:
        seen.add(key)
        uid, gid = shift_ids(st.st_uid, st.st_gid, old, new, where)
        if (uid, gid) != (st.st_uid, st.st_gid):
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
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, _OPEN_DIR, dir_fd=dfd)
        try:
            with os.scandir(fd) as it:
                children = [(os.fsencode(e.name), e.stat(follow_symlinks=False)) for e in it]
            for child, cst in children:
                _shift(fd, child, cst, old, new, seen, f"{where}/{os.fsdecode(child)}")
        finally:
            os.close(fd)
