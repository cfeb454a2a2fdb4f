"""Repository-wide pytest options."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
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
        "--soak-seeds",
        type=int,
        default=None,
        metavar="N",
        help="run the kill-at-any-point test N times per driver, each round on a fresh store "
        "with its own random stream (derived from the seed and the round)",
    )
    group.addoption(
        "--soak-seed",
        type=int,
        default=None,
        metavar="N",
        help="random seed of the reliability runs (default: a fresh one, printed in the summary)",
    )
