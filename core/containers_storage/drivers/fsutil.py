"""Filesystem helpers shared by drivers: backing-filesystem names, usage, copy, removal."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from .api import DiskUsage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: statfs f_type magic -> upstream's backing filesystem name (driver-api.md §6)
FS_NAMES: dict[int, str] = {
    0x9123683E: "btrfs",
    0x28CD3D45: "cramfs",
    0xF15F: "ecryptfs",
    0xE0F5E1E2: "erofs",
    0x0000EF53: "extfs",
    0xF2F52010: "f2fs",
    0x47504653: "gpfs",
    0x000072B6: "jffs2",
    0x3153464A: "jfs",
    0x00006969: "nfs",
    0x794C7630: "overlayfs",
    0x858458F6: "ramfs",
    0x52654973: "reiserfs",
    0x0000517B: "smb",
    0x73717368: "squashfs",
    0x01021994: "tmpfs",
    0xA501FCF5: "vxfs",
    0x58465342: "xfs",
    0x2FC12FC1: "zfs",
    0x61756673: "aufs",
}


_libc: Any = None
_statfs_type: Any = None


def libc() -> Any:
    """The C library with errno capture, for system calls Python does not wrap. ctypes is
    imported here, on first use, to keep it off the start-up path."""
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL("libc.so.6", use_errno=True)
    return _libc


def _statfs_struct() -> Any:
    global _statfs_type
    if _statfs_type is None:
        import ctypes

        class Statfs(ctypes.Structure):
            _fields_ = [
                ("f_type", ctypes.c_long),
                ("f_bsize", ctypes.c_long),
                ("f_blocks", ctypes.c_ulong),
                ("f_bfree", ctypes.c_ulong),
                ("f_bavail", ctypes.c_ulong),
                ("f_files", ctypes.c_ulong),
                ("f_ffree", ctypes.c_ulong),
                ("f_fsid", ctypes.c_int * 2),
                ("f_namelen", ctypes.c_long),
                ("f_frsize", ctypes.c_long),
                ("f_flags", ctypes.c_long),
                ("f_spare", ctypes.c_long * 4),
            ]

        _statfs_type = Statfs
    return _statfs_type


def fs_magic(path: str) -> int:
    """statfs(2) ``f_type`` of ``path``."""
    import ctypes

    buf = _statfs_struct()()
    if libc().statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    return int(buf.f_type) & 0xFFFFFFFF


def backing_fs_name(path: str) -> str:
    """Upstream's name for the filesystem holding ``path``; like upstream, the magic is
    taken from the *parent* directory of ``path``."""
    magic = fs_magic(os.path.dirname(os.path.abspath(path)) or "/")
    return FS_NAMES.get(magic, "<unknown>")


def disk_usage(path: str) -> DiskUsage:
    """Bytes and inodes used below ``path``, hard-linked inodes counted once."""
    seen: set[tuple[int, int]] = set()
    size = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            st = os.lstat(os.path.join(dirpath, name))
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            if not stat.S_ISDIR(st.st_mode):
                size += st.st_size
    return DiskUsage(size=size, inodes=len(seen))


def mountpoints_below(path: str) -> list[str]:
    """Mount points at or below ``path``, deepest first."""
    from .mounts import mountinfo

    prefix = os.path.realpath(path)
    below = prefix.rstrip("/") + "/"
    try:
        found = {
            m.mount_point for m in mountinfo() if m.mount_point == prefix or m.mount_point.startswith(below)
        }
    except OSError:
        return []
    return sorted(found, key=len, reverse=True)


_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_IMMUTABLE_APPEND = 0x00000010 | 0x00000020


def _clear_file_flags(path: str) -> None:
    """Drop immutable/append-only flags so an entry can be removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
        flags = int.from_bytes(buf[:4], "little")
        if flags & _FS_IMMUTABLE_APPEND:
            new = (flags & ~_FS_IMMUTABLE_APPEND).to_bytes(4, "little") + bytes(4)
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, new)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_tree(path: str, retries: int = 100) -> None:
    """Remove ``path`` whatever it holds; a missing path is fine.

    Like upstream's system.EnsureRemoveAll: unmount whatever is mounted below, clear
    immutable flags on EPERM, and retry on EBUSY.
    """
    for attempt in range(retries):
        try:
            _remove_once(path)
            return
        except OSError as e:
            if e.errno == errno.EBUSY:
                for mnt in mountpoints_below(path):
                    libc().umount2(os.fsencode(mnt), 2)  # MNT_DETACH
                if attempt + 1 < retries:
                    time.sleep(0.01)
                    continue
            raise


def _remove_once(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        _unlink(path)
        return
    for mnt in mountpoints_below(path):
        libc().umount2(os.fsencode(mnt), 2)
    if os.geteuid() != 0:
        _grant_owner_access(path)
    try:
        _remove_contents(path)  # by descriptors: any depth, any path length
    except PermissionError:
        pass  # immutable flags or modes to clear: the walk below does it by path
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            _unlink(os.path.join(dirpath, name))
        for name in dirnames:
            sub = os.path.join(dirpath, name)
            if os.path.islink(sub):
                _unlink(sub)
            else:
                _rmdir(sub)
    _rmdir(path)


def _remove_contents(path: str) -> None:
    from ..archive.rooted import remove_all

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with os.scandir(fd) as it:
            names = [os.fsencode(e.name) for e in it]
        for name in names:
            remove_all(fd, name)
    finally:
        os.close(fd)


def _make_removable(path: str) -> None:
    """Clear immutable flags and, for unprivileged users, add owner write permission to
    the parent directory (layer roots are 0555)."""
    parent = os.path.dirname(path)
    _clear_file_flags(path)
    _clear_file_flags(parent)
    try:
        mode = os.lstat(parent).st_mode
        os.chmod(parent, stat.S_IMODE(mode) | stat.S_IRWXU)
    except OSError:
        pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        _make_removable(path)
        os.unlink(path)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        _make_removable(path)
        os.rmdir(path)


def _grant_owner_access(path: str) -> None:
    """Give the owner rwx on every directory below ``path`` so an unprivileged user can
    list and empty trees whose directories are 0555 or 0222 (as layers often are)."""
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            os.chmod(d, stat.S_IMODE(os.lstat(d).st_mode) | stat.S_IRWXU)
            with os.scandir(d) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
