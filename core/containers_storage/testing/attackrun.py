"""Run an :class:`~.hostile.Attack` through a ``containers-storage`` command (ours or
upstream's) on a fresh vfs store, and report what happened: refused (with the error's
first line) or applied, and whether anything outside the layer changed.

Sentinels sit where escapes would land: ``outside/precious`` beside the layer
directories, one level further up, and nothing may appear at ``/outside``. The store's
layer list must be as before when the import failed. Deep trees a case leaves are
removed by descriptor (path-based removal and pytest's clean-up cannot).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..archive.rooted import remove_all
from .hostile import Attack

_SENTINEL = b"keep me"


@dataclass(frozen=True)
class Outcome:
    refused: bool
    #: first line of the error (refused) or a summary of the layer's state (applied)
    text: str
    #: anything created or changed outside the layer
    escaped: bool
    #: the applied layer's root (only while the store exists), else None
    layer_dir: Path | None = None


def _snapshot(paths: list[Path]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for top in paths:
        if not top.exists() and not top.is_symlink():
            out[str(top)] = None
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in filenames + dirnames:
                p = Path(dirpath) / name
                out[str(p)] = p.read_bytes() if p.is_file() and not p.is_symlink() else b"<non-file>"
    return out


def run_attack(tool: list[str], attack: Attack, work: Path, timeout: float = 120) -> Outcome:
    """Import ``attack``'s layers in order with ``tool`` (argv prefix) into a store under
    ``work``; call :func:`cleanup` afterwards. An import still running after
    ``timeout`` seconds is killed and reported as such."""
    graph, runroot = work / "graph", work / "run"
    base = [*tool, "--graph", str(graph), "--run", str(runroot), "-s", "vfs"]
    subprocess.run([*base, "layers"], capture_output=True, check=True)
    layers_dir = graph / "vfs" / "dir"
    layers_dir.mkdir(parents=True, exist_ok=True)
    sentinels = [layers_dir / "outside", graph / "vfs" / "outside"]
    for s in sentinels:
        s.mkdir(exist_ok=True)
        (s / "precious").write_bytes(_SENTINEL)
    watched = [*sentinels, Path("/outside")]
    before = _snapshot(watched)
    parent = ""
    listing = b""
    for i, data in enumerate(attack.layers):
        listing = subprocess.run([*base, "layers"], capture_output=True, check=False).stdout
        try:
            proc = subprocess.run(
                [*base, "import-layer", *([parent] if parent else [])],
                input=data,
                capture_output=True,
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return Outcome(True, f"no answer after {timeout:.0f} s (killed)", _snapshot(watched) != before)
        if proc.returncode:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            text = (err[-1] if err else f"exit status {proc.returncode}")[:160]
            if i < len(attack.layers) - 1:
                text = f"parent layer refused: {text}"
            after = subprocess.run([*base, "layers"], capture_output=True, check=False).stdout
            escaped = _snapshot(watched) != before or after != listing
            return Outcome(True, text, escaped)
        parent = proc.stdout.decode().split()[-1]
    escaped = _snapshot(watched) != before
    return Outcome(False, "applied", escaped, layers_dir / parent)


def cleanup(work: Path) -> None:
    """Remove the store, deep trees included."""
    if not work.exists():
        return
    fd = os.open(work.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_all(fd, os.fsencode(work.name))
    finally:
        os.close(fd)
    shutil.rmtree(work, ignore_errors=True)
