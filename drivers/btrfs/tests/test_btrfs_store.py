"""The btrfs driver under the Store, as podman uses it: layers from tar streams, diffs back
byte for byte, container layers with a size limit, shutdown."""

from __future__ import annotations

import errno
import io
import os
import tarfile
from collections.abc import Iterator

import pytest

from containers_storage.config import StoreOptions
from containers_storage.drivers.mounts import is_mounted
from containers_storage.store import LayerOptions, Store, get_store
from containers_storage.testing.loopdev import LoopFilesystem


def open_store(base: str, *driver_options: str) -> Store:
    return get_store(
        StoreOptions(
            graph_root=os.path.join(base, "graph"),
            run_root=os.path.join(base, "run"),
            driver_name="btrfs",
            driver_options=list(driver_options),
        )
    )


@pytest.fixture
def store(btrfs_dir: str) -> Iterator[Store]:
    with open_store(btrfs_dir) as s:
        yield s


def layer_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add(name: str, kind: bytes, data: bytes = b"", **kw: object) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            for key, value in kw.items():
                setattr(info, key, value)
            tf.addfile(info, io.BytesIO(data) if data else None)

        add("etc/", tarfile.DIRTYPE)
        add("etc/os-release", tarfile.REGTYPE, b"ID=test\n")
        add("etc/link", tarfile.SYMTYPE, linkname="os-release")
        add("etc/hard", tarfile.LNKTYPE, linkname="etc/os-release")
        add("usr/", tarfile.DIRTYPE)
        add("usr/bin/", tarfile.DIRTYPE)
        add("usr/bin/tool", tarfile.REGTYPE, os.urandom(70_000), mode=0o4755, uid=7, gid=8)
    return buf.getvalue()


def test_layer_from_tar_diffs_back_byte_for_byte(store: Store) -> None:
    data = layer_tar()
    layer, size = store.put_layer(diff=io.BytesIO(data))
    assert size > 0
    path = os.path.join(store.graph_root, "btrfs", "subvolumes", layer.id)
    assert os.lstat(path).st_ino == 256, "the layer is a subvolume"
    with store.diff("", layer.id) as out:
        assert out.read() == data
    child = store.create_layer(parent=layer.id, writeable=True)
    root = store.mount(child.id)
    try:
        with open(os.path.join(root, "etc", "os-release")) as f:
            assert f.read() == "ID=test\n"
        os.unlink(os.path.join(root, "etc", "link"))
        with open(os.path.join(root, "usr", "new"), "w") as f:
            f.write("new")
    finally:
        store.unmount(child.id)
    got = sorted((c.path, int(c.kind)) for c in store.changes(layer.id, child.id))
    assert got == [("/etc", 0), ("/etc/link", 2), ("/usr", 0), ("/usr/new", 1)]
    store.delete_layer(child.id)
    store.delete_layer(layer.id)
    assert not os.path.exists(path)


def test_container_layer_size_limit_through_the_store(fresh_btrfs: LoopFilesystem) -> None:
    with open_store(fresh_btrfs.mountpoint) as s:
        base = s.create_layer()
        layer = s.create_layer(
            parent=base.id, writeable=True, options=LayerOptions(storage_opt={"size": "16M"})
        )
        root = s.mount(layer.id)
        try:
            with pytest.raises(OSError) as exc, open(os.path.join(root, "big"), "wb") as f:
                for _ in range(32):
                    f.write(b"\0" * (1 << 20))
                    f.flush()
                    os.fsync(f.fileno())
            assert exc.value.errno == errno.EDQUOT
        finally:
            s.unmount(layer.id)
        s.delete_layer(layer.id)
        home = os.path.join(s.graph_root, "btrfs")
    assert not is_mounted(home), "shutdown unmounts the driver home's private bind mount"


def test_bad_driver_option_fails_store_open(btrfs_dir: str) -> None:
    with pytest.raises(Exception, match=r'unknown option btrfs.nope \("btrfs.nope=1"\)'):
        open_store(btrfs_dir, "btrfs.nope=1")
