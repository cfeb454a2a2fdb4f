"""``--reliability-driver NAME`` points the kill, concurrency and hostile-input suites at
any installed driver; a named driver that is not installed fails instead of skipping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _drivers(stdout: str) -> set[str]:
    """The driver of each collected test: the first part of its parameter ID."""
    params = [line.rsplit("[", 1)[1].rstrip("]") for line in stdout.splitlines() if "::" in line]
    return {param.split("-", 1)[0] for param in params}


def test_suites_run_on_the_named_drivers_only() -> None:
    r = pytest_run(
        "tests/reliability/test_kill.py",
        "tests/reliability/test_concurrency.py",
        "--collect-only",
        "-q",
        "--reliability-driver",
        "vfs",
    )
    ids = [line for line in r.stdout.splitlines() if "::" in line]
    assert r.returncode == 0, r.stdout + r.stderr
    assert ids and _drivers(r.stdout) == {"vfs"}, ids
    r = pytest_run("tests/reliability/test_kill.py", "--collect-only", "-q")
    assert _drivers(r.stdout) == {"vfs", "overlay", "btrfs", "zfs"}


def test_a_named_driver_that_is_not_installed_fails() -> None:
    r = pytest_run(
        "tests/reliability/test_kill.py",
        "-q",
        "-k",
        "kill_at_any_point",
        "--reliability-driver",
        "no-such-driver",
    )
    assert r.returncode == 1
    assert "no no-such-driver backing filesystem here: the no-such-driver driver is not installed" in r.stdout
