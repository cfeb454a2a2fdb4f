"""XFS project quotas for per-layer ``size``/``inodes`` limits (on-disk.md §13.9).

Each limited layer directory gets its own project ID (inherited by everything created
below it) and a block/inode limit set with quotactl(2) through a block-device node
``<home>/backingFsBlockDev`` that has the home's device number, as upstream does.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct
import threading

from containers_storage.drivers.fsutil import libc

_FS_IOC_FSGETXATTR = 0x801C581F
_FS_IOC_FSSETXATTR = 0x401C5820
_FS_XFLAG_PROJINHERIT = 0x200
_FSXATTR = struct.Struct("=IIIII8s")

_Q_XSETQLIM = (ord("X") << 8) + 4
_Q_XGETQUOTA = (ord("X") << 8) + 3
_PRJQUOTA = 2
_FS_DQUOT_VERSION = 1
_FS_PROJ_QUOTA = 2
_FS_DQ_ISOFT, _FS_DQ_IHARD, _FS_DQ_BSOFT, _FS_DQ_BHARD = 1, 2, 4, 8


class _DiskQuota(ctypes.Structure):
    """struct fs_disk_quota (linux/dqblk_xfs.h)."""

    _fields_ = [
        ("d_version", ctypes.c_int8),
        ("d_flags", ctypes.c_int8),
        ("d_fieldmask", ctypes.c_uint16),
        ("d_id", ctypes.c_uint32),
        ("d_blk_hardlimit", ctypes.c_uint64),
        ("d_blk_softlimit", ctypes.c_uint64),
        ("d_ino_hardlimit", ctypes.c_uint64),
        ("d_ino_softlimit", ctypes.c_uint64),
        ("d_bcount", ctypes.c_uint64),
        ("d_icount", ctypes.c_uint64),
        ("d_itimer", ctypes.c_int32),
        ("d_btimer", ctypes.c_int32),
        ("d_iwarns", ctypes.c_uint16),
        ("d_bwarns", ctypes.c_uint16),
        ("d_itimer_hi", ctypes.c_int8),
        ("d_btimer_hi", ctypes.c_int8),
        ("d_rtbtimer_hi", ctypes.c_int8),
        ("d_padding2", ctypes.c_int8),
        ("d_rtb_hardlimit", ctypes.c_uint64),
        ("d_rtb_softlimit", ctypes.c_uint64),
        ("d_rtbcount", ctypes.c_uint64),
        ("d_rtbtimer", ctypes.c_int32),
        ("d_rtbwarns", ctypes.c_uint16),
        ("d_padding3", ctypes.c_int16),
        ("d_padding4", ctypes.c_char * 8),
    ]


def _qcmd(cmd: int) -> int:
    return (cmd << 8) | _PRJQUOTA


def get_project_id(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(_FSXATTR.size)
        fcntl.ioctl(fd, _FS_IOC_FSGETXATTR, buf)
        return int(_FSXATTR.unpack(bytes(buf))[3])
    finally:
        os.close(fd)


def set_project_id(path: str, project_id: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(_FSXATTR.size)
        fcntl.ioctl(fd, _FS_IOC_FSGETXATTR, buf)
        xflags, extsize, nextents, _, cow, pad = _FSXATTR.unpack(bytes(buf))
        new = _FSXATTR.pack(xflags | _FS_XFLAG_PROJINHERIT, extsize, nextents, project_id, cow, pad)
        fcntl.ioctl(fd, _FS_IOC_FSSETXATTR, new)
    finally:
        os.close(fd)


class Control:
    """Project-quota control of one driver home; raises OSError when the filesystem
    does not enforce project quotas (not XFS, or mounted without ``pquota``)."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.device = os.path.join(home, "backingFsBlockDev")
        self._lock = threading.Lock()
        self._make_device_node()
        self._ids: dict[str, int] = {}
        base = get_project_id(home)
        # probe: limits can be set on the first ID above the home's (upstream does the same)
        self._set_limits(base + 1, 0, 0)
        self._next = base + 1
        with os.scandir(home) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    pid = get_project_id(entry.path)
                    if pid > base:
                        self._ids[entry.path] = pid
                        self._next = max(self._next, pid + 1)

    def _make_device_node(self) -> None:
        dev = os.stat(self.home).st_dev
        try:
            st = os.lstat(self.device)
            if stat.S_ISBLK(st.st_mode) and st.st_rdev == dev:
                return
            os.unlink(self.device)
        except FileNotFoundError:
            pass
        os.mknod(self.device, stat.S_IFBLK | 0o600, dev)

    def _set_limits(self, project_id: int, size: int, inodes: int) -> None:
        q = _DiskQuota()
        q.d_version = _FS_DQUOT_VERSION
        q.d_flags = _FS_PROJ_QUOTA
        q.d_id = project_id
        q.d_fieldmask = _FS_DQ_BHARD | _FS_DQ_BSOFT | _FS_DQ_IHARD | _FS_DQ_ISOFT
        q.d_blk_hardlimit = q.d_blk_softlimit = size // 512
        q.d_ino_hardlimit = q.d_ino_softlimit = inodes
        c = libc()
        rc = c.quotactl(
            ctypes.c_int(_qcmd(_Q_XSETQLIM)),
            os.fsencode(self.device),
            ctypes.c_int(project_id),
            ctypes.byref(q),
        )
        if rc != 0:
            e = ctypes.get_errno()
            raise OSError(
                e, f"failed to set quota limit for projid {project_id}: {os.strerror(e)}", self.home
            )

    def set_quota(self, path: str, size: int, inodes: int) -> None:
        """Give ``path`` a project and limit it (0 = track usage without a limit)."""
        with self._lock:
            pid = self._ids.get(path)
            if pid is None:
                pid = self._next
                self._next += 1
                set_project_id(path, pid)
                self._ids[path] = pid
            self._set_limits(pid, size, inodes)

    def clear_quota(self, path: str) -> None:
        with self._lock:
            pid = self._ids.pop(path, None)
        if pid is not None:
            try:
                self._set_limits(pid, 0, 0)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
