"""Real filesystems for driver tests and benchmarks: a sparse image file, formatted,
attached to a loop device and mounted -- and always taken apart again.

Usable by any driver's tests (btrfs, xfs for overlay quotas, ...)::

    reason = loop_unavailable("btrfs", "mkfs.btrfs")
    if reason:
        pytest.skip(reason)
    with loop_filesystem(tmp_dir, "btrfs", 1 << 30, ["mkfs.btrfs", "-q"]) as fs:
        ...  # fs.mountpoint

Teardown runs however the body ends: it first detaches anything still mounted below the
mount point (a driver's bind mounts, a test's leftovers), then unmounts, detaches the loop
device and deletes the image.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ..drivers.fsutil import mountpoints_below
from ..drivers.mounts import MNT_DETACH, mount, unmount


@dataclass(frozen=True, slots=True)
class LoopFilesystem:
    image: str
    device: str
    mountpoint: str
    fstype: str


def loop_unavailable(fstype: str, *tools: str) -> str | None:
    """Why a loop-mounted ``fstype`` cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return f"loop-mounting a {fstype} image needs root"
    if not os.path.exists("/dev/loop-control"):
        return "no loop device support (/dev/loop-control missing)"
    for tool in ("losetup", *tools):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not _kernel_has(fstype):
        return f"the kernel does not support {fstype}"
    return None


def _kernel_has(fstype: str) -> bool:
    def listed() -> bool:
        with open("/proc/filesystems", encoding="ascii") as f:
            return any(line.split()[-1] == fstype for line in f if line.strip())

    if listed():
        return True
    if shutil.which("modprobe"):
        subprocess.run(["modprobe", fstype], capture_output=True, check=False)
    return listed()


def _run(argv: Sequence[str]) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise OSError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@contextmanager
def loop_filesystem(
    workdir: str,
    fstype: str,
    size: int,
    mkfs: Sequence[str],
    mount_options: str = "",
) -> Iterator[LoopFilesystem]:
    """A fresh ``fstype`` of ``size`` bytes (sparse) mounted at ``workdir/mnt``; ``mkfs``
    is the formatting command, to which the image path is appended."""
    os.makedirs(workdir, exist_ok=True)
    image = os.path.join(workdir, f"{fstype}.img")
    mountpoint = os.path.join(workdir, "mnt")
    device = ""
    mounted = False
    try:
        with open(image, "wb") as f:
            f.truncate(size)
        _run([*mkfs, image])
        device = _run(["losetup", "--find", "--show", image]).strip()
        os.makedirs(mountpoint, exist_ok=True)
        mount(device, mountpoint, fstype, 0, mount_options)
        mounted = True
        yield LoopFilesystem(image=image, device=device, mountpoint=mountpoint, fstype=fstype)
    finally:
        if mounted:
            _unmount_all(mountpoint)
        if device:
            _detach(device)
        if os.path.exists(image):
            os.unlink(image)


def _unmount_all(mountpoint: str) -> None:
    """Unmount everything at and below ``mountpoint``, deepest first; a busy filesystem is
    detached lazily so that the loop device can still be released."""
    for target in mountpoints_below(mountpoint):
        for attempt in range(50):
            try:
                unmount(target)
                break
            except OSError as e:
                if e.errno in (errno.EINVAL, errno.ENOENT):  # gone with a parent already
                    break
                if attempt == 49:
                    unmount(target, MNT_DETACH)
                else:
                    time.sleep(0.1)


def _detach(device: str) -> None:
    for attempt in range(50):
        try:
            _run(["losetup", "--detach", device])
            return
        except OSError:
            if attempt == 49:
                raise
            time.sleep(0.1)
