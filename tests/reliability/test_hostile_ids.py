"""Hostile IDs through every driver on its real backing filesystem: refused before the
driver is called (with each driver's own restriction: a ZFS ``@`` would name another
dataset's snapshot, an overlay ``,`` would break the mount data), and records holding
them are dropped by ``check -r`` and ``wipe`` without the driver ever seeing them."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from containers_storage.errors import DriverNotSupported, InvalidID
from containers_storage.store import CheckOptions, RepairOptions, Store

from .harness import Cli, Tally, sample_diffs

#: IDs each driver refuses beyond the core rule
DRIVER_REFUSES = {"zfs": ["layer@snap", "layer#mark", "with space"], "overlay": ["a,b", "a\\b"]}


def _forms(base: Path) -> list[str]:
    """``../../victim`` reaches a sentinel from every store directory (the graph root's
    parent from ``<graph>/<driver>-layers/``, the graph root from ``<driver>/dir/``)."""
    return ["../../victim", str(base / "victim"), "..", ".", "a/b"]


def _sentinels(cli: Cli) -> list[Path]:
    """Files where a hostile ID would reach: ``victim/`` beside and in the graph root, and
    a plain file in the driver's home (a directory there would be a layer to the driver)."""
    made = []
    for d in (os.path.dirname(cli.graph), cli.graph):
        p = Path(d) / "victim" / "sentinel"
        p.parent.mkdir(parents=True, exist_ok=True)
        made.append(p)
    made.append(Path(cli.graph) / cli.driver / "sentinel")
    for p in made:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("keep me")
    return made


def _driver_layers(s: Store) -> list[str] | None:
    try:
        return sorted(s.driver.list_layers())
    except DriverNotSupported:  # zfs cannot tell its layers from other datasets
        return None


def test_hostile_ids_are_refused_before_the_driver(cli: Cli, tally: Tally) -> None:
    sentinels = _sentinels(cli)
    with cli.store() as s:
        base, _ = s.put_layer(names=["base"], diff=io.BytesIO(sample_diffs("i")["small"]))
        image = s.create_image(layer=base.id)
        before = sorted(x.id for x in s.layers())
        for bad in [*_forms(Path(cli.graph).parent), *DRIVER_REFUSES.get(cli.driver, [])]:
            tally.runs += 1
            with pytest.raises(InvalidID):
                s.create_layer(id=bad)
            with pytest.raises(InvalidID):
                s.create_layer(id=bad, parent=base.id)
            with pytest.raises(InvalidID):
                s.create_container(image=image.id, layer=bad)
            tally.faults += 3
        assert sorted(x.id for x in s.layers()) == before
        assert _driver_layers(s) in (before, None)
        assert not s.check(CheckOptions.everything()).layers
    assert all(p.read_text() == "keep me" for p in sentinels)


@pytest.mark.parametrize("how", ["repair", "wipe"])
def test_records_with_hostile_ids_never_reach_the_driver(cli: Cli, tally: Tally, how: str) -> None:
    sentinels = _sentinels(cli)
    with cli.store() as s:
        keep, _ = s.put_layer(names=["keep"], diff=io.BytesIO(sample_diffs("k")["small"]))
        s.create_image(names=["keep"], layer=keep.id)
        lonely = [s.create_layer().id for _ in range(len(_forms(Path(cli.graph).parent)))]
    layers_json = Path(cli.graph) / f"{cli.driver}-layers" / "layers.json"
    records = json.loads(layers_json.read_text())
    hostile = dict(zip(lonely, [*_forms(Path(cli.graph).parent)], strict=True))
    for rec in records:
        rec["id"] = hostile.get(rec["id"], rec["id"])
    layers_json.write_text(json.dumps(records))
    with cli.store() as s:
        tally.runs += 1
        if how == "repair":
            report = s.check(CheckOptions.everything())
            assert set(hostile.values()) <= set(report.layers)
            s.repair(report, RepairOptions(remove_containers=True))
            # the renamed layers' own content is unaccounted now, and was removed as such
            assert [x.names for x in s.layers()] == [("keep",)]
            assert not s.check(CheckOptions.everything()).layers
        else:
            s.wipe()
            assert not s.layers()
        tally.faults += len(hostile)
    assert all(p.read_text() == "keep me" for p in sentinels)
