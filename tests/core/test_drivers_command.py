"""``containers-storage drivers`` and store opening with broken or clashing driver
distributions installed, run as the real command in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from containers_storage.plugins import DRIVER_GROUP

from .conftest import FakeSite, driver_plugin

COMMAND = str(Path(sys.executable).parent / "containers-storage")


def run(site: FakeSite, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    roots = ["--graph", str(tmp_path / "g"), "--run", str(tmp_path / "r")]
    return subprocess.run(
        [COMMAND, *roots, *args], env=site.env(), capture_output=True, text=True, timeout=120
    )


def install(site: FakeSite) -> None:
    site.add(
        "broken-raises",
        "1.0",
        {DRIVER_GROUP: {"raises": "raises_plugin"}},
        {"raises_plugin": "raise RuntimeError('boom at import')\n"},
    )
    site.add("broken-missing", "1.0", {DRIVER_GROUP: {"missing": "no_such_module_anywhere"}})
    site.add(
        "broken-noattr",
        "1.0",
        {DRIVER_GROUP: {"noattr": "noattr_plugin:not_there"}},
        {"noattr_plugin": "x = 1\n"},
    )
    site.add(
        "vfs-again",
        "9.9",
        {DRIVER_GROUP: {"vfs": "vfs_again_plugin"}},
        {"vfs_again_plugin": driver_plugin("vfs")},
    )
    site.add("broken-plugin", "1.0", {"containers_storage.plugins": {"lockish": "no_such_lock_module"}})


def test_drivers_lists_every_entry_point_also_broken_ones(site: FakeSite, tmp_path: Path) -> None:
    install(site)
    r = run(site, tmp_path, "drivers", "--json")
    assert r.returncode == 0, r.stderr
    rows = {(row["name"], row["distribution"]): row for row in json.loads(r.stdout)}
    assert rows["raises", "broken-raises"]["probe"] == "cannot load: RuntimeError: boom at import"
    assert rows["missing", "broken-missing"]["probe"] == (
        "cannot load: ModuleNotFoundError: No module named 'no_such_module_anywhere'"
    )
    assert rows["noattr", "broken-noattr"]["probe"] == (
        "cannot load: AttributeError: module 'noattr_plugin' has no attribute 'not_there'"
    )
    clash = (
        'refused: storage driver "vfs" is offered by containers-storage-vfs 0.1.0 and vfs-again 9.9; '
        "one name must have one source (uninstall one of them)"
    )
    assert rows["vfs", "vfs-again"]["probe"] == clash
    assert rows["vfs", "containers-storage-vfs"]["probe"] == clash
    assert rows["overlay", "containers-storage-overlay"]["kind"] == "driver"
    assert rows["lockish", "broken-plugin"]["probe"] == (
        "cannot load: ModuleNotFoundError: No module named 'no_such_lock_module'"
    )
    table = run(site, tmp_path, "drivers")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == [
        "NAME",
        "KIND",
        "DISTRIBUTION",
        "VERSION",
        "PROBE",
    ]
    assert any(
        line.split()[:2] == ["raises", "driver"] and line.endswith("RuntimeError: boom at import")
        for line in table.stdout.splitlines()
    )


def test_store_errors_name_driver_and_distribution(site: FakeSite, tmp_path: Path) -> None:
    install(site)
    r = run(site, tmp_path, "-s", "raises", "layers")
    assert r.returncode == 1
    assert r.stdout == (
        'error initializing: storage driver "raises" from broken-raises 1.0 is installed but cannot be '
        "loaded: RuntimeError: boom at import\n"
    )  # on standard output, as upstream's tool prints it
    assert "cannot load plugin lockish (broken-plugin 1.0)" in r.stderr
    r = run(site, tmp_path, "-s", "vfs", "layers")
    assert r.returncode == 1 and "is offered by containers-storage-vfs 0.1.0 and vfs-again 9.9" in r.stdout
    r = run(site, tmp_path, "-s", "overlay", "layers")  # other drivers are not affected
    assert r.returncode == 0, r.stderr


def test_a_named_driver_imports_no_full_entry_point_scanner(tmp_path: Path) -> None:
    """Start-up stays lean: the lean reader finds the named driver; importlib.metadata
    (and stevedore) are never imported on the way to ``layers``."""
    code = (
        "import sys\n"
        "from containers_storage.cli.main import main\n"
        f"status = main(['--graph', {str(tmp_path / 'g')!r}, '--run', {str(tmp_path / 'r')!r}, "
        "'-s', 'vfs', 'layers'])\n"
        "print(status, ' '.join(sorted(sys.modules)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    status, modules = r.stdout.split(" ", 1)
    assert status == "0", r.stderr
    loaded = set(modules.split())
    assert "containers_storage_vfs.driver" in loaded
    assert not loaded & {"importlib.metadata", "stevedore", "email", "zipfile", "containers_storage_overlay"}
