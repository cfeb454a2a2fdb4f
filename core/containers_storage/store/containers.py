"""Containers: create them (with their layer and ID maps), their data and directories."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack

from ..drivers.api import MountOpts
from ..errors import (
    BigDataUnknown,
    ContainerUnknown,
    DuplicateID,
    DuplicateName,
    LayerUnknown,
    NotAContainer,
    StorageError,
)
from ..gojson import go_quote
from ..idtools import IDMappings, IDMaps
from ..records.chains import parent_chain
from ..records.files import read_file, remove_tree, write_atomic
from ..records.ids import dedupe, id_path, id_problem, validate_id
from ..records.layers import LayerStore
from ..records.model import (
    MOUNT_LABEL_FLAG,
    MOUNT_OPTS_FLAG,
    PROCESS_LABEL_FLAG,
    Container,
    Image,
    Layer,
)
from ..structs import replace
from .argtypes import checked, data, instance, path, text, texts
from .images import ImagesMixin
from .locking import held
from .options import (
    AutoUserNsOptions,
    ContainerOptions,
    IDMappingOptions,
    StrPath,
)


class ContainersMixin(ImagesMixin):
    """The container methods of the Store (a container is a layer on an image)."""

    def _top_layer_for_mapping(
        self, img: Image, opts: IDMappingOptions, stores: Sequence[LayerStore], in_primary: bool
    ) -> Layer:
        """§5.4: the image's top layer, or a copy of it with the requested ID maps (made
        only for images of the primary store whose layer is there too)."""
        shifting = self._can_shift(opts.uid_map, opts.gid_map)

        def matches(rec: Layer) -> bool:
            if shifting and not rec.uid_map and not rec.gid_map:
                return True
            if (opts.host_uid_mapping and rec.uid_map) or (opts.host_gid_mapping and rec.gid_map):
                return False
            return rec.uid_map == tuple(opts.uid_map) and rec.gid_map == tuple(opts.gid_map)

        lookup = self._lookup_layer(stores)
        first: Layer | None = None
        first_parent: Layer | None = None
        copy_allowed = in_primary
        for store in stores:
            for cand in (img.top_layer, *img.mapped_top_layers):
                rec = store.by_id(cand)
                if rec is None:
                    continue
                parent_rec = lookup(rec.parent) if rec.parent else None
                if rec.parent and parent_rec is None:
                    continue
                if matches(rec):
                    return rec
                if first is None:
                    first, first_parent = rec, parent_rec
                    copy_allowed = copy_allowed and store is self._layers
        if first is None:
            raise LayerUnknown(id=img.top_layer)
        if not copy_allowed:
            # the container's own layer gets re-owned instead (on-disk.md §5.4)
            return first
        maps = IDMappings() if shifting else IDMappings(tuple(opts.uid_map), tuple(opts.gid_map))
        mapped, _size = self._layers.create(
            "", first_parent, (), first.mount_label, {}, maps, writeable=False, template=first.id
        )
        try:
            self._images.add_mapped_top_layer(img.id, mapped.id)
        except BaseException:
            self._layers.delete(mapped.id)
            raise
        return mapped

    @checked(
        id=text,
        names=texts,
        image=text,
        layer=text,
        metadata=text,
        options=instance(ContainerOptions, none=True),
    )
    def create_container(
        self,
        id: str = "",
        names: Sequence[str] = (),
        image: str = "",
        layer: str = "",
        metadata: str = "",
        options: ContainerOptions | None = None,
    ) -> Container:
        """``layer`` is the ID wanted for the container's new layer ("" = random)."""
        opts = options or ContainerOptions()
        if id:
            validate_id(id, "container")  # before anything touches the disk
        if layer:
            self._layers.valid_id(layer)
        idm = opts.id_mapping
        flags = dict(opts.flags)
        if opts.mount_opts:
            flags[MOUNT_OPTS_FLAG] = list(opts.mount_opts)
        plabel = flags.get(PROCESS_LABEL_FLAG, "")
        mlabel = flags.get(MOUNT_LABEL_FLAG, "")
        if bool(plabel) != bool(mlabel):
            raise StorageError(
                message="ProcessLabel and Mountlabel must either not be specified or both specified"
            )
        flags.setdefault(PROCESS_LABEL_FLAG, "")
        flags.setdefault(MOUNT_LABEL_FLAG, "")
        volatile = opts.volatile or self._options.transient_store
        self._fresh_driver()
        with ExitStack() as stack:
            if opts.auto_userns or idm.uid_map or idm.gid_map:
                # one allocation at a time, so two containers never get the same range
                stack.enter_context(held(self._userns_lock))
            stack.enter_context(self._layers.writing())
            layer_stores = [self._layers, *stack.enter_context(self._ro_layers_reading())]
            stack.enter_context(self._images.writing())
            image_stores = [self._images, *stack.enter_context(self._ro_images_reading())]
            stack.enter_context(self._containers.writing())
            if id and self._containers.by_id(id) is not None:
                raise DuplicateID(f"container ID {go_quote(id)} is already in use")
            for name in dedupe(names):
                if self._containers.name_owner(name) is not None:
                    raise DuplicateName(f"container name {go_quote(name)} is in use")
            top: Layer | None = None
            img: Image | None = None
            in_primary = False
            if image:
                image_store, img = self._find_image(image_stores, image)
                in_primary = image_store is self._images
            if opts.auto_userns:
                uids, gids = self._auto_userns(opts.auto_userns_opts, img, layer_stores)
                idm = replace(idm, uid_map=uids, gid_map=gids)
            uid_map = () if idm.host_uid_mapping else tuple(idm.uid_map)
            gid_map = () if idm.host_gid_mapping else tuple(idm.gid_map)
            if img is not None and img.top_layer:
                top = self._top_layer_for_mapping(img, idm, layer_stores, in_primary)
            base = IDMappings(top.uid_map, top.gid_map) if top else self._default_maps()
            maps = self._layer_maps(idm, base)
            clayer, _size = self._layers.create(
                layer,
                top,
                (),
                str(mlabel),
                opts.storage_opt,
                maps,
                writeable=True,
                volatile=volatile,
            )
            try:
                return self._containers.create(
                    id,
                    names,
                    img.id if img is not None else "",
                    clayer.id,
                    metadata=metadata or opts.metadata,
                    flags=flags,
                    uid_map=uid_map,
                    gid_map=gid_map,
                    volatile=volatile,
                    big_data=opts.big_data,
                )
            except BaseException:
                self._layers.delete(clayer.id)
                raise
        raise AssertionError("unreachable")

    def _auto_userns(
        self, opts: AutoUserNsOptions, img: Image | None, stores: Sequence[LayerStore]
    ) -> tuple[IDMaps, IDMaps]:
        """Maps for a new container (upstream getAutoUserNS); call with the userns lock,
        the primary layers and the containers held for writing."""
        from ..config import is_rootless
        from ..userns import ROOT_AUTO_USERNS_USER, auto_maps, available_ids

        user = self._options.root_auto_userns_user or ROOT_AUTO_USERNS_USER
        avail_uids, avail_gids = available_ids(user, is_rootless(os.environ))
        used_uids = [m for c in self._containers.all() for m in c.uid_map]
        used_gids = [m for c in self._containers.all() for m in c.gid_map]
        wanted = opts.size
        if not wanted:
            wanted = max(self._options.auto_userns_min_size, opts.initial_size or 1)
            if img is not None:
                wanted = max(wanted, self._ids_used_by_image(img, stores, opts))
            limit = self._options.auto_userns_max_size
            if limit > 0 and wanted > limit:
                raise StorageError(
                    message=f"the container needs a user namespace with size {wanted} that is bigger "
                    f"than the maximum value allowed with userns=auto {limit}"
                )
        return auto_maps(
            wanted,
            avail_uids,
            avail_gids,
            used_uids,
            used_gids,
            opts.additional_uid_mappings,
            opts.additional_gid_mappings,
        )

    def _ids_used_by_image(self, img: Image, stores: Sequence[LayerStore], opts: AutoUserNsOptions) -> int:
        """One more than the largest ID the image's layers record or its passwd/group
        files name (read through a throw-away layer on top of the image, as upstream)."""
        from ..userns import max_ids_in_files

        lookup = self._lookup_layer(stores)
        top: Layer | None = None
        wanted = 0
        parents: dict[str, str] = {}
        for lid in parent_chain(img.top_layer, parents.__getitem__):
            rec = lookup(lid)
            if rec is None:
                raise LayerUnknown(f"cannot find layer {go_quote(lid)}", id=lid)
            top = top or rec
            wanted = max([wanted, *(u + 1 for u in rec.uidset), *(g + 1 for g in rec.gidset)])
            parents[lid] = rec.parent
        if top is None:
            return wanted
        probe, _size = self._layers.create("", top, (), "", {}, IDMappings(), writeable=False)
        try:
            root = self._layers.mount(probe.id, MountOpts())
            try:
                return max(
                    wanted, max_ids_in_files(root, os.fspath(opts.passwd_file), os.fspath(opts.group_file))
                )
            finally:
                self._layers.unmount(probe.id, force=True)
        finally:
            self._layers.delete(probe.id)

    @checked(id=text)
    def container(self, id: str) -> Container:
        with self._containers.reading():
            return self._containers.get(id)

    def containers(self) -> list[Container]:
        with self._containers.reading():
            return self._containers.all()

    @checked(layer_id=text)
    def container_by_layer(self, layer_id: str) -> Container:
        lid = self.layer(layer_id).id
        with self._containers.reading():
            ctr = self._containers.by_layer(lid)
        if ctr is None:
            raise ContainerUnknown(name=lid)
        return ctr

    @checked(id=text)
    def list_container_big_data(self, id: str) -> list[str]:
        return list(self.container(id).big_data_names)

    @checked(id=text, key=text)
    def container_big_data(self, id: str, key: str) -> bytes:
        with self._containers.reading():
            try:
                return self._containers.big_data(id, key)
            except FileNotFoundError as exc:
                raise BigDataUnknown(
                    message=f"open {exc.filename}: no such file or directory", id=id, key=key
                ) from None

    @checked(id=text, key=text)
    def container_big_data_size(self, id: str, key: str) -> int:
        with self._containers.writing():
            return self._containers.big_data_size_recording(id, key)

    @checked(id=text, key=text)
    def container_big_data_digest(self, id: str, key: str) -> str:
        with self._containers.writing():
            return self._containers.big_data_digest_recording(id, key)

    @checked(id=text, key=text, data=data)
    def set_container_big_data(self, id: str, key: str, data: bytes) -> None:
        with self._containers.writing():
            self._containers.set_big_data(id, key, data)

    @checked(id=text)
    def container_size(self, id: str) -> int:
        """The container layer's diff size, its big data and both userdata directories."""
        cdir = self.container_directory(id)
        rdir = self.container_run_directory(id)
        with self._graph(), self._layers.writing(), self._containers.writing():
            ctr = self._containers.get(id)
            if self._layers.resolve(ctr.layer_id) is None:
                raise LayerUnknown(f"locating layer with ID {go_quote(ctr.layer_id)}", id=ctr.layer_id)
            total = self._layers.diff_size("", ctr.layer_id, self._layers.resolve)
            for key in ctr.big_data_names:
                total += self._containers.big_data_size_recording(ctr.id, key)
        return total + _dir_size(cdir) + _dir_size(rdir)

    def _container_subdir(self, base: str, id: str) -> str:
        with self._containers.reading():
            ctr = self._containers.get(id)
        path = id_path(base, ctr.id, "container", "userdata")
        os.makedirs(path, 0o700, exist_ok=True)
        return path

    @checked(id=text)
    def container_directory(self, id: str) -> str:
        return self._container_subdir(self._container_dir, id)

    @checked(id=text)
    def container_run_directory(self, id: str) -> str:
        return self._container_subdir(self._run_container_dir, id)

    @staticmethod
    def _set_file(directory: str, file: StrPath, data: bytes) -> None:
        path = os.path.join(directory, file)
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        write_atomic(path, data)

    @checked(id=text, file=path, data=data)
    def set_container_directory_file(self, id: str, file: StrPath, data: bytes) -> None:
        self._set_file(self.container_directory(id), file, data)

    @checked(id=text, file=path)
    def from_container_directory(self, id: str, file: StrPath) -> bytes:
        return read_file(os.path.join(self.container_directory(id), file))

    @checked(id=text, file=path, data=data)
    def set_container_run_directory_file(self, id: str, file: StrPath, data: bytes) -> None:
        self._set_file(self.container_run_directory(id), file, data)

    @checked(id=text, file=path)
    def from_container_run_directory(self, id: str, file: StrPath) -> bytes:
        return read_file(os.path.join(self.container_run_directory(id), file))

    @checked(id=text)
    def container_parent_owners(self, id: str) -> tuple[list[int], list[int]]:
        ctr = self.container(id)
        with self._read_layers() as layers:
            return layers.parent_owners(ctr.layer_id)

    @checked(id=text)
    def delete_container(self, id: str) -> None:
        with self._write_all():
            ctr = self._containers.resolve(id)
            if ctr is None:
                raise NotAContainer(id=id)
            self._drop_container_and_layer(ctr)
            if id_problem(ctr.id) is None:
                for base in (self._container_dir, self._run_container_dir):
                    remove_tree(id_path(base, ctr.id, "container"))

    def _drop_container_and_layer(self, ctr: Container) -> None:
        """The record first, then the layer: a crash in between leaves an unused layer,
        never a container whose layer is gone; a failed layer removal restores the record."""
        idx = self._containers.file_index(ctr.id)
        self._containers.remove(ctr.id)
        self._containers.save()
        try:
            if self._layers.resolve(ctr.layer_id) is not None:
                self._layers.delete(ctr.layer_id)
        except BaseException:
            self._containers.add(ctr, idx)
            self._containers.save()
            raise


def _dir_size(path: str) -> int:
    """Apparent size of the files below ``path`` (hard links counted once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if not os.path.isdir(os.path.join(root, name)) or os.path.islink(os.path.join(root, name)):
                total += st.st_size
    return total
