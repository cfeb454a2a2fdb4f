"""Putting a source image into the store the way containers/image's storage
destination does, so that podman, buildah and skopeo take it for one they pulled:

* layer IDs are chain IDs: the first layer's is its DiffID's hex, each next one
  ``sha256(<parent ID> + "+" + <DiffID hex>)``; a layer with that ID already in the
  store is used as it is (same parent chain, same content), not imported again;
* the image ID is the config digest's hex; its big data are the config (under its
  digest), the top-level index when there was one (``manifest-<digest>``), the manifest
  (``manifest-<digest>`` and ``manifest``) and an empty ``signature-<hex>``; the metadata
  holds ``signatures-sizes``; ``created`` comes from the config;
* names are added after the image exists, taking them from any image that had them.

Blobs are checked against their digests ahead of the store applying them
(:mod:`.ahead`), so a bad blob fails the import before the next layer is begun. Unlike
containers/image, a failed import takes away what it added: the layers it created
(newest first) and a new image record.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from functools import partial
from typing import IO, TYPE_CHECKING, Any

from ..archive.types import Compression
from ..errors import DuplicateID, LayerUnknown, StorageError
from ..gojson import GoTime, dumps
from . import digests
from .ahead import AheadChecks
from .errors import BlobMissing, DigestMismatch, InvalidImageSource
from .progress import NoProgress, Progress, ReportingReader
from .sources import SourceImage, SourceLayer

if TYPE_CHECKING:
    from ..records.model import Image, Layer
    from ..store import Store


def chain_ids(layers: Sequence[SourceLayer]) -> list[str]:
    out: list[str] = []
    parent = ""
    for layer in layers:
        hexpart = digests.sha256_hex(layer.diff_id, "layer DiffID")
        parent = hashlib.sha256(f"{parent}+{hexpart}".encode()).hexdigest() if parent else hexpart
        out.append(parent)
    return out


def big_data(src: SourceImage) -> dict[str, bytes]:
    """The image's big data items, in the order containers/image stores them."""
    items = {src.config_digest: src.config}
    if src.toplevel is not None and src.toplevel != src.manifest:
        items[f"manifest-{src.toplevel_digest}"] = src.toplevel
    items[f"manifest-{src.manifest_digest}"] = src.manifest
    items["manifest"] = src.manifest
    items[f"signature-{digests.split(src.manifest_digest)[1]}"] = b""
    return items


def metadata(src: SourceImage) -> str:
    return dumps({"signatures-sizes": {src.manifest_digest: []}})


def created(config: bytes) -> GoTime | None:
    """The config's creation time (None: unknown, the store then says now)."""
    import json

    try:
        value: Any = json.loads(config).get("created")
        return GoTime.parse(value) if isinstance(value, str) else None
    except (ValueError, AttributeError):
        return None


class StoreWriter:
    def __init__(self, store: Store, src: SourceImage, progress: Progress | None = None) -> None:
        self.store = store
        self.src = src
        self.progress = progress or NoProgress()
        #: layers this import created, oldest first (removed again if it fails)
        self.created: list[str] = []

    def write(self, names: Sequence[str]) -> Image:
        src = self.src
        ids = chain_ids(src.layers)
        image_id = digests.sha256_hex(src.config_digest, "config")
        ahead = self._ahead_checks(ids)
        try:
            ahead.start()
            parent = ""
            for index, (layer, layer_id) in enumerate(zip(src.layers, ids, strict=True)):
                ahead.raise_failed()
                existing = self._existing(layer_id, layer)
                self.progress.layer(index, len(ids), layer.digest, layer.size, existing is not None)
                if existing is None:
                    self._import_layer(layer, layer_id, parent, ahead, index)
                elif index in ahead:
                    ahead.discard(index)
                parent = layer_id
            return self._commit(image_id, parent, names)
        except BaseException:
            ahead.close()  # no more reading of blobs while the layers go again
            self._remove_created()
            raise
        finally:
            ahead.close()
            self.progress.finish()

    # -- layers ----------------------------------------------------------------------
    def _existing(self, layer_id: str, layer: SourceLayer) -> Layer | None:
        try:
            rec = self.store.layer(layer_id)
        except LayerUnknown:
            return None
        if rec.uncompressed_digest and rec.uncompressed_digest != layer.diff_id:
            raise InvalidImageSource(
                f"layer {layer_id}",
                message=f"the store's layer has DiffID {rec.uncompressed_digest}, "
                f"the image needs {layer.diff_id}",
            )
        return rec

    def _ahead_checks(self, ids: Sequence[str]) -> AheadChecks:
        """Checks of the sha256-named blobs of the layers the store lacks now (the
        store's record of what it read is a sha256 digest: the post-check needs that)."""
        jobs = []
        for index, (layer, layer_id) in enumerate(zip(self.src.layers, ids, strict=True)):
            if digests.split(layer.digest)[0] != "sha256" or not self.src.has_layer(layer):
                continue
            try:
                self.store.layer(layer_id)
                continue
            except LayerUnknown:
                pass
            jobs.append((index, layer.digest, layer.size, partial(self.src.open_layer, layer)))
        return AheadChecks(jobs)

    def _import_layer(
        self, layer: SourceLayer, layer_id: str, parent: str, ahead: AheadChecks, index: int
    ) -> None:
        #: None when the blob was checked ahead: the store's record is compared instead
        verifying: digests.VerifyingReader | None = None
        reader: digests.VerifyingReader | ReportingReader
        if index in ahead:
            ahead.wait(index)
            raw = self.src.open_layer(layer)
            reader = ReportingReader(raw, self.progress.advance)
        else:
            if self.src.has_layer(layer):
                raw = self.src.open_layer(layer)
                digest, size = layer.digest, layer.size
            else:
                raw = self._from_store(layer)
                digest, size = layer.diff_id, -1
            reader = verifying = digests.VerifyingReader(raw, digest, size, "layer", self.progress.advance)
        try:
            try:
                rec, _ = self.store.put_layer(id=layer_id, parent=parent, diff=reader)  # type: ignore[arg-type]
            except DuplicateID:
                # another process imported the same layer meanwhile: use theirs
                if self._existing(layer_id, layer) is None:
                    raise
                return
            except StorageError as exc:
                if verifying is None or isinstance(exc, DigestMismatch) or verifying.verified:
                    raise
                # the store could not use the blob: if it is not the blob the manifest
                # names, say that (reading the rest of it raises DigestMismatch)
                verifying.drain()
                raise
            self.created.append(rec.id)
            if verifying is not None:
                verifying.drain()
        finally:
            raw.close()
        if verifying is None and (
            rec.compressed_digest != layer.digest or (layer.size >= 0 and rec.compressed_size != layer.size)
        ):
            raise DigestMismatch(
                f"layer {layer.digest}",
                message=f"the blob changed while it was imported: the store read {rec.compressed_size} "
                f"bytes with digest {rec.compressed_digest}",
            )
        if rec.uncompressed_digest != layer.diff_id:
            raise DigestMismatch(
                f"layer {layer.digest}",
                message=f"its content has digest {rec.uncompressed_digest}, "
                f"the config says DiffID {layer.diff_id}",
            )

    def _from_store(self, layer: SourceLayer) -> IO[bytes]:
        """A blob the source lacks, taken from a store layer with the same DiffID (as
        containers/image reuses known blobs); spooled, since the diff holds the layer
        lock that creating the new layer needs."""
        from ..store import DiffOptions

        found = self.store.layers_by_uncompressed_digest(layer.diff_id)
        if not found:
            raise BlobMissing(f"layer {layer.digest}", message="blob not found in the source or the store")
        spool = tempfile.TemporaryFile(prefix="cs-image-layer-")  # noqa: SIM115 -- returned open
        try:
            with self.store.diff("", found[0].id, DiffOptions(compression=Compression.NONE)) as diff:
                shutil.copyfileobj(diff, spool, 1 << 20)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool  # type: ignore[return-value]

    def _remove_created(self) -> None:
        for layer_id in reversed(self.created):
            try:
                self.store.delete_layer(layer_id)
            except StorageError:
                pass  # taken into use meanwhile (another image, a child): it stays
        self.created.clear()

    # -- the image record ------------------------------------------------------------
    def _commit(self, image_id: str, top: str, names: Sequence[str]) -> Image:
        from ..store import ImageOptions

        items = big_data(self.src)
        meta = metadata(self.src)
        fresh = True
        try:
            self.store.create_image(
                id=image_id,
                layer=top,
                options=ImageOptions(created=created(self.src.config), big_data=items, metadata=meta),
            )
        except DuplicateID:
            fresh = False
            old = self.store.image(image_id)
            if old.top_layer != top:
                raise DuplicateID(
                    f"image with ID {image_id!r} already exists, but uses a different top layer"
                ) from None
            for key, data in items.items():
                self.store.set_image_big_data(image_id, key, data)
            self.store.set_metadata(image_id, meta)
        try:
            if names:
                self.store.add_names(image_id, list(names))
        except BaseException:
            if fresh:
                self.store.delete(image_id)
            raise
        return self.store.image(image_id)
