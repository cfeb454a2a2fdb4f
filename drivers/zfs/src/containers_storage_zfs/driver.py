"""The zfs graph driver (on-disk.md §15, driver-api.md §2).

Layer ``<id>`` is the dataset ``<fsname>/<id>``. A base layer is a new dataset; a child
is a clone of a one-off snapshot of its parent's dataset, and that snapshot is destroyed
with deferred deletion right away, so ZFS removes it by itself when the clone goes. A
parent with children (which the store never removes) is removed by promoting the
children first. Mounts go to ``<home>/graph/<id>``. Every layer dataset carries the user
property :data:`LAYER_PROPERTY` naming the driver's home, so that the layers can be listed
apart from other datasets under the same parent (other stores' layers, the user's own).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time

from containers_storage.drivers import mounts
from containers_storage.drivers.api import ApplyDiffOpts, CreateOpts, Driver, DriverConfig, MountOpts
from containers_storage.drivers.options import parse_size
from containers_storage.errors import DriverLayerUnknown, InvalidOption

from .command import ZfsCommandError
from .site import ZfsOptions, locate

#: mode of a new base layer's root directory
DEFAULT_PERMS = 0o555
_ALREADY_EXISTS = "dataset already exists"
#: seconds a destroy is retried while ZFS calls the dataset busy
BUSY_WAIT = 5.0
#: ZFS user property set on each layer dataset at creation: the home of the driver that
#: made it (upstream sets none, so its layers are not listed)
LAYER_PROPERTY = "containers-storage:home"


def _quota(opts: CreateOpts | None) -> int:
    """The per-layer ``size`` option in bytes (0: none)."""
    quota = 0
    for key, value in (opts.storage_opt if opts else {}).items():
        if key.lower() != "size":
            raise InvalidOption(message=f"unknown option {key.lower()}")
        quota = parse_size(value)
    return quota


class ZfsDriver(Driver):
    name = "zfs"
    #: characters of a ZFS dataset name component ("@" would name a snapshot, "#" a
    #: bookmark, so such an ID would make ``destroy`` reach another dataset's data)
    layer_id_pattern = re.compile(r"[A-Za-z0-9_.:-]+")

    #: checked by ZfsOptions.parse, with upstream's messages
    option_keys = None

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.options = ZfsOptions.parse(config.options)
        site = locate(config, self.options)
        self.zfs = site.zfs
        self.fsname = site.fsname
        self.mounter = site.mounter
        self._lock = threading.Lock()
        #: serialises mounting and unmounting; guards the counts
        self._mount_lock = threading.RLock()
        #: dataset name -> its ``canmount`` property, for the datasets known to exist
        self._datasets = self.zfs.filesystems(self.fsname)
        self._mount_counts: dict[str, int] = {}
        #: layer -> when this process last unmounted it (its last possible write)
        self._released: dict[str, float] = {}
        #: layers whose current mount is read-only (their release wrote nothing); guarded
        #: by the mount lock
        self._read_only: set[str] = set()
        os.makedirs(self.home, 0o700, exist_ok=True)

    @classmethod
    def probe(cls, config: DriverConfig) -> None:
        locate(config, ZfsOptions.parse(config.options))

    # -- names -------------------------------------------------------------------------
    def dataset(self, id: str) -> str:
        return f"{self.fsname}/{id}"

    def mount_path(self, id: str) -> str:
        return os.path.join(self.home, "graph", id)

    # -- layer lifecycle -------------------------------------------------------------
    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        quota = _quota(opts)
        try:
            self._create(id, parent, opts, quota)
        except ZfsCommandError as e:
            if not e.says(_ALREADY_EXISTS):
                raise
            # left behind by an aborted earlier run: replace it
            self.zfs.run("destroy", "-R", self.dataset(id))
            self._forget(self.dataset(id))
            self._create(id, parent, opts, quota)

    def _properties(self, quota: int) -> list[str]:
        props = [*self.mounter.create_properties, f"{LAYER_PROPERTY}={self.home}"]
        if quota:
            props.append(f"quota={quota}")
        return [arg for prop in props for arg in ("-o", prop)]

    def _create(self, id: str, parent: str | None, opts: CreateOpts | None, quota: int) -> None:
        name = self.dataset(id)
        if parent:
            self._after_parent_writes(parent)
            self._clone(name, self.dataset(parent), quota)
            return
        self.zfs.run("create", *self._properties(quota), name)
        self._remember(name)
        try:
            self._init_root(id, opts)
        except BaseException:
            with contextlib.suppress(ZfsCommandError):
                self.zfs.run("destroy", "-r", name)
                self._forget(name)
            raise

    def _init_root(self, id: str, opts: CreateOpts | None) -> None:
        """Give a new base layer's root the default mode and the mapped root as owner."""
        maps = opts.id_mappings if opts and opts.id_mappings is not None else self.config.id_mappings
        uid, gid = maps.root_pair()
        path = self._mount(id, MountOpts(mount_label=opts.mount_label if opts else ""))
        try:
            os.chmod(path, DEFAULT_PERMS)
            os.chown(path, uid, gid)
        finally:
            # only the root's mode and owner changed, which the generic diff compares as such
            self._unmount(id, wrote=False)

    def _after_parent_writes(self, parent: str) -> None:
        """With whole-second file times, a file the child rewrites in the second its parent
        last wrote it looks unchanged to the generic diff (same size, same time). When
        this process released the parent within the current second after writing through
        a mount (not :meth:`apply_diff`, whose files carry archive times), start the child
        in the next second, as upstream's generic diff sleeps for the same reason."""
        if not self.mounter.whole_second_times:
            return
        with self._lock:
            released = self._released.get(parent)
        now = time.time()
        if released is not None and int(released) == int(now):
            time.sleep(int(now) + 1 - now)

    def _clone(self, name: str, parent: str, quota: int) -> None:
        snapshot = self._snapshot(parent)
        try:
            self.zfs.run("clone", *self._properties(quota), snapshot, name)
        except BaseException:
            with contextlib.suppress(ZfsCommandError):
                self.zfs.run("destroy", snapshot)
            raise
        self._remember(name)
        try:
            self.zfs.run("destroy", "-d", snapshot)
        except BaseException:
            with contextlib.suppress(ZfsCommandError):
                self.zfs.run("destroy", "-r", name)
                self.zfs.run("destroy", snapshot)
            self._forget(name)
            raise

    def _snapshot(self, dataset: str) -> str:
        """A new snapshot of ``dataset`` named by the clock's nanoseconds, as upstream."""
        for _ in range(10):
            snapshot = f"{dataset}@{time.time_ns() % 1_000_000_000}"
            try:
                self.zfs.run("snapshot", snapshot)
            except ZfsCommandError as e:
                if e.says(_ALREADY_EXISTS):
                    continue
                if e.says("does not exist"):
                    raise DriverLayerUnknown(f"parent dataset {dataset}: {e.stderr.strip()}") from e
                raise
            return snapshot
        raise ZfsCommandError(["zfs", "snapshot", dataset], 1, "no free snapshot name after 10 tries")

    def remove(self, id: str) -> None:
        name = self.dataset(id)
        path = self.mount_path(id)
        with self._mount_lock:
            if mounts.is_mounted(path):
                self.mounter.unmount(name, path)
            self._mount_counts.pop(id, None)
            self._read_only.discard(id)
        try:
            self._destroy(name)
        except ZfsCommandError:
            # already gone (removed by hand) is fine, as upstream
            if self.zfs.dataset_type(name) is not None:
                raise
        self._forget(name)
        with self._lock:
            self._released.pop(id, None)
        with contextlib.suppress(OSError):
            os.rmdir(path)

    def _destroy(self, name: str) -> None:
        """``zfs destroy -r``; layers cloned from this one are promoted first, so that
        they take over the snapshots they depend on and the parent can go."""
        try:
            self._destroy_retrying_busy(name)
        except ZfsCommandError as e:
            if not e.says("dependent clones"):
                raise
            origins = self.zfs.get([self.fsname], ["origin"], recursive=True)
            for clone, props in origins.items():
                if props.get("origin", "").startswith(f"{name}@"):
                    self.zfs.run("promote", clone)
            self._destroy_retrying_busy(name)

    def _destroy_retrying_busy(self, name: str) -> None:
        """zfs-fuse reports a dataset busy for a moment after its last unmount."""
        deadline = time.monotonic() + BUSY_WAIT
        while True:
            try:
                self.zfs.run("destroy", "-r", name)
                return
            except ZfsCommandError as e:
                if not e.says("busy") or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def _remember(self, name: str, canmount: str = "") -> None:
        with self._lock:
            self._datasets[name] = canmount or ("noauto" if self.mounter.kind == "fuse" else "on")

    def _forget(self, name: str) -> None:
        with self._lock:
            self._datasets.pop(name, None)

    def exists(self, id: str) -> bool:
        name = self.dataset(id)
        with self._lock:
            if name in self._datasets:
                return True
        # made by another process since we listed
        try:
            found = self.zfs.get([name], ["type", "canmount"]).get(name, {})
        except ZfsCommandError as e:
            if e.says("does not exist"):
                return False
            raise
        if found.get("type") != "filesystem":
            return False
        self._remember(name, found.get("canmount", ""))
        return True

    def list_layers(self) -> list[str]:
        """The parent's child filesystems marked as made by this driver's home; any other
        dataset there (another store's, the user's, upstream's layers) is not listed, so
        check and GC never take it for an unaccounted layer."""
        prefix = self.fsname + "/"
        found = self.zfs.get([self.fsname], ["type", LAYER_PROPERTY], recursive=True)
        return [
            name[len(prefix) :]
            for name, props in found.items()
            if name.startswith(prefix)
            and "/" not in name[len(prefix) :]
            and props.get("type") == "filesystem"
            and props.get(LAYER_PROPERTY) == self.home
        ]

    def apply_diff(self, id: str, parent: str | None, opts: ApplyDiffOpts) -> int:
        size = super().apply_diff(id, parent, opts)
        # the files now carry the archive's times, not the clock's: no need to wait
        with self._lock:
            self._released.pop(id, None)
        return size

    # -- mounting --------------------------------------------------------------------
    def get(self, id: str, opts: MountOpts | None = None) -> str:
        path = self.mount_path(id)
        with self._mount_lock:
            count = self._mount_counts.get(id, 0)
            if count == 0 and mounts.is_mounted(path):
                count = 1  # left mounted by an earlier instance: adopt it
            if count == 0:
                opts = opts or MountOpts()
                self._mount(id, opts)
                if opts.read_only:
                    self._read_only.add(id)
            self._mount_counts[id] = count + 1
        return path

    def _mount(self, id: str, opts: MountOpts) -> str:
        if not self.exists(id):
            raise DriverLayerUnknown(f"zfs dataset {self.dataset(id)}")
        name = self.dataset(id)
        path = self.mount_path(id)
        options = [o for o in (self.options.mountopt, *opts.options) if o and o != "ro"]
        os.makedirs(path, 0o755, exist_ok=True)
        try:
            self.mounter.mount(
                name, path, options, opts.read_only, opts.mount_label, self._datasets.get(name, "")
            )
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(path)
            raise
        with self._lock:
            if self.mounter.kind == "fuse":
                self._datasets[name] = "noauto"
        return path

    def put(self, id: str) -> None:
        with self._mount_lock:
            count = self._mount_counts.pop(id, 0) - 1
            if count > 0:
                self._mount_counts[id] = count
                return
            self._unmount(id)

    def _unmount(self, id: str, wrote: bool = True) -> None:
        path = self.mount_path(id)
        if mounts.is_mounted(path):
            self.mounter.unmount(self.dataset(id), path)
        with self._lock:
            if id in self._read_only:
                self._read_only.discard(id)
            elif wrote:
                self._released[id] = time.time()
        # as upstream, a mount directory that cannot go (gone already, not empty) is left
        with contextlib.suppress(OSError):
            os.rmdir(path)

    # -- information -----------------------------------------------------------------
    def status(self) -> list[tuple[str, str]]:
        pool = self.fsname.split("/", 1)[0]
        try:
            health = self.zfs.pool_health(pool)
            pool_name = pool
        except ZfsCommandError as e:
            pool_name, health = f"error while getting pool information {e}", "not available"
        keys = ("used", "available", "quota", "compression")
        try:
            props = self.zfs.get([self.fsname], keys)[self.fsname]
        except ZfsCommandError as e:
            props = dict.fromkeys(keys, f"not available: {e}")
        quota = props["quota"]
        return [
            ("Zpool", pool_name),
            ("Zpool Health", health),
            ("Parent Dataset", self.fsname),
            ("Space Used By Parent", props["used"]),
            ("Space Available", props["available"]),
            ("Parent Quota", "no" if quota in ("0", "none", "-") else quota),
            ("Compression", props["compression"]),
        ]

    def metadata(self, id: str) -> dict[str, str]:
        return {"Mountpoint": self.mount_path(id), "Dataset": self.dataset(id)}
