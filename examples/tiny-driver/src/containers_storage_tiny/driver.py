"""Each layer is a directory holding a full copy of its parent: the directory operations
are all a driver must write; diffs, changes and sizes come from the core's generic code."""

from __future__ import annotations

import os
import stat

from containers_storage.drivers.api import CreateOpts, Driver, MountOpts
from containers_storage.drivers.copy import copy_tree
from containers_storage.drivers.fsutil import remove_tree
from containers_storage.errors import DriverLayerUnknown, InvalidOption


class TinyDriver(Driver):
    name = "tiny"

    def _dir(self, id: str) -> str:
        return os.path.join(self.home, id)

    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        if opts is not None and opts.storage_opt:
            raise InvalidOption(message="tiny driver does not support --storage-opt")
        os.makedirs(self.home, 0o700, exist_ok=True)
        target = self._dir(id)
        os.mkdir(target, 0o700)
        try:
            if parent:
                if not self.exists(parent):
                    raise DriverLayerUnknown(f"parent {parent}", id=parent)
                copy_tree(self._dir(parent), target)
                st = os.stat(self._dir(parent))  # the root directory itself, too
                owner, mode = (st.st_uid, st.st_gid), stat.S_IMODE(st.st_mode)
            else:
                owner, mode = self.config.id_mappings.root_pair(), 0o555
            if os.geteuid() == 0:
                os.chown(target, *owner)
            os.chmod(target, mode)
        except BaseException:
            remove_tree(target)
            raise

    def remove(self, id: str) -> None:
        remove_tree(self._dir(id))

    def get(self, id: str, opts: MountOpts | None = None) -> str:
        if not self.exists(id):
            raise DriverLayerUnknown(id, id=id)
        return self._dir(id)

    def put(self, id: str) -> None:
        """Nothing is mounted."""

    def exists(self, id: str) -> bool:
        return os.path.isdir(self._dir(id))

    def list_layers(self) -> list[str]:
        return os.listdir(self.home) if os.path.isdir(self.home) else []
