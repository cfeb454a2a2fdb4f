"""The Store's partial-pull methods, as functions of the driver and the layer records
(the Store holds the layer store's write lock around each call, as upstream does).

A driver with native support offers ``differ_target(id)`` (the directory of the layer's
own files), ``differ_apply_options(id_mappings)`` (how it wants files written) and
``apply_staging_directory(id, path)`` (make a staged tree the layer's contents).
Every other driver goes through the generic path: staged with AUFS-style whiteouts,
then merged into the layer's mounted directory.
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from typing import TYPE_CHECKING

from ..archive.apply import ApplyOptions
from ..drivers.api import Driver, MountOpts, WhiteoutFormat
from ..errors import LayerUnknown, NotSupported
from ..idtools import IDMappings
from . import staging
from .differ import ChunkedDiffer, DifferOutput
from .formats import TOC_BIG_DATA

if TYPE_CHECKING:
    from ..records.layers import LayerStore


def _native(driver: Driver) -> bool:
    return all(
        hasattr(driver, m) for m in ("differ_target", "differ_apply_options", "apply_staging_directory")
    )


class _StoreLayers:
    """The store's layers as dedup sources; generic drivers' layers are mounted on
    first use and released by :meth:`close`."""

    def __init__(self, driver: Driver, layers: LayerStore) -> None:
        self.driver = driver
        self.layers = layers
        self.mounted: list[str] = []

    def tocs(self) -> list[tuple[str, bytes]]:
        out = []
        for rec in self.layers.all():
            if rec.incomplete or TOC_BIG_DATA not in rec.big_data_names or self.layers.id_problem(rec.id):
                continue
            try:
                out.append((rec.id, self.layers.big_data(rec.id, TOC_BIG_DATA)))
            except OSError:
                continue
        return out

    def root(self, layer: str) -> str | None:
        try:
            if _native(self.driver):
                return str(self.driver.differ_target(layer))  # type: ignore[attr-defined]
            path = self.driver.get(layer, MountOpts(options=("ro",)))
        except Exception:
            return None
        self.mounted.append(layer)
        return path

    def close(self) -> None:
        while self.mounted:
            self.driver.put(self.mounted.pop())


def _options(driver: Driver, maps: IDMappings) -> ApplyOptions:
    if _native(driver):
        opts: ApplyOptions = driver.differ_apply_options(maps)  # type: ignore[attr-defined]
        return opts
    return ApplyOptions(whiteout_format=WhiteoutFormat.AUFS, id_mappings=maps)


def apply_with_differ(
    driver: Driver, layers: LayerStore, to: str, differ: ChunkedDiffer, maps: IDMappings | None
) -> DifferOutput:
    """Upstream ``ApplyDiffWithDiffer``: stage the layer's files (``to`` empty), or
    apply them to the existing layer ``to``."""
    rec = None
    if to:
        rec = layers.resolve(to)
        if rec is None:
            raise LayerUnknown()
        if maps is None:
            maps = layers.mappings(rec)
    path = staging.create(driver.home)
    sources = _StoreLayers(driver, layers)
    try:
        out = differ.apply_diff(path, _options(driver, maps or IDMappings()), sources)
        out.target = path
        if rec is not None:
            _commit(driver, rec.id, path)
            layers.update(
                replace(layers.by_id(rec.id) or rec, uidset=tuple(out.uids), gidset=tuple(out.gids))
            )
            layers.save()
            out.target = ""
    except BaseException:
        staging.remove(path)
        raise
    finally:
        sources.close()
    return out


def _commit(driver: Driver, id: str, path: str) -> None:
    if _native(driver):
        driver.apply_staging_directory(id, path)  # type: ignore[attr-defined]
    else:
        target = driver.get(id)
        try:
            staging.merge_into(path, target)
        finally:
            driver.put(id)
    staging.remove(path)


def apply_from_staging(driver: Driver, layers: LayerStore, to: str, path: str, out: DifferOutput) -> None:
    """Upstream ``ApplyDiffFromStagingDirectory``: the staged tree becomes layer
    ``to``'s contents. Recorded as upstream 1.52 records a partial pull: the TOC digest
    as ``toc-digest`` and no DiffID (the uncompressed stream was never hashed), not as
    1.50.2 does (the TOC digest as the DiffID, which its own ``check`` then reports as
    an incorrect digest and ``check -r`` deletes)."""
    from ..records.files import write_atomic

    rec = layers.resolve(to)
    if rec is None:
        raise LayerUnknown()
    layers.usable(rec)  # its ID goes to the driver
    path = staging.check(driver.home, path)
    _commit(driver, rec.id, path)
    rec = layers.by_id(rec.id) or rec
    layers.update(
        replace(
            rec,
            uidset=tuple(out.uids),
            gidset=tuple(out.gids),
            uncompressed_digest=out.uncompressed_digest,
            toc_digest=out.toc_digest,
            uncompressed_size=out.size,
            metadata=out.metadata,
        )
    )
    layers.save()
    if out.tar_split:
        write_atomic(layers.tar_split_path(rec.id), gzip.compress(out.tar_split, compresslevel=1, mtime=0))
    try:
        for key, value in out.big_data.items():
            layers.set_big_data(rec.id, key, value)
    except BaseException:
        layers.delete(rec.id)
        raise


def cleanup_staging(driver: Driver, path: str) -> None:
    staging.remove(staging.check(driver.home, path))


def differ_target(driver: Driver, layers: LayerStore, id: str) -> str:
    rec = layers.resolve(id)
    if rec is None:
        raise LayerUnknown()
    layers.usable(rec)  # its ID goes to the driver
    if not _native(driver):
        raise NotSupported(message=f"the {driver.name} driver has no differ target")
    return str(driver.differ_target(rec.id))  # type: ignore[attr-defined]


def collect_staging(driver: Driver) -> None:
    """``gc``: remove the staging directories of partial pulls whose process is gone."""
    staging.collect(driver.home)
