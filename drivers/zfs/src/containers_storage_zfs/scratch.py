"""Throwaway ZFS pools on sparse files, for the test suite and the benchmark.

With kernel OpenZFS (``/dev/zfs``) the pool is created directly; otherwise the zfs-fuse
daemon is started when it is not already running and stopped again when its last user
is done. Tearing
down retries ``zpool destroy`` because zfs-fuse often answers "pool is busy" for a moment
after the last unmount.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import IO

from .command import Zfs, ZfsCommandError
from .site import DEV_ZFS

#: shared by every process using scratch pools: who started the daemon, who still uses it
STATE_DIR = "/run/containers-storage-zfs-scratch"


class Unavailable(Exception):
    """ZFS cannot be set up here; the message says why (used as a skip reason)."""


def unavailable_reason() -> str | None:
    """Why no scratch pool can be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (creates a ZFS pool)"
    if shutil.which("zfs") is None or shutil.which("zpool") is None:
        return "the zfs/zpool commands are not installed (Debian: apt-get install zfs-fuse)"
    if not os.path.exists(DEV_ZFS) and shutil.which("zfs-fuse") is None:
        return f"no {DEV_ZFS} (OpenZFS kernel module) and no zfs-fuse daemon binary"
    if not os.path.exists("/dev/fuse") and not os.path.exists(DEV_ZFS):
        return "zfs-fuse needs /dev/fuse"
    return None


def _daemon_answers(zfs: Zfs) -> bool:
    try:
        zfs.run_zpool("list", "-H", "-o", "name")
    except ZfsCommandError:
        return False
    return True


@contextlib.contextmanager
def _holding(lock: IO[str]) -> Iterator[None]:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def zfs_service() -> Iterator[Zfs]:
    """The ``zfs`` commands, with a zfs-fuse daemon running for the duration if needed.

    Several processes (test sessions, benchmarks) may share one daemon: each holds a
    shared lock on ``STATE_DIR/users`` while it uses it, and the last one to leave stops
    the daemon if one of them started it (its pid file is in ``STATE_DIR``). A daemon
    started otherwise is left alone."""
    reason = unavailable_reason()
    if reason:
        raise Unavailable(reason)
    zfs = Zfs.find()
    if os.path.exists(DEV_ZFS):
        yield zfs
        return
    os.makedirs(STATE_DIR, 0o700, exist_ok=True)
    pidfile = os.path.join(STATE_DIR, "zfs-fuse.pid")
    with (
        open(os.path.join(STATE_DIR, "mutex"), "a") as mutex,
        open(os.path.join(STATE_DIR, "users"), "a") as users,
    ):
        with _holding(mutex):
            fcntl.flock(users, fcntl.LOCK_SH)
            try:
                if not _daemon_answers(zfs):
                    _start_daemon(zfs, pidfile)
            except BaseException:
                fcntl.flock(users, fcntl.LOCK_UN)
                raise
        try:
            yield zfs
        finally:
            with _holding(mutex):
                fcntl.flock(users, fcntl.LOCK_UN)
                try:
                    fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    last = True
                except BlockingIOError:
                    last = False  # someone else still uses the daemon and will stop it
                if last:
                    _stop_daemon(pidfile)
                    fcntl.flock(users, fcntl.LOCK_UN)


def _start_daemon(zfs: Zfs, pidfile: str) -> None:
    proc = subprocess.run(
        ["zfs-fuse", "--no-kstat-mount", "--enable-xattr", "--pidfile", pidfile],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise Unavailable(f"zfs-fuse did not start: {proc.stderr.strip()}")
    deadline = time.monotonic() + 20
    while not _daemon_answers(zfs):
        if time.monotonic() > deadline:
            _stop_daemon(pidfile)
            raise Unavailable("zfs-fuse started but does not answer")
        time.sleep(0.1)


def _stop_daemon(pidfile: str) -> None:
    """Stop the daemon named by ``pidfile`` (if it is still a zfs-fuse) and drop the file."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    try:
        with open(f"/proc/{pid}/comm") as f:
            ours = f.read().strip() == "zfs-fuse"
    except OSError:
        ours = False
    if ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # raises once the daemon is gone
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pidfile)


@contextlib.contextmanager
def scratch_pool(zfs: Zfs, workdir: str, size: str = "4G", name: str = "") -> Iterator[tuple[str, str]]:
    """A pool on a sparse file in ``workdir``; yields (pool name, mount directory)."""
    name = name or f"cstest{os.getpid()}"
    image = os.path.join(workdir, f"{name}.img")
    mountdir = os.path.join(workdir, f"{name}-mnt")
    os.makedirs(mountdir, exist_ok=True)
    subprocess.run(["truncate", "-s", size, image], check=True)
    try:
        zfs.run_zpool("create", "-f", "-m", mountdir, name, image)
        try:
            yield name, mountdir
        finally:
            destroy_pool(zfs, name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(image)
        with contextlib.suppress(OSError):
            os.rmdir(mountdir)


def destroy_pool(zfs: Zfs, name: str, tries: int = 50) -> None:
    for attempt in range(tries):
        try:
            zfs.run_zpool("destroy", "-f", name)
            return
        except ZfsCommandError as e:
            if e.says("no such pool"):
                return
            if attempt == tries - 1:
                raise
            time.sleep(0.2)


def destroy_dataset(zfs: Zfs, name: str, tries: int = 50) -> None:
    """``zfs destroy -R -f`` (clones included, mounts forced off), retried while busy."""
    for attempt in range(tries):
        try:
            zfs.run("destroy", "-R", "-f", name)
            return
        except ZfsCommandError as e:
            if e.says("does not exist"):
                return
            if attempt == tries - 1:
                raise
            time.sleep(0.2)
