"""Repository-wide pytest options, and the guard that keeps tests off the real store."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

#: the system's default store; tests use temporary roots only
SYSTEM_STORE = "/var/lib/containers"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("drivers", "drivers under test").addoption(
        "--reliability-driver",
        action="append",
        default=None,
        metavar="NAME",
        help="run the kill, concurrency and hostile-input suites (tests/reliability) on this installed "
        "driver, built-in or third-party; repeat for several (default: vfs, overlay, btrfs, zfs)",
    )
    group = parser.getgroup("soak", "long reliability runs")
    group.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the long (soak) variants: many more kills, longer concurrency runs",
    )
    group.addoption(
        "--soak-kills",
        type=int,
        default=None,
        metavar="N",
        help="kills per driver in the kill-at-any-point tests (default: 30, with --soak 300)",
    )
    group.addoption(
        "--soak-seconds",
        type=float,
        default=None,
        metavar="S",
        help="length of each concurrency run (default: 8, with --soak 120)",
    )
    group.addoption(
        "--soak-seed",
        type=int,
        default=None,
        metavar="N",
        help="random seed of the reliability runs (default: a fresh one, printed in the summary)",
    )


@pytest.fixture(autouse=True)
def _system_store_untouched() -> Iterator[None]:
    """Fail the test that creates the system's default store (a command run without
    ``--graph``/``--run``, a client such as skopeo writing its blob cache there)."""
    existed = os.path.lexists(SYSTEM_STORE)
    yield
    if not existed and os.path.lexists(SYSTEM_STORE):
        raise AssertionError(f"this test created {SYSTEM_STORE}: tests must use temporary roots only")
