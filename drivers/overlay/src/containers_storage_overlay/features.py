"""Kernel feature checks by test mounts, cached in the run home as upstream does
(on-disk.md §13.8: ``<feature>-true`` / ``<feature>-false`` files holding an error text)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator

from containers_storage.drivers import mounts
from containers_storage.drivers.fsutil import libc
from containers_storage.errors import DriverNotSupported, IncompatibleFS

from . import whiteouts


def cached(run_home: str, feature: str) -> tuple[bool, str] | None:
    for value in (True, False):
        try:
            with open(os.path.join(run_home, f"{feature}-{str(value).lower()}"), encoding="utf-8") as f:
                return value, f.read()
        except FileNotFoundError:
            continue
    return None


def record(run_home: str, feature: str, value: bool, text: str = "") -> None:
    with open(os.path.join(run_home, f"{feature}-{str(value).lower()}"), "w", encoding="utf-8") as f:
        f.write(text)


def checked(run_home: str, feature: str, check: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
    """The cached answer, else run ``check`` and cache its (ok, reason)."""
    hit = cached(run_home, feature)
    if hit is not None:
        return hit
    ok, text = check()
    with contextlib.suppress(OSError):
        record(run_home, feature, ok, text)
    return ok, text


@contextlib.contextmanager
def scratch(home: str, prefix: str) -> Iterator[str]:
    """A test-mount directory inside the home (so it sits on the backing filesystem),
    removed with anything mounted below it."""
    td = tempfile.mkdtemp(prefix=prefix, dir=home)
    try:
        yield td
    finally:
        for sub in ("merged",):
            with contextlib.suppress(OSError):
                mounts.unmount(os.path.join(td, sub), mounts.MNT_DETACH)
        shutil.rmtree(td, ignore_errors=True)


def _dirs(td: str, *names: str) -> None:
    for name in names:
        os.mkdir(os.path.join(td, name), 0o700)


def _overlay_opts(td: str, lowers: str, extra: str = "", userxattr: bool = False) -> str:
    data = f"lowerdir={lowers},upperdir={td}/upper,workdir={td}/work"
    if userxattr:
        data += ",userxattr"
    if extra:
        data += "," + extra
    return data


def kernel_has_overlay() -> bool:
    """overlay in /proc/filesystems (after asking modprobe to load it, like upstream)."""

    def listed() -> bool:
        try:
            with open("/proc/filesystems", encoding="utf-8") as f:
                return any(line.split()[-1:] == ["overlay"] for line in f)
        except OSError:
            return False

    if listed():
        return True
    with contextlib.suppress(OSError):
        subprocess.run(["modprobe", "overlay"], capture_output=True, check=False, timeout=30)
    return listed()


class _Dirent(ctypes.Structure):
    _fields_ = [
        ("d_ino", ctypes.c_uint64),
        ("d_off", ctypes.c_int64),
        ("d_reclen", ctypes.c_ushort),
        ("d_type", ctypes.c_ubyte),
        ("d_name", ctypes.c_char * 256),
    ]


def supports_dtype(path: str) -> bool:
    """Whether readdir(3) fills ``d_type`` on this filesystem (overlay needs it)."""
    probe = os.path.join(path, ".dtype-probe")
    with open(probe, "w"):
        pass
    c = libc()
    c.opendir.restype = ctypes.c_void_p
    c.readdir64.restype = ctypes.POINTER(_Dirent)
    c.readdir64.argtypes = [ctypes.c_void_p]
    c.closedir.argtypes = [ctypes.c_void_p]
    d = c.opendir(os.fsencode(path))
    if not d:
        os.unlink(probe)
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    try:
        while True:
            ent = c.readdir64(d)
            if not ent:
                return False
            if ent.contents.d_name == b".dtype-probe":
                return int(ent.contents.d_type) != 0  # DT_UNKNOWN
    finally:
        c.closedir(d)
        os.unlink(probe)


def check_overlay(home: str, backing_fs: str, userxattr: bool) -> None:
    """Test-mount an overlay with two lowers and a kernel whiteout in ``home``; raise the
    probe error saying why overlay cannot be used there."""
    if not kernel_has_overlay():
        raise DriverNotSupported(
            message="'overlay' not found as a supported filesystem on this host. Please ensure kernel "
            "is new enough and has overlay support loaded.: driver not supported"
        )
    with scratch(home, "compat") as td:
        if not supports_dtype(td):
            raise DriverNotSupported(
                message=f"'overlay' is not supported over {backing_fs} without d_type support: "
                "driver not supported"
            )
        _dirs(td, "merged", "lower1", "lower2", "upper", "work")
        try:
            os.mknod(os.path.join(td, "upper", "whiteout"), 0o600 | 0o020000, os.makedev(0, 0))
        except OSError as e:
            raise IncompatibleFS(message=f"unable to create kernel-style whiteout: {e.strerror}") from None
        data = _overlay_opts(td, f"{td}/lower1:{td}/lower2", userxattr=userxattr)
        try:
            mounts.mount("overlay", f"{td}/merged", "overlay", 0, data)
            return
        except OSError as multi:
            first = multi
        try:
            mounts.mount("overlay", f"{td}/merged", "overlay", 0, _overlay_opts(td, f"{td}/lower1"))
        except OSError:
            pass
        else:
            raise DriverNotSupported(
                message="kernel too old to provide multiple lowers feature for overlay: driver not supported"
            )
        if first.errno == errno.EPERM:
            raise DriverNotSupported(
                message=f"'overlay' cannot be mounted at {home!r} without privileges "
                f"({first.strerror}); configure a mount_program: driver not supported"
            )
        raise IncompatibleFS(
            message=f"'overlay' is not supported over {backing_fs} at {home!r} ({first.strerror}): "
            "backing file system is unsupported for this graph driver"
        )


def check_native_diff(home: str, mount_options: str, userxattr: bool) -> tuple[bool, str]:
    """Native diff needs a kernel that neither copies the opaque xattr up nor writes
    redirect xattrs on directory renames (driver-api §5)."""
    flags, data = mounts.parse_mount_options([mount_options])
    opaque = whiteouts.xattr_name("opaque", userxattr)
    redirect = whiteouts.xattr_name("redirect", userxattr)
    try:
        with scratch(home, "native-diff-check") as td:
            _dirs(td, "l1", "l2", "upper", "work", "merged", "l1/d", "l2/d")
            os.setxattr(f"{td}/l2/d", opaque, b"y")
            extra = ",".join(data)
            mounts.mount(
                "overlay",
                f"{td}/merged",
                "overlay",
                flags,
                _overlay_opts(td, f"{td}/l2:{td}/l1", extra, userxattr),
            )
            try:
                with open(f"{td}/merged/d/f", "w") as f:
                    f.write("")
                if _getxattr(f"{td}/upper/d", opaque) == b"y":
                    return (
                        False,
                        "opaque flag erroneously copied up, consider update to kernel 4.8 or later to fix",
                    )
                try:
                    os.rename(f"{td}/merged/d", f"{td}/merged/d2")
                except OSError as e:
                    if e.errno == errno.EXDEV:
                        return True, ""
                    return False, f"failed to rename dir in merged directory: {e.strerror}"
                if _getxattr(f"{td}/upper/d2", redirect) is not None:
                    return False, "kernel has CONFIG_OVERLAY_FS_REDIRECT_DIR enabled"
                return True, ""
            finally:
                mounts.unmount(f"{td}/merged", mounts.MNT_DETACH)
    except OSError as e:
        return False, f"Not using native diff for overlay: {e}"


def check_metacopy(home: str, mount_options: str, userxattr: bool) -> tuple[bool, str]:
    """Whether a chmod through the mount copies up metadata only. A kernel refusing the
    test mount (EINVAL) means no metacopy with these options, as upstream decides."""
    flags, data = mounts.parse_mount_options([mount_options])
    with scratch(home, "metacopy-check") as td:
        _dirs(td, "l1", "upper", "work", "merged")
        with open(f"{td}/l1/f", "w"):
            pass
        os.chmod(f"{td}/l1/f", 0o700)
        try:
            mounts.mount(
                "overlay",
                f"{td}/merged",
                "overlay",
                flags,
                _overlay_opts(td, f"{td}/l1", ",".join(data), userxattr),
            )
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            return False, f"metacopy option not supported on this kernel, checked with {mount_options!r}"
        try:
            os.chmod(f"{td}/merged/f", 0o755)
            return _getxattr(f"{td}/upper/f", whiteouts.xattr_name("metacopy", userxattr)) is not None, ""
        finally:
            mounts.unmount(f"{td}/merged", mounts.MNT_DETACH)


def check_mount_options(home: str, mount_options: str, userxattr: bool) -> tuple[bool, str]:
    """Whether the kernel takes ``mountopt`` (without ``metacopy=on``, which the driver
    drops when it is not supported): (False, reason) when it refuses them, so the driver
    says so when it starts instead of at every layer mount."""
    words = [w for w in mount_options.split(",") if w and w != "metacopy=on"]
    if not words:
        return True, ""
    flags, data = mounts.parse_mount_options(words)
    with scratch(home, "mountopt-check") as td:
        _dirs(td, "l1", "upper", "work", "merged")
        try:
            mounts.mount("overlay", f"{td}/merged", "overlay", flags,
                         _overlay_opts(td, f"{td}/l1", ",".join(data), userxattr))
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            return False, os.strerror(e.errno).lower()
        mounts.unmount(f"{td}/merged", mounts.MNT_DETACH)
        return True, ""


def check_volatile(home: str, userxattr: bool) -> tuple[bool, str]:
    with scratch(home, "volatile-check") as td:
        _dirs(td, "l1", "upper", "work", "merged")
        try:
            mounts.mount(
                "overlay", f"{td}/merged", "overlay", 0, _overlay_opts(td, f"{td}/l1", "volatile", userxattr)
            )
        except OSError as e:
            return False, str(e)
        mounts.unmount(f"{td}/merged", mounts.MNT_DETACH)
        return True, ""


def _getxattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP):
            return None
        raise


def scan_for_mount_program(home: str) -> bool:
    """Signs that a FUSE mount program wrote this home (on-disk.md §13.6): ``.wh.`` names,
    or directories with ``user.fuseoverlayfs.*``/``user.containers.*`` xattrs."""
    for dirpath, dirnames, filenames in os.walk(home):
        for name in (*dirnames, *filenames):
            if name.startswith(".wh."):
                return True
        for name in dirnames:
            try:
                names = os.listxattr(os.path.join(dirpath, name), follow_symlinks=False)
            except OSError:
                continue
            if any(x.startswith(("user.fuseoverlayfs.", "user.containers.")) for x in names):
                return True
    return False


def check_idmapped_lowers(home: str, userxattr: bool) -> tuple[bool, str]:
    """Whether overlay accepts an ID-mapped bind mount as a lower layer (Linux 5.19+)."""
    if os.geteuid() != 0:
        return False, "ID-mapped mounts need root"
    try:
        with scratch(home, "idmapped-check") as td:
            _dirs(td, "lower", "mapped", "upper", "work", "merged")
            with open(f"{td}/lower/f", "w"):
                pass
            ns = mounts.user_namespace_fd([(0, 1, 65536)], [(0, 1, 65536)])
            try:
                mounts.idmapped_bind_mount(f"{td}/lower", f"{td}/mapped", ns)
            finally:
                os.close(ns)
            try:
                data = _overlay_opts(td, f"{td}/mapped", userxattr=userxattr)
                mounts.mount("overlay", f"{td}/merged", "overlay", 0, data)
                try:
                    owner = os.stat(f"{td}/merged/f").st_uid
                finally:
                    mounts.unmount(f"{td}/merged", mounts.MNT_DETACH)
            finally:
                mounts.unmount(f"{td}/mapped", mounts.MNT_DETACH)
            if owner != 1:
                return False, f"ID-mapped lower shows owner {owner}, expected 1"
            return True, ""
    except OSError as e:
        return False, str(e)
