"""A lean reader of installed entry points, for the start-up path.

``importlib.metadata`` and stevedore cost 25-40 ms to import and scan every installed
distribution; a command that names its driver needs one entry point. This module lists
the ``*.dist-info`` / ``*.egg-info`` folders on ``sys.path`` and reads only their
``entry_points.txt``, which takes well under a millisecond, and keeps the distribution
each entry point comes from (error messages name it; two distributions offering one driver
name are told apart). Every lookup of :mod:`containers_storage.plugins` goes through it.
"""

from __future__ import annotations

import os
import sys

from .structs import dataclass


@dataclass(frozen=True, slots=True)
class EntryPoint:
    group: str
    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> object:
        import importlib

        module_name, _, attr = self.value.partition(":")
        obj: object = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def _dist_name_version(folder: str) -> tuple[str, str]:
    """``containers_storage_vfs-0.1.0.dist-info`` -> (``containers-storage-vfs``, ``0.1.0``):
    folder names escape the distribution name with underscores; show the usual form."""
    stem = folder.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    return name.replace("_", "-"), version


def _parse(text: str, dist: str, version: str, group: str) -> list[EntryPoint]:
    out, section = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            out.append(EntryPoint(group, name.strip(), value.strip(), dist, version))
    return out


def entry_points(group: str, path: list[str] | None = None) -> list[EntryPoint]:
    """Entry points of ``group`` from every distribution on ``path`` (default
    ``sys.path``); the first distribution of a name wins, as with importlib.metadata."""
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for base in sys.path if path is None else path:
        try:
            names = sorted(os.listdir(base or "."))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            dist, version = _dist_name_version(folder)
            key = dist.lower().replace("-", "_")
            if key in seen:
                continue
            seen.add(key)
            try:
                with open(os.path.join(base, folder, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            if group in text:
                found.extend(_parse(text, dist, version, group))
    return found
