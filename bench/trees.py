"""Benchmark inputs shared by the bench scripts: a deterministic tree shaped like an OS
image, and timing helpers."""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable


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
