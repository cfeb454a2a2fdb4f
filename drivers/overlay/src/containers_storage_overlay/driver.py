"""The overlay graph driver (driver-api.md, on-disk.md §13)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from containers_storage.drivers import fsutil, mounts
from containers_storage.drivers.api import (
    ApplyDiffOpts,
    Change,
    CreateOpts,
    DiskUsage,
    Driver,
    DriverConfig,
    MountOpts,
    WhiteoutFormat,
)
from containers_storage.errors import (
    DriverError,
    DriverNotSupported,
    DriverPrerequisites,
    IncompatibleFS,
    InvalidOption,
)
from containers_storage.idtools import IDMappings

from . import additional_layers, features, layout, mounting, nativediff, quota, whiteouts
from . import options as overlay_options
from .additional_layers import OverlayAdditionalLayer
from .layout import Layout

if TYPE_CHECKING:
    from containers_storage.archive.apply import ApplyOptions
    from containers_storage.archive.types import FileGetter

log = logging.getLogger(__name__)

DEFAULT_PERMS = 0o555
#: statfs magics of mounted layers (kernel overlay, FUSE)
_MOUNTED_MAGICS = (0x794C7630, 0x65735546)
_NEEDS_MOUNT_PROGRAM = ("overlayfs", "aufs", "ecryptfs")
_NETWORK_FS = ("nfs", "smb", "gpfs", "vxfs")


def _existing_ancestor(path: str) -> str:
    while not os.path.exists(path) and path not in ("/", ""):
        path = os.path.dirname(path)
    return path or "/"


def _backing_fs(home: str) -> str:
    """Backing filesystem name of ``home`` before it exists (probing creates nothing)."""
    parent = os.path.dirname(os.path.abspath(home))
    return fsutil.backing_fs_name(os.path.join(_existing_ancestor(parent), "x"))


def _chown(path: str, uid: int, gid: int) -> None:
    """chown as root; an unprivileged process (no user namespace) keeps its own IDs."""
    try:
        os.lchown(path, uid, gid)
    except PermissionError:
        if os.geteuid() == 0:
            raise


def _in_user_namespace() -> bool:
    """True inside a user namespace other than the initial one (its uid_map is not the
    identity over the whole range)."""
    try:
        with open("/proc/self/uid_map", encoding="ascii") as f:
            fields = f.read().split()
    except OSError:
        return False
    return fields[:3] != ["0", "0", "4294967295"]


def _rootless() -> bool:
    """Upstream's unshare.IsRootless: not root, or root of a user namespace. Kernel
    overlay then keeps its xattrs in ``user.overlay.*`` (``userxattr``)."""
    return os.geteuid() != 0 or _in_user_namespace()


def _cannot_mount() -> DriverPrerequisites:
    return DriverPrerequisites(
        message="overlay: not running as root (of the host or of a user namespace), so kernel overlay "
        "cannot be mounted, and no mount_program is configured (fuse-overlayfs is not in PATH): "
        "prerequisites for driver not satisfied (wrong filesystem?)"
    )


class OverlayDriver(Driver):
    name = "overlay"
    #: the generic apply writes through the mounted layer, where the kernel turns
    #: deletions into whiteouts itself; the native apply uses OVERLAY (or AUFS)
    whiteout_format = WhiteoutFormat.DELETE

    #: checked by options.parse, with upstream's messages
    option_keys = None

    # -- probing and initialisation ------------------------------------------------------
    @classmethod
    def probe(cls, config: DriverConfig) -> None:
        opts = overlay_options.parse(config.options)
        backing = _backing_fs(config.home)
        if opts.mount_program:
            return
        if backing in _NEEDS_MOUNT_PROGRAM:
            raise IncompatibleFS(
                message=f"'overlay' is not supported over {backing}, a mount_program is required: "
                "backing file system is unsupported for this graph driver"
            )
        if backing == "<unknown>":
            magic = fsutil.fs_magic(_existing_ancestor(os.path.dirname(os.path.abspath(config.home))))
            raise IncompatibleFS(
                message=f"filesystem type {magic:#x} reported for {os.path.dirname(config.home)} is not "
                "supported with 'overlay': backing file system is unsupported for this graph driver"
            )
        if not features.kernel_has_overlay():
            raise DriverNotSupported(
                message="'overlay' not found as a supported filesystem on this host. Please ensure kernel "
                "is new enough and has overlay support loaded.: driver not supported"
            )
        if os.geteuid() != 0 and not shutil.which("fuse-overlayfs"):
            raise _cannot_mount()

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.opts = overlay_options.parse(config.options)
        self.run_home = os.path.join(config.run_root, os.path.basename(self.home))
        os.makedirs(os.path.join(self.home, layout.LINK_DIR), 0o755, exist_ok=True)
        self.backing_fs = fsutil.backing_fs_name(self.home)
        self.layout = Layout(self.home, self.name, self._image_stores(), self._data_home())
        if self.layout.data_home:
            os.makedirs(self.layout.data_home, 0o700, exist_ok=True)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._home_bound = False
        self._private_home = False
        self.quota: quota.Control | None = None
        self.supports_dtype = True
        self.using_metacopy = False
        self._native_diff: bool | None = None
        self._volatile: bool | None = None
        self._idmapped: bool | None = None
        rootless = _rootless()
        self.userxattr = rootless
        root_uid, root_gid = config.id_mappings.root_pair()

        if self.backing_fs == "<unknown>":
            self.probe(config)  # raises the exact reason
        os.makedirs(self.layout.link_dir, 0o755, exist_ok=True)
        os.makedirs(self.run_home, 0o700, exist_ok=True)
        _chown(self.run_home, root_uid, root_gid)

        if not self.opts.mount_program and not self._native_usable():
            found = shutil.which("fuse-overlayfs")
            if found:
                self.opts.mount_program = found
        if self.opts.mount_program:
            if rootless and self.backing_fs in _NETWORK_FS and self.opts.force_mask is None:
                log.warning("network file system detected as backing store; enforcing force_mask=700")
                self.opts.force_mask = 0o700
            with open(os.path.join(self.home, ".has-mount-program"), "w", encoding="ascii") as f:
                f.write("true")
        else:
            if self.opts.force_mask is not None:
                raise InvalidOption(message="'force_mask' is supported only with 'mount_program'")
            if self.backing_fs in _NEEDS_MOUNT_PROGRAM:
                raise IncompatibleFS(
                    message=f"'overlay' is not supported over {self.backing_fs}, a mount_program is "
                    "required: backing file system is unsupported for this graph driver"
                )
            if rootless and self.backing_fs in _NETWORK_FS:
                raise IncompatibleFS(
                    message="a network file system with user namespaces is not supported.  Please use a "
                    "mount_program: backing file system is unsupported for this graph driver"
                )
            if os.geteuid() != 0:
                raise _cannot_mount()
            self._check_kernel_overlay()
            if self.opts.mount_options:
                ok, why = features.checked(
                    self.run_home,
                    f"mountopt({self.opts.mount_options})",
                    lambda: features.check_mount_options(self.home, self.opts.mount_options, self.userxattr),
                )
                if not ok:
                    raise InvalidOption(
                        message=f"overlay.mountopt={self.opts.mount_options}: the kernel refuses these "
                        f"mount options: {why}"
                    )
            feature = f"metacopy({self.opts.mount_options})"
            self.using_metacopy, _ = features.checked(
                self.run_home,
                feature,
                lambda: features.check_metacopy(self.home, self.opts.mount_options, self.userxattr),
            )

        self._private_home = not self.opts.skip_mount_home and os.geteuid() == 0
        if self._private_home:
            self._make_home_private()
        self._init_quota()

    def _data_home(self) -> str:
        """Split mode (on-disk.md §9.2): layer contents go under the graph root, which is
        ``config.image_store`` to the driver; "" otherwise."""
        graph_root = self.config.image_store
        if not graph_root or graph_root == self.config.root:
            return ""
        return os.path.normpath(os.path.join(os.path.abspath(graph_root), self.name))

    def _image_stores(self) -> list[str]:
        stores = list(self.opts.image_stores)
        if self.config.image_store and self.config.image_store != self.config.root:
            stores.append(self.config.image_store)
        return stores

    def _native_usable(self) -> bool:
        """Upstream's SupportsNativeOverlay: as (namespace) root, unless this home was
        written by a FUSE mount program (on-disk.md §13.6)."""
        if os.geteuid() != 0:
            return False
        flag = os.path.join(self.home, ".has-mount-program")
        try:
            with open(flag, encoding="ascii") as f:
                content = f.read().strip()
        except FileNotFoundError:
            content = ""
        if content == "true":
            return False
        if content != "false":
            needs = features.scan_for_mount_program(self.home)
            with open(flag, "w", encoding="ascii") as f:
                f.write("true" if needs else "false")
            if needs:
                return False
        try:
            self._check_kernel_overlay()
        except (DriverNotSupported, IncompatibleFS):
            return False
        return True

    def _check_kernel_overlay(self) -> None:
        hit = features.cached(self.run_home, "overlay")
        if hit is not None:
            ok, text = hit
            if not ok:
                raise DriverNotSupported(message=text or "kernel does not support overlay fs")
            return
        try:
            features.check_overlay(self.home, self.backing_fs, self.userxattr)
        except (DriverNotSupported, IncompatibleFS) as e:
            with contextlib.suppress(OSError):
                features.record(self.run_home, "overlay", False, str(e))
            raise
        with contextlib.suppress(OSError):
            features.record(self.run_home, "overlay", True)

    def _make_home_private(self) -> None:
        """Upstream's mount.MakePrivate(home): a private bind mount of the home on itself,
        so layer mounts do not propagate to other mount namespaces."""
        if not mounts.is_mounted(self.home):
            mounts.mount(self.home, self.home, "", mounts.MS_BIND)
            self._home_bound = True
        mounts.mount("", self.home, "", mounts.MS_PRIVATE)

    def _init_quota(self) -> None:
        """Quotas limit layer contents, so in split mode they are kept where the
        ``diff`` directories are (the graph root's driver directory)."""
        quota_home = self.layout.data_home or self.home
        backing = fsutil.backing_fs_name(quota_home) if self.layout.data_home else self.backing_fs
        if backing == "xfs":
            try:
                self.quota = quota.Control(quota_home)
            except OSError as e:
                if self.opts.quota_size or self.opts.quota_inodes:
                    raise InvalidOption(
                        message="storage options overlay.size and overlay.inodes not supported. Filesystem "
                        f"does not support Project Quota: {e}"
                    ) from None
        elif self.opts.quota_size or self.opts.quota_inodes:
            raise InvalidOption(
                message="storage option overlay.size and overlay.inodes only supported for backingFS XFS. "
                f"Found {backing}"
            )

    # -- status ----------------------------------------------------------------------
    def native_diff_usable(self) -> bool:
        if self.opts.mount_program:
            return False
        if self._native_diff is None:
            ok, text = features.checked(
                self.run_home,
                f"native-diff({self.opts.mount_options})",
                lambda: features.check_native_diff(self.home, self.opts.mount_options, self.userxattr),
            )
            if not ok:
                log.info("Not using native diff for overlay, this may cause degraded performance: %s", text)
            self._native_diff = ok
        return self._native_diff

    def supports_volatile(self) -> bool:
        if self.opts.mount_program:
            return True
        if self._volatile is None:
            self._volatile, _ = features.checked(
                self.run_home, "volatile", lambda: features.check_volatile(self.home, self.userxattr)
            )
        return self._volatile

    def status(self) -> list[tuple[str, str]]:
        def b(v: bool) -> str:
            return "true" if v else "false"

        return [
            ("Backing Filesystem", self.backing_fs),
            ("Supports d_type", b(self.supports_dtype)),
            ("Native Overlay Diff", b(self.native_diff_usable())),
            ("Using metacopy", b(self.using_metacopy)),
            ("Supports shifting", b(self.supports_shifting())),
            ("Supports volatile", b(self.supports_volatile())),
        ]

    def supports_shifting(self) -> bool:
        """ID maps applied at mount time: by the mount program, or with ID-mapped lower
        layers when the kernel supports them (on-disk.md §13.5)."""
        if os.environ.get("_CONTAINERS_OVERLAY_DISABLE_IDMAP") == "yes":
            return False
        if self.opts.mount_program:
            return True
        if self._idmapped is None:
            self._idmapped, _ = features.checked(
                self.run_home,
                "idmapped-lower-dir",
                lambda: features.check_idmapped_lowers(self.home, self.userxattr),
            )
        return self._idmapped

    def additional_image_stores(self) -> list[str]:
        return list(self.layout.image_stores)

    def metadata(self, id: str) -> dict[str, str]:
        where = self.layout.locate(id)
        d = where.path
        os.stat(d)
        data = self.layout.data_dir_of(where, id)
        meta = {
            "WorkDir": os.path.join(data, "work"),
            "MergedDir": os.path.join(data, "merged"),
            "UpperDir": os.path.join(data, "diff"),
        }
        lowers = self.layout.lower_layer_dirs(d)
        if lowers:
            meta["LowerDir"] = ":".join(lowers)
        return meta

    # -- additional layer stores (on-disk.md §14) ------------------------------------
    def lookup_additional_layer(self, digest: str, ref: str) -> OverlayAdditionalLayer:
        """The layer ``digest`` of image ``ref`` in a configured additional layer store
        (DriverLayerUnknown if none has it); the store is told it is in use."""
        path = additional_layers.find(self.opts.layer_stores, digest, ref)
        additional_layers.notify_use(path)
        return OverlayAdditionalLayer(self, path)

    def lookup_additional_layer_by_id(self, id: str) -> OverlayAdditionalLayer:
        with open(os.path.join(self.layout.dir(id), "additionallayer"), encoding="utf-8") as f:
            path = f.read()
        additional_layers.notify_use(path)
        return OverlayAdditionalLayer(self, path)

    # -- layer lifecycle ---------------------------------------------------------------
    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        if opts is not None:
            for key in ("size", "inodes"):
                if key in {k.lower() for k in opts.storage_opt}:
                    raise InvalidOption(message=f"--storage-opt {key} is only supported for ReadWrite Layers")
        self._create(id, parent, opts, quota_size=0, quota_inodes=0, with_quota=False)

    def create_read_write(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        if opts is not None and opts.storage_opt and self.quota is None:
            raise InvalidOption(
                message="--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
            )
        size, inodes = self.opts.quota_size, self.opts.quota_inodes
        if opts is not None and opts.storage_opt:
            s, i = overlay_options.parse_storage_opt(dict(opts.storage_opt))
            size = s or size
            inodes = i or inodes
        self._create(id, parent, opts, quota_size=size, quota_inodes=inodes, with_quota=True)

    def _create(
        self,
        id: str,
        parent: str | None,
        opts: CreateOpts | None,
        *,
        quota_size: int,
        quota_inodes: int,
        with_quota: bool,
    ) -> None:
        maps = (
            opts.id_mappings if opts is not None and opts.id_mappings is not None else self.config.id_mappings
        )
        root_uid, root_gid = maps.root_pair()
        os.makedirs(self.layout.link_dir, 0o755, exist_ok=True)
        d = os.path.join(self.home, id)
        # split mode: diff/work/merged apart from the metadata (on-disk.md §9.2)
        data = os.path.join(self.layout.data_home, id) if self.layout.data_home else d
        perms = self.opts.force_mask if self.opts.force_mask is not None else DEFAULT_PERMS
        if parent:
            parent_where = self.layout.locate(parent)
            st = os.stat(parent_where.path)
            root_uid, root_gid = st.st_uid, st.st_gid
            dst = os.stat(os.path.join(self.layout.data_dir_of(parent_where, parent), "diff"))
            perms = stat.S_IMODE(dst.st_mode)
            # the diff dir's owner follows the parent's diff (driver-api §3)
            diff_uid, diff_gid = dst.st_uid, dst.st_gid
        else:
            diff_uid, diff_gid = root_uid, root_gid
        if os.path.lexists(d):
            log.warning("creating layer %r while directory %r already exists; removing it first", id, d)
            self.remove(id)
        elif data != d and os.path.lexists(data):
            log.warning("creating layer %r while directory %r already exists; removing it first", id, data)
            self._remove_dirs(d, data)
        os.mkdir(d, 0o700)
        try:
            _chown(d, root_uid, root_gid)
            if data != d:
                os.mkdir(data, 0o700)
                _chown(data, root_uid, root_gid)
            if with_quota and self.quota is not None:
                self.quota.set_quota(data, quota_size, quota_inodes)
            diff = os.path.join(data, "diff")
            os.mkdir(diff)
            _chown(diff, diff_uid, diff_gid)
            os.chmod(diff, perms)
            lid = self.layout.new_link(id)
            with open(os.path.join(d, "link"), "w", encoding="ascii") as f:
                f.write(lid)
            for sub in ("work", "merged"):
                os.mkdir(os.path.join(data, sub), 0o700)
                _chown(os.path.join(data, sub), root_uid, root_gid)
            if not parent:
                os.mkdir(os.path.join(d, "empty"), 0o700)
                _chown(os.path.join(d, "empty"), root_uid, root_gid)
                return
            lower = self.layout.lower_chain_for_child(parent)
            if lower.count(":") + 1 > layout.MAX_DEPTH:
                raise DriverError(message="max depth exceeded")
            with open(os.path.join(d, layout.LOWER_FILE), "w", encoding="ascii") as f:
                f.write(lower)
            os.chmod(os.path.join(d, layout.LOWER_FILE), 0o644)
        except BaseException:
            self._remove_dirs(d, data)
            raise

    def _remove_dirs(self, d: str, data: str) -> None:
        """Remove a layer's ``l/`` link, its data directory (split mode) and then its
        metadata directory: a crash in between leaves the ``link`` file for recovery."""
        try:
            lid = self.layout.read_link(d)
        except OSError:
            lid = ""
        if lid:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.layout.link_dir, lid))
        if data != d:
            fsutil.remove_tree(data)
        fsutil.remove_tree(d)

    def remove(self, id: str) -> None:
        """Remove the layer from the primary home (never from a read-only store), in
        split mode with its data directory; anything still mounted below it is detached,
        and this process forgets its mount count."""
        d = os.path.join(self.home, id)
        data = self.layout.data_dir_of(layout.LayerDir(d, False), id)
        try:
            with open(os.path.join(d, "additionallayer"), encoding="utf-8") as f:
                als = f.read()
        except OSError:
            als = ""
        with self._lock:
            self._counts.pop(os.path.join(data, "merged"), None)
        self._remove_dirs(d, data)
        if als:
            additional_layers.notify_release(als)
        if self.quota is not None:
            self.quota.clear_quota(data)

    def exists(self, id: str) -> bool:
        return os.path.exists(self.layout.dir(id))

    def list_layers(self) -> list[str]:
        return self.layout.list_layers()

    def read_write_disk_usage(self, id: str) -> DiskUsage:
        return fsutil.disk_usage(self.layout.diff_path(id))

    def cleanup(self) -> None:
        shutil.rmtree(os.path.join(self.home, "staging"), ignore_errors=True)
        if not (self._home_bound or self._home_is_self_bind()):
            return
        with self._home_mounts(exclusive=True) as alone:
            if not alone:
                return  # a layer is being mounted below it right now
            try:
                mounts.unmount(self.home)
                self._home_bound = False
            except OSError as e:
                if e.errno == errno.EINVAL:
                    self._home_bound = False
                elif e.errno != errno.EBUSY:  # busy: layers are mounted below it, it stays
                    log.warning("unmounting the private bind mount of %s: %s", self.home, e)

    @contextlib.contextmanager
    def _home_mounts(self, exclusive: bool) -> Iterator[bool]:
        """Mounting a layer (shared, waiting) and taking the home's bind mount down
        (exclusive, never waiting: yields False when it would have to) exclude each other
        across processes. Otherwise a process could take the bind down between another's
        check and its mount; that layer mount lands on the bare directory, and the next
        process's fresh bind hides it where no unmount by path reaches it (EBUSY for
        ever after when the layer is removed)."""
        os.makedirs(self.run_home, 0o700, exist_ok=True)
        path = os.path.join(self.run_home, "home-mounts.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _home_is_self_bind(self) -> bool:
        """A mount at the home showing the same filesystem as its parent directory is the
        private bind mount init makes -- perhaps by a process killed before its cleanup,
        which would otherwise leave it behind for good (upstream's Cleanup unmounts the
        home whoever bound it). Another filesystem mounted there is the admin's. Still
        busy with another process's layer mounts, it stays (plain unmount: EBUSY)."""
        try:
            return mounts.is_mounted(self.home) and (
                os.stat(self.home).st_dev == os.stat(os.path.dirname(self.home)).st_dev
            )
        except FileNotFoundError:
            return False

    # -- mounting ----------------------------------------------------------------------
    def _mount_words(self, opts: MountOpts) -> list[str]:
        global_words = [w for w in self.opts.mount_options.split(",") if w]
        words = list(opts.options) if opts.options else list(global_words)
        if (
            opts.options
            and "metacopy=on" in global_words
            and "metacopy=on" not in words
            and self.using_metacopy
        ):
            words.append("metacopy=on")
        if not self.using_metacopy:
            words = [w for w in words if w != "metacopy=on"]
        return words

    def get(self, id: str, opts: MountOpts | None = None) -> str:
        opts = opts or MountOpts()
        where = self.layout.locate(id)
        os.stat(where.path)
        # diff/work/merged: the data directory, apart from the metadata in split mode
        d = self.layout.data_dir_of(where, id)
        words = self._mount_words(opts)
        read_write = not where.additional and "ro" not in words
        lowers = self.layout.mount_lowers(where.path, d)
        if not lowers:
            lowers = [os.path.join(where.path, "empty")]
        diff = os.path.join(d, "diff")
        merged = os.path.join(d, "merged")
        with self._lock, self._home_mounts(exclusive=False):
            count = self._counts.get(merged, 0)
            if count == 0 and self._is_layer_mounted(merged):
                count = 1  # mounted by another process or an earlier instance
            self._counts[merged] = count + 1
            if count > 0:
                return merged
            try:
                if self._private_home and not mounts.is_mounted(self.home):
                    self._make_home_private()  # another process's cleanup took it down
                self._mount(id, d, diff, merged, lowers, words, read_write, opts)
            except BaseException:
                self._counts.pop(merged, None)
                raise
        return merged

    def _is_layer_mounted(self, merged: str) -> bool:
        try:
            return fsutil.fs_magic(merged) in _MOUNTED_MAGICS and mounts.is_mounted(merged)
        except OSError:
            return False

    def _mount(
        self,
        id: str,
        d: str,
        diff: str,
        merged: str,
        lowers: list[str],
        words: list[str],
        read_write: bool,
        opts: MountOpts,
    ) -> None:
        if not os.path.isdir(merged):
            os.mkdir(merged, 0o700)
            st = os.stat(d)
            _chown(merged, st.st_uid, st.st_gid)
        work = os.path.join(d, "work")
        if not self.opts.mount_program and self.userxattr:
            words.append("userxattr")
        if opts.volatile and "volatile" not in words and self.supports_volatile():
            words.append("volatile")
        shutil.rmtree(os.path.join(work, "work", "incompat", "volatile"), ignore_errors=True)
        upper = layout.resolve_diff(diff)
        maps = opts.id_mappings
        idmapped: list[str] = []
        if (
            not self.opts.mount_program
            and not opts.disable_shifting
            and maps.uids
            and maps.gids
            and self.supports_shifting()
        ):
            lowers, idmapped = self._idmap_lowers(d, lowers, maps)
        try:
            self._mount_stack(d, upper, merged, work, lowers, words, read_write, opts)
        finally:
            # overlay holds its own references: the mapped binds can go right away
            for m in idmapped:
                with contextlib.suppress(OSError):
                    mounts.unmount(m, mounts.MNT_DETACH)

    def _idmap_lowers(self, d: str, lowers: list[str], maps: IDMappings) -> tuple[list[str], list[str]]:
        """Rewrite lowers to paths inside ID-mapped binds under ``<layer>/mapped/<n>``; one
        bind per source directory (the home for ``l/`` links), as upstream."""
        mapped_root = os.path.join(d, "mapped")
        os.makedirs(mapped_root, 0o700, exist_ok=True)
        ns = mounts.user_namespace_fd(
            [(m.container_id, m.host_id, m.size) for m in maps.uids],
            [(m.container_id, m.host_id, m.size) for m in maps.gids],
        )
        binds: dict[str, str] = {}
        out = []
        try:
            for lower in lowers:
                parent = os.path.dirname(lower)
                src = os.path.dirname(parent) if os.path.basename(parent) == layout.LINK_DIR else parent
                root = binds.get(src)
                if root is None:
                    root = os.path.join(mapped_root, str(len(binds)))
                    os.makedirs(root, 0o700, exist_ok=True)
                    mounts.idmapped_bind_mount(src, root, ns)
                    binds[src] = root
                out.append(os.path.join(root, os.path.relpath(lower, src)))
        except BaseException:
            for root in binds.values():
                with contextlib.suppress(OSError):
                    mounts.unmount(root, mounts.MNT_DETACH)
            raise
        finally:
            os.close(ns)
        return out, list(binds.values())

    def _mount_stack(
        self,
        d: str,
        upper: str,
        merged: str,
        work: str,
        lowers: list[str],
        words: list[str],
        read_write: bool,
        opts: MountOpts,
    ) -> None:
        if read_write:
            spec = mounting.OverlaySpec(lowers, upper, work, words, opts.mount_label)
        else:
            spec = mounting.OverlaySpec([upper, *lowers], None, None, words, opts.mount_label)
        if self.opts.mount_program:
            maps = None
            if self.supports_shifting() and not opts.disable_shifting:
                maps = opts.id_mappings if not opts.id_mappings.empty else self.config.id_mappings
                maps = None if maps.empty else maps
            data = mounting.mount_program_options(spec.data(), maps, self.opts.force_mask is not None)
            mounting.run_mount_program(self.opts.mount_program, data, merged, self.home)
            return
        try:
            mounting.mount_overlay(spec, merged, self.home)
        except OSError as e:
            data = mounting.describe(spec)
            raise DriverError(
                message=f"creating overlay mount to {merged}, mount_data={data!r}: {e.strerror or e}"
            ) from e

    def put(self, id: str) -> None:
        """Release one :meth:`get`; the last unmounts the path get mounted (split mode:
        under the graph root, where upstream's Put misses it, on-disk.md §9.2)."""
        where = self.layout.locate(id)
        os.stat(where.path)
        d = self.layout.data_dir_of(where, id)
        merged = os.path.join(d, "merged")
        with self._lock:
            count = self._counts.get(merged, 0)
            if count > 1:
                self._counts[merged] = count - 1
                return
            self._counts.pop(merged, None)
            mapped = os.path.join(d, "mapped")
            if os.path.isdir(mapped):
                for name in os.listdir(mapped):
                    with contextlib.suppress(OSError):
                        mounts.unmount(os.path.join(mapped, name), mounts.MNT_DETACH)
            if self.opts.mount_program:
                mounting.unmount_fuse(merged)
            else:
                try:
                    mounts.unmount_if_mounted(merged, mounts.MNT_DETACH)
                except FileNotFoundError:
                    pass
            with contextlib.suppress(OSError):
                os.rmdir(merged)

    # -- diffs (driver-api §5) ---------------------------------------------------------
    def _native(self, id: str, parent: str | None) -> bool:
        return self.native_diff_usable() and self.layout.is_direct_parent(id, parent)

    def changes(
        self,
        id: str,
        id_mappings: IDMappings,
        parent: str | None,
        parent_mappings: IDMappings,
        mount_label: str = "",
    ) -> list[Change]:
        if not self._native(id, parent):
            return super().changes(id, id_mappings, parent, parent_mappings, mount_label)
        d = self.layout.dir(id)
        return nativediff.changes(self.layout.diff_path(id), self.layout.lower_layer_dirs(d))

    def diff(
        self,
        id: str,
        id_mappings: IDMappings,
        parent: str | None,
        parent_mappings: IDMappings,
        mount_label: str = "",
    ) -> IO[bytes]:
        if not self._native(id, parent):
            return super().diff(id, id_mappings, parent, parent_mappings, mount_label)
        d = self.layout.dir(id)
        lowers = self.layout.lower_layer_dirs(d)
        return nativediff.diff(self.layout.diff_path(id), lowers, id_mappings, self.userxattr)

    def diff_size(
        self,
        id: str,
        id_mappings: IDMappings,
        parent: str | None,
        parent_mappings: IDMappings,
        mount_label: str = "",
    ) -> int:
        native = self.layout.is_direct_parent(id, parent) and (
            self.opts.mount_program or self.native_diff_usable()
        )
        if not native:
            return super().diff_size(id, id_mappings, parent, parent_mappings, mount_label)
        return fsutil.disk_usage(self.layout.diff_path(id)).size

    def apply_diff(self, id: str, parent: str | None, opts: ApplyDiffOpts) -> int:
        ignore = opts.ignore_chown_errors or self.opts.ignore_chown_errors
        mask = self.opts.force_mask if self.opts.force_mask is not None else opts.force_mask
        if not self.layout.is_direct_parent(id, parent):
            from dataclasses import replace

            return super().apply_diff(id, parent, replace(opts, ignore_chown_errors=ignore, force_mask=mask))
        target = self.layout.diff_path(id)
        fmt = WhiteoutFormat.AUFS if self.opts.mount_program else WhiteoutFormat.OVERLAY
        nativediff.apply(target, opts, fmt, ignore, mask, self.userxattr)
        return fsutil.disk_usage(target).size

    def diff_getter(self, id: str) -> FileGetter | None:
        d = self.layout.dir(id)
        return nativediff.DiffFileGetter([self.layout.diff_path(id), *self.layout.lower_layer_dirs(d)])

    def update_layer_id_map(
        self, id: str, to_container: IDMappings, to_host: IDMappings, mount_label: str = ""
    ) -> None:
        """Re-own through the merged view (the kernel copies files up), then push that
        generation down as ``diff1`` under a fresh empty ``diff`` (on-disk.md §13.5)."""
        from containers_storage.archive.idshift import shift_tree

        d = self.layout.data_dir(id)
        diff = os.path.join(d, "diff")
        root_uid, root_gid = (0, 0) if to_host.empty else to_host.root_pair()
        words = tuple(w for w in self.opts.mount_options.split(",") if w)
        merged = self.get(id, MountOpts(mount_label=mount_label, options=words, disable_shifting=True))
        try:
            shift_tree(merged, to_container, to_host)
        finally:
            self.put(id)
        perms = self.opts.force_mask
        if perms is None:
            perms = stat.S_IMODE(os.stat(diff).st_mode)
        n = 0
        while os.path.exists(os.path.join(d, layout.diff_name(n))):
            n += 1
        for k in range(n, 0, -1):
            os.rename(os.path.join(d, layout.diff_name(k - 1)), os.path.join(d, layout.diff_name(k)))
        work = os.path.join(d, "work")
        shutil.rmtree(work, ignore_errors=True)
        os.mkdir(work, DEFAULT_PERMS)
        _chown(work, root_uid, root_gid)
        os.mkdir(diff)
        _chown(diff, root_uid, root_gid)
        os.chmod(diff, perms)

    # -- partial pulls: the core's differ writes a staged tree, the layer takes it -------
    def differ_target(self, id: str) -> str:
        """The directory holding the layer's own files (upstream ``DifferTarget``)."""
        return self.layout.diff_path(id)

    def differ_apply_options(self, id_mappings: IDMappings) -> ApplyOptions:
        from containers_storage.archive.apply import ApplyOptions

        return ApplyOptions(
            whiteout_format=WhiteoutFormat.AUFS if self.opts.mount_program else WhiteoutFormat.OVERLAY,
            id_mappings=id_mappings,
            ignore_chown_errors=self.opts.ignore_chown_errors,
            force_mask=self.opts.force_mask,
            opaque_xattr=whiteouts.xattr_name("opaque", self.userxattr),
        )

    def apply_staging_directory(self, id: str, staging: str) -> None:
        """The staged tree replaces the layer's ``diff`` (a rename: same filesystem)."""
        diff = self.layout.diff_path(id)
        shutil.rmtree(diff, ignore_errors=True)
        os.rename(staging, diff)

