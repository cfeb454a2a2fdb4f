"""Every command line of ``expected-<driver>.json`` through our tool against the restored
upstream store: standard output and exit status byte for byte (fixtures/README.md)."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import FIXTURES, Result, Store

DRIVERS = ("vfs", "overlay")


def _cases() -> list[Any]:
    params = []
    for driver in DRIVERS:
        expected = json.loads((FIXTURES / f"expected-{driver}.json").read_text())
        for i, (line, answer) in enumerate(expected.items()):
            short = line if len(line) < 60 else line[:57] + "..."
            params.append(pytest.param(driver, line, answer, id=f"{driver}-{i:03d}-{short}"))
    return params


def run_line(store: Store, line: str) -> Result:
    """One expected key: a command, or a command piped into ``sha256sum`` / ``tar -t``."""
    command, _, pipe = line.partition(" | ")
    result = store(*shlex.split(command))
    if not pipe or result.status:
        return result
    if pipe == "sha256sum":
        return Result(0, f"{hashlib.sha256(result.out).hexdigest()}  -\n".encode(), result.err)
    proc = subprocess.run(shlex.split(pipe), input=result.out, capture_output=True, check=False)
    return Result(proc.returncode, proc.stdout, result.err + proc.stderr)


def _elements(text: str) -> Counter[str]:
    """Unordered output: JSON arrays as a multiset of elements, text as a multiset of lines."""
    if text.startswith("["):
        return Counter(json.dumps(e, sort_keys=True) for e in json.loads(text) or [])
    return Counter(text.splitlines(keepends=True))


def check_answer(store: Store, line: str, answer: dict[str, Any], result: Result) -> None:
    expected = answer["stdout"].replace("$GRAPHROOT", store.graph).replace("$RUNROOT", store.run)
    assert result.status == answer["exit_code"], result.stderr
    if answer.get("volatile"):
        return
    if answer.get("unordered"):
        assert _elements(result.stdout) == _elements(expected)
    else:
        assert result.stdout == expected
    if answer["stderr"] and answer["exit_code"]:
        assert result.stderr == answer["stderr"]


@pytest.mark.parametrize(("driver", "line", "answer"), _cases())
def test_fixture_answer(shared_fixture_stores: Callable[[str], Store], driver: str, line: str,
                        answer: dict[str, Any]) -> None:
    """The expected commands only read, so one restored store per driver serves them all
    (in the file's order, which ends with ``check``)."""
    store = shared_fixture_stores(driver)
    check_answer(store, line, answer, run_line(store, line))


def test_a_fresh_copy_answers_the_same(fixture_store_factory: Callable[[str], Store]) -> None:
    """Guards the sharing above: a few answers again on a store nothing else touched."""
    expected = json.loads((FIXTURES / "expected-vfs.json").read_text())
    store = fixture_store_factory("vfs")
    for line in ("layers", "images --json", "containers --json", "mounted " + _container_id(expected)):
        check_answer(store, line, expected[line], run_line(store, line))


def _container_id(expected: dict[str, Any]) -> str:
    return next(k.split()[1] for k in expected if k.startswith("mounted "))


@pytest.mark.parametrize("driver", DRIVERS)
def test_upstream_store_can_be_changed(fixture_store_factory: Callable[[str], Store], driver: str) -> None:
    """What the fixture generator checked with upstream's tool on the restored copy: the
    container mounts with its files, a container can be created and deleted, and the
    store still checks clean."""
    store = fixture_store_factory(driver)
    r = store("mount", "ctr-one")
    assert r.status == 0, r.stderr
    mountpoint = r.stdout.strip()
    try:
        with open(f"{mountpoint}/container-file", "rb"):
            pass
        assert store("mounted", "ctr-one").stdout == "ctr-one mounted\n"
    finally:
        assert store("unmount", "ctr-one").stdout == "ctr-one mountpoint unmounted\n"
    r = store("create-container", "--json", "-n", "new-ctr", "example.com/fixture/one:latest")
    assert r.status == 0, r.stderr
    new_id = json.loads(r.stdout)["id"]
    assert new_id in store("containers").stdout
    assert store("delete-container", "new-ctr").status == 0
    assert new_id not in store("containers").stdout
    r = store("check")
    assert (r.status, r.stdout, r.stderr) == (0, "", "")
