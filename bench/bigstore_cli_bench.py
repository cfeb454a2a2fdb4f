"""Big-store CLI benchmark: ours against upstream's tool on one store (issue 15).

Builds 20,000 layers and 10,000 images as record files in upstream's format (the
records of ``bench/store_bench.py``), then times, in one interleaved run, the console
scripts users run:

* ``layers`` and ``images`` (every record listed);
* one ``add-names`` on one image (load, change, atomic save of ``images.json``);
* ``python -I -c pass`` (interpreter start-up, reference).

Each figure is the median wall time of ``--repeat`` rounds; every round runs every
case once, ours and upstream's alternating, so load from elsewhere on the machine hits
both alike. Both tools work on the very same store (each reads what the other wrote).
The upstream column is skipped when the tool is absent (build it as
``../shared/conformance/README.md`` says; ``--upstream PATH`` or ``UPSTREAM_DIR``).

Usage::

    python bench/bigstore_cli_bench.py [--layers 20000] [--images 10000] [--repeat 11]
                                       [--upstream /var/tmp/cs-1.50.2/containers-storage]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_bench import build  # the same records as the API benchmark

SCRIPT = str(Path(sys.executable).parent / "containers-storage")
DEFAULT_UPSTREAM = Path(os.environ.get("UPSTREAM_DIR", "/var/tmp/cs-1.50.2")) / "containers-storage"


def run_ms(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[:500]}")
    return elapsed * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=20000)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--upstream", default=str(DEFAULT_UPSTREAM))
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    upstream = args.upstream if os.access(args.upstream, os.X_OK) else ""
    work = tempfile.mkdtemp(prefix="bigstore-bench-", dir=args.dir)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = f"{work}/pycache"
    try:
        build(work, args.layers, args.images)
        roots = ["--graph", f"{work}/graph", "--run", f"{work}/run", "--storage-driver", "vfs"]
        image = f"registry.example.com/project/image-{args.images // 2}"
        tools = {"ours": SCRIPT, **({"upstream": upstream} if upstream else {})}
        counter = iter(range(1 << 30))

        def command(tool: str, op: str) -> list[str]:
            if op == "add-names":
                return [tools[tool], *roots, "add-names", "-n", f"bench-{tool}-{next(counter)}", image]
            return [tools[tool], *roots, op]

        ops = ("layers", "images", "add-names")
        times: dict[tuple[str, str], list[float]] = {(t, op): [] for t in tools for op in ops}
        bare: list[float] = []
        for i in range(args.repeat + 1):  # round 0: untimed (byte-code caches, page cache)
            ms = run_ms([sys.executable, "-I", "-c", "pass"], env)
            if i:
                bare.append(ms)
            for op in ops:
                for tool in tools:
                    ms = run_ms(command(tool, op), env)
                    if i:
                        times[tool, op].append(ms)
        base = statistics.median(bare)
        sizes = {n: os.path.getsize(f"{work}/graph/{d}/{n}") for d, n in (("vfs-layers", "layers.json"),
                                                                          ("vfs-images", "images.json"))}
        print(
            f"store: {args.layers} layers ({sizes['layers.json'] / 1e6:.1f} MB), {args.images} images "
            f"({sizes['images.json'] / 1e6:.1f} MB); {args.repeat} interleaved rounds, medians; "
            f"{os.cpu_count()} CPUs"
        )
        print(f"upstream: {upstream or 'absent (column skipped)'}")
        print(f"{'python -I -c pass':<14}{base:8.1f} ms")
        head = f"{'':<14}{'ours':>10}" + (f"{'upstream':>12}{'ours/upstream':>15}" if upstream else "")
        print(head)
        for op in ops:
            ours = statistics.median(times["ours", op])
            line = f"{op:<14}{ours:8.1f} ms"
            if upstream:
                theirs = statistics.median(times["upstream", op])
                line += f"{theirs:10.1f} ms{ours / theirs:14.2f}x"
            print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
