"""What we add to upstream's tool without changing it: the ``drivers`` listing and
tracebacks with ``--debug``."""

from __future__ import annotations

import json

from .conftest import Store, run_main


def test_drivers_lists_installed_drivers_with_probe(empty_store: Store) -> None:
    r = empty_store("drivers")
    assert r.status == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "DISTRIBUTION", "VERSION", "PROBE"]
    vfs = next(line for line in lines if line.split()[0] == "vfs")
    kind, dist = vfs.split()[1:3]
    assert (kind, dist.replace("_", "-")) == ("driver", "containers-storage-vfs") and vfs.endswith(" ok")
    rows = json.loads(empty_store("drivers", "--json").stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["vfs"]["probe"] == "ok" and by_name["vfs"]["kind"] == "driver"
    assert set(rows[0]) == {"name", "kind", "module", "distribution", "version", "probe"}


def test_drivers_needs_no_usable_store(tmp_path: object) -> None:
    r = run_main("-g", "/proc/no-such-dir/g", "-R", "/proc/no-such-dir/r", "-s", "vfs", "drivers")
    assert r.status == 0 and "NAME" in r.stdout


def test_debug_shows_a_traceback_for_errors(empty_store: Store) -> None:
    r = empty_store("get-layer-data", "nope", "key")
    assert r.status == 1 and "Traceback" not in r.stderr
    r = run_main("--debug", *empty_store.prefix, "get-layer-data", "nope", "key")
    assert r.status == 1 and "Traceback (most recent call last)" in r.stderr
