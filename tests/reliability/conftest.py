"""The reliability suite runs on every built-in driver, each on its real backing
filesystem (containers_storage.testing.backends); a driver is skipped only when that
filesystem cannot be made here (not root, no kernel support, a tool missing).
``--reliability-driver NAME`` (repeatable) runs the kill, concurrency and hostile-input
suites on the named installed drivers instead, a third-party one on a plain directory;
a named driver that cannot run here fails rather than skips.

Counts (runs, kills, faults injected, anything lost) are summed over the session, printed
at its end and written to ``build/reliability-report.json``.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage.testing.backends import DRIVERS, Backend, backend_unavailable, backing_filesystem

from .harness import Cli, Tally, release_store

REPORT = Path(__file__).resolve().parents[2] / "build" / "reliability-report.json"

_tallies: dict[str, Tally] = {}
_seed: list[int] = []


def chosen_drivers(config: pytest.Config) -> tuple[str, ...]:
    """The drivers named with ``--reliability-driver``, else the built-in ones."""
    named: list[str] | None = config.getoption("--reliability-driver")
    return tuple(dict.fromkeys(named)) if named else DRIVERS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", chosen_drivers(metafunc.config), indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    driver: str = request.param
    reason = backend_unavailable(driver)
    if reason:
        explicit = request.config.getoption("--reliability-driver")
        (pytest.fail if explicit else pytest.skip)(f"no {driver} backing filesystem here: {reason}")
    with backing_filesystem(driver) as fs:
        yield fs


@pytest.fixture
def cli(backend: Backend, request: pytest.FixtureRequest) -> Iterator[Cli]:
    """A fresh store on the driver's backing filesystem, driven through the command."""
    graph, run = backend.roots(f"{request.node.name}-{time.monotonic_ns()}")
    store = Cli(graph, run, backend.driver)
    try:
        yield store
    finally:
        release_store(store)


@pytest.fixture(scope="session")
def seed(pytestconfig: pytest.Config) -> int:
    chosen = pytestconfig.getoption("--soak-seed")
    if chosen is None:
        chosen = random.SystemRandom().randrange(1 << 32)
    _seed.append(chosen)
    return int(chosen)


@pytest.fixture
def rng(seed: int, request: pytest.FixtureRequest) -> random.Random:
    return random.Random(f"{seed}:{request.node.nodeid}")


@pytest.fixture
def kills(pytestconfig: pytest.Config) -> int:
    """How many SIGKILLs each kill test delivers."""
    n = pytestconfig.getoption("--soak-kills")
    return int(n if n is not None else (300 if pytestconfig.getoption("--soak") else 30))


@pytest.fixture
def seconds(pytestconfig: pytest.Config) -> float:
    """How long each concurrency run lasts."""
    s = pytestconfig.getoption("--soak-seconds")
    return float(s if s is not None else (120 if pytestconfig.getoption("--soak") else 8))


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Tally:
    """The counters of this test, summed into the session's summary."""
    t = Tally()
    _tallies[request.node.nodeid] = t
    return t


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _tallies:
        return
    by_driver: dict[str, Tally] = {}
    drivers = (*chosen_drivers(terminalreporter.config), *DRIVERS)
    for nodeid, t in _tallies.items():
        driver = next((d for d in drivers if f"[{d}" in nodeid or f"-{d}]" in nodeid), "?")
        by_driver.setdefault(driver, Tally()).add(t)
    total = Tally()
    for t in by_driver.values():
        total.add(t)
    tr = terminalreporter
    tr.section("reliability counts")
    tr.write_line(f"seed {_seed[0] if _seed else '-'}")
    for driver, t in sorted(by_driver.items()):
        tr.write_line(f"{driver:8} {t.line()}")
    tr.write_line(f"{'total':8} {total.line()}")
    report = {
        "seed": _seed[0] if _seed else None,
        "drivers": {d: t.as_dict() for d, t in by_driver.items()},
        "total": total.as_dict(),
        "tests": {n: t.as_dict() for n, t in _tallies.items()},
    }
    try:
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
        tr.write_line(f"written to {os.path.relpath(REPORT)}")
    except OSError as exc:
        tr.write_line(f"report not written: {exc}")
