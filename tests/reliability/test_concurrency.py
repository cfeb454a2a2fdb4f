"""Concurrency: eight writers (six through the library, two through the command, one
process per command) and two readers work on one store for a bounded time. Afterwards
every acknowledged operation is visible, names are unique, the store passes ``check``,
and no operation waited on locks longer than the bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .harness import (
    LOCK_BOUND,
    Cli,
    Snapshot,
    Tally,
    check_report,
    json_records_intact,
    names_unique,
    stray_mounts,
    stuck_locks,
)

WORKER = str(Path(__file__).with_name("worker.py"))
ROLES = ["api"] * 6 + ["cli"] * 2 + ["reader"] * 2


def expected(entries: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """What one writer's log promises: live objects with their names and data, and the
    IDs it deleted."""
    live: dict[str, dict[str, Any]] = {}
    gone: set[str] = set()
    for e in entries:
        op, id = str(e["op"]), str(e.get("id", ""))
        if op in ("import", "create-layer", "create-image", "create-container"):
            live[id] = {"kind": e["kind"], "names": e["names"], "data": {}}
        elif op == "set-names":
            live[id]["names"] = e["names"]
        elif op == "set-data":
            live[id]["data"][e["key"]] = e["digest"]
        elif op in ("delete-image", "delete-container"):
            live.pop(id, None)
            gone.add(id)
            for lid in e.get("layers", []):
                live.pop(lid, None)
                gone.add(lid)
    return live, gone


def test_many_processes_lose_nothing(
    cli: Cli, seconds: float, seed: int, tally: Tally, tmp_path: Path
) -> None:
    procs = []
    logs = []
    for n, role in enumerate(ROLES):
        log = tmp_path / f"{role}{n}.log"
        logs.append((role, log))
        args = [role, cli.graph, cli.run, cli.driver, f"w{n}", str(seconds), str(seed), str(log)]
        procs.append(
            subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    failures = []
    for (role, log), p in zip(logs, procs, strict=True):
        _out, err = p.communicate(timeout=seconds + 10 * LOCK_BOUND)
        if p.returncode != 0:
            failures.append(f"{role} {log.name}: {err.decode(errors='replace')[-3000:]}")
    assert not failures, "\n".join(failures)

    with cli.store() as s:
        actual = Snapshot.of(s)
        counted = {x.id: x.mount_count for x in s.layers() if x.mount_count}
    assert not counted, f"mount counts left although every mount was undone: {counted}"
    assert not names_unique(actual), f"names held twice: {names_unique(actual)}"

    lost = []
    waits = []
    for role, log in logs:
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        tally.runs += len(entries)
        waits += [e["took"] for e in entries]
        if role == "reader":
            lost += [f"a reader saw names held twice: {e['dup']}" for e in entries if e["dup"]]
            continue
        live, gone = expected(entries)
        for id, facts in live.items():
            tables: dict[str, dict[str, Any]] = {
                "layer": actual.layers,
                "image": actual.images,
                "container": actual.containers,
            }
            table = tables[facts["kind"]]
            if id not in table:
                lost.append(f"{log.name}: {facts['kind']} {id} {facts['names']} is gone")
                continue
            # a name every writer fights over may have moved on; the writer's own must not
            mine = [n for n in facts["names"] if n != "hot-name"]
            if [n for n in table[id][0] if n != "hot-name"] != mine:
                lost.append(f"{log.name}: {id} has names {table[id][0]}, promised {facts['names']}")
            for key, digest in facts["data"].items():
                if table[id][2].get(key) != digest:
                    lost.append(f"{log.name}: image {id} item {key} is not what was written last")
        lost += [f"{log.name}: deleted {id} is back" for id in gone & actual.all_ids()]
    tally.lost += len(lost)
    tally.max_lock_wait = max(waits, default=0.0)
    assert not lost, "\n".join(lost)
    assert tally.max_lock_wait < LOCK_BOUND / 2, f"an operation waited {tally.max_lock_wait:.1f}s"

    status, damage, said = check_report(cli, quick=False)
    tally.checks += 1
    assert status == 0 and not any(damage.values()), f"check after the run: {damage} {said}"
    assert not stray_mounts(cli), stray_mounts(cli)
    assert not stuck_locks(cli), stuck_locks(cli)
    assert not json_records_intact(cli), json_records_intact(cli)
