"""Overlay's side of additional layer stores (on-disk.md §14): layers that exist unpacked
in another directory tree are used in place, their ``diff`` linked into the home."""

from __future__ import annotations

import base64
import errno
import logging
import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from containers_storage.errors import DriverLayerUnknown

from .options import LayerStore

if TYPE_CHECKING:
    from .driver import OverlayDriver

log = logging.getLogger(__name__)


def find(stores: Sequence[LayerStore], digest: str, ref: str) -> str:
    """The first store's ``[<base64 ref>/]<digest>`` directory holding ``diff``, ``info``
    and ``blob``; DriverLayerUnknown otherwise."""
    ref_elem = base64.standard_b64encode(ref.encode()).decode()
    for store in stores:
        target = os.path.join(store.path, ref_elem if store.with_reference else "", digest)
        if all(os.path.exists(os.path.join(target, part)) for part in ("diff", "info", "blob")):
            return target
    raise DriverLayerUnknown(f'additional layer ("{digest}", "{ref}") not found')


def notify_use(path: str) -> None:
    """Create-then-delete ``use``; a store that tracks usage answers ENOENT."""
    if not os.path.isabs(path):
        log.warning("additionallayer must be absolute (got: %s)", path)
        return
    use = os.path.join(path, "use")
    try:
        with open(use, "w"):
            pass
    except FileNotFoundError:
        return
    except OSError as e:
        log.warning("unexpected error by additional layer store %s during use: %s", path, e)
        return
    try:
        os.unlink(use)
    except OSError as e:
        log.warning("failed to remove use file %s: %s", use, e)
    log.warning("additional layer store %s does not seem to support GC", path)


def notify_release(path: str) -> None:
    """``rmdir`` the layer directory; a store that tracks usage answers ENOENT."""
    if not os.path.isabs(path):
        log.warning("additionallayer must be absolute (got: %s)", path)
        return
    try:
        os.rmdir(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        log.warning("unexpected error by additional layer store %s during release: %s", path, e)


class OverlayAdditionalLayer:
    """A layer found in an additional layer store, usable as a layer of this driver."""

    def __init__(self, driver: OverlayDriver, path: str) -> None:
        self.driver = driver
        self.path = path
        self._released = False

    def info(self) -> IO[bytes]:
        return open(os.path.join(self.path, "info"), "rb")

    def blob(self) -> IO[bytes]:
        return open(os.path.join(self.path, "blob"), "rb")

    def create_as(self, id: str, parent: str | None) -> None:
        """A new layer ``id`` whose ``diff`` is the store's (an absolute symlink)."""
        self.driver.create(id, parent)
        d = os.path.join(self.driver.home, id)
        diff = os.path.join(self.driver.layout.data_dir(id), "diff")  # split mode: elsewhere
        os.rmdir(diff)
        with open(os.path.join(d, "additionallayer"), "w", encoding="utf-8") as f:
            f.write(self.path)
        notify_use(self.path)
        os.symlink(os.path.join(self.path, "diff"), diff)

    def release(self) -> None:
        if not self._released:
            self._released = True
            notify_release(self.path)
