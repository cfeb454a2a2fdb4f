"""Repository-wide pytest options."""

from __future__ import annotations

import pytest


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
