"""ID generation and name lists (on-disk.md §3)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable


def generate_id(in_use: Callable[[str], bool] = lambda _id: False) -> str:
    """32 random bytes as lowercase hex; redrawn if the first 12 characters are all
    digits (it would look like a short numeric ID) or the ID is taken."""
    while True:
        candidate = os.urandom(32).hex()
        if candidate[:12].isdigit() or in_use(candidate):
            continue
        return candidate


def dedupe(names: Iterable[str]) -> tuple[str, ...]:
    """Drop repeated names, keeping the first occurrence's position."""
    return tuple(dict.fromkeys(names))
