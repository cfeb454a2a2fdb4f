"""The conformance kit in benchmark mode: the same scenarios, timed, for every driver whose
tests are present, with each driver's time as a ratio to vfs's in the same run.

Usage::

    python bench/kit_bench.py [vfs overlay btrfs zfs]

Runs ``pytest drivers/<name>/tests/test_conformance.py --durations=0`` per driver (so each
driver's own fixtures build its real backing filesystem) and tabulates the call phase of
every scenario.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LINE = re.compile(r"^([\d.]+)s call\s+\S+::(?:\w+::)?(test_\w+(?:\[[^\]]*\])?)")


def run_kit(driver: str) -> dict[str, float]:
    tests = os.path.join(REPO, "drivers", driver, "tests", "test_conformance.py")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            tests,
            "-q",
            "--durations=0",
            "--durations-min=0",
            "-p",
            "no:randomly",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    times: dict[str, float] = defaultdict(float)
    for line in out.splitlines():
        m = _LINE.match(line.strip())
        if m:
            name = re.sub(r"\[\d+\]$", "", m.group(2))  # parametrised echo depths summed
            times[name] += float(m.group(1))
    return times


def main() -> None:
    drivers = sys.argv[1:] or [
        d for d in ("vfs", "overlay", "btrfs", "zfs") if os.path.exists(f"{REPO}/drivers/{d}/tests")
    ]
    results = {d: run_kit(d) for d in drivers}
    scenarios = sorted({s for r in results.values() for s in r})
    ref = results.get("vfs", {})
    print(f"{'scenario':40}" + "".join(f"{d:>18}" for d in drivers))
    for s in scenarios:
        cells = []
        for d in drivers:
            t = results[d].get(s)
            if t is None:
                cells.append(f"{'-':>18}")
            elif d != "vfs" and ref.get(s):
                cells.append(f"{t:8.3f}s ({t / ref[s]:5.2f}x)")
            else:
                cells.append(f"{t:17.3f}s")
        print(f"{s:40}" + "".join(cells))


if __name__ == "__main__":
    main()
