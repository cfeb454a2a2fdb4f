"""CLI start-up benchmark: small commands against a bare interpreter start, in one run.

Each figure is the median wall time of ``--repeat`` runs of the installed console script
(what users run), divided by the median of ``python -I -c pass`` on the same interpreter
measured in the same run. The runs are interleaved -- one run of every case per round,
``--repeat`` rounds -- so that load from elsewhere on the machine spreads over all of
them alike. Targets (issue 15): ``version``, ``layers`` and ``exists`` on an empty vfs
store and ``create-layer`` within 4x; ``layers`` on 1,000 layers within 5x.

Byte-code is cached as in an installed package: ``PYTHONDONTWRITEBYTECODE`` is dropped and
``PYTHONPYCACHEPREFIX`` points into the scratch directory (so the checkout stays clean),
and every command runs once untimed first. ``--no-pycache`` measures with compilation on
every start instead.

Usage::

    python bench/cli_bench.py [--repeat 30] [--layers 1000] [--dir /var/tmp] [--no-pycache]
                              [--breakdown]

``--breakdown`` adds where the time of ``layers`` goes: the interpreter importing ever
more of the modules that command loads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = str(Path(sys.executable).parent / "containers-storage")


def run_ms(cmd: list[str], env: dict[str, str], before: list[str] | None = None) -> float:
    """Wall time of one run of ``cmd``; ``before`` runs (untimed) first."""
    if before:
        subprocess.run(before, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return elapsed * 1000


Case = tuple[str, list[str], "list[str] | None"]


def interleaved(cases: list[Case], repeat: int, env: dict[str, str]) -> dict[str, float]:
    """Median ms of each case over ``repeat`` rounds of one run each (after one untimed
    round, which also writes the byte-code caches)."""
    times: dict[str, list[float]] = {label: [] for label, _cmd, _before in cases}
    for i in range(repeat + 1):
        for label, cmd, before in cases:
            ms = run_ms(cmd, env, before)
            if i:
                times[label].append(ms)
    return {label: statistics.median(values) for label, values in times.items()}


def median_ms(cmd: list[str], repeat: int, env: dict[str, str]) -> float:
    return interleaved([("", cmd, None)], repeat, env)[""]


def populate(graph: str, run: str, count: int) -> None:
    """``count`` layers (a chain of ten-layer stacks) through the library, not the CLI."""
    from containers_storage.config import StoreOptions
    from containers_storage.store import get_store

    with get_store(StoreOptions(graph_root=graph, run_root=run, driver_name="vfs")) as store:
        parent = ""
        for i in range(count):
            parent = "" if i % 10 == 0 else parent
            parent = store.create_layer(parent=parent, names=[f"layer-{i}"]).id


#: the modules ``layers`` loads, in the order it loads them
BREAKDOWN = (
    ("containers_storage.cli.main", "cli.main"),
    ("containers_storage.config", "+ config"),
    ("containers_storage.store", "+ store"),
    ("containers_storage.plugins", "+ plugins"),
    ("containers_storage_vfs.driver", "+ vfs driver"),
)


def print_breakdown(repeat: int, env: dict[str, str], base: float) -> None:
    print(f"{'python -c pass':<28}{median_ms([sys.executable, '-c', 'pass'], repeat, env):8.1f} ms")
    modules: list[str] = []
    for module, label in BREAKDOWN:
        modules.append(module)
        ms = median_ms([sys.executable, "-c", "import " + ", ".join(modules)], repeat, env)
        print(f"{label:<28}{ms:8.1f} ms  {ms / base:5.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--layers", type=int, default=1000)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--no-pycache", action="store_true", help="compile on every start")
    ap.add_argument("--breakdown", action="store_true", help="also time the imports of `layers`")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cli-bench-", dir=args.dir)
    env = dict(os.environ)
    if args.no_pycache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = f"{work}/pycache"
    try:
        empty = [SCRIPT, "-g", f"{work}/empty/graph", "-R", f"{work}/empty/run", "-s", "vfs"]
        full = [SCRIPT, "-g", f"{work}/full/graph", "-R", f"{work}/full/run", "-s", "vfs"]
        subprocess.run([*empty, "layers"], check=True, stdout=subprocess.DEVNULL, env=env)
        populate(f"{work}/full/graph", f"{work}/full/run", args.layers)
        bare = "python -I -c pass"
        cases: list[Case] = [
            (bare, [sys.executable, "-I", "-c", "pass"], None),
            ("version", [*empty, "version"], None),
            ("layers (empty store)", [*empty, "layers"], None),
            ("exists (empty store)", [*empty, "exists", "layer-500"], None),
            ("create-layer", [*empty, "create-layer", "--id", "b" * 64], [*empty, "delete-layer", "b" * 64]),
            (f"layers ({args.layers} layers)", [*full, "layers"], None),
            (f"exists ({args.layers} layers)", [*full, "exists", "layer-500"], None),
        ]
        result = interleaved(cases, args.repeat, env)
        base = result[bare]
        cache = "compiled on every start" if args.no_pycache else "byte-code cached"
        print(f"interpreter: {sys.executable} ({sys.version.split()[0]}); {os.cpu_count()} CPUs; {cache}")
        print(f"{args.repeat} interleaved rounds; medians")
        for label, _cmd, _before in cases:
            ms = result[label]
            print(f"{label:<28}{ms:8.1f} ms  {ms / base:5.2f}x")
        if args.breakdown:
            print_breakdown(args.repeat, env, base)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
