"""The real backing filesystem each built-in driver needs, for tests and benchmarks that
run on every driver: a plain directory (vfs, and any other installed driver), a directory
on a disk filesystem (overlay), a loop-mounted btrfs, a dataset of a throwaway ZFS pool.
With ``size`` each one is small and of its own, so that it can be filled up (tmpfs, loop
ext4/btrfs, a ZFS quota)::

    reason = backend_unavailable("btrfs")
    if reason:
        pytest.skip(reason)
    with backing_filesystem("btrfs", workdir) as fs:
        ...  # graph roots go below fs.root, run roots below fs.run

Teardown runs however the body ends and undoes every mount left below the roots.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from ..drivers.fsutil import mountpoints_below, remove_tree
from ..drivers.mounts import MNT_DETACH, unmount
from .loopdev import loop_filesystem, loop_unavailable

DRIVERS = ("vfs", "overlay", "btrfs", "zfs")

#: the loop image of a shared (unsized) btrfs: sparse, so only what is written costs
BTRFS_SIZE = 2 << 30


@dataclass(frozen=True, slots=True)
class Backend:
    """Where stores of ``driver`` may live: graph roots below ``root`` (on the backing
    filesystem), run roots below ``run`` (never on ZFS, as in production)."""

    driver: str
    root: str
    run: str

    def roots(self, name: str) -> tuple[str, str]:
        """Fresh (graph root, run root) for one store called ``name``."""
        graph, run = os.path.join(self.root, name), os.path.join(self.run, name)
        os.makedirs(graph)
        os.makedirs(run)
        return graph, run


def overlay_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "kernel overlay mounts need root"
    if not _listed("overlay"):
        return "the kernel has no overlay filesystem"
    return None


def _listed(fstype: str) -> bool:
    with open("/proc/filesystems", encoding="ascii") as f:
        return any(line.split()[-1:] == [fstype] for line in f)


def zfs_unavailable() -> str | None:
    try:
        from containers_storage_zfs.scratch import unavailable_reason
    except ImportError:
        return "the zfs driver (containers-storage-zfs) is not installed"
    return unavailable_reason()


def backend_unavailable(driver: str, sized: bool = False) -> str | None:
    """Why ``driver``'s backing filesystem cannot be made here (None when it can);
    ``sized`` asks for a small one of its own (full-disk tests)."""
    from ..errors import DriverError
    from ..plugins import get_plugin_host

    try:
        if get_plugin_host().driver_info(driver) is None:
            return f"the {driver} driver is not installed"
    except DriverError as exc:  # installed but broken, or offered twice
        return str(exc)
    if driver not in DRIVERS or driver == "vfs":  # a plain directory; the driver probes it
        return "mounting a small tmpfs needs root" if sized and os.geteuid() != 0 else None
    if driver == "overlay":
        return overlay_unavailable() or (loop_unavailable("ext4", "mkfs.ext4") if sized else None)
    if driver == "btrfs":
        return loop_unavailable("btrfs", "mkfs.btrfs")
    return zfs_unavailable()


def undo_mounts(path: str) -> None:
    """Detach everything mounted at or below ``path``, deepest first."""
    for mnt in mountpoints_below(path):
        with contextlib.suppress(OSError):
            unmount(mnt, MNT_DETACH)


@contextlib.contextmanager
def disk_scratch_dir(prefix: str) -> Iterator[str]:
    """A directory on a disk filesystem (``/var/tmp``, not tmpfs: overlay upper dirs and
    xattrs want a real one), removed with whatever is mounted below it."""
    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    try:
        yield d
    finally:
        undo_mounts(d)
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def _tmpfs(target: str, size: int) -> Iterator[str]:
    os.makedirs(target, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", target], check=True)
    try:
        yield target
    finally:
        undo_mounts(target)


_zfs_counter = itertools.count()


@contextlib.contextmanager
def _zfs_dataset(workdir: str, size: int | None) -> Iterator[str]:
    """A dataset of a pool of our own (the zfs-fuse daemon started if nothing answers),
    with a quota of ``size`` when given; yields its mount directory."""
    from containers_storage_zfs.scratch import destroy_dataset, scratch_pool, zfs_service

    name = f"csbk{os.getpid()}x{next(_zfs_counter)}"
    with zfs_service() as zfs, scratch_pool(zfs, workdir, "4G", name=name) as (pool, mountdir):
        dataset, target = f"{pool}/r", os.path.join(mountdir, "r")
        quota = ["-o", f"quota={size}"] if size else []
        zfs.run("create", "-o", f"mountpoint={target}", *quota, dataset)
        try:
            yield target
        finally:
            destroy_dataset(zfs, dataset)


@contextlib.contextmanager
def backing_filesystem(driver: str, workdir: str | None = None, size: int | None = None) -> Iterator[Backend]:
    """``driver``'s real backing filesystem (see the module docstring); ``size`` bytes
    small when given. Scratch space goes to ``workdir`` (default: a new directory on
    ``/var/tmp``)."""
    reason = backend_unavailable(driver, sized=size is not None)
    if reason:
        raise RuntimeError(reason)
    with contextlib.ExitStack() as stack:
        work = workdir or stack.enter_context(disk_scratch_dir(f"cs-{driver}-"))
        run = os.path.join(work, "run")
        os.makedirs(run, exist_ok=True)
        stack.callback(undo_mounts, run)
        if driver not in DRIVERS or driver == "vfs":
            root = os.path.join(work, "fs")
            if size:
                stack.enter_context(_tmpfs(root, size))
            else:
                os.makedirs(root, exist_ok=True)
        elif driver == "overlay":
            if size:
                fs = stack.enter_context(
                    loop_filesystem(os.path.join(work, "loop"), "ext4", size, ["mkfs.ext4", "-q", "-F"])
                )
                root = fs.mountpoint
            else:
                root = os.path.join(work, "fs")
                os.makedirs(root, exist_ok=True)
        elif driver == "btrfs":
            fs = stack.enter_context(
                loop_filesystem(
                    os.path.join(work, "loop"), "btrfs", size or BTRFS_SIZE, ["mkfs.btrfs", "-q", "-f"]
                )
            )
            root = fs.mountpoint
        else:
            root = stack.enter_context(_zfs_dataset(work, size))
        if driver != "zfs":  # destroying the dataset takes the layers' datasets with it
            stack.callback(_clear, root)
        yield Backend(driver=driver, root=root, run=run)


def _clear(root: str) -> None:
    """Empty ``root`` before its filesystem goes (btrfs subvolumes need removing first)."""
    undo_mounts(root)
    for entry in os.listdir(root):
        if entry != "lost+found":
            with contextlib.suppress(OSError):
                remove_tree(os.path.join(root, entry))
