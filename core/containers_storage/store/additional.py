"""Additional layer stores (on-disk.md §14): layers used in place instead of pulled."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import (
    LayerIncorrectContentDigest,
    LayerUnknown,
    ParentIsContainer,
    StorageError,
)
from ..gojson import go_quote, loads
from ..idtools import IDMappings
from ..records.model import (
    Layer,
)
from .argtypes import checked, text
from .layers import LayersMixin
from .options import (
    IDMappingOptions,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..additional_layers import AdditionalLayer


class AdditionalMixin(LayersMixin):
    """The Store's additional-layer-store methods."""

    # -- additional layer stores (on-disk.md §14) ----------------------------------------
    def _additional_layer_stores(self) -> list[str]:
        """The ``additionallayerstore`` values among the driver options (any prefix)."""
        out = []
        for option in self._options.driver_options:
            key, sep, value = option.partition("=")
            if sep and key.strip().lower().rsplit(".", 1)[-1] == "additionallayerstore":
                out.append(value.strip())
        return out

    @checked(digest=text, image_ref=text)
    def lookup_additional_layer(self, digest: str, image_ref: str = "") -> AdditionalLayerHandle:
        """The layer with compressed ``digest`` of image ``image_ref`` in an additional
        layer store (upstream ``LookupAdditionalLayer``), found through the
        ``cstorage_additional_layer`` hook; :class:`LayerUnknown` when no store has it.
        ``put_as`` the handle to use the layer without pulling it; ``release`` it after."""
        from ..records.model import RecordFormatError

        self._fresh_driver()
        found = self._plugins.additional_layer(digest, image_ref, self._additional_layer_stores())
        if found is None:
            raise LayerUnknown(name=digest)
        try:
            with found.info() as f:
                data = loads(f.read())
            if not isinstance(data, dict):
                raise RecordFormatError("not a JSON object")
            info = Layer.from_json(data)
        except (OSError, ValueError) as exc:
            found.release()
            raise StorageError(f"reading the record of additional layer {digest}", message=str(exc)) from None
        return AdditionalLayerHandle(self, digest, image_ref, found, info)

    def _put_additional_layer(
        self, handle: AdditionalLayerHandle, id: str, parent: str, names: Sequence[str]
    ) -> Layer:
        """Record the layer and give the driver its contents: in place when the driver
        reads additional layer stores itself (overlay links the store's ``diff``), else
        by applying the store's blob, which must reproduce the recorded DiffID."""
        from ..errors import DriverLayerUnknown

        with self._write_layers() as layers, self._ro_layers_reading() as ro, self._containers.reading():
            parent_rec: Layer | None = None
            if parent:
                parent_rec = self._lookup_layer([layers, *ro])(parent)
                if parent_rec is None:
                    raise LayerUnknown(f"layer {go_quote(parent)}", id=parent)
                if self._containers.by_layer(parent_rec.id) is not None:
                    raise ParentIsContainer(f"layer {parent_rec.id}")
            native = getattr(self.driver, "lookup_additional_layer", None)
            if native is not None:
                try:
                    in_driver = native(handle.digest, handle.image_ref)
                except (DriverLayerUnknown, LayerUnknown):
                    in_driver = None
                if in_driver is not None:
                    # the lookup and create_as tell the store of the use; the caller's
                    # release of the handle is the one release, as upstream's
                    return layers.create_additional(id, parent_rec, names, handle.info, in_driver.create_as)
            base = IDMappings(parent_rec.uid_map, parent_rec.gid_map) if parent_rec else self._default_maps()
            with handle.found.blob() as blob:
                rec, _size = layers.create(
                    id,
                    parent_rec,
                    names,
                    "",
                    {},
                    self._layer_maps(IDMappingOptions(), base),
                    writeable=False,
                    original_digest=handle.digest,
                    original_size=handle.info.compressed_size or None,
                    diff=blob,
                )
            want = handle.uncompressed_digest
            if want and rec.uncompressed_digest != want:
                layers.delete(rec.id)
                raise LayerIncorrectContentDigest(
                    f"additional layer {handle.digest}: blob has DiffID {rec.uncompressed_digest}, "
                    f"its record says {want}"
                )
            handle.found.put_as(rec.id, parent_rec.id if parent_rec else None, list(rec.names))
            return rec


class AdditionalLayerHandle:
    """A layer found in an additional layer store (upstream's ``AdditionalLayer``); use
    it as a context manager or call :meth:`release`."""

    def __init__(
        self, store: AdditionalMixin, digest: str, image_ref: str, found: AdditionalLayer, info: Layer
    ) -> None:
        self._store = store
        self.digest = digest
        self.image_ref = image_ref
        self.found = found
        #: the store's record of the layer (its ``info`` file)
        self.info = info

    @property
    def uncompressed_digest(self) -> str:
        return self.info.uncompressed_digest

    @property
    def compressed_size(self) -> int:
        return self.info.compressed_size

    def put_as(self, id: str = "", parent: str = "", names: Sequence[str] = ()) -> Layer:
        """Add the layer to the store as ``id`` ("" = random) on top of ``parent``."""
        return self._store._put_additional_layer(self, id, parent, names)

    def release(self) -> None:
        self.found.release()

    def __enter__(self) -> AdditionalLayerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
