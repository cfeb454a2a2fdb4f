"""The btrfs kernel interface (linux/btrfs.h) through ``fcntl.ioctl``: subvolumes,
snapshots and quota groups, without spawning ``btrfs`` for each operation.

Every function takes an open directory descriptor (see :func:`open_dir`) and raises
:class:`OSError` with the kernel's errno and a message saying what failed where.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager

_MAGIC = 0x94
_NONE, _WRITE, _READ = 0, 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (_MAGIC << 8) | nr


#: struct btrfs_ioctl_vol_args {__s64 fd; char name[4088];}
_VOL_ARGS = struct.Struct("<q4088s")
#: struct btrfs_ioctl_vol_args_v2 {__s64 fd; __u64 transid; __u64 flags;
#:   union {struct {__u64 size; void *qgroup_inherit;}; __u64 unused[4];};
#:   union {char name[4040]; __u64 devid; __u64 subvolid;};}
_VOL_ARGS_V2 = struct.Struct("<qQQ32s4040s")
#: struct btrfs_ioctl_ino_lookup_args {__u64 treeid; __u64 objectid; char name[4080];}
_INO_LOOKUP_ARGS = struct.Struct("<QQ4080s")
#: struct btrfs_ioctl_search_key (104 bytes) followed by a 3992-byte result buffer
_SEARCH_KEY = struct.Struct("<7Q4I4Q")
_SEARCH_ARGS_SIZE = 4096
#: struct btrfs_ioctl_search_header {__u64 transid, objectid, offset; __u32 type, len;}
_SEARCH_HEADER = struct.Struct("<3Q2I")
#: struct btrfs_root_ref {__le64 dirid; __le64 sequence; __le16 name_len;} (packed), then the name
_ROOT_REF = struct.Struct("<QQH")
#: struct btrfs_ioctl_quota_ctl_args {__u64 cmd; __u64 status;}
_QUOTA_CTL_ARGS = struct.Struct("<QQ")
#: struct btrfs_ioctl_qgroup_create_args {__u64 create; __u64 qgroupid;}
_QGROUP_CREATE_ARGS = struct.Struct("<QQ")
#: struct btrfs_ioctl_qgroup_limit_args {__u64 qgroupid; struct btrfs_qgroup_limit
#:   {__u64 flags, max_rfer, max_excl, rsv_rfer, rsv_excl;} lim;}
_QGROUP_LIMIT_ARGS = struct.Struct("<Q5Q")

SNAP_CREATE_V2 = _ioc(_WRITE, 23, _VOL_ARGS_V2.size)
SUBVOL_CREATE = _ioc(_WRITE, 14, _VOL_ARGS.size)
SNAP_DESTROY = _ioc(_WRITE, 15, _VOL_ARGS.size)
SNAP_DESTROY_V2 = _ioc(_WRITE, 63, _VOL_ARGS_V2.size)
INO_LOOKUP = _ioc(_READ | _WRITE, 18, _INO_LOOKUP_ARGS.size)
TREE_SEARCH = _ioc(_READ | _WRITE, 17, _SEARCH_ARGS_SIZE)
QUOTA_CTL = _ioc(_READ | _WRITE, 40, _QUOTA_CTL_ARGS.size)
QGROUP_CREATE = _ioc(_WRITE, 42, _QGROUP_CREATE_ARGS.size)
QGROUP_LIMIT = _ioc(_READ, 43, _QGROUP_LIMIT_ARGS.size)
QUOTA_RESCAN_WAIT = _ioc(_NONE, 46, 0)

#: inode number of the root directory of every subvolume
FIRST_FREE_OBJECTID = 256
_ROOT_TREE_OBJECTID = 1
_QUOTA_TREE_OBJECTID = 8
_ROOT_REF_KEY = 156
_QGROUP_STATUS_KEY = 240
_QUOTA_CTL_ENABLE = 1
_QGROUP_LIMIT_MAX_RFER = 1 << 0
#: longest name the v2 argument structures carry (BTRFS_SUBVOL_NAME_MAX)
_SUBVOL_NAME_MAX = 4039
_U64_MAX = (1 << 64) - 1


@contextmanager
def open_dir(path: str) -> Iterator[int]:
    """A read-only descriptor of the directory ``path`` (symlinks are not followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _name(name: str) -> bytes:
    raw = os.fsencode(name)
    if not raw or b"/" in raw or b"\0" in raw or raw in (b".", b".."):
        raise OSError(errno.EINVAL, f"invalid btrfs subvolume name {name!r}")
    if len(raw) > _SUBVOL_NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, f"btrfs subvolume name too long: {name!r}")
    return raw


def _call(fd: int, request: int, args: bytearray | int, what: str) -> None:
    try:
        fcntl.ioctl(fd, request, args, True)
    except OSError as e:
        raise OSError(e.errno, f"{what}: {os.strerror(e.errno or 0)}") from None


def create_subvolume(dir_fd: int, name: str) -> None:
    """New empty subvolume ``name`` in the directory ``dir_fd``."""
    args = bytearray(_VOL_ARGS.pack(0, _name(name)))
    _call(dir_fd, SUBVOL_CREATE, args, f"failed to create btrfs subvolume {name!r}")


def snapshot(src_fd: int, dest_dir_fd: int, name: str) -> None:
    """Writable snapshot of the subvolume open as ``src_fd``, named ``name`` in ``dest_dir_fd``."""
    args = bytearray(_VOL_ARGS_V2.pack(src_fd, 0, 0, b"", _name(name)))
    _call(dest_dir_fd, SNAP_CREATE_V2, args, f"failed to create btrfs snapshot {name!r}")


def destroy_subvolume(dir_fd: int, name: str) -> None:
    """Delete the (empty of nested subvolumes) subvolume ``name`` in ``dir_fd``.

    Uses the v2 request (Linux 5.7+) and the original one where the kernel lacks it.
    """
    raw = _name(name)
    what = f"failed to destroy btrfs subvolume {name!r}"
    try:
        _call(dir_fd, SNAP_DESTROY_V2, bytearray(_VOL_ARGS_V2.pack(0, 0, 0, b"", raw)), what)
    except OSError as e:
        if e.errno not in (errno.ENOTTY, errno.EOPNOTSUPP):
            raise
        _call(dir_fd, SNAP_DESTROY, bytearray(_VOL_ARGS.pack(0, raw)), what)


def is_subvolume(st: os.stat_result) -> bool:
    """Whether ``st`` (from lstat) is the root directory of a subvolume."""
    return stat.S_ISDIR(st.st_mode) and st.st_ino == FIRST_FREE_OBJECTID


def subvolume_id(fd: int) -> int:
    """ID of the subvolume holding ``fd`` (its level-0 quota group is ``0/<id>``)."""
    args = bytearray(_INO_LOOKUP_ARGS.pack(0, FIRST_FREE_OBJECTID, b""))
    _call(fd, INO_LOOKUP, args, "failed to look up the btrfs subvolume ID")
    treeid = int(_INO_LOOKUP_ARGS.unpack_from(args)[0])
    if treeid == 0:
        raise OSError(errno.EINVAL, "invalid btrfs subvolume ID 0")
    return treeid


def _search(fd: int, tree_id: int, objectid: int, item_type: int) -> Iterator[tuple[int, bytes]]:
    """(key offset, item data) of every item ``(objectid, item_type, *)`` in the tree
    ``tree_id``, in key order (BTRFS_IOC_TREE_SEARCH, several rounds when many match)."""
    min_offset = 0
    while True:
        key = _SEARCH_KEY.pack(
            tree_id,
            objectid,
            objectid,
            min_offset,
            _U64_MAX,
            0,
            _U64_MAX,
            item_type,
            item_type,
            4096,
            0,
            0,
            0,
            0,
            0,
        )
        args = bytearray(_SEARCH_ARGS_SIZE)
        args[: len(key)] = key
        _call(fd, TREE_SEARCH, args, "failed to search the btrfs tree")
        nr_items = _SEARCH_KEY.unpack_from(args)[9]
        pos = _SEARCH_KEY.size
        last = -1
        for _ in range(nr_items):
            _transid, obj, offset, typ, length = _SEARCH_HEADER.unpack_from(args, pos)
            pos += _SEARCH_HEADER.size
            if obj == objectid and typ == item_type:
                yield offset, bytes(args[pos : pos + length])
            last = offset
            pos += length
        if nr_items == 0 or last >= _U64_MAX:
            return
        min_offset = last + 1


def child_subvolumes(fd: int) -> list[str]:
    """Paths, relative to the root of the subvolume holding ``fd``, of the subvolumes
    directly inside it: its ROOT_REF items in the root tree name the directory and the
    entry, and an inode lookup turns the directory into a path. Needs CAP_SYS_ADMIN."""
    own = subvolume_id(fd)
    out = []
    for _child_id, data in _search(fd, _ROOT_TREE_OBJECTID, own, _ROOT_REF_KEY):
        dirid, _sequence, name_len = _ROOT_REF.unpack_from(data)
        name = data[_ROOT_REF.size : _ROOT_REF.size + name_len]
        args = bytearray(_INO_LOOKUP_ARGS.pack(own, dirid, b""))
        _call(fd, INO_LOOKUP, args, "failed to look up a btrfs directory")
        dir_path = bytes(args[16:]).split(b"\0", 1)[0]
        out.append(os.fsdecode(dir_path + name))
    return out


def quota_enabled(fd: int) -> bool:
    """Whether quota groups are enabled on the filesystem holding ``fd`` (a search of the
    quota tree for its status item, which exists only while quotas are on)."""
    key = _SEARCH_KEY.pack(
        _QUOTA_TREE_OBJECTID,  # tree_id
        0,  # min_objectid
        _U64_MAX,  # max_objectid
        0,  # min_offset
        _U64_MAX,  # max_offset
        0,  # min_transid
        _U64_MAX,  # max_transid
        _QGROUP_STATUS_KEY,  # min_type
        _QGROUP_STATUS_KEY,  # max_type
        1,  # nr_items
        0,
        0,
        0,
        0,
        0,
    )
    args = bytearray(_SEARCH_ARGS_SIZE)
    args[: len(key)] = key
    try:
        _call(fd, TREE_SEARCH, args, "failed to search the btrfs quota tree")
    except OSError as e:
        if e.errno == errno.ENOENT:  # no quota tree: quotas were never enabled
            return False
        raise
    nr_items = _SEARCH_KEY.unpack_from(args)[9]
    if nr_items == 0:
        return False
    item_type = _SEARCH_HEADER.unpack_from(args, _SEARCH_KEY.size)[3]
    return bool(item_type == _QGROUP_STATUS_KEY)


def enable_quota(fd: int) -> None:
    """Turn quota groups on for the filesystem holding ``fd`` (starts a rescan)."""
    args = bytearray(_QUOTA_CTL_ARGS.pack(_QUOTA_CTL_ENABLE, 0))
    _call(fd, QUOTA_CTL, args, "failed to enable btrfs quota")


def wait_quota_rescan(fd: int) -> None:
    """Wait until a running quota rescan has finished (returns at once when none runs)."""
    _call(fd, QUOTA_RESCAN_WAIT, 0, "failed to wait for the btrfs quota rescan")


def limit_qgroup(fd: int, max_referenced: int) -> None:
    """Limit the bytes the subvolume holding ``fd`` may reference (qgroup 0 means its own)."""
    args = bytearray(_QGROUP_LIMIT_ARGS.pack(0, _QGROUP_LIMIT_MAX_RFER, max_referenced, 0, 0, 0))
    _call(fd, QGROUP_LIMIT, args, "failed to limit the btrfs qgroup")


def destroy_qgroup(fd: int, qgroupid: int) -> None:
    """Delete quota group ``qgroupid`` (level 0: the subvolume ID) of ``fd``'s filesystem."""
    args = bytearray(_QGROUP_CREATE_ARGS.pack(0, qgroupid))
    _call(fd, QGROUP_CREATE, args, f"failed to delete btrfs qgroup 0/{qgroupid}")
