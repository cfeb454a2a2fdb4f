"""The btrfs graph driver (on-disk.md §15).

Layout under the home ``<graph root>/btrfs``: ``subvolumes/<id>`` is the layer's subvolume
(a new one for a base layer, a writable snapshot of the parent's for a child) and
``quotas/<id>`` holds the byte limit of a layer created with the ``size`` option, which is
applied as a quota-group limit and re-applied on every mount. Diffs are the generic ones.
"""

from __future__ import annotations

import os
import re
import stat

from containers_storage.drivers.api import CreateOpts, DiskUsage, Driver, DriverConfig, MountOpts
from containers_storage.drivers.fsutil import backing_fs_name, disk_usage, remove_tree
from containers_storage.drivers.mounts import MS_BIND, MS_PRIVATE, is_mounted, mount, unmount_if_mounted
from containers_storage.errors import DriverPrerequisites, InvalidOption, NotSupported

from . import ioctl
from .options import BtrfsOptions, parse_driver_options, requested_size
from .subvolumes import delete_subvolume

#: mode of a new base layer's root directory
_BASE_MODE = 0o555
#: where btrfs-progs installs the header that upstream reports its versions from
VERSION_HEADER = "/usr/include/btrfs/version.h"


def check_backing_fs(home: str) -> None:
    """Raise DriverPrerequisites unless ``home`` would be on btrfs (like upstream, the
    filesystem of its parent directory counts; missing directories are looked up at their
    nearest existing ancestor, so probing creates nothing)."""
    path = os.path.abspath(home)
    while True:
        try:
            fs = backing_fs_name(path)
            break
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                raise
            path = parent
    if fs != "btrfs":
        raise DriverPrerequisites(f'"{home}" is not on a btrfs filesystem (it is on {fs})')


class BtrfsDriver(Driver):
    name = "btrfs"

    #: checked by parse_driver_options, with upstream's messages
    option_keys = None

    @classmethod
    def probe(cls, config: DriverConfig) -> None:
        check_backing_fs(config.home)

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        check_backing_fs(self.home)
        self.options: BtrfsOptions = parse_driver_options(config.options)
        self.subvolumes = os.path.join(self.home, "subvolumes")
        self.quotas = os.path.join(self.home, "quotas")
        self._quota_on: bool | None = None
        uid, gid = config.id_mappings.root_pair()
        for d in (self.home, self.subvolumes):
            if not os.path.isdir(d):
                os.makedirs(d, 0o700, exist_ok=True)
                os.chown(d, uid, gid)
        self._make_home_private()
        if self.options.min_space:
            try:
                self._enable_quota("btrfs.min_space")
            except BaseException:
                self.cleanup()
                raise

    # -- the private bind mount of the home (so that mounts made inside layers do not
    # -- propagate to the host's namespace and back) ---------------------------------
    def _make_home_private(self) -> None:
        if not is_mounted(self.home):
            mount(self.home, self.home, "", MS_BIND)
        mount("", self.home, "", MS_PRIVATE)

    def _home_is_self_bind(self) -> bool:
        """A mount at the home that shows the same subvolume as its parent directory is the
        bind mount of itself that init makes (ours or an earlier process's); anything
        else mounted there (another filesystem, another subvolume) is the admin's."""
        try:
            return is_mounted(self.home) and (
                os.stat(self.home).st_dev == os.stat(os.path.dirname(self.home)).st_dev
            )
        except FileNotFoundError:
            return False

    def cleanup(self) -> None:
        if self._home_is_self_bind():
            unmount_if_mounted(self.home)

    # -- quotas --------------------------------------------------------------------
    def _quota_enabled(self) -> bool:
        if not self._quota_on:
            try:
                with ioctl.open_dir(self.home) as fd:
                    self._quota_on = ioctl.quota_enabled(fd)
            except PermissionError:
                self._quota_on = False
        return self._quota_on

    def _enable_quota(self, why: str) -> None:
        if self._quota_enabled():
            return
        try:
            with ioctl.open_dir(self.home) as fd:
                ioctl.enable_quota(fd)
                ioctl.wait_quota_rescan(fd)
        except OSError as e:
            raise NotSupported(
                f"btrfs: cannot enable quotas on {self.home} (needed for {why})", message=e.strerror or str(e)
            ) from e
        self._quota_on = True

    def _limit(self, path: str, size: int) -> None:
        with ioctl.open_dir(path) as fd:
            ioctl.limit_qgroup(fd, size)

    def _quota_file(self, id: str) -> str:
        return os.path.join(self.quotas, id)

    # -- layers ----------------------------------------------------------------------
    def _subvol(self, id: str) -> str:
        return os.path.join(self.subvolumes, id)

    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        opts = opts or CreateOpts()
        size = requested_size(opts.storage_opt, self.options.min_space)
        if parent:
            os.lstat(self._subvol(parent))  # a missing parent fails before anything changes
        if size is not None:
            given = next(v for k, v in opts.storage_opt.items() if k.lower() == "size")
            self._enable_quota(f"size={given}")
        path = self._subvol(id)
        os.makedirs(self.subvolumes, 0o700, exist_ok=True)
        with ioctl.open_dir(self.subvolumes) as dir_fd:
            if parent:
                with ioctl.open_dir(self._subvol(parent)) as src_fd:
                    ioctl.snapshot(src_fd, dir_fd, id)
            else:
                ioctl.create_subvolume(dir_fd, id)
        try:
            if not parent:
                maps = opts.id_mappings if opts.id_mappings is not None else self.config.id_mappings
                os.chmod(path, _BASE_MODE)
                uid, gid = maps.root_pair()
                if (uid, gid) != (0, 0):
                    os.chown(path, uid, gid)
            if size is not None:
                self._limit(path, size)
                os.makedirs(self.quotas, 0o700, exist_ok=True)
                with open(self._quota_file(id), "w", encoding="ascii") as f:
                    f.write(str(size))
        except BaseException:
            self._delete(id)
            raise

    def _delete(self, id: str) -> None:
        quota = self._quota_enabled()
        try:
            delete_subvolume(self.subvolumes, id, quota)
        except OSError:
            if quota:
                raise
            # without quotas an unprivileged owner may still rmdir its subvolumes
            # (Linux 4.18+), so fall back to removing the tree
        remove_tree(self._subvol(id))
        try:
            os.remove(self._quota_file(id))
        except FileNotFoundError:
            pass

    def remove(self, id: str) -> None:
        os.lstat(self._subvol(id))  # missing layer: FileNotFoundError, as upstream
        self._delete(id)
        if self._quota_enabled():
            with ioctl.open_dir(self.home) as fd:
                ioctl.wait_quota_rescan(fd)

    def get(self, id: str, opts: MountOpts | None = None) -> str:
        path = self._subvol(id)
        st = os.stat(path)
        for opt in opts.options if opts else ():
            if opt != "ro":
                raise InvalidOption(message="btrfs driver does not support mount options")
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(f"{path}: not a directory")
        try:
            with open(self._quota_file(id), encoding="ascii") as f:
                size = int(f.read())
        except (FileNotFoundError, ValueError):
            size = 0
        if size > 0 and size >= self.options.min_space:
            self._enable_quota(f"the size limit of layer {id}")
            self._limit(path, size)
        return path

    def put(self, id: str) -> None:
        """Nothing to release: :meth:`get` mounts nothing."""

    def exists(self, id: str) -> bool:
        return os.path.lexists(self._subvol(id))

    def list_layers(self) -> list[str]:
        with os.scandir(self.subvolumes) as it:
            return [e.name for e in it if e.is_dir(follow_symlinks=False)]

    def read_write_disk_usage(self, id: str) -> DiskUsage:
        return disk_usage(self._subvol(id))

    def status(self) -> list[tuple[str, str]]:
        return progs_version_pairs(VERSION_HEADER)


def progs_version_pairs(header: str) -> list[tuple[str, str]]:
    """``Build Version`` and ``Library Version`` from btrfs-progs' version header, the
    values upstream reports (when the header is installed)."""
    try:
        with open(header, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    defines = dict(re.findall(r"^\s*#\s*define\s+(BTRFS_\w+)\s+(.+?)\s*$", text, re.MULTILINE))
    pairs = []
    build = defines.get("BTRFS_BUILD_VERSION", "").strip('"')
    if build and build != "-":
        pairs.append(("Build Version", build))
    try:
        lib = (
            int(defines["BTRFS_LIB_MAJOR"]) * 10000
            + int(defines["BTRFS_LIB_MINOR"]) * 100
            + int(defines["BTRFS_LIB_PATCHLEVEL"])
        )
    except (KeyError, ValueError):
        return pairs
    pairs.append(("Library Version", str(lib)))
    return pairs
