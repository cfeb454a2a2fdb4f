"""What the bench scripts share: a deterministic tree shaped like an OS image, timing,
the GNU tar reference, driver construction and the result table."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import IO

from containers_storage.drivers.api import Driver, DriverConfig

CHUNK = 1 << 20


def make_tree(root: str, target_bytes: int, seed: int = 1) -> tuple[int, int]:
    """Mostly small files, some medium and a few large ones, symlinks and hard links.
    Returns (bytes, entries)."""
    rng = random.Random(seed)
    total = entries = n = 0
    while total < target_bytes:
        d = os.path.join(root, f"usr{n % 23}", f"lib{n % 211}")
        os.makedirs(d, exist_ok=True)
        r = rng.random()
        if r < 0.90:
            size = rng.randint(200, 16 << 10)
        elif r < 0.995:
            size = rng.randint(64 << 10, 256 << 10)
        else:
            size = rng.randint(2 << 20, 6 << 20)
        path = os.path.join(d, f"file{n}.so")
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        os.chmod(path, 0o755 if n % 3 == 0 else 0o644)
        total += size
        entries += 1
        if n % 50 == 0:
            os.symlink(f"file{n}.so", os.path.join(d, f"link{n}"))
            entries += 1
        if n % 97 == 0:
            os.link(path, os.path.join(d, f"hard{n}"))
            entries += 1
        n += 1
    return total, entries


def median_time(fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None) -> float:
    """Median wall time of ``repeat`` calls; ``setup`` runs untimed before each."""
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def drain(stream: IO[bytes]) -> int:
    """Read ``stream`` to the end; the number of bytes."""
    n = 0
    while block := stream.read(CHUNK):
        n += len(block)
    return n


def gnu_tar_create(src: str) -> int:
    """The reference for producing a diff: GNU ``tar -c`` of ``src`` read to the end."""
    proc = subprocess.Popen(["tar", "--numeric-owner", "-C", src, "-cf", "-", "."], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    n = drain(proc.stdout)
    if proc.wait() != 0:
        raise RuntimeError("tar -c failed")
    return n


def make_driver(cls: type[Driver], name: str, root: str) -> Driver:
    """A driver on ``root`` (its run root beside it), no options."""
    os.makedirs(root, exist_ok=True)
    return cls(DriverConfig(requested_name=name, root=root, run_root=root + "-run"))


def print_results(results: Mapping[str, float | int | str], json_path: str | None) -> None:
    """One aligned ``key  value`` line per figure; optionally the same as JSON."""
    width = max(len(k) for k in results)
    for key, value in results.items():
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {text}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
