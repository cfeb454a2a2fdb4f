"""The two ways a layer's dataset gets mounted.

Kernel OpenZFS mounts a dataset whose ``mountpoint`` is ``legacy`` with mount(2) (type
``zfs``), as upstream does. zfs-fuse has no ``mount -t zfs``: its daemon mounts a dataset
when asked through ``zfs mount``, which needs a real ``mountpoint`` property. There the
property points at the mount path only while the layer is mounted and goes back to
``legacy`` afterwards, so that the daemon never mounts layers on its own (``zfs mount -a``
at start-up) and the datasets look like upstream's when at rest. Layers also carry
``canmount=noauto`` there, so that setting the mount point does not mount read-write
behind our back.
"""

from __future__ import annotations

import abc
import contextlib
import errno
from collections.abc import Sequence
from typing import ClassVar

from containers_storage.drivers import mounts

from .command import Zfs, ZfsCommandError


def _with_label(options: Sequence[str], label: str) -> list[str]:
    """Upstream's label.FormatMountLabel: the SELinux context as a mount option."""
    return [*options, f'context="{label}"'] if label else list(options)


class Mounter(abc.ABC):
    """Mounts and unmounts layer datasets; one subclass per ZFS implementation."""

    #: shown by ``status`` and in errors
    kind: ClassVar[str]
    #: ``-o`` properties every layer dataset is created with
    create_properties: ClassVar[tuple[str, ...]] = ("mountpoint=legacy",)
    #: whether file times are reported in whole seconds (no nanoseconds)
    whole_second_times: ClassVar[bool] = False

    def __init__(self, zfs: Zfs) -> None:
        self.zfs = zfs

    @abc.abstractmethod
    def mount(
        self, dataset: str, target: str, options: Sequence[str], read_only: bool, label: str, canmount: str
    ) -> None:
        """Mount ``dataset`` on the existing directory ``target``."""

    @abc.abstractmethod
    def unmount(self, dataset: str, target: str) -> None:
        """Undo :meth:`mount`; not being mounted is not an error."""


class KernelMounter(Mounter):
    """OpenZFS kernel module: legacy mount point, mount(2)."""

    kind = "kernel"

    def mount(
        self, dataset: str, target: str, options: Sequence[str], read_only: bool, label: str, canmount: str
    ) -> None:
        flags, data = mounts.parse_mount_options(_with_label(options, label))
        mounts.mount(dataset, target, "zfs", flags, ",".join(data))
        if read_only:
            # upstream mounts read-write first and remounts, so the root's mode can be fixed
            try:
                mounts.mount(
                    dataset,
                    target,
                    "zfs",
                    flags | mounts.MS_REMOUNT | mounts.MS_RDONLY,
                    ",".join(_with_label((), label)),
                )
            except OSError:
                mounts.unmount(target, mounts.MNT_DETACH)
                raise

    def unmount(self, dataset: str, target: str) -> None:
        try:
            mounts.unmount(target, mounts.MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                raise


class FuseMounter(Mounter):
    """zfs-fuse: ``zfs mount`` through the daemon, mount point set only while mounted.

    SELinux labels are not passed (FUSE mounts take no ``context=`` option). File times
    come back in whole seconds."""

    kind = "fuse"
    create_properties = ("mountpoint=legacy", "canmount=noauto")
    whole_second_times = True

    def mount(
        self, dataset: str, target: str, options: Sequence[str], read_only: bool, label: str, canmount: str
    ) -> None:
        if canmount != "noauto":
            # a dataset made by another implementation: stop the daemon mounting it by itself
            self.zfs.run("set", "canmount=noauto", dataset)
        self.zfs.run("set", f"mountpoint={target}", dataset)
        words = [w for opt in options for w in opt.split(",") if w]
        if read_only:
            words.append("ro")
        try:
            if words:
                self.zfs.run("mount", "-o", ",".join(words), dataset)
            else:
                self.zfs.run("mount", dataset)
        except ZfsCommandError:
            with contextlib.suppress(ZfsCommandError):
                self._reset(dataset)
            raise

    def unmount(self, dataset: str, target: str) -> None:
        try:
            self.zfs.run("unmount", dataset)
        except ZfsCommandError as e:
            if e.says("not currently mounted"):
                pass
            elif e.says("busy"):
                self.zfs.run("unmount", "-f", dataset)
            else:
                raise
        self._reset(dataset)

    def _reset(self, dataset: str) -> None:
        self.zfs.run("set", "mountpoint=legacy", dataset)
