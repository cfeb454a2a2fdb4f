"""Fixtures of the image import/export tests: a vfs store in a temporary directory, a
snapshot of everything a store holds (to show a failed import left nothing), and
Debian's skopeo and podman run against temporary stores only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from containers_storage.config import StoreOptions
from containers_storage.store import Store, get_store


@dataclass
class Roots:
    graph: Path
    run: Path

    def options(self) -> StoreOptions:
        return StoreOptions(graph_root=str(self.graph), run_root=str(self.run), driver_name="vfs")


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[Roots]:
    """The graph root in the test's directory; the run root short, under /var/tmp
    (podman refuses run roots longer than 50 characters)."""
    run = tempfile.mkdtemp(prefix="cs-imageio-", dir="/var/tmp")
    try:
        yield Roots(tmp_path / "graph", Path(run) / "run")
    finally:
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def store(roots: Roots) -> Iterator[Store]:
    with get_store(roots.options()) as s:
        yield s


def snapshot(roots: Roots) -> dict[str, object]:
    """Everything of the store that an import could add: records, layer directories,
    tar-split files, image data directories."""
    out: dict[str, object] = {}
    for rel in ("vfs-layers/layers.json", "vfs-images/images.json"):
        path = roots.graph / rel
        out[rel] = json.loads(path.read_text()) if path.exists() and path.stat().st_size else []
    for rel in ("vfs/dir", "vfs-layers", "vfs-images"):
        path = roots.graph / rel
        out[rel + "/"] = (
            sorted(n for n in os.listdir(path) if not n.endswith(".lock")) if path.exists() else []
        )
    return out


class Clients:
    """skopeo and podman on a store of ours. They run as root in a private mount
    namespace whose /var/lib is a scratch directory (skopeo writes its blob cache to
    /var/lib/containers/cache and nothing may reach the machine's real store);
    ``CONTAINERS_STORAGE_CONF`` names a file of the test's."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        (tmp / "varlib").mkdir(parents=True, exist_ok=True)
        conf = tmp / "storage.conf"
        conf.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{tmp}/run"\ngraphroot = "{tmp}/graph"\n')
        self.env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf), "TMPDIR": str(tmp)}

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        wrapped = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$0" /var/lib && exec "$@"',
            str(self.tmp / "varlib"),
            *cmd,
        ]
        proc = subprocess.run(wrapped, env=self.env, capture_output=True, text=True, timeout=300, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("skopeo", *args, check=check)

    def podman(self, roots: Roots, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "podman",
            "--root",
            str(roots.graph),
            "--runroot",
            str(roots.run),
            "--storage-driver",
            "vfs",
            "--tmpdir",
            str(self.tmp / "podman-tmp"),
            *args,
        )


def storage_ref(roots: Roots, name: str) -> str:
    return f"containers-storage:[vfs@{roots.graph}+{roots.run}]{name}"


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")
    if os.geteuid() != 0:
        pytest.skip(f"{tool} on a vfs store at a given root needs root")


@pytest.fixture
def skopeo(tmp_path: Path) -> Clients:
    _need("skopeo")
    _need("unshare")
    return Clients(tmp_path / "clients")


@pytest.fixture
def podman(tmp_path: Path) -> Clients:
    _need("podman")
    _need("unshare")
    return Clients(tmp_path / "clients")
