"""The store and the command-line tool on a zfs graph root (cli.md), end to end."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from containers_storage.drivers import mounts

from .conftest import Pool

INPUTS = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "go-store-inputs"
BASE_TAR = INPUTS / "base.tar"
CHILD_TAR = INPUTS / "child.tar"
L1, L2, L3 = "1" * 64, "2" * 64, "3" * 64


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str
    out: bytes


Tool = Callable[..., Result]


@pytest.fixture
def tool(zfs_dataset: tuple[str, str], tmp_path: Path) -> Iterator[Tool]:
    """``containers-storage --storage-driver zfs`` on a graph root in the test's dataset."""
    from containers_storage.cli.main import main

    graph = os.path.join(zfs_dataset[1], "graph")
    prefix = ["--graph", graph, "--run", str(tmp_path / "run"), "--storage-driver", "zfs"]

    def run(*args: str, stdin: bytes = b"") -> Result:
        out, err = io.BytesIO(), io.BytesIO()
        saved, sys.stdin = sys.stdin, io.TextIOWrapper(io.BytesIO(stdin))
        try:
            status = main([*prefix, *args], stdout=out, stderr=err)
        finally:
            sys.stdin = saved
        text = err.getvalue().decode()
        assert "Traceback" not in text
        return Result(status, out.getvalue().decode("utf-8", "replace"), text, out.getvalue())

    yield run
    run("shutdown", "-f")


def _layer_datasets(pool: Pool, dataset: str) -> set[str]:
    found = pool.zfs.get([dataset], ["type"], recursive=True)
    return {name.rsplit("/", 1)[1] for name in found if name != dataset}


def test_import_layer_and_diff_round_trip(tool: Tool, zfs_dataset: tuple[str, str], zfs_pool: Pool) -> None:
    r = tool("import-layer", "--id", L1, "-n", "base", "-f", str(BASE_TAR))
    assert r.status == 0, r.stderr
    record = json.loads(tool("layer", "--json", "base").stdout)[0]
    assert record["diff-digest"] == "sha256:" + hashlib.sha256(BASE_TAR.read_bytes()).hexdigest()
    r = tool("diff", "-u", L1)
    assert r.status == 0 and r.out == BASE_TAR.read_bytes()
    assert _layer_datasets(zfs_pool, zfs_dataset[0]) == {L1}


def test_child_layer_applydiff_changes_and_delete(
    tool: Tool, zfs_dataset: tuple[str, str], zfs_pool: Pool
) -> None:
    assert tool("import-layer", "--id", L1, "-f", str(BASE_TAR)).status == 0
    assert tool("create-layer", "--id", L2, L1).status == 0
    r = tool("applydiff", "-f", str(CHILD_TAR), L2)
    assert r.status == 0, r.stderr
    lines = tool("changes", L2).stdout.splitlines()
    assert 'Add "/etc/added-by-child"' in lines and 'Delete "/remove-me"' in lines
    origin = zfs_pool.zfs.get([f"{zfs_dataset[0]}/{L2}"], ["origin"])[f"{zfs_dataset[0]}/{L2}"]["origin"]
    assert origin.startswith(f"{zfs_dataset[0]}/{L1}@")
    assert tool("delete-layer", L2).status == 0
    assert tool("delete-layer", L1).status == 0
    assert _layer_datasets(zfs_pool, zfs_dataset[0]) == set()


def test_mount_unmount_and_metadata(tool: Tool, zfs_dataset: tuple[str, str]) -> None:
    assert tool("create-layer", "--id", L3).status == 0
    r = tool("mount", L3)
    path = r.stdout.strip()
    assert r.status == 0 and mounts.is_mounted(path)
    assert path.endswith(f"/zfs/graph/{L3}")
    assert tool("mounted", L3).stdout == f"{L3} mounted\n"
    assert tool("unmount", L3).status == 0
    assert not mounts.is_mounted(path)
    assert tool("delete-layer", L3).status == 0


def test_status(tool: Tool, zfs_dataset: tuple[str, str], zfs_pool: Pool) -> None:
    r = tool("status")
    assert r.status == 0
    assert "Driver Name: zfs\n" in r.stderr
    assert f"Zpool: {zfs_pool.name}\nZpool Health: ONLINE\nParent Dataset: {zfs_dataset[0]}\n" in r.stderr


def test_unmanaged_layers_are_listed_checked_and_repaired_but_no_other_dataset(
    tool: Tool, zfs_dataset: tuple[str, str], zfs_pool: Pool, tmp_path: Path
) -> None:
    """upstream check.bats check-unmanaged-layers (upstream's zfs cannot list, so it has
    nothing to check); datasets of another store on the same parent, and the user's own,
    are never listed, reported or removed."""
    from containers_storage.cli.main import main

    parent = zfs_dataset[0]
    zfs_pool.zfs.run("create", f"{parent}/{'9' * 64}")  # the user's, named like a layer
    other = ["--graph", os.path.join(zfs_dataset[1], "other"), "--run", str(tmp_path / "orun"), "-s", "zfs"]
    assert main([*other, "create-layer", "--id", L3], stdout=io.BytesIO(), stderr=io.BytesIO()) == 0
    assert tool("create-layer", "--id", L1).status == 0
    assert tool("create-storage-layer", "--id", L2, L1).status == 0
    assert sorted(tool("storage-layers").stdout.split()) == [L1, L2]
    r = tool("check", "-r")
    assert r.status == 0 and f"layer {L2}: layer in lower level storage driver not accounted for" in r.stdout
    assert tool("storage-layers").stdout.split() == [L1]
    assert _layer_datasets(zfs_pool, parent) == {L1, L3, "9" * 64}
    assert main([*other, "shutdown"], stdout=io.BytesIO(), stderr=io.BytesIO()) == 0


def test_failed_import_leaves_no_dataset(tool: Tool, zfs_dataset: tuple[str, str], zfs_pool: Pool) -> None:
    r = tool("import-layer", "--id", L1, stdin=b"this is not a tar stream at all" * 40)
    assert r.status == 1
    assert _layer_datasets(zfs_pool, zfs_dataset[0]) == set()
    assert L1 not in tool("layers").stdout


def test_id_mapped_child_is_reowned_on_disk(tool: Tool, zfs_dataset: tuple[str, str]) -> None:
    """A child with other ID maps than its parent is chowned after the clone (naive
    update_layer_id_map); its diff still reports container IDs."""
    import tarfile

    assert tool("import-layer", "--id", L1, "-f", str(BASE_TAR)).status == 0
    r = tool("create-layer", "--id", L2, "--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536", L1)
    assert r.status == 0, r.stderr
    path = tool("mount", L2).stdout.strip()
    try:
        with tarfile.open(BASE_TAR) as tf:
            members = [m for m in tf.getmembers() if m.name.strip("./")]
        for m in members:
            st = os.lstat(os.path.join(path, m.name))
            assert (st.st_uid, st.st_gid) == (100000 + m.uid, 200000 + m.gid), m.name
    finally:
        assert tool("unmount", L2).status == 0
    r = tool("diff", "-u", L2)
    with tarfile.open(fileobj=io.BytesIO(r.out)) as tf:
        assert {(m.uid, m.gid) for m in tf.getmembers()} <= {(m.uid, m.gid) for m in members} | {(0, 0)}
