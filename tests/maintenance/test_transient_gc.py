"""Transient store (on-disk.md §9.3) and garbage collection: container records and
container layers live in the run root, so losing it (a reboot) leaves driver layers and
data directories behind that ``garbage_collect`` removes; interrupted work by a killed
process is cleaned up by the next writer."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from containers_storage.store import CheckOptions, ContainerOptions, get_store

from .conftest import options, overlay_available, tar_bytes


def _ids(path: Path) -> list[str]:
    if not path.exists() or not path.read_bytes().strip():
        return []
    return [r["id"] for r in json.loads(path.read_text())]


def test_transient_records_live_in_the_run_root(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with get_store(options(root)) as s:  # a container made before switching modes
        stable = s.create_container(names=["stable"])
    with get_store(options(root, transient_store=True)) as s:
        base, _ = s.put_layer(diff=io.BytesIO(tar_bytes({"etc/": b"", "etc/base": b"base\n"})))
        img = s.create_image(names=["img"], layer=base.id)
        ctr = s.create_container(names=["t"], image=img.id)
        assert s.container(ctr.id).volatile and s.layer(ctr.layer_id).volatile
        assert {c.id for c in s.containers()} == {stable.id, ctr.id}
    graph, run = root / "graph", root / "run"
    assert _ids(run / "vfs-containers" / "volatile-containers.json") == [ctr.id]
    assert _ids(graph / "vfs-containers" / "containers.json") == [stable.id]
    assert _ids(run / "vfs-layers" / "volatile-layers.json") == [ctr.layer_id]
    assert ctr.layer_id not in _ids(graph / "vfs-layers" / "layers.json")
    assert base.id in _ids(graph / "vfs-layers" / "layers.json")
    assert (run / "vfs-containers" / "containers.lock").exists()
    assert (graph / "vfs-layers" / "layers.lock").exists()


@pytest.mark.parametrize("driver", ["vfs", "overlay"])
def test_reboot_loses_transient_containers_and_gc_removes_their_leftovers(
    tmp_path: Path, driver: str
) -> None:
    if driver == "overlay" and not overlay_available():
        pytest.skip("kernel overlayfs and root needed")
    root = tmp_path / "s"
    opts = options(root, driver, transient_store=True)
    with get_store(opts) as s:
        base, _ = s.put_layer(diff=io.BytesIO(tar_bytes({"etc/": b"", "etc/base": b"base\n"})))
        img = s.create_image(names=["img"], layer=base.id)
        ctr = s.create_container(
            names=["web"], image=img.id, options=ContainerOptions(big_data={"config": b"{}"})
        )
        s.set_container_directory_file(ctr.id, "state", b"running")
        mnt = Path(s.mount(ctr.id))
        (mnt / "written-by-container").write_text("data")
        s.unmount(ctr.id)
    graph = root / "graph"
    leftover_layer = (
        graph / "vfs" / "dir" / ctr.layer_id if driver == "vfs" else graph / "overlay" / ctr.layer_id
    )
    leftover_data = graph / f"{driver}-containers" / ctr.id
    assert leftover_layer.is_dir() and leftover_data.is_dir()

    shutil.rmtree(root / "run")  # the reboot: tmpfs run root is gone

    with get_store(opts) as s:
        assert s.containers() == [] and not s.exists("web")
        assert {x.id for x in s.layers()} == {base.id}
        report = s.check(CheckOptions.everything())
        assert [type(e).__name__ for e in report.layers[ctr.layer_id]] == ["LayerUnaccounted"]
        assert set(report.layers) == {ctr.layer_id} and report.images == {}
        s.garbage_collect()
        assert not leftover_layer.exists() and not leftover_data.exists()
        clean = s.check(CheckOptions.everything())
        assert (clean.layers, clean.images, clean.containers) == ({}, {}, {})
        again = s.create_container(names=["web"], image="img")  # the name is free again
        assert (Path(s.mount(again.id)) / "etc" / "base").read_text() == "base\n"
        s.unmount(again.id)


def test_gc_keeps_everything_the_records_know(tmp_path: Path) -> None:
    with get_store(options(tmp_path / "s")) as s:
        layer, _ = s.put_layer(diff=io.BytesIO(tar_bytes({"a": b"a"})))
        img = s.create_image(layer=layer.id, options=None)
        s.set_image_big_data(img.id, "manifest", b"{}")
        s.set_layer_big_data(layer.id, "note", b"n")
        ctr = s.create_container(image=img.id)
        s.set_container_big_data(ctr.id, "cfg", b"{}")
        graph = Path(s.graph_root)
        strays = [
            graph / "vfs-images" / ("1" * 64),
            graph / "vfs-containers" / ("2" * 64),
        ]
        for d in strays:
            d.mkdir()
            (d / "junk").write_text("x")
        kept = [graph / "vfs-images" / "not-an-id", graph / "vfs-containers" / ("3" * 63)]
        for d in kept:
            d.mkdir()
        s.driver.create("4" * 64, None)
        (graph / "vfs-layers" / ("4" * 64 + ".tar-split.gz")).write_bytes(b"x")
        (graph / "vfs-layers" / ("4" * 64)).mkdir()
        s.garbage_collect()
        assert not any(d.exists() for d in strays) and all(d.exists() for d in kept)
        assert "4" * 64 not in s.driver.list_layers()
        assert not (graph / "vfs-layers" / ("4" * 64 + ".tar-split.gz")).exists()
        assert not (graph / "vfs-layers" / ("4" * 64)).exists()
        assert s.image_big_data(img.id, "manifest") == b"{}"
        assert s.layer_big_data(layer.id, "note") == b"n"
        assert s.container_big_data(ctr.id, "cfg") == b"{}"
        assert s.check(CheckOptions.everything()).layers == {}


_WRITER = """
import sys
from containers_storage.config import StoreOptions
from containers_storage.store import get_store
s = get_store(StoreOptions(graph_root=sys.argv[1], run_root=sys.argv[2], driver_name="vfs"))
s.put_layer(names=["half"], diff=sys.stdin.buffer)
"""


def test_layer_of_a_killed_writer_is_removed_by_the_next_writer(tmp_path: Path) -> None:
    """A process killed while applying a diff leaves an incomplete record, driver content
    and a partial tar-split; the next process that writes removes all of it."""
    root = tmp_path / "s"
    graph, run = root / "graph", root / "run"
    with get_store(options(root)) as s:
        keep, _ = s.put_layer(names=["keep"], diff=io.BytesIO(tar_bytes({"k": b"k"})))
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(graph), str(run)],
        stdin=subprocess.PIPE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.stdin is not None
    big = tar_bytes({f"f{i}": os.urandom(4096) for i in range(64)})
    proc.stdin.write(big[: len(big) // 2])  # half a layer, then the writer hangs on input
    proc.stdin.flush()
    layers_json = graph / "vfs-layers" / "layers.json"
    deadline = time.monotonic() + 60
    half = None
    while time.monotonic() < deadline and half is None:
        if layers_json.exists() and b"half" in layers_json.read_bytes():
            half = next(r for r in json.loads(layers_json.read_text()) if r.get("names") == ["half"])
        time.sleep(0.05)
    assert half is not None and half["flags"]["incomplete"] is True
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any((graph / "vfs" / "dir" / half["id"]).iterdir()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (graph / "vfs" / "dir" / half["id"]).is_dir()
    with get_store(options(root)) as s:
        assert {x.id for x in s.layers()} == {keep.id}
    assert not (graph / "vfs" / "dir" / half["id"]).exists()
    assert not (graph / "vfs-layers" / (half["id"] + ".tar-split.gz")).exists()
    assert _ids(layers_json) == [keep.id]
