"""Images: create, look up, size and delete them, and their big data."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack

from ..drivers.api import MountOpts
from ..errors import (
    BigDataUnknown,
    ImageUnknown,
    ImageUsedByContainer,
    LayerUnknown,
    NotAnImage,
    StorageError,
)
from ..gojson import go_quote
from ..records.bigdata import sha256_of
from ..records.ids import dedupe, id_path, validate_id
from ..records.images import ImageStore
from ..records.model import (
    Image,
)
from .argtypes import checked, data, flag, function, instance, text, texts
from .layers import LayersMixin
from .options import (
    ImageOptions,
    ManifestDigester,
)


class ImagesMixin(LayersMixin):
    """The image methods of the Store (images name their top layers, hence the base)."""

    @checked(id=text, names=texts, layer=text, metadata=text, options=instance(ImageOptions, none=True))
    def create_image(
        self,
        id: str = "",
        names: Sequence[str] = (),
        layer: str = "",
        metadata: str = "",
        options: ImageOptions | None = None,
    ) -> Image:
        """A new image; an ``id`` of an image in a read-only store copies that image's
        metadata, dates, digests, names history and big data into the new record first
        (the options override or add to them) and gives it that image's names too."""
        opts = options or ImageOptions()
        if id:
            validate_id(id, "image")  # before anything touches the disk
        if isinstance(opts.big_data, Mapping):
            big = [(k, v, "") for k, v in opts.big_data.items()]
        else:
            big = [(item.key, item.data, item.digest) for item in opts.big_data]
        with self._read_all_layers() as stores:
            if layer:
                found = self._home(stores, layer)
                if found is None:
                    raise LayerUnknown(id=layer)
                layer = found[1].id
            with self._images.writing(), self._ro_images_reading() as ro:
                base = self._image_home(ro, id) if id else None
                if base is None or base[1].id != id:
                    return self._images.create(
                        id,
                        names,
                        layer,
                        digest=opts.digest,
                        digests=opts.digests,
                        metadata=metadata or opts.metadata,
                        created=opts.created,
                        big_data=big,
                        names_history=opts.names_history,
                        flags=opts.flags,
                    )
                store, img = base
                created = opts.created if opts.created is not None and not opts.created.is_zero else None
                self._images.create(
                    id,
                    names,
                    layer,
                    digest=opts.digest or img.digest,
                    digests=[*img.digests, *opts.digests],
                    metadata=metadata or opts.metadata or img.metadata,
                    created=created or img.created,
                    big_data=[*self._ro_big_data(store, img), *big],
                    names_history=[*img.names_history, *opts.names_history],
                    flags=opts.flags,
                )
                try:
                    self._images.update_names(id, dedupe([*img.names, *names]), "add")
                except BaseException:
                    self._images.delete(id)
                    raise
                return self._images.get(id)

    @staticmethod
    def _ro_big_data(store: ImageStore, img: Image) -> list[tuple[str, bytes, str]]:
        return [(k, store.big_data(img.id, k), store.big_data_digest(img.id, k)) for k in img.big_data_names]

    def _find_image(self, stores: Sequence[ImageStore], id: str) -> tuple[ImageStore, Image]:
        found = self._image_home(stores, id)
        if found is None:
            raise ImageUnknown(f"locating image with ID {go_quote(id)}", id=id)
        return found

    @checked(id=text)
    def image(self, id: str) -> Image:
        """The image called ``id``. A read-only store's image whose record was copied into
        the primary store is not found by a name the copy no longer has (as upstream)."""
        with self._read_all_images() as stores:
            for store in stores:
                rec = store.resolve(id)
                if rec is not None and (store is self._images or self._images.by_id(rec.id) is None):
                    return rec
            raise ImageUnknown(f"locating image with ID {go_quote(id)}", id=id)

    def images(self) -> list[Image]:
        """Every image: the primary store's, then those only read-only stores have."""
        with self._read_all_images() as stores:
            out: list[Image] = []
            seen: set[str] = set()
            for store in stores:
                for rec in store.all():
                    if rec.id not in seen:
                        seen.add(rec.id)
                        out.append(rec)
            return out

    @checked(id=text)
    def images_by_top_layer(self, id: str) -> list[Image]:
        layer_id = self.layer(id).id
        with self._read_all_images() as stores:
            return [rec for store in stores for rec in store.by_top_layer(layer_id)]

    @checked(digest=text)
    def images_by_digest(self, digest: str) -> list[Image]:
        from ..records.images import validate_digest

        try:
            validate_digest(digest)
        except ValueError as exc:
            raise StorageError(message=str(exc)) from None
        with self._read_all_images() as stores:
            return [rec for store in stores for rec in store.by_digest(digest)]

    @checked(id=text)
    def list_image_big_data(self, id: str) -> list[str]:
        return list(self.image(id).big_data_names)

    @checked(id=text, key=text)
    def image_big_data(self, id: str, key: str) -> bytes:
        with self._read_all_images() as stores:
            store, img = self._find_image(stores, id)
            try:
                return store.big_data(img.id, key)
            except FileNotFoundError:
                raise BigDataUnknown(
                    f"locating item named {go_quote(key)} for image with ID {go_quote(id)} "
                    "(consider removing the image to resolve the issue)",
                    id=id,
                    key=key,
                ) from None

    @checked(id=text, key=text)
    def image_big_data_size(self, id: str, key: str) -> int:
        with self._read_all_images() as stores:
            store, img = self._find_image(stores, id)
            return store.big_data_size(img.id, key)

    @checked(id=text, key=text)
    def image_big_data_digest(self, id: str, key: str) -> str:
        with self._read_all_images() as stores:
            store, img = self._find_image(stores, id)
            return store.big_data_digest(img.id, key)

    @checked(id=text, key=text, data=data, digest_manifest=function)
    def set_image_big_data(
        self, id: str, key: str, data: bytes, digest_manifest: ManifestDigester | None = None
    ) -> None:
        """Store an item; keys starting with ``manifest`` are digested by
        ``digest_manifest`` (SHA-256 of the bytes when not given), others by SHA-256."""
        from ..records.images import is_manifest_key

        digest = (digest_manifest or sha256_of)(data) if is_manifest_key(key) else sha256_of(data)
        with self._images.writing():
            self._images.set_big_data(id, key, data, digest)

    @checked(id=text)
    def image_size(self, id: str) -> int:
        """Sizes of the image's layers (each counted once) plus its big data."""
        with ExitStack() as stack:
            stack.enter_context(self._graph())
            stack.enter_context(self._layers.writing())
            layer_stores = [self._layers, *stack.enter_context(self._ro_layers_reading())]
            image_stores = stack.enter_context(self._read_all_images())
            image_store, img = self._find_image(image_stores, id)
            lookup = self._lookup_layer(layer_stores)
            queue = [x for x in (img.top_layer, *img.mapped_top_layers) if x]
            seen: set[str] = set()
            total = 0
            while queue:
                lid = queue.pop()
                if lid in seen:
                    continue
                seen.add(lid)
                rec = lookup(lid)
                if rec is None:
                    raise LayerUnknown(f"locating layer with ID {go_quote(lid)}", id=lid)
                if rec.size is not None:
                    total += rec.size
                else:
                    total += self._layer_home(layer_stores, rec.id).diff_size("", rec.id, lookup)
                if rec.parent:
                    queue.append(rec.parent)
            for key in img.big_data_names:
                total += image_store.big_data_size(img.id, key)
            return total

    @checked(id=text)
    def image_directory(self, id: str) -> str:
        with self._images.reading():
            img = self._images.get(id)
        path = id_path(self._images.image_dir, img.id, "image", "userdata")
        os.makedirs(path, 0o700, exist_ok=True)
        return path

    @checked(id=text)
    def image_run_directory(self, id: str) -> str:
        with self._images.reading():
            img = self._images.get(id)
        run_images = os.path.join(self._run_root, f"{self._driver_name}-images")
        path = id_path(run_images, img.id, "image", "userdata")
        os.makedirs(path, 0o700, exist_ok=True)
        return path

    @checked(id=text, mount_options=texts, mount_label=text)
    def mount_image(self, id: str, mount_options: Sequence[str] = (), mount_label: str = "") -> str:
        """Mount an image's top layer read-only (``ro`` is added to the options)."""
        img = self.image(id)
        if not img.top_layer:
            raise LayerUnknown(id=img.top_layer)
        opts = tuple(dict.fromkeys([*mount_options, "ro"]))
        with self._graph(), self._layers.writing():
            return self._layers.mount(img.top_layer, MountOpts(mount_label=mount_label, options=opts))

    @checked(id=text, force=flag)
    def unmount_image(self, id: str, force: bool = False) -> bool:
        img = self.image(id)
        with self._graph(), self._layers.writing():
            return self._layers.unmount(img.top_layer, force)

    @checked(id=text, commit=flag)
    def delete_image(self, id: str, commit: bool = True) -> list[str]:
        """Delete the image and the layers only it used; returns those layers' IDs.
        ``commit=False`` only reports what would be removed."""
        with self._write_all(), ExitStack() as stack:
            # the primary store and writable extra ones (the graph root's in split mode)
            stores = [self._images]
            for extra in self._ro_images:
                if not extra.read_only:
                    stack.enter_context(extra.writing())
                    stores.append(extra)
            homes = [(store, found) for store in stores if (found := store.resolve(id)) is not None]
            if not homes:
                raise NotAnImage(id=id)
            img = homes[0][1]
            for ctr in self._containers.all():
                if ctr.image_id == img.id:
                    raise ImageUsedByContainer(f"image used by {ctr.id}")
            children: dict[str, list[str]] = {}
            for lrec in self._layers.all():
                children.setdefault(lrec.parent, []).append(lrec.id)
            others: set[str] = set()
            for store in stores:
                for other in store.all():
                    if other.id != img.id:
                        others.add(other.top_layer)
                        others.update(other.mapped_top_layers)
            if commit:
                for store, _found in homes:
                    store.delete(img.id)
            remove = list(img.mapped_top_layers)
            slated = set(remove)
            layer = img.top_layer
            while layer:
                # a layer met again: the chain loops (the walk stops there)
                if self._containers.resolve(layer) is not None or layer in others or layer in slated:
                    break
                rec = self._layers.resolve(layer)
                parent = rec.parent if rec is not None else ""
                check = [layer, *img.mapped_top_layers] if layer == img.top_layer else [layer]
                if any(c not in slated for lid in check for c in children.get(lid, ())):
                    break
                remove.append(layer)
                slated.add(layer)
                layer = parent
            if commit:
                for lid in remove:
                    if self._layers.by_id(lid) is not None:
                        self._layers.delete(lid)
            return remove
