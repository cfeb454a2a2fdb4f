"""Hostile and corrupt input through every driver: the archive tests' hostile tar corpus
imported as layers, corrupted JSON records, truncated tar-split files, and layers whose
driver content went missing -- each gives a clear error (never a traceback), changes
nothing it should not, and ``check``/``check -r`` treat the damage as upstream does."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from containers_storage.errors import ArchiveError
from containers_storage.testing.hostile import CONFINED, REFUSED

from .harness import Cli, Snapshot, Tally, check_report, sample_diffs


def tree(cli: Cli) -> set[str]:
    """Every path below the roots, but the record and lock files whose content changes."""
    out = set()
    for root in (cli.graph, cli.run):
        for dirpath, dirs, files in os.walk(root):
            for n in dirs + files:
                out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return {p for p in out if not p.endswith((".json", ".lock")) and "/.tmp-" not in p}


def sentinels(cli: Cli) -> list[Path]:
    """``outside/precious`` at every level an escaping path could reach from a layer."""
    made = []
    for d in (cli.graph, os.path.join(cli.graph, cli.driver), os.path.dirname(cli.graph)):
        p = Path(d) / "outside" / "precious"
        p.parent.mkdir(exist_ok=True)
        p.write_text("keep me")
        made.append(p)
    return made


def test_hostile_corpus_through_the_driver(cli: Cli, tally: Tally) -> None:
    with cli.store() as s:
        precious = sentinels(cli)
        base, _ = s.put_layer(diff=io.BytesIO(sample_diffs("h")["small"]))
        for case, (data, error) in sorted(REFUSED.items()):
            before, paths = Snapshot.of(s), tree(cli)
            tally.runs += 1
            with pytest.raises(error):
                s.put_layer(parent=base.id, diff=io.BytesIO(data))
            tally.faults += 1
            assert Snapshot.of(s) == before, f"{case}: a record was left"
            assert tree(cli) == paths, f"{case}: left {tree(cli) ^ paths}"
        for case, (data, expected) in sorted(CONFINED.items()):
            paths = tree(cli)
            tally.runs += 1
            try:
                layer, _ = s.put_layer(parent=base.id, diff=io.BytesIO(data))
            except ArchiveError:
                assert tree(cli) == paths, f"{case}: refused but left {tree(cli) ^ paths}"
                continue
            new = {p for p in tree(cli) - paths if layer.id not in p and "/l/" not in p}
            assert not new, f"{case}: created outside the layer: {new}"
            mnt = Path(s.mount(layer.id))
            try:
                for rel, content in expected.items():
                    assert (mnt / rel).read_bytes() == content, f"{case}: {rel}"
            finally:
                s.unmount(layer.id)
            s.delete_layer(layer.id)
    for p in precious:
        assert p.read_text() == "keep me"
        assert os.listdir(p.parent) == ["precious"]


@pytest.fixture
def populated(cli: Cli, tmp_path: Path) -> dict[str, str]:
    """A base layer, a child layer with an image, a container on it; IDs by role."""
    blob = tmp_path / "mixed.tar"
    blob.write_bytes(sample_diffs("c")["mixed"])
    base = json.loads(cli.ok("import-layer", "--json", "-n", "base", "-f", str(blob)))["id"]
    top = json.loads(cli.ok("import-layer", "--json", "-n", "top", "-f", str(blob), base))["id"]
    image = json.loads(cli.ok("create-image", "--json", "-n", "img", top))["id"]
    lonely = json.loads(cli.ok("create-image", "--json", "-n", "lonely", base))["id"]
    ctr = json.loads(cli.ok("create-container", "--json", "-n", "ctr", image))
    return {
        "base": base,
        "top": top,
        "image": image,
        "lonely": lonely,
        "ctr": ctr["id"],
        "ctr_layer": ctr["layer"],
    }


def clear(stderr: bytes) -> str:
    text = stderr.decode(errors="replace")
    assert text.strip() and "Traceback" not in text, text
    return text


@pytest.mark.parametrize("kind", ["layers", "images", "containers"])
def test_corrupt_record_file(cli: Cli, populated: dict[str, str], tally: Tally, kind: str) -> None:
    """A record file that does not parse stops the commands that read or write that kind
    with a clear error and is never overwritten; put back, everything is there."""
    path = Path(cli.graph) / f"{cli.driver}-{kind}" / f"{kind}.json"
    good = path.read_bytes()
    p = populated
    commands = {
        "layers": [("layers",), ("create-layer", "-n", "new"), ("delete-layer", p["base"])],
        "images": [("images",), ("create-image", "-n", "new", p["base"]), ("delete-image", p["lonely"])],
        "containers": [
            ("containers",),
            ("create-container", "-n", "new", p["image"]),
            ("delete-container", p["ctr"]),
        ],
    }[kind]
    for broken in (good[: len(good) // 2], b"\x00\xff{]", b'{"id": 1}'):
        path.write_bytes(broken)
        for args in commands:
            proc = cli(*args)
            tally.runs += 1
            tally.faults += 1
            assert proc.returncode != 0, f"{args} worked on a corrupt {kind}.json: {broken[:40]!r}"
            clear(proc.stderr)
            assert path.read_bytes() == broken, f"{args} rewrote the corrupt {kind}.json"
        path.write_bytes(good)
        with cli.store() as s:
            snap = Snapshot.of(s)
        assert {p["base"], p["top"], p["ctr_layer"]} <= set(snap.layers)
        assert {p["image"], p["lonely"]} <= set(snap.images)
        assert p["ctr"] in snap.containers
        assert not [n for n in snap.layers.values() if "new" in n[0]]


def repaired(
    cli: Cli, tally: Tally, must_go: set[str], must_stay: set[str], may_go: frozenset[str] = frozenset()
) -> None:
    """``check`` names exactly the damaged items, ``check -r -f`` removes them (images
    before their layers) and nothing else, and ``check`` then passes."""
    status, damage, said = check_report(cli, quick=False)
    tally.checks += 1
    reported = {i for items in damage.values() for i in items}
    assert status == 1 and must_go <= reported <= must_go | may_go, (
        f"check reported {damage}, expected {must_go}: {said}"
    )
    proc = cli("check", "-r", "-f")
    tally.repairs += 1
    tally.repaired_items += len(reported)
    assert proc.returncode == 0, proc.stderr
    status, damage, said = check_report(cli, quick=False)
    assert status == 0 and not any(damage.values()), f"{damage} {said}"
    with cli.store() as s:
        left = Snapshot.of(s).all_ids()
    assert not (reported & left) and must_stay <= left


def test_truncated_tar_split(cli: Cli, populated: dict[str, str], tally: Tally) -> None:
    ts = Path(cli.graph) / f"{cli.driver}-layers" / f"{populated['top']}.tar-split.gz"
    ts.write_bytes(ts.read_bytes()[: ts.stat().st_size // 2])
    tally.faults += 1
    proc = cli("diff", "-u", populated["top"])
    tally.runs += 1
    assert proc.returncode != 0
    assert "unexpected EOF" in clear(proc.stderr) or "gzip" in clear(proc.stderr)
    p = populated
    # the layer, the image on it and (with -f) the container on the image go
    repaired(cli, tally, {p["top"], p["image"], p["ctr"]}, {p["base"], p["lonely"]})


def test_missing_layer_content(cli: Cli, populated: dict[str, str], tally: Tally) -> None:
    """The driver's copy of a layer vanished (a records-only layer): reading it fails
    clearly, check reports it with everything built on it, repair removes those."""
    p = populated
    with cli.store() as s:
        s.driver.remove(p["base"])
    tally.faults += 1
    proc = cli("mount", p["base"])
    tally.runs += 1
    assert proc.returncode != 0
    clear(proc.stderr)
    # base goes with everything built on it: both images (their chains hold base), the
    # container; its child layers too where the driver needs base to mount them (not
    # vfs, whose layers are full copies: check finds those intact)
    repaired(
        cli,
        tally,
        {p["base"], p["image"], p["lonely"], p["ctr"]},
        set(),
        may_go=frozenset({p["top"], p["ctr_layer"]}),
    )
