"""Operations on any item by ID or name: layer, image or container, searched in
upstream's order (exists, lookup, metadata, names, delete, wipe).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import (
    LayerUnknown,
    NotALayer,
    NotAnID,
)
from ..records.files import remove_tree
from ..records.ids import dedupe, id_path, id_problem
from ..records.model import (
    Container,
    Image,
    Layer,
)
from .argtypes import checked, text, texts
from .containers import ContainersMixin

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ItemsMixin(ContainersMixin):
    """The Store's methods that take an ID of any kind of item."""

    def _find(self, id: str) -> Layer | Image | Container | None:
        """The layer, image or container called ``id``, searched in upstream's order.
        Stores whose files cannot hold the name are not even decoded."""
        self._fresh_driver()
        groups: list[tuple[Any, list[Any]]] = [
            (self._layers, self._ro_layers),
            (self._images, self._ro_images),
            (self._containers, []),
        ]
        for primary, extras in groups:
            with primary.holding(id, exclusive=False) as hit:
                if hit:
                    rec: Layer | Image | Container | None = primary.resolve(id)
                    return rec
            for store in extras:
                with store.reading():
                    rec = store.resolve(id)
                if rec is not None:
                    return rec
        return None

    @checked(id=text)
    def exists(self, id: str) -> bool:
        return self._find(id) is not None

    @checked(name=text)
    def lookup(self, name: str) -> str:
        """The ID of the layer, image or container called ``name`` (ID, name or prefix)."""
        rec = self._find(name)
        if rec is None:
            raise LayerUnknown(id=name)
        return rec.id

    @checked(id=text)
    def metadata(self, id: str) -> str:
        rec = self._find(id)
        if rec is None:
            raise NotAnID(id=id)
        return rec.metadata

    @checked(id=text, metadata=text)
    def set_metadata(self, id: str, metadata: str) -> None:
        with self._write_all():
            if self._layers.resolve(id) is not None:
                self._layers.set_metadata(id, metadata)
            elif self._images.resolve(id) is not None:
                self._images.set_metadata(id, metadata)
            elif self._containers.resolve(id) is not None:
                self._containers.set_metadata(id, metadata)
            else:
                raise NotAnID(id=id)

    @checked(id=text)
    def names(self, id: str) -> list[str]:
        rec = self._find(id)
        if rec is None:
            raise LayerUnknown(id=id)
        return list(rec.names)

    def _update_names(self, id: str, names: Sequence[str], op: str) -> None:
        names = dedupe(names)
        self._fresh_driver()
        with self._layers.holding(id, exclusive=True) as hit:
            if hit:
                self._layers.update_names(id, names, op)
                return
        with self._images.holding(id, exclusive=True) as hit:
            if hit:
                self._images.update_names(id, names, op)
                return
        if self._copy_up_image(id, names, op):
            return
        with self._containers.holding(id, exclusive=True) as hit:
            if hit:
                self._containers.update_names(id, names, op)
                return
        raise LayerUnknown(id=id)

    def _copy_up_image(self, id: str, names: Sequence[str], op: str) -> bool:
        """Naming an image of a read-only store copies its whole record (same ID, names,
        names history, digests, metadata, flags, big data with their digests) into the
        primary store and changes the names there, as upstream does (on-disk.md §9.1)."""
        if not self._ro_images:
            return False
        with self._images.writing(), self._ro_images_reading() as ro:
            found = self._image_home(ro, id)
            if found is None:
                return False
            store, img = found
            self._images.create(
                img.id,
                img.names,
                img.top_layer,
                digest=img.digest,
                digests=img.digests,
                metadata=img.metadata,
                created=img.created,
                big_data=self._ro_big_data(store, img),
                names_history=img.names_history,
                flags=img.flags,
            )
            try:
                self._images.update_names(img.id, names, op)
            except BaseException:
                self._images.delete(img.id)
                raise
        return True

    @checked(id=text, names=texts)
    def set_names(self, id: str, names: Sequence[str]) -> None:
        self._update_names(id, names, "set")

    @checked(id=text, names=texts)
    def add_names(self, id: str, names: Sequence[str]) -> None:
        self._update_names(id, names, "add")

    @checked(id=text, names=texts)
    def remove_names(self, id: str, names: Sequence[str]) -> None:
        self._update_names(id, names, "remove")

    @checked(id=text)
    def delete(self, id: str) -> None:
        """Delete a container (with its layer), an image or a layer, without safety checks."""
        with self._write_all():
            c = self._containers.resolve(id)
            if c is not None:
                if self._layers.resolve(c.layer_id) is None:
                    raise NotALayer(id=c.layer_id)
                self._drop_container_and_layer(c)
                if id_problem(c.id) is None:
                    for base in (self._container_dir, self._run_container_dir):
                        remove_tree(id_path(base, c.id, "container", "userdata"))
                return
            if self._images.resolve(id) is not None:
                self._images.delete(id)
                return
            if self._layers.resolve(id) is not None:
                self._layers.delete(id)
                return
            raise LayerUnknown(id=id)

    def wipe(self) -> None:
        with self._write_all():
            self._containers.wipe()
            self._images.wipe()
            self._layers.wipe()
