"""The graph-driver conformance kit (driver-api.md §7), for any driver.

Subclass :class:`DriverConformance` in your driver's tests and provide a
``driver_factory`` fixture: a callable ``factory(options=()) -> Driver`` that builds a
fresh driver on fresh graph and run roots on the real backing filesystem::

    from containers_storage.testing.conformance import DriverConformance

    class TestConformance(DriverConformance):
        deep_layers = 200

Every scenario removes the layers it created (removal must succeed) and calls
``cleanup()`` on the driver. Class attributes tune the scenarios. ``bench/kit_bench.py``
runs the same scenarios as a benchmark, timing each driver against vfs.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from ..drivers.api import ApplyDiffOpts, Change, ChangeKind, CreateOpts, Driver, MountOpts

DriverFactory = Callable[..., Driver]

BASE_FILE = "a file"
BASE_DIR = "a subdir"
SUBDIR_MODE = 0o705 | stat.S_ISVTX
FILE_MODE = 0o222 | stat.S_ISUID


# --- helpers (usable on their own) ------------------------------------------------------
def create_base(driver: Driver, name: str) -> None:
    """driver-api §7 createBase: a read-write layer with a sticky dir and a setuid file."""
    old = os.umask(0)
    try:
        driver.create_read_write(name, None, None)
        root = driver.get(name)
        try:
            sub = os.path.join(root, BASE_DIR)
            os.mkdir(sub, 0o705)
            os.chmod(sub, SUBDIR_MODE)
            os.chown(sub, 1, 2)
            f = os.path.join(root, BASE_FILE)
            with open(f, "w") as fh:
                fh.write("Some data")
            os.chmod(f, FILE_MODE)
        finally:
            driver.put(name)
    finally:
        os.umask(old)


def verify_base(driver: Driver, name: str, perm: int) -> None:
    root = driver.get(name)
    try:
        st = os.stat(root)
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == perm, oct(st.st_mode)
        assert (st.st_uid, st.st_gid) == (0, 0)
        st = os.lstat(os.path.join(root, BASE_DIR))
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == SUBDIR_MODE
        assert (st.st_uid, st.st_gid) == (1, 2)
        st = os.lstat(os.path.join(root, BASE_FILE))
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == FILE_MODE
        assert (st.st_uid, st.st_gid) == (0, 0)
        assert sorted(_entries(root)) == sorted([BASE_DIR, BASE_FILE])
    finally:
        driver.put(name)


def _entries(path: str) -> list[str]:
    return [e for e in os.listdir(path) if e != "lost+found"]


def _content(seed: int) -> bytes:
    return hashlib.sha512(f"seed-{seed}".encode()).digest()


def add_many_files(driver: Driver, layer: str, n: int, seed: int) -> None:
    root = driver.get(layer)
    try:
        for i in range(0, n, 100):
            d = os.path.join(root, f"directory-{i}")
            os.makedirs(d, 0o755, exist_ok=True)
            for j in range(min(100, n - i)):
                p = os.path.join(d, f"file-{i + j}")
                with open(p, "wb") as fh:
                    fh.write(_content(seed + i + j))
                os.chmod(p, 0o755)
    finally:
        driver.put(layer)


def check_many_files(driver: Driver, layer: str, n: int, seed: int) -> None:
    root = driver.get(layer)
    try:
        for i in range(0, n, 100):
            for j in range(min(100, n - i)):
                with open(os.path.join(root, f"directory-{i}", f"file-{i + j}"), "rb") as fh:
                    assert fh.read() == _content(seed + i + j), f"file-{i + j}"
    finally:
        driver.put(layer)


def write_file(driver: Driver, layer: str, rel: str, data: bytes, mode: int = 0o755) -> None:
    root = driver.get(layer)
    try:
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
        os.chmod(p, mode)
    finally:
        driver.put(layer)


def read_file(driver: Driver, layer: str, rel: str) -> bytes:
    root = driver.get(layer)
    try:
        with open(os.path.join(root, rel), "rb") as fh:
            return fh.read()
    finally:
        driver.put(layer)


def sorted_changes(changes: Sequence[Change]) -> list[tuple[str, int]]:
    return sorted((c.path, int(c.kind)) for c in changes)


def _changes(driver: Driver, layer: str, parent: str | None) -> list[tuple[str, int]]:
    from ..idtools import IDMappings

    return sorted_changes(driver.changes(layer, IDMappings(), parent, IDMappings()))


# --- the kit ------------------------------------------------------------------------------
class DriverConformance:
    """Scenarios of driver-api.md §7. Tune with class attributes."""

    #: depth of the DeepLayerRead scenario (overlay upstream uses 128)
    deep_layers = 200
    #: files in DiffApply (upstream: vfs 100, overlay 10)
    diff_apply_files = 100
    #: whether the driver honours a per-layer ``size`` storage option (SetQuota)
    supports_quota = False
    #: whether device nodes can be created in layers (root and not in a restricted ns)
    device_nodes = os.geteuid() == 0
    #: whether a child reads through its parent's storage (overlay's lower layers): then
    #: removing the parent leaves a child that fails to mount with a not-found error
    children_share_parent = False
    #: how ``changes`` reports a directory made opaque over a lower one: upstream's native
    #: overlay diff says Delete of the directory plus Adds of its new contents; the generic
    #: walk says Modify of the directory plus a Delete per hidden entry
    opaque_dir_is_delete = False
    #: whether ``list_layers`` can enumerate (upstream's zfs cannot: other datasets may
    #: share its parent, so it answers "driver not supported")
    lists_layers = True

    @pytest.fixture
    def driver(self, driver_factory: DriverFactory) -> Iterator[Driver]:
        d = driver_factory()
        created: list[str] = []
        original_create = d.create
        original_rw = d.create_read_write

        def track_create(id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
            original_create(id, parent, opts)
            created.append(id)

        def track_rw(id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
            original_rw(id, parent, opts)
            created.append(id)

        d.create = track_create  # type: ignore[method-assign]
        d.create_read_write = track_rw  # type: ignore[method-assign]
        try:
            yield d
        finally:
            errors: list[BaseException] = []
            for layer in reversed(created):
                try:
                    if d.exists(layer):
                        d.remove(layer)
                except BaseException as e:  # report every failing removal
                    errors.append(e)
            d.cleanup()
            assert not errors, f"removing layers failed: {errors}"

    # 1
    def test_create_empty(self, driver: Driver) -> None:
        driver.create("empty", None)
        assert driver.exists("empty")
        root = driver.get("empty")
        try:
            st = os.stat(root)
            assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555
            assert (st.st_uid, st.st_gid) == (0, 0) or os.geteuid() != 0
            assert _entries(root) == []
        finally:
            driver.put("empty")

    # 2
    def test_create_base(self, driver: Driver) -> None:
        create_base(driver, "Base1")
        verify_base(driver, "Base1", 0o555)

    # 3
    def test_create_snap(self, driver: Driver) -> None:
        create_base(driver, "Base2")
        driver.create("Snap2", "Base2")
        verify_base(driver, "Snap2", 0o555)
        root = driver.get("Snap2")
        try:
            os.chmod(root, 0o711)
        finally:
            driver.put("Snap2")
        driver.create("SecondSnap", "Snap2")
        verify_base(driver, "SecondSnap", 0o711)

    # 4
    def test_create_from_template(self, driver: Driver) -> None:
        from ..idtools import IDMappings

        create_base(driver, "Base3")
        driver.create("Snap3", "Base3")
        write_file(driver, "Snap3", "testfile.txt", b"test content")
        for name, rw in (("FromTemplate", True), ("ROFromTemplate", False)):
            driver.create_from_template(name, "Snap3", IDMappings(), "Base3", IDMappings(), None, rw)
        for name in ("FromTemplate", "ROFromTemplate"):
            assert _changes(driver, name, "Snap3") == []
        for name in ("Snap3", "FromTemplate", "ROFromTemplate"):
            assert read_file(driver, name, "testfile.txt") == b"test content"
            assert _changes(driver, name, "Base3") == [("/testfile.txt", ChangeKind.ADD)]
        verify_base(driver, "Base3", 0o555)
        for name in ("ROFromTemplate", "FromTemplate"):
            driver.remove(name)

    # 5
    def test_deep_layer_read(self, driver: Driver) -> None:
        write_layer_chain(driver, self.deep_layers)
        top = f"layer-{self.deep_layers}"
        root = driver.get(top)
        try:
            with open(os.path.join(root, "top-id")) as fh:
                assert fh.read() == top
            expected = top
            for k in range(self.deep_layers, 0, -1):
                with open(os.path.join(root, f"layer-{k}", "layer-id")) as fh:
                    assert fh.read() == expected
                with open(os.path.join(root, f"layer-{k}", "parent-id")) as fh:
                    expected = fh.read()
            with open(os.path.join(root, "testfile.txt")) as fh:
                assert fh.read() == "test content"
        finally:
            driver.put(top)

    # 6
    def test_diff_apply(self, driver: Driver) -> None:
        from ..idtools import IDMappings

        n = self.diff_apply_files
        driver.create("base", None)
        add_many_files(driver, "base", n, 3)
        write_file(driver, "base", "file-remove.txt", b"This file should get removed in upper!")
        root = driver.get("base")
        os.makedirs(os.path.join(root, "var", "lib"))
        driver.put("base")
        driver.create("upper", "base")
        add_many_files(driver, "upper", n, 6)
        root = driver.get("upper")
        os.remove(os.path.join(root, "file-remove.txt"))
        os.rmdir(os.path.join(root, "var", "lib"))
        driver.put("upper")
        size = driver.diff_size("upper", IDMappings(), None, IDMappings())
        driver.create("target", "base")
        check_many_files(driver, "target", n, 3)
        assert read_file(driver, "target", "file-remove.txt")
        with driver.diff("upper", IDMappings(), "base", IDMappings()) as tar:
            applied = driver.apply_diff("target", "base", ApplyDiffOpts(diff=tar))
        assert applied == size
        check_many_files(driver, "target", n, 6)
        root = driver.get("target")
        try:
            assert not os.path.exists(os.path.join(root, "file-remove.txt"))
            assert not os.path.exists(os.path.join(root, "var", "lib"))
        finally:
            driver.put("target")

    # 7
    def test_changes(self, driver: Driver) -> None:
        n = 20
        driver.create("base", None)
        add_many_files(driver, "base", n, 3)
        driver.create("upper", "base")
        expected: list[tuple[str, int]] = []
        root = driver.get("upper")
        try:
            for i in range(0, n, 100):
                d = f"directory-{i}"
                expected.append((f"/{d}", ChangeKind.MODIFY))
                for j in range(min(100, n - i)):
                    path = os.path.join(root, d, f"file-{i + j}")
                    if j % 3 == 0:
                        before = os.stat(path).st_mtime_ns
                        while True:
                            with open(path, "wb") as fh:
                                fh.write(_content(99 + i + j))
                            if os.stat(path).st_mtime_ns != before:
                                break
                            time.sleep(0.01)
                        expected.append((f"/{d}/file-{i + j}", ChangeKind.MODIFY))
                    elif j % 3 == 1:
                        with open(os.path.join(root, d, f"file-6-{i + j}"), "wb") as fh:
                            fh.write(_content(6 + i + j))
                        expected.append((f"/{d}/file-6-{i + j}", ChangeKind.ADD))
                    else:
                        os.remove(path)
                        expected.append((f"/{d}/file-{i + j}", ChangeKind.DELETE))
        finally:
            driver.put("upper")
        assert _changes(driver, "upper", "base") == sorted(expected)

    # 8
    def test_set_quota(self, driver: Driver) -> None:
        import errno

        if not self.supports_quota:
            pytest.skip("driver has no per-layer size quota")
        create_base(driver, "Base4")
        driver.create_read_write("quotaTest", "Base4", CreateOpts(storage_opt={"size": "50M"}))
        root = driver.get("quotaTest")
        try:
            with pytest.raises(OSError) as info, open(os.path.join(root, "file"), "wb") as fh:
                for _ in range(100):
                    fh.write(b"\0" * (1 << 20))
                    fh.flush()
                    os.fsync(fh.fileno())
            assert info.value.errno == errno.EDQUOT
        finally:
            driver.put("quotaTest")

    # 9
    @pytest.mark.parametrize("depth", range(10))
    def test_echo(self, driver: Driver, depth: int) -> None:
        create_base(driver, "base")
        verify_base(driver, "base", 0o555)
        paths = ["/subdir1"]
        for k in range(2, 10):
            paths.append(f"{paths[-1]}/subdir{k}")
        file_path = f"{paths[-1]}/file"
        root = driver.get("base")
        try:
            os.makedirs(root + paths[-1], 0o700)
            for p in paths:
                os.chmod(root + p, 0o700)
            with open(root + file_path, "wb") as fh:
                fh.write(b"x" * 128)
        finally:
            driver.put("base")
        all_paths = [*paths, file_path]
        expected = [("/" + BASE_FILE, ChangeKind.ADD), ("/" + BASE_DIR, ChangeKind.ADD)]
        expected += [(p, ChangeKind.ADD) for p in all_paths]
        assert _changes(driver, "base", None) == sorted(expected)

        driver.create("second", "base")
        root = driver.get("second")
        try:
            target = root + all_paths[depth]
            if os.path.isdir(target):
                import shutil

                shutil.rmtree(target)
            else:
                os.remove(target)
        finally:
            driver.put("second")
        expected = [(p, ChangeKind.MODIFY) for p in all_paths[:depth]] + [
            (all_paths[depth], ChangeKind.DELETE)
        ]
        assert _changes(driver, "second", "base") == sorted(expected)

        driver.create("third", "second")
        root = driver.get("third")
        try:
            for p in paths[depth:]:
                os.mkdir(root + p, 0o700)
            with open(root + file_path, "wb") as fh:
                fh.write(b"x" * 128)
        finally:
            driver.put("third")
        expected = [(p, ChangeKind.MODIFY) for p in all_paths[:depth]]
        expected += [(p, ChangeKind.ADD) for p in all_paths[depth:]]
        assert _changes(driver, "third", "second") == sorted(set(expected))

    # 10
    def test_list_layers(self, driver: Driver) -> None:
        create_base(driver, "base")
        add_many_files(driver, "base", 20, 3)
        driver.create("mid", "base")
        add_many_files(driver, "mid", 20, 4)
        driver.create("upper", "mid")
        if not self.lists_layers:
            from ..errors import DriverNotSupported

            with pytest.raises(DriverNotSupported):
                driver.list_layers()
            return
        assert sorted(driver.list_layers()) == ["base", "mid", "upper"]

    # -- beyond upstream's kit -----------------------------------------------------------
    def test_every_file_kind_survives_snapshot(self, driver: Driver) -> None:
        """Owners, modes, xattrs, hard links, symlinks, fifos, devices carry into a child."""
        driver.create("kinds", None)
        root = driver.get("kinds")
        try:
            populate_every_kind(root, self.device_nodes)
            want = describe_tree(root)
        finally:
            driver.put("kinds")
        driver.create("kinds-child", "kinds")
        root = driver.get("kinds-child")
        try:
            assert describe_tree(root) == want
        finally:
            driver.put("kinds-child")
        assert _changes(driver, "kinds-child", "kinds") == []

    def test_whiteouts_applied(self, driver: Driver) -> None:
        """A diff that deletes a file and makes a directory opaque reads back that way."""
        import tarfile

        from ..idtools import IDMappings

        apply_whiteout_diff(driver, "wbase", "wtop")
        root = driver.get("wtop")
        try:
            assert not os.path.exists(os.path.join(root, "gone"))
            assert sorted(os.listdir(os.path.join(root, "dir"))) == ["new"]
            assert os.path.exists(os.path.join(root, "other", "x"))
        finally:
            driver.put("wtop")
        want = [("/gone", ChangeKind.DELETE), ("/dir/new", ChangeKind.ADD)]
        if self.opaque_dir_is_delete:
            want.append(("/dir", ChangeKind.DELETE))
        else:
            want += [
                ("/dir", ChangeKind.MODIFY),
                ("/dir/old", ChangeKind.DELETE),
                ("/dir/keep-not", ChangeKind.DELETE),
            ]
        assert _changes(driver, "wtop", "wbase") == sorted(want)
        with (
            driver.diff("wtop", IDMappings(), "wbase", IDMappings()) as tar,
            tarfile.open(fileobj=tar, mode="r|") as tf,
        ):
            names = sorted(m.name for m in tf)
        hidden = ["dir/.wh..wh..opq"] if self.opaque_dir_is_delete else ["dir/.wh.keep-not", "dir/.wh.old"]
        assert names == sorted(["dir", "dir/new", ".wh.gone", *hidden])

    def test_diff_round_trip(self, driver: Driver) -> None:
        """A full diff applied to a new base layer reproduces the tree exactly."""
        from ..idtools import IDMappings

        driver.create("src", None)
        root = driver.get("src")
        try:
            populate_every_kind(root, self.device_nodes)
            want = describe_tree(root)
        finally:
            driver.put("src")
        with driver.diff("src", IDMappings(), None, IDMappings()) as tar:
            driver.create("copy", None)
            driver.apply_diff("copy", None, ApplyDiffOpts(diff=tar))
        root = driver.get("copy")
        try:
            assert describe_tree(root) == want
        finally:
            driver.put("copy")

    def test_mount_counting(self, driver: Driver) -> None:
        """Nested get/put pairs: the content stays reachable until the last put."""
        create_base(driver, "counted")
        first = driver.get("counted")
        second = driver.get("counted")
        assert first == second
        driver.put("counted")
        assert sorted(_entries(first)) == sorted([BASE_DIR, BASE_FILE])
        driver.put("counted")
        verify_base(driver, "counted", 0o555)

    def test_concurrent_get_put(self, driver: Driver) -> None:
        create_base(driver, "shared")
        failures: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(20):
                    root = driver.get("shared")
                    try:
                        with open(os.path.join(root, BASE_FILE), "rb") as fh:
                            assert fh.read() == b"Some data"
                    finally:
                        driver.put("shared")
            except BaseException as e:
                failures.append(e)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
        verify_base(driver, "shared", 0o555)

    def test_remove_with_children(self, driver: Driver) -> None:
        """Removing a parent (which the store never does while children exist) leaves a
        self-contained child intact, and a child that shares its parent's storage failing
        clearly rather than showing partial data."""
        create_base(driver, "parent")
        driver.create("child", "parent")
        write_file(driver, "child", "mine", b"child data")
        driver.remove("parent")
        assert not driver.exists("parent")
        if self.children_share_parent:
            assert driver.exists("child")
            with pytest.raises(FileNotFoundError):
                driver.get("child")
            return
        assert read_file(driver, "child", "mine") == b"child data"
        verify_base_contents_only(driver, "child")

    def test_id_maps_of_a_chain(self, driver: Driver) -> None:
        """A layer re-owned for other ID maps than its parent's, as the store asks
        (``create`` then ``update_layer_id_map``): files get the new host IDs, the root the
        new maps' root whatever owned the parent's, and hard links stay one inode (overlay
        copies up only the name a chown goes through). IDs stay below 2^31, which zfs-fuse
        cannot store."""
        from ..idtools import IDMap, IDMappings

        if os.geteuid() != 0:
            pytest.skip("re-owning files needs root")
        first = IDMappings((IDMap(0, 100000, 65536),), (IDMap(0, 300000, 65536),))
        second = IDMappings((IDMap(0, 500000, 65536),), (IDMap(0, 700000, 65536),))
        driver.create("ids", None, CreateOpts(id_mappings=first))
        driver.update_layer_id_map("ids", IDMappings(), first)
        root = driver.get("ids")
        try:
            for name, cid in (("one", 1), ("origin", 2)):
                with open(os.path.join(root, name), "w") as fh:
                    fh.write(name)
                os.chown(os.path.join(root, name), 100000 + cid, 300000 + cid)
            os.link(os.path.join(root, "origin"), os.path.join(root, "link"))
            os.mkdir(os.path.join(root, "dir"))
            os.link(os.path.join(root, "origin"), os.path.join(root, "dir", "link"))
        finally:
            driver.put("ids")
        children = (("ids-other", second, (500000, 700000)), ("ids-host", IDMappings(), (0, 0)))
        for child, maps, base in children:
            driver.create(child, "ids", CreateOpts(id_mappings=maps))
            driver.update_layer_id_map(child, first, maps)
            root = driver.get(child)
            try:
                owners = {
                    name: os.lstat(os.path.join(root, name))[4:6] for name in (".", "one", "origin", "dir")
                }
                assert owners == {
                    ".": base,
                    "one": (base[0] + 1, base[1] + 1),
                    "origin": (base[0] + 2, base[1] + 2),
                    "dir": base,
                }, child
                inodes = {os.lstat(os.path.join(root, n)).st_ino for n in ("origin", "link", "dir/link")}
                assert len(inodes) == 1, f"{child}: hard links split"
                with open(os.path.join(root, "link")) as fh:
                    assert fh.read() == "origin"
            finally:
                driver.put(child)

    def test_missing_layer(self, driver: Driver) -> None:
        assert not driver.exists("no-such-layer")
        with pytest.raises(Exception):  # noqa: B017 - drivers differ in the error class
            driver.get("no-such-layer")


def apply_whiteout_diff(driver: Driver, base: str, top: str) -> None:
    """Layer ``base`` with ``gone``, ``dir/old``, ``dir/keep-not``, ``other/x``, and layer
    ``top`` on it made by applying a tar that whites out ``gone`` and makes ``dir`` opaque
    with one new file ``dir/new``."""
    import io
    import tarfile

    driver.create(base, None)
    root = driver.get(base)
    try:
        for rel in ("gone", "dir/old", "dir/keep-not", "other/x"):
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as fh:
                fh.write(rel)
    finally:
        driver.put(base)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in ((".wh.gone", b""), ("dir/.wh..wh..opq", b""), ("dir/new", b"new")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    driver.create(top, base)
    driver.apply_diff(top, base, ApplyDiffOpts(diff=buf))


def verify_base_contents_only(driver: Driver, name: str) -> None:
    root = driver.get(name)
    try:
        assert {BASE_DIR, BASE_FILE} <= set(_entries(root))
    finally:
        driver.put(name)


def write_layer_chain(driver: Driver, depth: int) -> None:
    """Base with ``testfile.txt`` and ``depth`` layers, each recording its id and parent."""
    driver.create("layer-0", None)
    write_file(driver, "layer-0", "testfile.txt", b"test content")
    for k in range(1, depth + 1):
        layer, parent = f"layer-{k}", f"layer-{k - 1}"
        driver.create(layer, parent)
        write_file(driver, layer, "top-id", layer.encode())
        write_file(driver, layer, f"layer-{k}/layer-id", layer.encode())
        write_file(driver, layer, f"layer-{k}/parent-id", parent.encode())


def populate_every_kind(root: str, device_nodes: bool) -> None:
    """Files of every kind the kit checks: modes, owners, xattrs, links, fifo, devices."""
    old = os.umask(0)
    try:
        os.makedirs(os.path.join(root, "dir/sub"), 0o750)
        os.chmod(os.path.join(root, "dir"), 0o1777)
        with open(os.path.join(root, "dir/file"), "wb") as fh:
            fh.write(b"x" * 5000)
        os.chmod(os.path.join(root, "dir/file"), 0o4755)
        os.link(os.path.join(root, "dir/file"), os.path.join(root, "hardlink"))
        os.symlink("dir/file", os.path.join(root, "symlink"))
        os.symlink("/absolute/dangling", os.path.join(root, "dangling"))
        os.mkfifo(os.path.join(root, "fifo"), 0o640)
        with open(os.path.join(root, "empty"), "wb"):
            pass
        os.setxattr(os.path.join(root, "empty"), "user.kit", b"value")
        os.utime(os.path.join(root, "empty"), ns=(1_700_000_000_123_456_789,) * 2)
        if os.geteuid() == 0:
            os.chown(os.path.join(root, "dir/sub"), 1000, 1001)
            os.lchown(os.path.join(root, "symlink"), 7, 8)
        if device_nodes:
            os.mknod(os.path.join(root, "chardev"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
            os.mknod(os.path.join(root, "blockdev"), stat.S_IFBLK | 0o600, os.makedev(7, 0))
    finally:
        os.umask(old)


def describe_tree(root: str) -> dict[str, Any]:
    """What the kit compares: type, mode, owner, size, rdev, link target, xattrs, mtime of
    non-directories, and which paths share an inode."""
    out: dict[str, Any] = {}
    inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            try:
                xattrs = {
                    k: os.getxattr(path, k, follow_symlinks=False)
                    for k in os.listxattr(path, follow_symlinks=False)
                    if k.startswith("user.")
                }
            except OSError:
                xattrs = {}
            entry: dict[str, Any] = {
                "mode": st.st_mode,
                "owner": (st.st_uid, st.st_gid),
                "xattrs": xattrs,
                "rdev": st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else 0,
            }
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif not stat.S_ISDIR(st.st_mode):
                entry["size"] = st.st_size
                entry["mtime"] = st.st_mtime_ns // 1_000_000_000
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1:
                    entry["link_group"] = inodes.setdefault(key, rel)
            out[rel] = entry
    return out


__all__ = [
    "DriverConformance",
    "DriverFactory",
    "MountOpts",
    "add_many_files",
    "apply_whiteout_diff",
    "check_many_files",
    "create_base",
    "describe_tree",
    "populate_every_kind",
    "verify_base",
    "write_layer_chain",
]
