"""The conformance kit's scenarios through a real :class:`~containers_storage.store.Store`.

The driver under test is registered in a plugin host of its own (so the scenarios test
the driver, not what else is installed) and the store is opened on the graph and run
roots the kit's factory chose for it, with the kit's ``driver_options``. The scenarios
import a layer with files of every kind, mount it, diff it back and import that again,
stack a layer with whiteouts, make an image and a container and write into it, delete
everything and check the store. Mixed into
:class:`~containers_storage.testing.conformance.DriverConformance`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pytest

from ..drivers.api import ChangeKind, Driver, DriverInfo
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..store import Store

E = TypeVar("E", bound=BaseException)

MTIME = 1_600_000_000


def expect_raises(kind: type[E], rule: str, fn: Callable[..., Any], *args: Any) -> E:
    """Call ``fn(*args)``; it must raise ``kind``. Fails saying ``rule`` and what happened."""
    try:
        result = fn(*args)
    except kind as exc:
        return exc
    except Exception as exc:
        pytest.fail(f"{rule}: expected {kind.__name__}, got {type(exc).__name__}: {exc}")
    pytest.fail(f"{rule}, but it returned {result!r}")


@dataclass(frozen=True)
class Entry:
    """One tar entry of the kit's layer and what the mounted layer must show for it."""

    name: str
    kind: bytes
    mode: int
    data: bytes = b""
    link: str = ""
    owner: tuple[int, int] = (0, 0)
    xattrs: tuple[tuple[str, str], ...] = ()


def layer_entries(as_root: bool, device_nodes: bool) -> list[Entry]:
    """Directories, files (setuid, sticky), symlink, hard link, fifo, an xattr, and, as
    root, other owners and device nodes."""
    owner = (1000, 1001) if as_root else (os.geteuid(), os.getegid())
    me = (0, 0) if as_root else (os.geteuid(), os.getegid())
    entries = [
        Entry("etc", tarfile.DIRTYPE, 0o755, owner=me),
        Entry(
            "etc/config", tarfile.REGTYPE, 0o644, b"key=value\n", owner=me, xattrs=(("user.kit", "value"),)
        ),
        Entry("bin", tarfile.DIRTYPE, 0o755, owner=me),
        Entry("bin/tool", tarfile.REGTYPE, 0o4755, b"\x7fELF" + bytes(range(256)) * 20, owner=me),
        Entry("bin/hard", tarfile.LNKTYPE, 0o4755, link="bin/tool", owner=me),
        Entry("bin/link", tarfile.SYMTYPE, 0o777, link="tool", owner=me),
        Entry("tmp", tarfile.DIRTYPE, 0o1777, owner=me),
        Entry("run.fifo", tarfile.FIFOTYPE, 0o640, owner=me),
        Entry("home", tarfile.DIRTYPE, 0o755, owner=me),
        Entry("home/user", tarfile.DIRTYPE, 0o700, owner=owner),
        Entry("home/user/notes", tarfile.REGTYPE, 0o600, b"mine\n", owner=owner),
    ]
    if device_nodes:
        entries.append(Entry("dev-null", tarfile.CHRTYPE, 0o666, owner=me))
    return entries


def make_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.mode, info.mtime = e.kind, e.mode, MTIME
            info.uid, info.gid = e.owner
            info.linkname = e.link
            info.size = len(e.data)
            if e.kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = 1, 3
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs}
            tf.addfile(info, io.BytesIO(e.data) if e.data else None)
    return buf.getvalue()


_KINDS = {
    tarfile.DIRTYPE: stat.S_ISDIR,
    tarfile.REGTYPE: stat.S_ISREG,
    tarfile.LNKTYPE: stat.S_ISREG,
    tarfile.SYMTYPE: stat.S_ISLNK,
    tarfile.FIFOTYPE: stat.S_ISFIFO,
    tarfile.CHRTYPE: stat.S_ISCHR,
}


def check_entries(root: str, entries: list[Entry], what: str) -> None:
    """The tree at ``root`` shows every entry as the tar described it."""
    for e in entries:
        path = os.path.join(root, e.name)
        assert os.path.lexists(path), f"{what}: {e.name} must exist, but it does not"
        st = os.lstat(path)
        assert _KINDS[e.kind](st.st_mode), (
            f"{what}: {e.name} must be of tar type {e.kind!r}, got mode {st.st_mode:o}"
        )
        if e.kind == tarfile.SYMTYPE:
            target = os.readlink(path)
            assert target == e.link, f"{what}: symlink {e.name} must point to {e.link!r}, got {target!r}"
            continue
        mode = stat.S_IMODE(st.st_mode)
        assert mode == e.mode, f"{what}: {e.name} must have mode {e.mode:04o}, got {mode:04o}"
        assert (st.st_uid, st.st_gid) == e.owner, (
            f"{what}: {e.name} must be owned by {e.owner[0]}:{e.owner[1]}, got {st.st_uid}:{st.st_gid}"
        )
        if e.kind == tarfile.REGTYPE:
            with open(path, "rb") as fh:
                data = fh.read()
            assert data == e.data, (
                f"{what}: {e.name} must hold the {len(e.data)} bytes written, got {len(data)} bytes"
            )
            assert int(st.st_mtime) == MTIME, (
                f"{what}: {e.name} must keep mtime {MTIME}, got {int(st.st_mtime)}"
            )
        if e.kind == tarfile.LNKTYPE:
            other = os.lstat(os.path.join(root, e.link))
            assert (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino), (
                f"{what}: {e.name} must be a hard link of {e.link} (one inode), got two files"
            )
        for key, value in e.xattrs:
            try:
                got = os.getxattr(path, key, follow_symlinks=False)
            except OSError as exc:
                got = f"no attribute ({exc.strerror})".encode()
            assert got == value.encode(), f"{what}: {e.name} must carry xattr {key}={value!r}, got {got!r}"


def tar_names(blob: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tf:
        return sorted(m.name.rstrip("/") for m in tf)


def _change_list(store: Store, layer: str) -> list[tuple[str, int]]:
    return sorted((c.path, int(c.kind)) for c in store.changes("", layer))


class _Offer:
    def __init__(self, info: DriverInfo) -> None:
        self.info = info

    @hookimpl
    def cstorage_drivers(self) -> list[DriverInfo]:
        return [self.info]


class StoreScenarios:
    """The driver under a real Store; needs the ``kit_factory`` fixture of the kit."""

    driver_options: ClassVar[tuple[str, ...]] = ()
    lists_layers = True
    device_nodes = os.geteuid() == 0

    @pytest.fixture
    def store(self, kit_factory: Callable[..., Driver]) -> Iterator[Store]:
        """A store on roots the factory chose, with only the driver under test installed."""
        from ..config import StoreOptions
        from ..plugins import PluginHost
        from ..store import get_store

        made = kit_factory(options=self.driver_options)
        cls, config = type(made), made.config
        made.cleanup()
        host = PluginHost(discover=lambda group: [])
        host.register(
            _Offer(DriverInfo(name=cls.name, load=lambda: cls)), name=f"conformance kit: {cls.name}"
        )
        options = StoreOptions(
            graph_root=config.root,
            run_root=config.run_root,
            driver_name=cls.name,
            driver_options=list(config.options),
        )
        store = get_store(options, plugins=host)
        try:
            yield store
        finally:
            try:
                with contextlib.suppress(Exception):
                    store.wipe()  # what a failed scenario left
            finally:
                store.shutdown(force=True)
                store.close()

    def test_store_import_mount_diff_delete(self, store: Store) -> None:
        """A layer imported through the store reads back file by file when mounted, its
        diff lists the same entries and imports again to the same tree, and deleting it
        leaves nothing in the driver."""
        entries = layer_entries(os.geteuid() == 0, self.device_nodes)
        blob = make_tar(entries)
        layer, _ = store.put_layer(diff=io.BytesIO(blob))
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        rec = store.layer(layer.id)
        assert rec.uncompressed_digest == digest, (
            f"an imported layer must record the digest of its tar ({digest}), got {rec.uncompressed_digest!r}"
        )
        path = store.mount(layer.id)
        try:
            check_entries(path, entries, "a layer imported through the store, mounted")
        finally:
            store.unmount(layer.id)
        count = store.mounted(layer.id)
        assert count == 0, f"after one mount and one unmount the layer must not be mounted, count is {count}"
        with store.diff("", layer.id) as stream:
            again = stream.read()
        assert tar_names(again) == tar_names(blob), (
            f"the diff of an imported layer must hold its entries {tar_names(blob)}, got {tar_names(again)}"
        )
        copy, _ = store.put_layer(diff=io.BytesIO(again))
        path = store.mount(copy.id)
        try:
            check_entries(path, entries, "a layer imported from another layer's diff, mounted")
        finally:
            store.unmount(copy.id)
        driver = store.driver
        for lid in (copy.id, layer.id):
            store.delete_layer(lid)
            assert not driver.exists(lid), (
                f"a layer deleted through the store must be gone from the driver: {lid}"
            )
        left = [rec.id for rec in store.layers()]
        assert left == [], f"the store must hold no layers after deleting them all, got {left}"
        if self.lists_layers:
            listed = driver.list_layers()
            assert listed == [], (
                f"the driver must list no layers after the store deleted them all, got {listed}"
            )

    def test_store_image_container_changes(self, store: Store) -> None:
        """A layer with whiteouts over a base, an image of it, a container on the image:
        changes and diffs through the store say what each one changed, and deleting the
        container and the image takes their layers; the store then checks clean."""
        base_entries = [
            Entry("keep", tarfile.REGTYPE, 0o644, b"kept\n"),
            Entry("gone", tarfile.REGTYPE, 0o644, b"to be deleted\n"),
            Entry("dir", tarfile.DIRTYPE, 0o755),
            Entry("dir/old", tarfile.REGTYPE, 0o644, b"hidden by an opaque dir\n"),
        ]
        base, _ = store.put_layer(diff=io.BytesIO(make_tar(base_entries)))
        top_entries = [
            Entry(".wh.gone", tarfile.REGTYPE, 0o644),
            Entry("dir", tarfile.DIRTYPE, 0o755),
            Entry("dir/.wh..wh..opq", tarfile.REGTYPE, 0o644),
            Entry("dir/new", tarfile.REGTYPE, 0o644, b"new\n"),
        ]
        top, _ = store.put_layer(parent=base.id, diff=io.BytesIO(make_tar(top_entries)))
        path = store.mount(top.id)
        try:
            seen = sorted(os.listdir(path)), sorted(os.listdir(os.path.join(path, "dir")))
            assert seen == (["dir", "keep"], ["new"]), (
                "a layer whiting out 'gone' and making 'dir' opaque must show ['dir', 'keep'] "
                "and dir/['new'], "
                f"got {seen[0]} and dir/{seen[1]}"
            )
        finally:
            store.unmount(top.id)
        changes = _change_list(store, top.id)
        assert ("/gone", ChangeKind.DELETE) in changes and ("/dir/new", ChangeKind.ADD) in changes, (
            f"changes of the whiteout layer must delete /gone and add /dir/new, got {changes}"
        )
        image = store.create_image(layer=top.id)
        container = store.create_container(image=image.id)
        path = store.mount(container.id)
        try:
            with open(os.path.join(path, "written-in-container"), "wb") as fh:
                fh.write(b"container data\n")
            os.remove(os.path.join(path, "keep"))
        finally:
            store.unmount(container.id)
        changes = _change_list(store, container.layer_id)
        want = [("/keep", ChangeKind.DELETE), ("/written-in-container", ChangeKind.ADD)]
        assert changes == sorted(want), f"a container's changes must be {sorted(want)}, got {changes}"
        with store.diff("", container.layer_id) as stream:
            names = tar_names(stream.read())
        assert names == [".wh.keep", "written-in-container"], (
            f"a container's diff must hold ['.wh.keep', 'written-in-container'], got {names}"
        )
        driver = store.driver
        store.delete_container(container.id)
        assert not driver.exists(container.layer_id), (
            "deleting a container must remove its layer from the driver"
        )
        removed = sorted(store.delete_image(image.id))
        assert removed == sorted([top.id, base.id]), (
            "deleting the only image of a layer stack must remove its layers "
            f"{sorted([top.id, base.id])}, got {removed}"
        )
        for lid in (top.id, base.id):
            assert not driver.exists(lid), (
                f"a layer removed with its image must be gone from the driver: {lid}"
            )
        report = store.check()
        problems = {k: v for k, v in {**report.layers, **report.images, **report.containers}.items() if v}
        assert not problems, f"the emptied store must check clean, got {problems}"

    def test_store_status_comes_from_the_driver(self, store: Store) -> None:
        pairs = store.status()
        own = store.driver.status()
        assert pairs == own, f"the store's status must be its driver's status pairs {own}, got {pairs}"
