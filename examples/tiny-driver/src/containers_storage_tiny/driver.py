"""Each layer is a directory holding a full copy of its parent: the directory operations
are all a driver must write; diffs, changes and sizes come from the core's generic code."""

from __future__ import annotations

import os

from containers_storage.drivers.api import CreateOpts, Driver, MountOpts
from containers_storage.drivers.copy import copy_tree
from containers_storage.drivers.fsutil import remove_tree
from containers_storage.errors import DriverLayerUnknown


class TinyDriver(Driver):
    name = "tiny"

    def _dir(self, id: str) -> str:
        return os.path.join(self.home, id)

    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        os.makedirs(self.home, 0o700, exist_ok=True)
        os.mkdir(self._dir(id), 0o555)
        if parent:
            copy_tree(self._dir(parent), self._dir(id))

    def remove(self, id: str) -> None:
        remove_tree(self._dir(id))

    def get(self, id: str, opts: MountOpts | None = None) -> str:
        if not self.exists(id):
            raise DriverLayerUnknown(id)
        return self._dir(id)

    def put(self, id: str) -> None:
        """Nothing is mounted."""

    def exists(self, id: str) -> bool:
        return os.path.isdir(self._dir(id))

    def list_layers(self) -> list[str]:
        return os.listdir(self.home) if os.path.isdir(self.home) else []
