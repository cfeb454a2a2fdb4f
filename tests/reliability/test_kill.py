"""Kill at any point: mutating commands run as real processes and are SIGKILLed at random
moments. After each kill the store loads, ``check`` after the next write finds damage only
on what the killed command was touching (and ``check -r`` removes it), everything
acknowledged before the kill is still there, and no lock or mount is left stuck."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .harness import (
    Cli,
    Snapshot,
    Tally,
    check_report,
    json_records_intact,
    names_unique,
    sample_diffs,
    stray_mounts,
    stuck_locks,
)


@dataclass
class Op:
    """One command line, what its success means for the model, and what a kill in the
    middle of it may leave damaged (IDs) or changed either way (names, mount counts)."""

    name: str
    args: list[str]
    ack: Callable[[str], None]
    damageable: set[str] = field(default_factory=set)
    names_open: set[str] = field(default_factory=set)
    counts_open: set[str] = field(default_factory=set)
    #: (image, key) items a kill may leave with the old or the new value
    data_open: set[tuple[str, str]] = field(default_factory=set)
    #: what the command mounts (a kill may leave that mount uncounted)
    mounts: str = ""
    full_check: bool = False


class KillRun:
    """The acknowledged state of one store (what finished commands promised) and the
    random commands that change it."""

    def __init__(self, cli: Cli, rng: random.Random, tally: Tally, work: Path) -> None:
        self.cli, self.rng, self.tally, self.work = cli, rng, tally, work
        self.diffs: dict[str, Path] = {}
        for kind, blob in sample_diffs("k").items():
            self.diffs[kind] = work / f"{kind}.tar"
            self.diffs[kind].write_bytes(blob)
        self.counter = 0
        self.est: dict[str, float] = {}
        self.lost: list[str] = []
        base = json.loads(
            cli.ok("import-layer", "--json", "-n", "anchor-layer", "-f", str(self.diffs["small"]))
        )
        self.anchor = json.loads(cli.ok("create-image", "--json", "-n", "anchor", base["id"]))["id"]
        self.model = Snapshot()
        self.empty: set[str] = set()  # layers made by create-layer, still waiting for applydiff
        self.mounts: dict[str, int] = {}
        self.adopt()

    # -- the model ----------------------------------------------------------------------
    def adopt(self) -> Snapshot:
        with self.cli.store() as s:
            self.model = Snapshot.of(s)
        self.empty &= set(self.model.layers)
        self.mounts = {}
        return self.model

    def fresh(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}{self.counter}"

    def ctr_layers(self) -> set[str]:
        return {c[2] for c in self.model.containers.values()}

    def plain_layers(self) -> list[str]:
        """Layers that may become parents and image tops."""
        return sorted(set(self.model.layers) - self.empty - self.ctr_layers())

    def released(self, image: str) -> set[str]:
        """The layers deleting ``image`` takes along (upstream's rule): down from its top
        layer, stopping at one that tops another image, is a container's, or has a child
        that stays."""
        tops = {rec[1] for iid, rec in self.model.images.items() if iid != image}
        out: set[str] = set()
        layer = self.model.images[image][1]
        while layer in self.model.layers and layer not in tops | self.ctr_layers() | out:
            if {lid for lid, rec in self.model.layers.items() if rec[1] == layer} - out:
                break
            out.add(layer)
            layer = self.model.layers[layer][1]
        return out

    # -- the commands -------------------------------------------------------------------
    def choose(self) -> Op | None:
        m, rng = self.model, self.rng
        images = sorted(i for i in m.images if i != self.anchor)
        used = {c[1] for c in m.containers.values()}
        lonely = [i for i in images if i not in used]
        ctrs = sorted(m.containers)
        weights = {
            "import-layer": 3 if len(m.layers) < 40 else 0,
            "create-layer": 1 if len(self.empty) < 3 else 0,
            "applydiff": 2 if self.empty else 0,
            "create-image": 2 if len(images) < 14 and self.plain_layers() else 0,
            "create-container": 2 if images and len(ctrs) < 10 else 0,
            "delete-image": (3 if len(images) > 8 else 1) if lonely else 0,
            "delete-container": (3 if len(ctrs) > 6 else 1) if ctrs else 0,
            "set-names": 2 if images else 0,
            "set-image-data": 2 if images else 0,
            "mount": 2 if ctrs else 0,
            "unmount": 2 if ctrs else 0,
        }
        kind = rng.choices(list(weights), list(weights.values()))[0]
        return getattr(self, "op_" + kind.replace("-", "_"))(images, lonely, ctrs)  # type: ignore[no-any-return]

    def op_import_layer(self, *_: list[str]) -> Op:
        name = self.fresh("l")
        parent = self.rng.choice([*self.plain_layers(), ""])
        diff = self.rng.choice(["small", "mixed", "mixed", "big"])

        def ack(out: str) -> None:
            rec = json.loads(out)
            self.model.layers[rec["id"]] = ((name,), parent, "")

        return Op("import-layer", ["import-layer", "--json", "-n", name, "-f", str(self.diffs[diff]),
                                   *([parent] if parent else [])], ack)  # fmt: skip

    def op_create_layer(self, *_: list[str]) -> Op:
        name = self.fresh("e")

        def ack(out: str) -> None:
            rec = json.loads(out)
            self.model.layers[rec["id"]] = ((name,), "", "")
            self.empty.add(rec["id"])

        return Op("create-layer", ["create-layer", "--json", "-n", name], ack)

    def op_applydiff(self, *_: list[str]) -> Op:
        layer = self.rng.choice(sorted(self.empty))
        self.empty.discard(layer)  # applied once, whatever happens
        diff = self.rng.choice(["small", "mixed", "big"])
        return Op("applydiff", ["applydiff", "-f", str(self.diffs[diff]), layer], lambda out: None,
                  damageable={layer}, full_check=True, mounts=layer)  # fmt: skip

    def op_create_image(self, *_: list[str]) -> Op:
        name = self.fresh("i")
        layer = self.rng.choice(self.plain_layers())

        def ack(out: str) -> None:
            self.model.images[json.loads(out)["id"]] = ((name,), layer, {})

        return Op("create-image", ["create-image", "--json", "-n", name, layer], ack)

    def op_create_container(self, images: list[str], *_: list[str]) -> Op:
        name = self.fresh("c")
        image = self.rng.choice(images)

        def ack(out: str) -> None:
            rec = json.loads(out)
            self.model.containers[rec["id"]] = ((name,), image, rec["layer"])
            self.model.layers[rec["layer"]] = ((), self.model.images[image][1], "")

        return Op("create-container", ["create-container", "--json", "-n", name, image], ack)

    def op_delete_image(self, _images: list[str], lonely: list[str], *_: list[str]) -> Op:
        image = self.rng.choice(lonely)
        layers = self.released(image)

        def ack(out: str) -> None:
            del self.model.images[image]
            for lid in layers:
                self.model.layers.pop(lid, None)

        return Op("delete-image", ["delete-image", image], ack, damageable={image, *layers})

    def op_delete_container(self, _i: list[str], _l: list[str], ctrs: list[str]) -> Op:
        ctr = self.rng.choice(ctrs)
        layer = self.model.containers[ctr][2]

        def ack(out: str) -> None:
            del self.model.containers[ctr]
            self.model.layers.pop(layer, None)
            self.mounts.pop(ctr, None)

        return Op("delete-container", ["delete-container", ctr], ack, damageable={ctr, layer})

    def op_set_names(self, images: list[str], *_: list[str]) -> Op:
        image = self.rng.choice(images)
        others = [i for i in images if i != image and self.model.images[i][0]]
        victim = self.rng.choice(others) if others and self.rng.random() < 0.4 else ""
        name = self.model.images[victim][0][0] if victim else self.fresh("n")

        def ack(out: str) -> None:
            _old, top, data = self.model.images[image]
            self.model.images[image] = ((name,), top, data)
            if victim:  # a name moves: the other image loses it
                vn, vt, vd = self.model.images[victim]
                self.model.images[victim] = (tuple(n for n in vn if n != name), vt, vd)

        return Op("set-names", ["set-names", "-n", name, image], ack, names_open={image, victim} - {""})

    def op_set_image_data(self, images: list[str], *_: list[str]) -> Op:
        image = self.rng.choice(images)
        key = self.rng.choice(["manifest", "config", "sig-" + self.fresh("k")])
        data = os.urandom(self.rng.choice([0, 100, 5000, 300_000]))
        path = self.work / f"data-{self.counter}"
        path.write_bytes(data)

        def ack(out: str) -> None:
            self.model.images[image][2][key] = "sha256:" + hashlib.sha256(data).hexdigest()

        # a kill leaves the item's old or new bytes, each agreeing with the record
        # (test_a_killed_set_big_data_loses_nothing): nothing is damaged, only the item's
        # value is open
        return Op("set-image-data", ["set-image-data", "-f", str(path), image, key], ack,
                  data_open={(image, key)})  # fmt: skip

    def op_mount(self, _i: list[str], _l: list[str], ctrs: list[str]) -> Op:
        ctr = self.rng.choice(ctrs)

        def ack(out: str) -> None:
            self.mounts[ctr] = self.mounts.get(ctr, 0) + 1

        return Op("mount", ["mount", ctr], ack, counts_open={ctr}, mounts=ctr)

    def op_unmount(self, _i: list[str], _l: list[str], ctrs: list[str]) -> Op:
        ctr = self.rng.choice(ctrs)

        def ack(out: str) -> None:
            self.mounts[ctr] = max(0, self.mounts.get(ctr, 0) - 1)

        return Op("unmount", ["unmount", ctr], ack, counts_open={ctr})

    # -- one round ----------------------------------------------------------------------
    def run_once(self, kill: bool) -> bool:
        """Run one random command, maybe SIGKILLing it; True when it was killed."""
        op = self.choose()
        assert op is not None
        self.tally.runs += 1
        start = time.monotonic()
        proc = self.cli.start(*op.args)
        if kill:
            time.sleep(self.rng.uniform(0.02, 1.3 * self.est.get(op.name, 0.5)))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
        if proc.returncode == -signal.SIGKILL:
            self.tally.kills += 1
            self.verify(op)
            return True
        assert proc.returncode == 0, f"{op.args}: {err.decode(errors='replace')}"
        self.tally.finished_first += int(kill)
        took = time.monotonic() - start
        self.est[op.name] = 0.7 * self.est.get(op.name, took) + 0.3 * took
        op.ack(out.decode())
        return False

    def verify(self, op: Op | None) -> None:
        """The checks after a kill (``op`` is the interrupted command)."""
        damageable = op.damageable if op else set()
        names_open = op.names_open if op else set()
        promised = self.model
        t0 = time.monotonic()
        with self.cli.store() as s:  # loads; a read-write load finishes interrupted deletions
            counts = {x.id: x.mount_count for x in s.layers()}
            self.tally.max_lock_wait = max(self.tally.max_lock_wait, time.monotonic() - t0)
            # the next write
            ctr = s.create_container(image=self.anchor)
            s.delete_container(ctr.id)
            assert not names_unique(Snapshot.of(s)), "a name is held twice"
        for cid, n in self.mounts.items():
            if op is None or cid not in op.counts_open | op.damageable:  # delete unmounts first
                layer = promised.containers[cid][2]
                if counts.get(layer, 0) != n:
                    self.lost.append(
                        f"after killing {op and op.args}: container {cid} mounted "
                        f"{counts.get(layer, 0)} times, promised {n}"
                    )
        quick = not (op is None or op.full_check or self.tally.kills % 5 == 0)
        status, damage, said = check_report(self.cli, quick)
        self.tally.checks += 1
        damaged = {i for items in damage.values() for i in items}
        unknown = damaged - damageable
        unknown -= {i for i in unknown if i not in promised.all_ids()}  # never acknowledged
        assert not unknown, f"after killing {op and op.args}: check reports damage on {damage}"
        if damaged:
            assert status != 0
            self.tally.repairs += 1
            self.tally.repaired_items += len(damaged)
            self.cli("check", "-r", "-f", timeout=600)
            status, damage, said = check_report(self.cli, quick)
            self.tally.checks += 1
            assert not any(damage.values()), f"damage left after repair: {damage}"
        assert status == 0, f"check failed after killing {op and op.args}: {said}"
        with self.cli.store() as s:
            actual = Snapshot.of(s)
            counted = {x.id: x.mount_count for x in s.layers() if x.mount_count}
        assert not counted, f"check left mount counts behind: {counted}"
        self.compare(promised, actual, damageable, names_open, op)
        if stray_mounts(self.cli) and op is not None and op.mounts:
            # killed between the driver's mount and the recorded count (mount), or while a
            # layer was mounted to apply a diff (zfs): the mount is not counted (as
            # upstream); the next mount adopts it and its unmount takes it down
            with self.cli.store() as s:
                known = s.exists(op.mounts)
            if known:
                self.cli.ok("mount", op.mounts)
                self.cli.ok("unmount", op.mounts)
                self.tally.adopted_mounts += 1
        assert not stray_mounts(self.cli), f"mounts left after check: {stray_mounts(self.cli)}"
        assert not stuck_locks(self.cli), f"locks still held: {stuck_locks(self.cli)}"
        assert not json_records_intact(self.cli), f"records do not parse: {json_records_intact(self.cli)}"
        self.adopt()

    def compare(self, promised: Snapshot, actual: Snapshot, damageable: set[str], names_open: set[str],
                op: Op | None) -> None:  # fmt: skip
        """Everything acknowledged is still there (repair may have removed only what the
        killed command was touching)."""
        what = f"after killing {op.args if op else None}"
        kinds = (("layer", promised.layers, actual.layers), ("image", promised.images, actual.images),
                 ("container", promised.containers, actual.containers))  # fmt: skip
        for kind, want, got in kinds:
            for id, rec in want.items():
                if id in damageable:
                    continue
                if id not in got:
                    self.lost.append(f"{what}: {kind} {id} {rec[0]} is gone")
                    continue
                names, link = rec[0], rec[1]
                if id not in names_open and tuple(got[id][0]) != tuple(names):
                    self.lost.append(f"{what}: {kind} {id} has names {got[id][0]}, promised {names}")
                if link != got[id][1]:
                    self.lost.append(f"{what}: {kind} {id} links to {got[id][1]}, promised {link}")
                if kind == "image":
                    for key, digest in rec[2].items():  # type: ignore[union-attr]
                        if op is not None and (id, key) in op.data_open:
                            continue
                        if got[id][2].get(key) != digest:  # type: ignore[union-attr]
                            self.lost.append(f"{what}: image {id} item {key} changed")
        self.tally.lost = len(self.lost)


def test_kill_at_any_point(
    cli: Cli, rng: random.Random, tally: Tally, kills: int, tmp_path: Path, soak_round: int
) -> None:
    run = KillRun(cli, rng, tally, tmp_path)
    while tally.kills < kills:
        run.run_once(kill=rng.random() < 0.6)
    run.verify(None)  # and a full check at the end, on the whole acknowledged state
    assert not run.lost, "\n".join(run.lost)


#: a process that changes one big-data item (``config``) and SIGKILLs itself at a chosen
#: point: just before or just after the item's file is replaced, or just after the
#: record file is first replaced
_KILLED_WRITER = """
import os, signal, sys
from containers_storage.config import StoreOptions
from containers_storage.store import get_store

point, graph, run, driver, kind, ref, key, path = sys.argv[1:]
real_rename = os.rename

def rename(src, dst, *a, **k):
    name = os.path.basename(str(dst))
    if point == "before-item-replaced" and name == key:
        os.kill(os.getpid(), signal.SIGKILL)
    real_rename(src, dst, *a, **k)
    if point == "item-replaced" and name == key:
        os.kill(os.getpid(), signal.SIGKILL)
    if point == "record-saved" and name == kind + "s.json":
        os.kill(os.getpid(), signal.SIGKILL)

os.rename = rename
s = get_store(StoreOptions(graph_root=graph, run_root=run, driver_name=driver))
data = open(path, "rb").read()
(s.set_image_big_data if kind == "image" else s.set_container_big_data)(ref, key, data)
sys.exit(3)
"""


@pytest.mark.parametrize("kind", ["image", "container"])
@pytest.mark.parametrize("point", ["before-item-replaced", "item-replaced", "record-saved"])
def test_a_killed_set_big_data_loses_nothing(cli: Cli, tmp_path: Path, kind: str, point: str) -> None:
    """A kill at any point of an item change leaves a record that agrees with its item
    (old bytes and old size, or new bytes and new size): check is clean and repair
    removes nothing. (Upstream, and we before, replaced the item before saving the
    record: a kill in between left a size that disagrees, and check -r -f removed the
    image and its containers.)"""
    import subprocess
    import sys

    blob = tmp_path / "small.tar"
    blob.write_bytes(sample_diffs("x")["small"])
    layer = json.loads(cli.ok("import-layer", "--json", "-f", str(blob)))["id"]
    image = json.loads(cli.ok("create-image", "--json", layer))["id"]
    ctr = json.loads(cli.ok("create-container", "--json", image))["id"]
    ref = image if kind == "image" else ctr
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"o" * 100)
    new.write_bytes(b"n" * 5000)
    cli.ok(f"set-{kind}-data", "-f", str(old), ref, "config")
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, point, cli.graph, cli.run, cli.driver, kind, ref, "config",
         str(new)],
        capture_output=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode(errors="replace")
    with cli.store() as s:  # the next write
        s.delete_container(s.create_container(image=image).id)
    status, damage, said = check_report(cli, quick=True)
    assert status == 0 and not any(damage.values()), f"check: {damage} {said}"
    cli.ok("check", "-r", "-f")
    with cli.store() as s:
        assert s.exists(image) and s.exists(ctr)
        if kind == "image":
            got = s.image_big_data(image, "config")
            size, digest = s.image_big_data_size(image, "config"), s.image_big_data_digest(image, "config")
            flags = s.image(image).flags
        else:
            got = s.container_big_data(ctr, "config")
            size = s.container_big_data_size(ctr, "config")
            digest = s.container_big_data_digest(ctr, "config")
            flags = s.container(ctr).flags
    assert got in (old.read_bytes(), new.read_bytes())
    if point != "before-item-replaced":
        assert got == new.read_bytes()  # the record was saved first: the change completes
    assert size == len(got) and digest == "sha256:" + hashlib.sha256(got).hexdigest()
    assert "big-data-pending" not in flags
