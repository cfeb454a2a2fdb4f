"""Built-in additional layer store: upstream's directory layout (on-disk.md §14).

A store directory ``S`` offers a layer as ``S/[<base64(image ref)>/]<digest>/`` holding
``diff/`` (the unpacked contents), ``info`` (a layer record as JSON) and ``blob`` (the
compressed layer). Lazy-pulling filesystems present exactly this tree; a plain directory
tree works too. Registered as a ``trylast`` implementation of the
``cstorage_additional_layer`` hook, so another plugin answering first replaces it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

from .gojson import loads
from .hookspecs import hookimpl
from .structs import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

#: the three entries a layer directory must hold to be offered
_PARTS = ("diff", "info", "blob")


@dataclass(frozen=True, slots=True)
class LayerStoreDir:
    """One configured store: its directory and whether layers sit under the image ref."""

    path: str
    with_reference: bool = False


def _log(level: str, msg: str, *args: object) -> None:
    """Log lazily: the plugin is imported on every start, logging rarely needed."""
    import logging

    getattr(logging.getLogger(__name__), level)(msg, *args)


def parse_stores(specs: Sequence[str]) -> list[LayerStoreDir]:
    """``dir[:ref]`` items (each may itself be a comma list, as the driver option is);
    relative paths and other suffixes are skipped, as the driver refuses them."""
    out: list[LayerStoreDir] = []
    for spec in specs:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            path, _sep, flag = item.partition(":")
            if not os.path.isabs(path) or flag not in ("", "ref"):
                _log("debug", "ignoring additional layer store %r", item)
                continue
            out.append(LayerStoreDir(os.path.normpath(path), flag == "ref"))
    return out


def layer_dir(store: LayerStoreDir, digest: str, image_ref: str) -> str:
    import base64

    ref_elem = base64.standard_b64encode(image_ref.encode()).decode() if store.with_reference else ""
    return os.path.join(store.path, ref_elem, digest)


def find(stores: Sequence[LayerStoreDir], digest: str, image_ref: str) -> str | None:
    """The first store's layer directory holding ``diff``, ``info`` and ``blob``."""
    from .records.images import validate_digest

    try:
        validate_digest(digest)  # it becomes a path element
    except ValueError:
        return None
    for store in stores:
        target = layer_dir(store, digest, image_ref)
        if all(os.path.exists(os.path.join(target, part)) for part in _PARTS):
            return target
    return None


def notify_use(path: str) -> None:
    """Tell the store the layer is in use: create, then delete, ``use`` (a store that
    tracks usage answers ENOENT)."""
    use = os.path.join(path, "use")
    try:
        with open(use, "wb"):
            pass
    except FileNotFoundError:
        return
    except OSError as exc:
        _log("warning", "additional layer store %s refused the use notification: %s", path, exc)
        return
    try:
        os.unlink(use)
    except OSError as exc:
        _log("warning", "cannot remove %s: %s", use, exc)


def notify_release(path: str) -> None:
    """Tell the store the layer is no longer needed: ``rmdir`` the layer directory
    (ENOENT from stores that track usage; a plain tree keeps its non-empty directory)."""
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
            _log("warning", "additional layer store %s refused the release notification: %s", path, exc)


class DirectoryLayer:
    """A layer offered by a directory-layout store (implements
    :class:`~containers_storage.additional_layers.AdditionalLayer`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._released = False

    def _field(self, key: str) -> object:
        """A field of ``info``; None when the file is unreadable or not a record (the
        store reports that when it reads the record itself)."""
        try:
            with self.info() as f:
                record: Any = loads(f.read() or b"{}")
        except (OSError, ValueError):
            return None
        return record.get(key) if isinstance(record, dict) else None

    @property
    def diff_dir(self) -> str:
        return os.path.join(self.path, "diff")

    @property
    def uncompressed_digest(self) -> str:
        value = self._field("diff-digest")
        return value if isinstance(value, str) else ""

    @property
    def compressed_size(self) -> int:
        value = self._field("compressed-size")
        return value if isinstance(value, int) else 0

    def info(self) -> IO[bytes]:
        return open(os.path.join(self.path, "info"), "rb")

    def blob(self) -> IO[bytes]:
        return open(os.path.join(self.path, "blob"), "rb")

    def put_as(self, id: str, parent: str | None, names: list[str]) -> None:
        """The layer now backs store layer ``id``: send the use notification."""
        notify_use(self.path)

    def release(self) -> None:
        if not self._released:
            self._released = True
            notify_release(self.path)


@hookimpl(trylast=True)
def cstorage_additional_layer(digest: str, image_ref: str, stores: list[str]) -> DirectoryLayer | None:
    target = find(parse_stores(stores), digest, image_ref)
    return DirectoryLayer(target) if target is not None else None
