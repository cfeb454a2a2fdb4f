"""Where the layers live: options, the ZFS implementation in use and the parent dataset.

Everything here only reads (the probe must not change anything on disk) and every refusal
says why ZFS cannot be used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from containers_storage.drivers import mounts
from containers_storage.drivers.api import DriverConfig
from containers_storage.drivers.options import parse_options
from containers_storage.errors import DriverError, DriverPrerequisites, InvalidOption

from .command import Zfs, ZfsCommandError
from .mounting import FuseMounter, KernelMounter, Mounter

#: the OpenZFS kernel module's control device; zfs-fuse talks to its daemon over a socket
DEV_ZFS = "/dev/zfs"
#: mount types of a ZFS dataset in the mount table
_ZFS_FSTYPES = ("zfs", "fuse.zfs")


@dataclass(frozen=True, slots=True)
class ZfsOptions:
    """Driver options of config.md §7.4."""

    fsname: str = ""
    mountopt: str = ""

    @classmethod
    def parse(cls, options: Sequence[str]) -> ZfsOptions:
        fsname = mountopt = ""
        for key, value in parse_options(options):
            if key == "zfs.fsname":
                fsname = value
            elif key == "zfs.mountopt":
                mountopt = value
            else:
                raise InvalidOption(message=f"unknown option {key}")
        return cls(fsname=fsname, mountopt=mountopt)


@dataclass(frozen=True, slots=True)
class Site:
    zfs: Zfs
    #: the parent dataset of all layers
    fsname: str
    mounter: Mounter


def _kernel_module() -> bool:
    """True with kernel OpenZFS, False with zfs-fuse (no control device)."""
    try:
        fd = os.open(DEV_ZFS, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise DriverPrerequisites(f"could not open {DEV_ZFS}: {e.strerror}") from e
    os.close(fd)
    return True


def _existing(path: str) -> str:
    """``path`` or its nearest existing ancestor (the graph root may not exist yet)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and path != "/":
        path = os.path.dirname(path)
    return path


def dataset_mounted_at(path: str) -> str | None:
    """The dataset whose mount holds ``path``, from the mount table by device number."""
    st = os.stat(_existing(path))
    wanted = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    found = [m for m in mounts.mountinfo() if m.major_minor == wanted and m.fstype in _ZFS_FSTYPES]
    # the topmost of stacked mounts is the one that is visible
    return found[-1].source if found else None


def _unreachable(kernel: bool, error: ZfsCommandError) -> DriverPrerequisites:
    if kernel:
        return DriverPrerequisites(f"cannot query ZFS: {error}")
    return DriverPrerequisites(
        f"no {DEV_ZFS} (kernel module not loaded) and the zfs-fuse daemon does not answer: {error}"
    )


def _not_on_zfs(zfs: Zfs, kernel: bool, root: str) -> DriverPrerequisites:
    """The most useful reason why no dataset holds ``root``."""
    try:
        pools = zfs.run_zpool("list", "-H", "-o", "name").split()
    except ZfsCommandError as e:
        return _unreachable(kernel, e)
    if not pools:
        return DriverPrerequisites("no ZFS pool is imported (zpool list shows none)")
    return DriverPrerequisites(
        f"{root!r} is not on a zfs filesystem (no zfs dataset is mounted there); "
        "mount one there or set zfs.fsname"
    )


def locate(config: DriverConfig, options: ZfsOptions) -> Site:
    """Find the ``zfs`` command, the implementation and the parent dataset for ``config``."""
    zfs = Zfs.find()
    kernel = _kernel_module()
    fsname = options.fsname or dataset_mounted_at(config.root)
    if not fsname:
        raise _not_on_zfs(zfs, kernel, config.root)
    try:
        kind = zfs.dataset_type(fsname)
    except ZfsCommandError as e:
        raise _unreachable(kernel, e) from e
    if kind is None:
        raise DriverError(message=f"cannot find root filesystem {fsname}: dataset does not exist")
    if kind != "filesystem":
        raise DriverError(message=f"cannot find root filesystem {fsname}: it is a {kind}")
    return Site(zfs=zfs, fsname=fsname, mounter=KernelMounter(zfs) if kernel else FuseMounter(zfs))
