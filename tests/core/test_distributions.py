"""The packaging promises, checked in real virtual environments:

* the core alone installs and says clearly that no driver is installed;
* a third-party driver distribution (``examples/tiny-driver``) is selected by
  ``STORAGE_DRIVER`` with no change to the core;
* installing ``drivers/vfs`` makes ``STORAGE_DRIVER=vfs`` work.

Installing needs the package index (for the core's dependencies), as any pip install does.
"""

from __future__ import annotations

import os
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from containers_storage.config import load_store_options
from containers_storage.drivers.select import open_driver
from containers_storage.errors import StorageError
from containers_storage.plugins import get_plugin_host
try:
    driver = open_driver(load_store_options(), get_plugin_host())
except StorageError as e:
    print(f"error: {e}")
    sys.exit(1)
driver.create("base", None)
root = driver.get("base")
open(root + "/hello", "w").write("hi")
driver.put("base")
driver.create("child", "base")
child = open(driver.get("child") + "/hello").read()
print(type(driver).__module__, driver.name, sorted(driver.list_layers()), child)
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True).create(path)
    pip(path, str(REPO))
    yield path


def pip(env: Path, *args: str) -> None:
    subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        check=True,
        capture_output=True,
    )


def run(env: Path, tmp_path: Path, driver: str | None) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ngraphroot = "{tmp_path}/graph"\nrunroot = "{tmp_path}/run"\n')
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "PYTHON"))}
    environ["CONTAINERS_STORAGE_CONF"] = str(conf)
    if driver:
        environ["STORAGE_DRIVER"] = driver
    return subprocess.run(
        [str(env / "bin" / "python"), "-c", PROBE], env=environ, capture_output=True, text=True, cwd=tmp_path
    )


def test_core_alone_says_no_driver_is_installed(env: Path, tmp_path: Path) -> None:
    result = run(env, tmp_path, None)
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == (
        "error: no storage driver is installed; install one, e.g.: pip install containers-storage-vfs"
    )
    named = run(env, tmp_path, "vfs")
    assert 'storage driver "vfs" is not installed (installed drivers: none)' in named.stdout


def test_third_party_driver_is_selected_by_storage_driver(env: Path, tmp_path: Path) -> None:
    pip(env, str(REPO / "examples" / "tiny-driver"))
    result = run(env, tmp_path, "tiny")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["containers_storage_tiny.driver", "tiny", "['base',", "'child']", "hi"]


def test_installing_vfs_makes_it_selectable(env: Path, tmp_path: Path) -> None:
    pip(env, str(REPO / "drivers" / "vfs"))
    result = run(env, tmp_path, "vfs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[:2] == ["containers_storage_vfs.driver", "vfs"]
