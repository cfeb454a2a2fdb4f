"""IDs that would leave the store: refused from callers (API and command line) before
anything touches the disk, and never followed when a record written by someone else
holds one. Sentinel files outside the store (and in it, for ``.``, ``..`` and the empty
ID) prove that nothing was written or removed."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from containers_storage.errors import InvalidID
from containers_storage.records.ids import MAX_ID_BYTES, id_problem
from containers_storage.store import CheckOptions, RepairOptions, Store, get_store

from ..cli.conftest import run_main
from .conftest import options

#: what the hostile ID forms aim at, relative to the temp directory holding the store
VICTIM = "victim"
#: store directories that ".", ".." or "" would name (a layer directory's parent, the
#: record directories)
IN_STORE = ("vfs", "vfs-layers", "vfs-images", "vfs-containers")


def hostile_forms(base: Path) -> list[str]:
    """Every refused form; relative ones climb far enough from any store directory."""
    return [
        "../../../../" + VICTIM,
        str(base / VICTIM),
        "..",
        ".",
        "a/b",
        "sub/../../x",
        "nul\x00byte",
        "x" * (MAX_ID_BYTES + 1),
        "bad-\udcff-utf8",
    ]


def tree(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every path under ``root`` with its type and content (lock files excluded: opening a
    store may create them)."""
    out: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if name.endswith(".lock") or name.startswith(".tmp-"):
                continue
            st = os.lstat(path)
            if os.path.islink(path):
                out[rel] = (st.st_mode, os.readlink(path))
            elif os.path.isfile(path):
                out[rel] = (st.st_mode, Path(path).read_bytes())
            else:
                out[rel] = (st.st_mode, b"")
    return out


@dataclass
class Site:
    """A temp directory: sentinels everywhere a hostile ID could point, and a store."""

    base: Path
    store: Store

    @property
    def graph(self) -> Path:
        return Path(self.store.graph_root)

    def sentinels(self) -> list[Path]:
        return sorted(self.base.rglob("sentinel"))


#: the store sits this deep below the test's directory, so that the relative forms climb
#: from every store directory onto a sentinel inside it
DEPTH = ("x", "y")


def store_root(base: Path) -> Path:
    return base.joinpath(*DEPTH, "store")


def plant_sentinels(base: Path) -> None:
    root = store_root(base)
    for d in (base, base / DEPTH[0], base.joinpath(*DEPTH), root, root / "graph", root / "run"):
        (d / VICTIM).mkdir(parents=True, exist_ok=True)
        (d / VICTIM / "sentinel").write_text("keep me\n")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    plant_sentinels(tmp_path)
    with get_store(options(store_root(tmp_path))) as s:
        layer, _ = s.put_layer(names=["base"], diff=io.BytesIO(_tar({"motd": b"hello\n"})))
        img = s.create_image(names=["img"], layer=layer.id)
        s.create_container(names=["ctr"], image=img.id)
        # sentinels inside the store, where ".", ".." and "" would reach
        for d in IN_STORE:
            Path(s.graph_root, d, "sentinel").write_text("keep me\n")
        yield Site(tmp_path, s)


def _tar(files: dict[str, bytes]) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1700000000, 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# -- the rule -------------------------------------------------------------------------
@pytest.mark.parametrize("good", ["a" * 64, "my-layer", "x.y", "with space", "ümlaut", "a" * MAX_ID_BYTES])
def test_ids_that_are_one_path_component_pass(good: str) -> None:
    assert id_problem(good) is None


def test_every_hostile_form_has_a_reason(tmp_path: Path) -> None:
    for bad in [*hostile_forms(tmp_path), ""]:
        assert id_problem(bad), bad


def test_a_driver_restriction_is_part_of_the_rule() -> None:
    from containers_storage_zfs.driver import ZfsDriver

    assert ZfsDriver.layer_id_pattern is not None
    assert id_problem("layer@snap", ZfsDriver.layer_id_pattern)  # another dataset's snapshot
    assert id_problem("layer#mark", ZfsDriver.layer_id_pattern)
    assert id_problem("a" * 64, ZfsDriver.layer_id_pattern) is None


# -- callers: the API -------------------------------------------------------------------
CREATORS: dict[str, Callable[[Store, str], object]] = {
    "create_layer": lambda s, i: s.create_layer(id=i),
    "create_layer on a parent": lambda s, i: s.create_layer(id=i, parent="base"),
    "put_layer": lambda s, i: s.put_layer(id=i, diff=io.BytesIO(_tar({"f": b"x"}))),
    "create_image": lambda s, i: s.create_image(id=i, layer="base"),
    "create_container": lambda s, i: s.create_container(id=i, image="img"),
    "create_container's layer": lambda s, i: s.create_container(image="img", layer=i),
}


@pytest.mark.parametrize("creator", CREATORS)
def test_the_api_refuses_hostile_ids_and_touches_nothing(site: Site, creator: str) -> None:
    before = tree(site.base)
    for bad in hostile_forms(site.base):
        with pytest.raises(InvalidID, match="not a valid ID"):
            CREATORS[creator](site.store, bad)
        assert tree(site.base) == before, f"{creator}({bad!r}) changed the disk"


def test_the_error_names_kind_id_and_reason(site: Site) -> None:
    with pytest.raises(InvalidID) as info:
        site.store.create_image(id="../x", layer="base")
    assert str(info.value) == 'image ID "../x": not a valid ID: it contains "/"'
    assert isinstance(info.value, ValueError)


def test_names_keep_their_freedom(site: Site) -> None:
    """Names never become paths: upstream accepts these, and so do we."""
    sentinels = site.sentinels()
    layer = site.store.create_layer(names=["../../../../victim", "a/b", ".."])
    assert site.store.layer("a/b").id == layer.id
    site.store.delete_layer("../../../../victim")
    assert site.sentinels() == sentinels


# -- callers: the command line ------------------------------------------------------------
CLI_CREATORS = {
    "create-layer": ["create-layer"],
    "import-layer": ["import-layer", "-f", "/dev/null"],
    "create-image": ["create-image", "LAYER"],
    "create-container": ["create-container", "IMAGE"],
    "create-storage-layer": ["create-storage-layer"],
}


@pytest.mark.parametrize("command", CLI_CREATORS)
def test_the_command_refuses_hostile_ids_before_opening_the_store(tmp_path: Path, command: str) -> None:
    plant_sentinels(tmp_path)
    fresh = tmp_path.joinpath(*DEPTH, "fresh")
    graph, run = fresh / "graph", fresh / "run"
    before = tree(tmp_path)
    for bad in hostile_forms(tmp_path):
        if "\x00" in bad:
            continue  # no process argument can hold NUL
        args = [a.replace("LAYER", "x").replace("IMAGE", "x") for a in CLI_CREATORS[command]]
        prefix = ["--graph", str(graph), "--run", str(run), "-s", "vfs"]
        res = run_main(*prefix, *args[:1], "--id", bad, *args[1:])
        assert res.status == 1, (bad, res.stdout, res.stderr)
        assert "not a valid ID" in res.stderr
        assert tree(tmp_path) == before, f"{command} --id {bad!r} changed the disk"
        assert not graph.exists()


def test_create_storage_layer_refuses_a_hostile_parent(site: Site) -> None:
    """That command hands its parent to the driver as given."""
    prefix = ["--graph", str(site.graph), "--run", site.store.run_root, "-s", "vfs"]
    before = tree(site.base)
    res = run_main(*prefix, "create-storage-layer", "../../../../" + VICTIM)
    assert res.status == 1 and "not a valid ID" in res.stderr
    assert tree(site.base) == before


# -- records written by someone else ------------------------------------------------------
def _rewrite(path: Path, change: Callable[[list[dict[str, object]]], None]) -> None:
    records = json.loads(path.read_text())
    change(records)
    path.write_text(json.dumps(records))


def _hostile_store(tmp_path: Path, kind: str, bad: str) -> tuple[Path, str]:
    """A store whose ``kind`` record file holds one record with ID ``bad`` (the ID of a
    real, otherwise healthy record changed by hand), next to healthy records."""
    plant_sentinels(tmp_path)
    root = store_root(tmp_path)
    with get_store(options(root)) as s:
        base, _ = s.put_layer(names=["base"], diff=io.BytesIO(_tar({"motd": b"hello\n"})))
        img = s.create_image(names=["img"], layer=base.id)
        s.create_container(names=["ctr"], image=img.id)
        victim_layer = s.create_layer(names=["lonely"]).id
        victim_image = s.create_image(names=["lonely-img"], layer=base.id).id
        victim_ctr = s.create_container(names=["lonely-ctr"], image=victim_image).id
        s.set_container_big_data(victim_ctr, "state", b"s")
        s.set_image_big_data(victim_image, "config", b"{}")
    graph = root / "graph"
    for d in IN_STORE:
        (graph / d / "sentinel").write_text("keep me\n")
    files = {"layer": "vfs-layers/layers.json", "image": "vfs-images/images.json",
             "container": "vfs-containers/containers.json"}  # fmt: skip
    old = {"layer": victim_layer, "image": victim_image, "container": victim_ctr}[kind]

    def change(records: list[dict[str, object]]) -> None:
        for rec in records:
            if rec["id"] == old:
                rec["id"] = bad

    _rewrite(graph / files[kind], change)
    return root, old


def _record_forms(tmp_path: Path) -> list[str]:
    return [f for f in hostile_forms(tmp_path) if "\udcff" not in f and "\x00" not in f] + ["", "nul\x00byte"]


KINDS = ["layer", "image", "container"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_record_with_a_hostile_id_loads_and_check_reports_it(tmp_path: Path, kind: str) -> None:
    for i, bad in enumerate(_record_forms(tmp_path)):
        root, _old = _hostile_store(tmp_path / str(i), kind, bad)
        with get_store(options(root)) as s:
            listed = {"layer": s.layers, "image": s.images, "container": s.containers}[kind]()
            assert any(x.id == bad for x in listed)
            report = s.check(CheckOptions.everything())
            found = {"layer": report.layers, "image": report.images, "container": report.containers}[kind]
            assert bad in found, (bad, report)
            assert any(isinstance(e, InvalidID) for e in found[bad])


Operation = Callable[[Store, str], object]
FORCE = RepairOptions(remove_containers=True)
OPERATIONS: dict[str, Operation] = {
    "delete": lambda s, i: s.delete(i),
    "repair": lambda s, i: s.repair(s.check(CheckOptions.everything()), FORCE),
    "gc": lambda s, i: s.garbage_collect(),
    "wipe": lambda s, i: s.wipe(),
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_record_with_a_hostile_id_is_never_followed(tmp_path: Path, kind: str, operation: str) -> None:
    for i, bad in enumerate(_record_forms(tmp_path)):
        base = tmp_path / str(i)
        root, _old = _hostile_store(base, kind, bad)
        sentinels = sorted(base.rglob("sentinel"))
        outside = {p: p.read_bytes() for p in sentinels}
        with get_store(options(root)) as s:
            healthy = [(x.id, x.names) for x in s.layers() if "base" in x.names]
            if operation == "delete" and kind == "image":
                s.delete_image(bad)
            elif operation == "delete" and kind == "container":
                s.delete_container(bad)
            elif operation == "delete":
                s.delete_layer(bad)
            else:
                OPERATIONS[operation](s, bad)
            left = {"layer": s.layers, "image": s.images, "container": s.containers}[kind]()
            if operation != "gc":
                assert bad not in {x.id for x in left}, f"{operation} kept the {kind} record {bad!r}"
            if operation != "wipe":
                # the healthy records and their content are all still there
                assert [(x.id, x.names) for x in s.layers() if "base" in x.names] == healthy
                assert s.image("img") and s.container("ctr")
                assert s.check(CheckOptions.everything()).images.get(s.image("img").id) is None
        assert sorted(base.rglob("sentinel")) == sentinels, f"{operation} of {kind} {bad!r} removed one"
        assert {p: p.read_bytes() for p in sentinels} == outside


@pytest.mark.parametrize("kind", KINDS)
def test_the_command_deletes_a_hostile_record_without_following_it(tmp_path: Path, kind: str) -> None:
    bad = "../../../../" + VICTIM
    root, _old = _hostile_store(tmp_path, kind, bad)
    sentinels = sorted(tmp_path.rglob("sentinel"))
    prefix = ["--graph", str(root / "graph"), "--run", str(root / "run"), "-s", "vfs"]
    res = run_main(*prefix, "check")
    assert res.status == 1 and "not a valid ID" in res.stdout, res.stdout
    res = run_main(*prefix, "check", "-r", "-f")
    assert res.status == 0, (res.stdout, res.stderr)
    assert run_main(*prefix, "check").status == 0
    assert sorted(tmp_path.rglob("sentinel")) == sentinels


def test_a_layer_whose_parent_id_is_hostile_is_never_handed_to_the_driver(tmp_path: Path) -> None:
    """A record of a layer whose parent field climbs out: mounting or diffing it must not
    reach the parent's path; check reports it, repair drops only the record."""
    plant_sentinels(tmp_path)
    root = store_root(tmp_path)
    with get_store(options(root)) as s:
        child = s.create_layer(names=["child"]).id
    hostile_parent = "../../../../" + VICTIM
    _rewrite(root / "graph" / "vfs-layers" / "layers.json",
             lambda recs: [r.update(parent=hostile_parent) for r in recs if r["id"] == child])  # fmt: skip
    with get_store(options(root)) as s:
        with pytest.raises(InvalidID):
            s.mount(child)
        with pytest.raises(InvalidID):
            s.diff("", child).read()
        with pytest.raises(InvalidID):
            s.create_layer(parent=child)
        report = s.check(CheckOptions.everything())
        assert any(isinstance(e, InvalidID) for e in report.layers[child])
        assert not s.repair(report)
        assert not s.exists(child)
    assert len(sorted(tmp_path.rglob("sentinel"))) == 6
