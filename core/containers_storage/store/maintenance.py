"""Maintenance: check, repair and garbage collection."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import ExitStack
from functools import partial

from ..archive.types import Compression
from ..chunked.formats import LAYER_DATA_BIG_DATA, TOC_BIG_DATA
from ..drivers.api import Driver, MountOpts
from ..errors import (
    ContainerDataIncorrectSize,
    ContainerDataMissing,
    ContainerImageMissing,
    ContainerUnknown,
    ImageDataIncorrectSize,
    ImageDataMissing,
    ImageLayerMissing,
    ImageUnknown,
    InvalidID,
    LayerContentModified,
    LayerDataMissing,
    LayerIncorrectContentDigest,
    LayerIncorrectContentSize,
    LayerMissing,
    LayerMountCountInvalid,
    LayerParentCycle,
    LayerUnaccounted,
    LayerUnknown,
    LayerUnreferenced,
    NotAContainer,
    NotALayer,
    NotAnImage,
    StorageError,
)
from ..gojson import GoTime, go_quote
from ..records.chains import looping_layers, parent_chain
from ..records.files import remove_tree
from ..records.ids import id_problem
from ..records.layers import MAX_MOUNT_COUNT, LayerStore
from ..records.model import (
    Layer,
)
from .argtypes import checked, instance
from .containers import ContainersMixin
from .options import (
    DEFAULT_UNREFERENCED_AGE,
    CheckOptions,
    CheckReport,
    RepairOptions,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..records.contents import Header, Ignore

#: the characters of an ID (64 of them: ``[0-9a-f]{64}``)
_HEX_DIGITS = frozenset("0123456789abcdef")


class MaintenanceMixin(ContainersMixin):
    """check, repair and garbage_collect of the Store."""

    def _check_ignore(self) -> Ignore:
        from ..records.contents import Ignore

        ownership = any("ignore_chown_errors=true" in o for o in self._options.driver_options)
        masked = any("force_mask=" in o for o in self._options.driver_options)
        links = any("use_hard_links" in k and v == "true" for k, v in self._options.pull_options.items())
        return Ignore(ownership=ownership or masked, timestamps=links, permissions=masked, filetype=masked)

    @checked(options=instance(CheckOptions, none=True))
    def check(self, options: CheckOptions | None = None) -> CheckReport:
        """Find damage (cli.md §5.7 ``check``): unreadable big data, layers whose diff no
        longer reproduces its digest or size, layers that do not mount or whose mounted
        tree differs from the replay of their diffs, missing layers and images, layers
        nobody uses (older than the maximum age), driver layers without records."""
        from ..records.contents import Tree, compare, expected_tree, scan

        opts = options or CheckOptions.most()
        ignore = self._check_ignore()
        report = CheckReport()
        headers: dict[str, list[Header]] = {}
        with ExitStack() as stack:
            driver = stack.enter_context(self._graph())
            stack.enter_context(self._layers.writing())
            layer_stores = [self._layers, *stack.enter_context(self._ro_layers_reading())]
            stack.enter_context(self._images.reading())
            image_stores = [self._images, *stack.enter_context(self._ro_images_reading())]
            layers = self._layers.all()

            def parent_of(lid: str) -> str:
                return report.layer_parents.get(lid, "")

            #: primary layers -> whether an image or container uses them
            referenced: dict[str, bool] = {}
            ro_known: set[str] = set()
            for store in layer_stores:
                rw = store is self._layers
                desc = "" if rw else "read-only "
                for rec in store.all():
                    if rec.id in referenced or rec.id in ro_known:
                        continue
                    report.layer_parents[rec.id] = rec.parent
                    if rw:
                        referenced[rec.id] = False
                    else:
                        ro_known.add(rec.id)
                    errs = (report.layers if rw else report.ro_layers).setdefault(rec.id, [])
                    bad_id = _invalid_id_error(store.id_problem, f"{desc}layer", rec.id, rec.parent)
                    if bad_id is not None:
                        # never used as a path: no data, diff or mount checks
                        errs.append(bad_id)
                        continue
                    if opts.layer_data:
                        errs += _data_errors(
                            f"{desc}layer {rec.id}",
                            rec.big_data_names,
                            partial(store.big_data, rec.id),
                            None,
                            LayerDataMissing,
                            LayerDataMissing,
                        )
                    if opts.layer_digests and (rec.uncompressed_digest or _partial(rec)):
                        self._check_layer_digest(store, rec, errs, headers, desc, layer_stores)
            if self._layers.mounts_lock is not None:
                for lid, count in self._layers.invalid_mount_counts().items():
                    if lid in referenced:
                        taken = 0 if count < 0 else 1
                        why = f"mount count {count} is out of range [0, {MAX_MOUNT_COUNT}], taken as {taken}"
                        report.layers[lid].append(LayerMountCountInvalid(f"layer {lid}", message=why))
            loops = looping_layers(report.layer_parents)
            for lid, member in loops.items():
                errs = report.layers[lid] if lid in referenced else report.ro_layers.setdefault(lid, [])
                why = f"its parent chain loops through layer {member}"
                errs.append(LayerParentCycle(f"layer {lid}", message=why))
            for rec in layers:
                errs = report.layers[rec.id]
                if not opts.layer_mountable or any(isinstance(e, InvalidID) for e in errs):
                    continue
                try:
                    mount_point = driver.get(rec.id, MountOpts(mount_label=rec.mount_label, options=("ro",)))
                except Exception as exc:
                    errs.append(StorageError(f"layer {rec.id}", message=str(exc)))
                    continue
                try:
                    known = rec.uncompressed_digest or _partial(rec)
                    if opts.layer_digests and known and opts.layer_contents:
                        chain: list[list[Header]] = []
                        known = rec.id not in loops
                        for lid in parent_chain(rec.id, parent_of) if known else ():
                            if lid not in headers:
                                known = False
                                break
                            chain.insert(0, headers[lid])
                        if known:  # every diff down the chain is known
                            # files were re-owned unless the maps could be shifted at mount time
                            shifted = self._can_shift(rec.uid_map, rec.gid_map)
                            maps = None if shifted else (rec.uid_map, rec.gid_map)
                            try:
                                actual: Tree = scan(mount_point)
                            except OSError as exc:
                                errs.append(
                                    StorageError(f"scanning contents of layer {rec.id}", message=str(exc))
                                )
                            else:
                                for diff in compare(expected_tree(chain), actual, maps, ignore):
                                    errs.append(
                                        LayerContentModified(
                                            message=f"layer {rec.id}: {diff}, layer content modified"
                                        )
                                    )
                finally:
                    try:
                        driver.put(rec.id)
                    except Exception as exc:
                        errs.append(StorageError(f"layer {rec.id}", message=str(exc)))
            for rec in layers:
                if rec.parent and rec.parent not in referenced and rec.parent not in ro_known:
                    report.layers[rec.id].append(LayerMissing(f"layer {rec.parent}"))
            examined: set[str] = set()
            for istore in image_stores:
                rw = not istore.read_only
                desc = "" if rw else "read-only "
                for img in istore.all():
                    if img.id in examined:
                        continue
                    examined.add(img.id)
                    ierrs = (report.images if rw else report.ro_images).setdefault(img.id, [])
                    bad_id = _invalid_id_error(id_problem, f"{desc}image", img.id)
                    if bad_id is not None:
                        ierrs.append(bad_id)
                    elif opts.image_data:
                        ierrs += _data_errors(
                            f"{desc}image {img.id}",
                            img.big_data_names,
                            partial(istore.big_data, img.id),
                            img.big_data_sizes,
                            ImageDataMissing,
                            ImageDataIncorrectSize,
                        )
                    seen: set[str] = set()
                    for top in (img.top_layer, *img.mapped_top_layers):
                        if not top or top in seen:
                            continue
                        seen.add(top)
                        try:
                            for lid in parent_chain(top, parent_of):
                                if lid in referenced:
                                    referenced[lid] = True
                                elif lid not in ro_known:
                                    ierrs.append(ImageLayerMissing(f"{desc}image {img.id}: layer {lid}"))
                                # a mount record's count is not the image's fault
                                ierrs.extend(_image_relevant(report.layers.get(lid, ())))
                                ierrs.extend(_image_relevant(report.ro_layers.get(lid, ())))
                        except LayerParentCycle:
                            pass  # the layers of the loop carry the error, now the image's too
            with self._containers.reading():
                for ctr in self._containers.all():
                    cerrs = report.containers.setdefault(ctr.id, [])
                    bad_id = _invalid_id_error(id_problem, "container", ctr.id)
                    if bad_id is not None:
                        cerrs.append(bad_id)
                    elif opts.container_data:
                        cerrs += _data_errors(
                            f"container {ctr.id}",
                            ctr.big_data_names,
                            partial(self._containers.big_data, ctr.id),
                            ctr.big_data_sizes,
                            ContainerDataMissing,
                            ContainerDataIncorrectSize,
                        )
                    if ctr.image_id:
                        if ctr.image_id not in examined:
                            cerrs.append(ContainerImageMissing(f"image {ctr.image_id}"))
                        cerrs.extend(report.images.get(ctr.image_id, ()))
                        cerrs.extend(report.ro_images.get(ctr.image_id, ()))
                    if ctr.layer_id:
                        referenced[ctr.layer_id] = True
            max_age = opts.layer_unreferenced_maximum_age
            if max_age is None:
                max_age = DEFAULT_UNREFERENCED_AGE
            now = GoTime.now().unix_ns
            for rec in layers:
                old = rec.created.is_zero or rec.created.unix_ns + int(max_age * 1e9) < now
                if not referenced.get(rec.id) and old:
                    report.layers[rec.id].append(LayerUnreferenced(f"layer {rec.id}"))
            for i, lid in enumerate(_driver_layers(driver)):
                if lid not in referenced:
                    report.layers.setdefault(lid, []).append(LayerUnaccounted(f"layer {lid}"))
                report.layer_order[lid] = i + 1
        report.drop_empty()
        return report

    def _check_layer_digest(
        self,
        store: LayerStore,
        rec: Layer,
        errs: list[Exception],
        headers: dict[str, list[Header]],
        desc: str,
        stores: Sequence[LayerStore],
    ) -> None:
        """Regenerate the uncompressed diff; compare digest and size; keep its headers.
        The diff is read as Go's tar reader reads it (an empty stream is an empty
        archive; bytes after the end marker count but are not entries).

        A layer made by a partial pull has no DiffID to compare against: upstream 1.52
        records none, 1.50.2 records the TOC digest in its place (and its own check then
        reports the healthy layer, which ``check -r`` deletes). Its diff must still read
        back whole, and its headers go to the content comparison."""
        import hashlib

        from ..archive.tarreader import Source, TarReader
        from ..records.contents import Header
        from ..records.images import validate_digest

        try:
            if rec.uncompressed_digest:
                validate_digest(rec.uncompressed_digest)
        except ValueError as exc:
            errs.append(StorageError(f"{desc}layer {rec.id}", message=_error_text(exc)))
            return
        algorithm = rec.uncompressed_digest.split(":", 1)[0] if rec.uncompressed_digest else "sha256"
        hasher = hashlib.new(algorithm)
        count = 0
        found: list[Header] = []
        try:
            stream = store.diff("", rec.id, Compression.NONE, self._lookup_layer(stores))
        except Exception as exc:
            errs.append(StorageError(f"{desc}layer {rec.id}", message=_error_text(exc)))
            return

        def tap(data: bytes) -> None:
            nonlocal count
            hasher.update(data)
            count += len(data)

        source = Source(stream, tap)
        try:
            for e in TarReader(source):
                # directory names keep their trailing slash: the replay order depends on it
                found.append(
                    Header(
                        os.fsdecode(e.name),
                        chr(e.typeflag),
                        e.uid,
                        e.gid,
                        e.size,
                        e.mode,
                        e.mtime_ns // 1_000_000_000,
                        os.fsdecode(e.linkname),
                    )
                )
            for _rest in source.rest():
                pass
        except Exception as exc:
            errs.append(StorageError(f"{desc}layer {rec.id}", message=_error_text(exc)))
            return
        finally:
            stream.close()
        ok = True
        if f"{algorithm}:{hasher.hexdigest()}" != rec.uncompressed_digest:
            if _partial(rec):
                # no DiffID, or 1.50.2's TOC digest in its place: nothing to compare
                headers[rec.id] = found
                return
            errs.append(LayerIncorrectContentDigest(f"{desc}layer {rec.id}"))
            ok = False
        if count != rec.uncompressed_size:
            errs.append(
                LayerIncorrectContentSize(
                    f"{desc}layer {rec.id}: read {count} bytes instead of {rec.uncompressed_size} bytes"
                )
            )
            ok = False
        if ok:
            headers[rec.id] = found

    @checked(report=instance(CheckReport), options=instance(RepairOptions, none=True))
    def repair(self, report: CheckReport, options: RepairOptions | None = None) -> list[Exception]:
        """Remove what :meth:`check` found damaged: containers (only with
        ``remove_containers``), images, then layers -- known ones deepest first,
        unaccounted ones last, straight from the driver. Returns the errors met."""
        opts = options or RepairOptions()
        failures: list[Exception] = []
        if opts.remove_containers:
            for cid in report.containers:
                try:
                    self.delete_container(cid)
                except (ContainerUnknown, NotAContainer):
                    pass
                except StorageError as exc:
                    failures.append(StorageError(f"deleting container {cid}", message=str(exc)))
        deleted: set[str] = set()
        for iid in report.images:
            try:
                deleted.update(self.delete_image(iid, True))
            except (ImageUnknown, NotAnImage, LayerUnknown):
                pass
            except StorageError as exc:
                failures.append(StorageError(f"deleting image {iid}", message=str(exc)))

        def unaccounted(lid: str) -> bool:
            return any(isinstance(e, LayerUnaccounted) for e in report.layers[lid])

        loops = looping_layers(report.layer_parents)
        kept = self._loop_layers_in_use(loops.keys())
        if kept:
            # the layers on and above a loop go together or not at all: one left behind
            # would name a parent that is gone
            failures.append(
                StorageError(
                    f"layer {kept[0]}",
                    message=f"its parent chain loops, but it is in use by {kept[1]}: the loop is kept",
                )
            )

        def depth(lid: str) -> int:
            if lid in loops:
                return 0
            return sum(1 for _ in parent_chain(lid, lambda x: report.layer_parents.get(x, ""))) - 1

        order = sorted(
            report.layers,
            key=lambda lid: (1, report.layer_order.get(lid, 0)) if unaccounted(lid) else (0, -depth(lid)),
        )
        if any(isinstance(e, LayerMountCountInvalid) for errs in report.layers.values() for e in errs):
            try:
                self._layers.rewrite_mounts()  # the counts as clamped: nothing is removed for them
            except (StorageError, OSError) as exc:
                failures.append(StorageError("rewriting mount records", message=str(exc)))
        for lid in order:
            if lid in deleted or (kept and lid in loops):
                continue
            for err in _image_relevant(report.layers[lid]):
                try:
                    if isinstance(err, LayerUnaccounted):
                        with self._graph() as driver:
                            driver.remove(self._layers.valid_id(lid))
                    else:
                        try:
                            self.unmount(lid, force=True)
                        except StorageError:
                            pass
                        # the layers of a loop are each other's children: removed together
                        self._delete_layer(lid, along=loops.keys())
                except (LayerUnknown, NotALayer, FileNotFoundError):
                    pass
                except (StorageError, OSError) as exc:
                    failures.append(StorageError(f"deleting layer {lid}", message=str(exc)))
        return failures

    def _loop_layers_in_use(self, loop_layers: Collection[str]) -> tuple[str, str] | None:
        """A layer of ``loop_layers`` an image or container (still) uses, and its user."""
        with self._images.reading(), self._containers.reading():
            for img in self._images.all():
                for lid in (img.top_layer, *img.mapped_top_layers):
                    if lid in loop_layers:
                        return lid, f"image {img.id}"
            for ctr in self._containers.all():
                if ctr.layer_id in loop_layers:
                    return ctr.layer_id, f"container {ctr.id}"
        return None

    def garbage_collect(self) -> None:
        """Remove leftovers nothing refers to: container and image data directories
        without records, driver layers without records (with their tar-split and data).
        Continues past errors and raises the first."""
        first: BaseException | None = None

        def sweep(directory: str, known: Callable[[str], bool]) -> None:
            nonlocal first
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                return
            for name in names:
                if (
                    (len(name) == 64 and _HEX_DIGITS.issuperset(name))
                    and not known(name)
                    and os.path.isdir(os.path.join(directory, name))
                ):
                    try:
                        remove_tree(os.path.join(directory, name))
                    except OSError as exc:
                        first = first or exc

        with self._containers.writing():
            sweep(self._container_dir, lambda i: self._containers.by_id(i) is not None)
        with self._images.writing():
            sweep(self._images.image_dir, lambda i: self._images.by_id(i) is not None)
        with self._graph() as driver, self._layers.writing():
            for lid in _driver_layers(driver):
                if self._layers.by_id(lid) is not None:
                    continue
                try:
                    driver.remove(lid)
                    for path in (self._layers.tar_split_path(lid),):
                        if os.path.exists(path):
                            os.unlink(path)
                    remove_tree(self._layers.data_dir(lid))
                except (OSError, StorageError) as exc:
                    first = first or exc
            try:
                from ..chunked.storeglue import collect_staging

                collect_staging(driver)  # partial pulls' abandoned staging directories
            except OSError as exc:
                first = first or exc
        if first is not None:
            raise first


def _data_errors(
    desc: str,
    keys: Sequence[str],
    read: Callable[[str], bytes],
    sizes: Mapping[str, int] | None,
    missing: type[StorageError],
    wrong_size: type[StorageError],
) -> list[Exception]:
    """Check findings for big-data items: unreadable, missing, or (when ``sizes`` is
    given) of another size than recorded."""
    out: list[Exception] = []
    for key in keys:
        where = f"{desc}: data item {go_quote(key)}"
        try:
            data = read(key)
        except FileNotFoundError:
            out.append(missing(where))
            continue
        except OSError as exc:
            out.append(StorageError(where, message=exc.strerror or str(exc)))
            continue
        if sizes is not None and len(data) != sizes.get(key, 0):
            out.append(wrong_size(where))
    return out


def _invalid_id_error(
    problem: Callable[[str], str | None], what: str, id: str, parent: str = ""
) -> InvalidID | None:
    """The finding for a record (written by someone else) whose ID, or parent's ID,
    cannot be a path component; such a record is reported and only ever dropped."""
    checks = [(f"{what} ID {go_quote(id)}", id)]
    if parent:
        checks.append((f"{what} {go_quote(id)}: parent ID {go_quote(parent)}", parent))
    for context, value in checks:
        reason = problem(value)
        if reason is not None:
            return InvalidID(context, message=f"{InvalidID.default_message}: {reason}")
    return None


def _driver_layers(driver: Driver) -> list[str]:
    """The driver's layer IDs for check and GC; empty for a driver that cannot enumerate
    (DriverNotSupported, as upstream's zfs says): its unaccounted-layer pass is skipped,
    as upstream's is."""
    from ..errors import DriverNotSupported

    try:
        return driver.list_layers()
    except DriverNotSupported:
        return []


def _partial(rec: Layer) -> bool:
    """Whether a partial pull made the layer (a TOC digest recorded, or 1.50.2's
    record: the TOC and the layer-data big data, the TOC digest as the DiffID)."""
    names = rec.big_data_names
    return bool(rec.toc_digest) or (TOC_BIG_DATA in names and LAYER_DATA_BIG_DATA in names)


def _error_text(exc: BaseException) -> str:
    """An error as upstream's Go reports it: ``open <path>: no such file or directory``
    for failed file operations, the message otherwise."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"open {exc.filename}: {exc.strerror[:1].lower()}{exc.strerror[1:]}"
    return str(exc)


def _image_relevant(errors: Sequence[Exception]) -> list[Exception]:
    """A layer's errors that make it (and the images on it) damaged: all but a mount
    record's count, which repair rewrites instead of removing anything."""
    return [e for e in errors if not isinstance(e, LayerMountCountInvalid)]
