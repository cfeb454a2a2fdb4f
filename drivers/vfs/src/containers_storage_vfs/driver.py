"""vfs: ``<home>/dir/<id>`` is the complete root filesystem of layer ``id`` (on-disk.md §12)."""

from __future__ import annotations

import os

from containers_storage.archive.types import FileGetter
from containers_storage.drivers.api import ApplyDiffOpts, CreateOpts, Driver, DriverConfig, MountOpts
from containers_storage.drivers.copy import copy_tree
from containers_storage.drivers.fsutil import remove_tree
from containers_storage.drivers.options import option_value, parse_bool, parse_options
from containers_storage.errors import DriverLayerUnknown, InvalidOption
from containers_storage.structs import replace


class VFSDriver(Driver):
    name = "vfs"

    #: checked in __init__, with upstream's messages
    option_keys = None

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.ignore_chown_errors = False
        self.image_stores: list[str] = []
        for key, value in parse_options(config.options):
            if key in ("vfs.imagestore", ".imagestore"):
                self.image_stores += [p for p in value.split(",") if p]
            elif key in ("vfs.ignore_chown_errors", ".ignore_chown_errors"):
                self.ignore_chown_errors = option_value(key, value, parse_bool)
            elif key == "vfs.mountopt":
                raise InvalidOption(message="vfs driver does not support mount options")
            else:
                raise InvalidOption(message=f"vfs driver does not support {key} options")
        if config.image_store:
            self.image_stores.append(config.image_store)
        self.dir = os.path.join(self.home, "dir")
        uid, gid = config.id_mappings.root_pair()
        for d in (self.home, self.dir):  # 0700 like upstream, not the umask's default
            os.makedirs(d, mode=0o700, exist_ok=True)
        if (uid, gid) != (0, 0) or os.geteuid() == 0:
            os.chown(self.dir, uid, gid)

    # -- paths ----------------------------------------------------------------------------
    def _primary(self, id: str) -> str:
        return os.path.join(self.dir, id)

    def _path(self, id: str) -> str:
        """The layer's directory: the primary home, else the first additional store."""
        primary = self._primary(id)
        if os.path.isdir(primary):
            return primary
        for store in self.image_stores:
            candidate = os.path.join(store, "vfs", "dir", id)
            if os.path.isdir(candidate):
                return candidate
        return primary

    # -- lifecycle --------------------------------------------------------------------------
    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        opts = opts or CreateOpts()
        if opts.storage_opt:
            raise InvalidOption(message="--storage-opt is not supported for vfs")
        target = self._primary(id)
        staging = os.path.join(self.dir, f".creating-{id}")
        remove_tree(staging)
        remove_tree(target)  # a crash leftover of the same ID
        os.mkdir(staging, 0o700)
        try:
            if parent:
                source = self._path(parent)
                if not os.path.isdir(source):
                    raise DriverLayerUnknown(f"parent {parent}")
                st = os.stat(source)
                uid, gid, mode = st.st_uid, st.st_gid, st.st_mode & 0o7777
                copy_tree(source, staging)
            else:
                maps = opts.id_mappings if opts.id_mappings is not None else self.config.id_mappings
                (uid, gid), mode = maps.root_pair(), 0o555
            self._own(staging, uid, gid)
            os.chmod(staging, mode)
            os.rename(staging, target)
        except BaseException:
            remove_tree(staging)
            raise

    @staticmethod
    def _own(path: str, uid: int, gid: int) -> None:
        try:
            os.chown(path, uid, gid)
        except PermissionError:
            if os.geteuid() == 0:
                raise

    def remove(self, id: str) -> None:
        remove_tree(self._primary(id))

    def get(self, id: str, opts: MountOpts | None = None) -> str:
        if opts is not None and any(o != "ro" for o in opts.options):
            raise InvalidOption(message="vfs driver does not support mount options")
        path = self._path(id)
        if not os.path.isdir(path):
            raise DriverLayerUnknown(id)
        return path

    def put(self, id: str) -> None:
        """Nothing is mounted, so nothing to release."""

    def exists(self, id: str) -> bool:
        return os.path.isdir(self._path(id))

    def list_layers(self) -> list[str]:
        try:
            with os.scandir(self.dir) as it:
                return [e.name for e in it if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
        except FileNotFoundError:
            return []

    def additional_image_stores(self) -> list[str]:
        return list(self.image_stores)

    # -- diffs --------------------------------------------------------------------------------
    def apply_diff(self, id: str, parent: str | None, opts: ApplyDiffOpts) -> int:
        if self.ignore_chown_errors and not opts.ignore_chown_errors:
            opts = replace(opts, ignore_chown_errors=True)
        return super().apply_diff(id, parent, opts)

    def diff_getter(self, id: str) -> FileGetter:
        from containers_storage.archive.tarsplit import DirectoryFileGetter

        return DirectoryFileGetter(self._path(id))
