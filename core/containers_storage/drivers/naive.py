"""Generic diff operations on mounted trees (driver-api.md §4), for drivers without a
cheaper native path.  They mount through the driver's own ``get``/``put``."""

from __future__ import annotations

import os

from ..archive.apply import ApplyOptions, apply_tar
from ..archive.changes import changes as tree_changes
from ..archive.changes import changes_size
from ..archive.export import TarBuilder, as_stream, tar_changes, tar_tree
from ..archive.idshift import shift_tree
from ..idtools import IDMappings
from .api import ApplyDiffOpts, Change, Driver, MountOpts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


def _mount(driver: Driver, id: str, mappings: IDMappings, label: str, read_only: bool = False) -> str:
    opts = MountOpts(mount_label=label, id_mappings=mappings, options=("ro",) if read_only else ())
    return driver.get(id, opts)


class _Mounts:
    """The layer (and its parent, read-only) mounted for the duration of a diff op."""

    def __init__(
        self,
        driver: Driver,
        id: str,
        id_mappings: IDMappings,
        parent: str | None,
        parent_mappings: IDMappings,
        label: str,
    ) -> None:
        self.driver = driver
        self.id = id
        self.parent = parent or None
        self.layer = _mount(driver, id, id_mappings, label)
        self.parent_path: str | None = None
        if self.parent:
            try:
                self.parent_path = _mount(driver, self.parent, parent_mappings, label, read_only=True)
            except BaseException:
                driver.put(id)
                raise

    def release(self) -> None:
        try:
            if self.parent:
                self.driver.put(self.parent)
        finally:
            self.driver.put(self.id)

    def __enter__(self) -> _Mounts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def changes(
    driver: Driver,
    id: str,
    id_mappings: IDMappings,
    parent: str | None,
    parent_mappings: IDMappings,
    mount_label: str,
) -> list[Change]:
    with _Mounts(driver, id, id_mappings, parent, parent_mappings, mount_label) as m:
        return tree_changes(m.layer, id_mappings, m.parent_path, parent_mappings)


def diff(
    driver: Driver,
    id: str,
    id_mappings: IDMappings,
    parent: str | None,
    parent_mappings: IDMappings,
    mount_label: str,
) -> IO[bytes]:
    m = _Mounts(driver, id, id_mappings, parent, parent_mappings, mount_label)
    try:
        builder = TarBuilder(id_mappings)
        if m.parent_path is None:
            chunks = tar_tree(m.layer, builder)
        else:
            found = tree_changes(m.layer, id_mappings, m.parent_path, parent_mappings)
            chunks = tar_changes(m.layer, found, builder)
    except BaseException:
        m.release()
        raise
    return as_stream(chunks, m.release)


def diff_size(
    driver: Driver,
    id: str,
    id_mappings: IDMappings,
    parent: str | None,
    parent_mappings: IDMappings,
    mount_label: str,
) -> int:
    with _Mounts(driver, id, id_mappings, parent, parent_mappings, mount_label) as m:
        return changes_size(m.layer, tree_changes(m.layer, id_mappings, m.parent_path, parent_mappings))


def apply_diff(driver: Driver, id: str, parent: str | None, opts: ApplyDiffOpts) -> int:
    path = _mount(driver, id, opts.id_mappings, opts.mount_label)
    try:
        options = ApplyOptions(
            whiteout_format=driver.whiteout_format,
            id_mappings=opts.id_mappings,
            ignore_chown_errors=opts.ignore_chown_errors,
            force_mask=opts.force_mask,
        )
        return apply_tar(opts.diff, path, options)
    finally:
        driver.put(id)


def update_layer_id_map(
    driver: Driver, id: str, to_container: IDMappings, to_host: IDMappings, mount_label: str
) -> None:
    """Re-own the files below the layer's root, then give the root itself the new maps'
    root (upstream's vfs does so; its btrfs and zfs leave a snapshot's root owned as its
    parent's, which the layer's own maps may not cover)."""
    path = _mount(driver, id, IDMappings(), mount_label)
    try:
        shift_tree(path, to_container, to_host)
        uid, gid = to_host.root_pair()
        st = os.lstat(path)
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(path, uid, gid)
    finally:
        driver.put(id)
