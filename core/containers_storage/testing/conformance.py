"""The graph-driver conformance kit (driver-api.md §7), for any driver.

Subclass :class:`DriverConformance` in your driver's tests. Name the driver class and the
kit builds every driver on fresh graph and run roots in a temporary directory on a disk
filesystem (mounts left below it are undone afterwards)::

    from containers_storage.testing.conformance import DriverConformance
    from containers_storage_tiny.driver import TinyDriver

    class TestTinyConformance(DriverConformance):
        driver_class = TinyDriver

A driver that needs a backing filesystem of its own (btrfs, a ZFS dataset) provides a
``driver_factory`` fixture instead: a callable ``factory(options=()) -> Driver`` building
a fresh driver on fresh roots there; the kit then uses it. Class attributes tune the
scenarios; ``driver_options`` are passed to every driver the kit builds, and to the stores.

Besides upstream's scenarios the kit checks file kinds, whiteouts, diff round trips, mount
counting, concurrency, ``probe`` and ``status``, that unknown options are refused, and
drives the driver through a real :class:`~containers_storage.store.Store` (import, mount,
diff, changes, an image and a container, delete, check). Every failed check says the rule
and the value found. ``bench/kit_bench.py`` runs the same scenarios as a benchmark.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import pytest

from ..drivers.api import ApplyDiffOpts, Change, ChangeKind, CreateOpts, Driver, DriverConfig, MountOpts
from .store_scenarios import StoreScenarios, expect_raises

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
    """What :func:`create_base` made, with the layer's root of mode ``perm``."""
    root = driver.get(name)
    try:
        st = os.stat(root)
        assert stat.S_ISDIR(st.st_mode), f"layer {name}'s root must be a directory, got mode {st.st_mode:o}"
        assert stat.S_IMODE(st.st_mode) == perm, (
            f"layer {name}'s root must have mode {perm:04o}, got {stat.S_IMODE(st.st_mode):04o}"
        )
        assert (st.st_uid, st.st_gid) == (0, 0), (
            f"layer {name}'s root must be owned by 0:0, got {st.st_uid}:{st.st_gid}"
        )
        st = os.lstat(os.path.join(root, BASE_DIR))
        got = (stat.S_ISDIR(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        assert got == (True, SUBDIR_MODE, 1, 2), (
            f"{BASE_DIR!r} in layer {name} must be a directory of mode {SUBDIR_MODE:04o} owned by 1:2, "
            f"got {_kind(st.st_mode)} of mode {got[1]:04o} owned by {got[2]}:{got[3]}"
        )
        st = os.lstat(os.path.join(root, BASE_FILE))
        got = (stat.S_ISREG(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
        assert got == (True, FILE_MODE, 0, 0), (
            f"{BASE_FILE!r} in layer {name} must be a regular file of mode {FILE_MODE:04o} owned by 0:0, "
            f"got {_kind(st.st_mode)} of mode {got[1]:04o} owned by {got[2]}:{got[3]}"
        )
        entries = sorted(_entries(root))
        assert entries == sorted([BASE_DIR, BASE_FILE]), (
            f"layer {name} must hold exactly {sorted([BASE_DIR, BASE_FILE])}, got {entries}"
        )
    finally:
        driver.put(name)


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a regular file"),
                       (stat.S_ISLNK, "a symlink"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a fifo")):
        if test(mode):
            return word
    return f"a file of type {stat.S_IFMT(mode):o}"


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
                rel = os.path.join(f"directory-{i}", f"file-{i + j}")
                with open(os.path.join(root, rel), "rb") as fh:
                    data = fh.read()
                assert data == _content(seed + i + j), (
                    f"{rel} in layer {layer} must hold the {len(_content(0))} bytes written with seed "
                    f"{seed + i + j}, got {len(data)} bytes that differ"
                )
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
def temporary_driver_factory(
    driver_class: type[Driver], directory: str, name: str | None = None
) -> tuple[DriverFactory, list[Driver]]:
    """A factory of ``driver_class`` drivers, each on fresh graph and run roots below
    ``directory``, and the list of the drivers it built (to clean up)."""
    built: list[Driver] = []
    counter = iter(range(1 << 30))

    def factory(options: Sequence[str] = ()) -> Driver:
        n = next(counter)
        root, run = os.path.join(directory, f"graph{n}"), os.path.join(directory, f"run{n}")
        os.makedirs(root)
        os.makedirs(run)
        driver = driver_class(DriverConfig(name or driver_class.name, root, run, options=tuple(options)))
        built.append(driver)
        return driver

    return factory, built


class DriverConformance(StoreScenarios):
    """Scenarios of driver-api.md §7 and more (see the module docstring). Tune with class
    attributes."""

    #: the driver under test, for the kit's own temporary-root factory (not needed when
    #: a ``driver_factory`` fixture is defined)
    driver_class: ClassVar[type[Driver] | None] = None
    #: options every driver the kit builds gets (``key=value``, as in ``--storage-opt``)
    driver_options: ClassVar[tuple[str, ...]] = ()
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
    def kit_factory(self, request: pytest.FixtureRequest) -> Iterator[DriverFactory]:
        """The ``driver_factory`` fixture when there is one, else the kit's own
        temporary-root factory of :attr:`driver_class`."""
        try:
            given: DriverFactory = request.getfixturevalue("driver_factory")
        except pytest.FixtureLookupError:
            pass
        else:
            yield given
            return
        if self.driver_class is None:
            pytest.fail(
                f"{type(self).__name__} must set driver_class (the Driver subclass under test) "
                "or a driver_factory fixture must be defined"
            )
        from .backends import disk_scratch_dir

        with disk_scratch_dir("cs-kit-") as directory:
            factory, built = temporary_driver_factory(self.driver_class, directory)
            try:
                yield factory
            finally:
                for d in built:
                    with contextlib.suppress(Exception):
                        d.cleanup()

    @pytest.fixture
    def driver(self, kit_factory: DriverFactory) -> Iterator[Driver]:
        d = kit_factory(options=self.driver_options)
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
            assert not errors, f"removing every layer a scenario made must succeed, got {errors}"

    # 1
    def test_create_empty(self, driver: Driver) -> None:
        driver.create("empty", None)
        assert driver.exists("empty"), "exists() must be true for a layer just created"
        root = driver.get("empty")
        try:
            st = os.stat(root)
            mode = stat.S_IMODE(st.st_mode)
            assert stat.S_ISDIR(st.st_mode) and mode == 0o555, (
                f"a new base layer's root must be a directory of mode 0555, got {_kind(st.st_mode)} "
                f"of mode {mode:04o}"
            )
            assert (st.st_uid, st.st_gid) == (0, 0) or os.geteuid() != 0, (
                f"a new base layer's root must be owned by 0:0, got {st.st_uid}:{st.st_gid}"
            )
            assert _entries(root) == [], f"a new base layer must be empty, got {_entries(root)}"
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
            got = _changes(driver, name, "Snap3")
            assert got == [], f"a layer made from template Snap3 must show no changes against it, got {got}"
        for name in ("Snap3", "FromTemplate", "ROFromTemplate"):
            data = read_file(driver, name, "testfile.txt")
            assert data == b"test content", f"testfile.txt in {name} must read b'test content', got {data!r}"
            got = _changes(driver, name, "Base3")
            assert got == [("/testfile.txt", ChangeKind.ADD)], (
                f"{name} against Base3 must show exactly the added /testfile.txt, got {got}"
            )
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
                got = fh.read()
            assert got == top, (
                f"top-id in the top of a {self.deep_layers}-layer chain must be {top!r}, got {got!r}"
            )
            expected = top
            for k in range(self.deep_layers, 0, -1):
                with open(os.path.join(root, f"layer-{k}", "layer-id")) as fh:
                    got = fh.read()
                assert got == expected, (
                    f"layer-{k}/layer-id seen from {top} must be {expected!r}, got {got!r}"
                )
                with open(os.path.join(root, f"layer-{k}", "parent-id")) as fh:
                    expected = fh.read()
            with open(os.path.join(root, "testfile.txt")) as fh:
                got = fh.read()
            assert got == "test content", (
                f"the base's testfile.txt seen from {top} must read 'test content', got {got!r}"
            )
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
        assert read_file(driver, "target", "file-remove.txt"), (
            "a child of base must see base's file-remove.txt"
        )
        with driver.diff("upper", IDMappings(), "base", IDMappings()) as tar:
            applied = driver.apply_diff("target", "base", ApplyDiffOpts(diff=tar))
        assert applied == size, (
            f"apply_diff must return the diff's size diff_size() said ({size}), got {applied}"
        )
        check_many_files(driver, "target", n, 6)
        root = driver.get("target")
        try:
            for gone in ("file-remove.txt", "var/lib"):
                assert not os.path.exists(os.path.join(root, gone)), (
                    f"{gone}, deleted in upper, must be gone after applying upper's diff, but it exists"
                )
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
        got = _changes(driver, "upper", "base")
        assert got == sorted(expected), _differ("changes of upper against base", sorted(expected), got)

    # 8
    def test_set_quota(self, driver: Driver) -> None:
        import errno

        if not self.supports_quota:
            pytest.skip("driver has no per-layer size quota")
        create_base(driver, "Base4")
        driver.create_read_write("quotaTest", "Base4", CreateOpts(storage_opt={"size": "50M"}))
        root = driver.get("quotaTest")
        try:

            def fill() -> None:
                with open(os.path.join(root, "file"), "wb") as fh:
                    for _ in range(100):
                        fh.write(b"\0" * (1 << 20))
                        fh.flush()
                        os.fsync(fh.fileno())

            exc = expect_raises(OSError, "writing 100 MiB into a layer with size=50M must fail", fill)
            assert exc.errno == errno.EDQUOT, (
                "a layer's size quota must fail writes with EDQUOT, "
                f"got {errno.errorcode.get(exc.errno or 0)}: {exc}"
            )
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
        got = _changes(driver, "base", None)
        assert got == sorted(expected), _differ("changes of a base layer (no parent)", sorted(expected), got)

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
        got = _changes(driver, "second", "base")
        assert got == sorted(expected), (
            _differ(f"changes after deleting {all_paths[depth]}", sorted(expected), got)
        )

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
        got = _changes(driver, "third", "second")
        assert got == sorted(set(expected)), (
            _differ("changes after re-creating them", sorted(set(expected)), got)
        )

    # 10
    def test_list_layers(self, driver: Driver) -> None:
        create_base(driver, "base")
        add_many_files(driver, "base", 20, 3)
        driver.create("mid", "base")
        add_many_files(driver, "mid", 20, 4)
        driver.create("upper", "mid")
        if not self.lists_layers:
            from ..errors import DriverNotSupported

            expect_raises(
                DriverNotSupported,
                "a driver that cannot enumerate must say so in list_layers()",
                driver.list_layers,
            )
            return
        got = sorted(driver.list_layers())
        assert got == ["base", "mid", "upper"], f"list_layers() must list the three layers made, got {got}"

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
            got = describe_tree(root)
            assert got == want, _differ("a child's tree must equal its parent's", want, got)
        finally:
            driver.put("kinds-child")
        changes = _changes(driver, "kinds-child", "kinds")
        assert changes == [], f"an untouched child must show no changes against its parent, got {changes}"

    def test_whiteouts_applied(self, driver: Driver) -> None:
        """A diff that deletes a file and makes a directory opaque reads back that way."""
        import tarfile

        from ..idtools import IDMappings

        apply_whiteout_diff(driver, "wbase", "wtop")
        root = driver.get("wtop")
        try:
            assert not os.path.exists(os.path.join(root, "gone")), (
                "a whited-out file must be gone, but 'gone' exists"
            )
            listed = sorted(os.listdir(os.path.join(root, "dir")))
            assert listed == ["new"], f"an opaque directory must hide the lower entries, got {listed}"
            assert os.path.exists(os.path.join(root, "other", "x")), (
                "a file not whited out must stay: 'other/x'"
            )
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
        got = _changes(driver, "wtop", "wbase")
        assert got == sorted(want), (
            _differ("changes of the whiteout layer (see opaque_dir_is_delete)", sorted(want), got)
        )
        with (
            driver.diff("wtop", IDMappings(), "wbase", IDMappings()) as tar,
            tarfile.open(fileobj=tar, mode="r|") as tf,
        ):
            names = sorted(m.name for m in tf)
        hidden = ["dir/.wh..wh..opq"] if self.opaque_dir_is_delete else ["dir/.wh.keep-not", "dir/.wh.old"]
        want_names = sorted(["dir", "dir/new", ".wh.gone", *hidden])
        assert names == want_names, _differ("the diff's tar entries", want_names, names)

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
            got = describe_tree(root)
            assert got == want, (
                _differ("a full diff applied to a new layer must reproduce the tree", want, got)
            )
        finally:
            driver.put("copy")

    def test_mount_counting(self, driver: Driver) -> None:
        """Nested get/put pairs: the content stays reachable until the last put."""
        create_base(driver, "counted")
        first = driver.get("counted")
        second = driver.get("counted")
        assert first == second, f"nested get() calls must return one path, got {first!r} and {second!r}"
        driver.put("counted")
        entries = sorted(_entries(first))
        assert entries == sorted([BASE_DIR, BASE_FILE]), (
            f"after one of two put() calls the content must stay reachable, got {entries}"
        )
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
                            data = fh.read()
                        assert data == b"Some data", f"{BASE_FILE!r} must read b'Some data', got {data!r}"
                    finally:
                        driver.put("shared")
            except BaseException as e:
                failures.append(e)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, f"get/put from 4 threads at once must work, got {failures}"
        verify_base(driver, "shared", 0o555)

    def test_remove_with_children(self, driver: Driver) -> None:
        """Removing a parent (which the store never does while children exist) leaves a
        self-contained child intact, and a child that shares its parent's storage failing
        clearly rather than showing partial data."""
        create_base(driver, "parent")
        driver.create("child", "parent")
        write_file(driver, "child", "mine", b"child data")
        driver.remove("parent")
        assert not driver.exists("parent"), "exists() must be false for a removed layer"
        if self.children_share_parent:
            assert driver.exists("child"), "removing a parent must not remove its child's record of itself"
            expect_raises(
                FileNotFoundError,
                "a child whose shared parent was removed must fail to mount with FileNotFoundError "
                "(see children_share_parent)",
                driver.get,
                "child",
            )
            return
        data = read_file(driver, "child", "mine")
        assert data == b"child data", f"a child must survive its parent's removal, 'mine' read {data!r}"
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
                want = {
                    ".": base,
                    "one": (base[0] + 1, base[1] + 1),
                    "origin": (base[0] + 2, base[1] + 2),
                    "dir": base,
                }
                assert owners == want, (
                    f"{child}: re-owning a layer for new ID maps must give its files the new host "
                    f"IDs and its root the new maps' root; {_differ('owners', want, owners)}"
                )
                inodes = {os.lstat(os.path.join(root, n)).st_ino for n in ("origin", "link", "dir/link")}
                assert len(inodes) == 1, (
                    f"{child}: hard links must stay one inode when a layer is re-owned, "
                    f"got {len(inodes)} inodes"
                )
                with open(os.path.join(root, "link")) as fh:
                    content = fh.read()
                assert content == "origin", (
                    f"{child}: a re-owned hard link must keep its content, got {content!r}"
                )
            finally:
                driver.put(child)

    def test_missing_layer(self, driver: Driver) -> None:
        assert not driver.exists("no-such-layer"), "exists() must be false for a layer never made"
        expect_raises(Exception, "get() of a layer never made must raise", driver.get, "no-such-layer")

    def test_probe_accepts_the_driver_and_changes_nothing(self, driver: Driver) -> None:
        """``probe`` says the driver can run where the kit built it, and leaves the roots as
        they are; on roots that do not exist yet it does not create them."""
        from ..errors import PROBE_SKIPPABLE

        config = driver.config
        before = _listing(config.root), _listing(config.run_root)
        try:
            type(driver).probe(config)
        except Exception as exc:
            pytest.fail(f"probe() must accept the roots the driver runs on, got {type(exc).__name__}: {exc}")
        after = _listing(config.root), _listing(config.run_root)
        assert after == before, _differ("probe() must not change the graph or run root", before, after)
        fresh = os.path.join(os.path.dirname(config.root), f"{os.path.basename(config.root)}-never-made")
        unborn = dataclasses.replace(config, root=fresh, run_root=fresh + "-run")
        try:
            type(driver).probe(unborn)
        except PROBE_SKIPPABLE:
            pass  # it may say it cannot run there, as long as it says so this way
        except Exception as exc:
            pytest.fail(
                "probe() on roots that do not exist must return or raise a PROBE_SKIPPABLE error, "
                f"got {type(exc).__name__}: {exc}"
            )
        made = [p for p in (fresh, fresh + "-run") if os.path.lexists(p)]
        assert not made, f"probe() must not create anything, but it made {made}"

    def test_status_pairs(self, driver: Driver) -> None:
        """``status`` is ordered (key, value) string pairs with distinct non-empty keys
        (driver-api.md §6), and asking does not mount anything."""
        create_base(driver, "status-base")
        pairs = driver.status()
        assert isinstance(pairs, list), f"status() must return a list, got {type(pairs).__name__}"
        for pair in pairs:
            assert (
                isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
                and pair[0]
            ), f"each status() item must be a (non-empty key, value) pair of strings, got {pair!r}"
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"status() keys must be distinct, got {keys}"

    def test_unknown_option_is_refused(self, driver: Driver) -> None:
        """An option the driver does not know is a DriverError naming it, at probe or
        construction (upstream's drivers all refuse them)."""
        from ..errors import DriverError

        option = f"{type(driver).name}.kit_no_such_option=1"
        config = dataclasses.replace(driver.config, options=(*driver.config.options, option))

        def build() -> None:
            type(driver).probe(config)
            type(driver)(config).cleanup()

        rule = f"a driver built with the unknown option {option!r} must refuse it"
        exc = expect_raises(DriverError, rule, build)
        assert "kit_no_such_option" in str(exc), (
            f"the error refusing {option!r} must name the option, got {str(exc)!r}"
        )

    def test_kit_options_reach_the_driver(self, driver: Driver) -> None:
        got = tuple(driver.config.options)
        want = tuple(self.driver_options)
        assert got[: len(want)] == want, f"the kit must build drivers with driver_options {want}, got {got}"


def _listing(root: str) -> list[tuple[str, int]]:
    """Every path below ``root`` with its mode (what a probe must leave alone)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            out.append((os.path.relpath(path, root), os.lstat(path).st_mode))
    return sorted(out)


def _differ(what: str, want: Any, got: Any) -> str:
    """``what``: expected ..., got ... (with the entries that differ for lists and dicts)."""
    if isinstance(want, list) and isinstance(got, list):
        missing = [x for x in want if x not in got]
        extra = [x for x in got if x not in want]
        return f"{what}: expected {want}, got {got} (missing {missing}, unexpected {extra})"
    if isinstance(want, dict) and isinstance(got, dict):
        keys = sorted(set(want) | set(got))
        diff = {k: (want.get(k), got.get(k)) for k in keys if want.get(k) != got.get(k)}
        return f"{what}: entries that differ (expected, got): {diff}"
    return f"{what}: expected {want!r}, got {got!r}"


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
        entries = set(_entries(root))
        assert {BASE_DIR, BASE_FILE} <= entries, (
            f"layer {name} must still hold {sorted([BASE_DIR, BASE_FILE])}, got {sorted(entries)}"
        )
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
    "StoreScenarios",
    "add_many_files",
    "apply_whiteout_diff",
    "check_many_files",
    "create_base",
    "describe_tree",
    "populate_every_kind",
    "temporary_driver_factory",
    "verify_base",
    "write_layer_chain",
]
