"""Parent loops in layers.json (``A -> B -> A``, a layer its own parent): upstream's
v1.50.2 ``check`` never ends on them. Ours reports every layer whose chain loops (and the
images and containers on them), repair removes what the loop made unusable, and no
operation that walks a parent chain hangs."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from containers_storage.errors import LayerParentCycle, StorageError
from containers_storage.records.chains import looping_layers, parent_chain
from containers_storage.store import RepairOptions

from .conftest import Site

#: how the loop is made: the base layer's parent becomes the child (A -> B -> A), or the
#: base layer its own parent
LOOPS = ["pair", "self"]


def make_loop(site: Site, how: str) -> None:
    def edit(data: list[dict[str, Any]]) -> None:
        base = next(d for d in data if d["id"] == site.base)
        base["parent"] = site.child if how == "pair" else site.base

    site.edit("layers", edit)


def bounded(fn: Callable[[], object], seconds: float = 60) -> object:
    """``fn()`` in a thread; fails (instead of hanging the run) if it does not return."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # re-raised below
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the walk did not end"
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


@pytest.mark.parametrize("how", LOOPS)
def test_check_reports_the_loop_and_ends(site: Site, how: str) -> None:
    make_loop(site, how)
    cmd = [sys.executable, "-m", "containers_storage.cli", "--graph", str(site.root / "graph"),
           "--run", str(site.root / "run"), "-s", "vfs", "check"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert f"layer {site.base}: its parent chain loops" in proc.stdout
    assert f"layer {site.child}: its parent chain loops" in proc.stdout
    assert f"image {site.image}" in proc.stdout


@pytest.mark.parametrize("how", LOOPS)
def test_check_api_names_every_layer_on_or_above_the_loop(site: Site, how: str) -> None:
    make_loop(site, how)
    with site.open() as s:
        report: Any = bounded(s.check)
    for lid in (site.base, site.child, site.container_layer):
        assert any(isinstance(e, LayerParentCycle) for e in report.layers[lid]), lid
    assert any(isinstance(e, LayerParentCycle) for e in report.images[site.image])


@pytest.mark.parametrize("how", LOOPS)
def test_repair_removes_the_looping_layers_and_ends(site: Site, how: str) -> None:
    """Without the base, nothing above it can be put together: repair removes the loop,
    the image on it and -- asked to -- the container, and then check is clean."""
    make_loop(site, how)
    with site.open() as s:
        report: Any = bounded(s.check)
        failures: Any = bounded(lambda: s.repair(report, RepairOptions(remove_containers=True)))
        assert failures == []
        assert s.layers() == [] and s.images() == [] and s.containers() == []
        after: Any = bounded(s.check)
        assert not after.layers and not after.images and not after.containers


@pytest.mark.parametrize("how", LOOPS)
def test_walks_up_the_chain_end(site: Site, how: str) -> None:
    """Image size, the image's IDs for an automatic user namespace, image deletion and
    export walk the chain: each ends, with a clear error where the chain is needed."""
    make_loop(site, how)
    with site.open() as s:
        for walk in (
            lambda: s.image_size(site.image),
            lambda: s.delete_container(site.container),
            lambda: s.delete_image(site.image),
        ):
            try:
                bounded(walk)
            except StorageError as exc:
                assert "loop" in str(exc) or "not known" in str(exc)


def test_chain_walks_are_bounded_by_distinct_layers() -> None:
    parents = {"a": "b", "b": "a", "c": "a", "d": "", "e": "d", "f": "f", "g": "missing"}
    assert looping_layers(parents) == {"a": "a", "b": "a", "c": "a", "f": "f"}
    assert list(parent_chain("e", lambda x: parents.get(x, ""))) == ["e", "d"]
    with pytest.raises(LayerParentCycle, match="layer c: its parent chain loops back to layer a"):
        list(parent_chain("c", lambda x: parents.get(x, "")))


@pytest.mark.parametrize("how", LOOPS)
def test_repair_keeps_a_loop_a_kept_container_still_uses(site: Site, how: str) -> None:
    """Without ``remove_containers`` the container stays, and with it every layer of the
    loop: removing some would leave the rest naming a parent that is gone."""
    make_loop(site, how)
    with site.open() as s:
        before = sorted(layer.id for layer in s.layers())
        report: Any = bounded(s.check)
        failures: Any = bounded(lambda: s.repair(report))
        assert any("the loop is kept" in str(f) for f in failures)
        assert sorted(layer.id for layer in s.layers()) == before
        assert [c.id for c in s.containers()] == [site.container]
