"""The example out-of-tree driver (``examples/tiny-driver``) as a user installs it: into a
fresh virtual environment next to the core and a built-in driver with a better priority,
selected by ``STORAGE_DRIVER``. The command's whole job runs through it, the store is
recognised as a tiny store when reopened without naming the driver, and its own
conformance-kit test and the reliability suites (``--reliability-driver tiny``) pass.

Installing needs the package index (for the core's dependencies and pytest), as any pip
install does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "examples" / "tiny-driver"


def copy_source(src: Path, dest: Path) -> Path:
    """Build from a copy: pip's in-tree build leaves build/ and *.egg-info behind."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    return dest


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("tiny-venv")
    path = work / "env"
    venv.EnvBuilder(with_pip=True).create(path)
    tiny = copy_source(TINY, work / "tiny-driver")
    sources = [REPO, tiny, copy_source(REPO / "drivers" / "overlay", work / "overlay")]
    subprocess.run(
        [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *map(str, sources), "pytest"],
        check=True, capture_output=True,
    )  # fmt: skip
    yield path


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    conf = tmp_path / "storage.conf"
    conf.write_text(f'[storage]\ngraphroot = "{tmp_path}/graph"\nrunroot = "{tmp_path}/run"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "PYTHON", "CONTAINERS_"))}
    env["CONTAINERS_STORAGE_CONF"] = str(conf)
    env.update(extra)
    return env


def cs(env: Path, environment: dict[str, str], *args: str, stdin: bytes = b"") -> str:
    r = subprocess.run(
        [str(env / "bin" / "containers-storage"), *args], env=environment, input=stdin, capture_output=True,
        timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, f"containers-storage {' '.join(args)}: {r.stdout!r} {r.stderr!r}"
    return r.stdout.decode()


def test_the_commands_whole_job_through_the_example_driver(env: Path, tmp_path: Path) -> None:
    tiny = environ(tmp_path, STORAGE_DRIVER="tiny")
    tarball = (REPO / "examples" / "demo-layer.tar.gz").read_bytes()
    layer = cs(env, tiny, "import-layer", "-n", "base", stdin=tarball).split()[0]
    image = cs(env, tiny, "create-image", "-n", "localhost/demo:latest", layer).split()[0]
    container = cs(env, tiny, "create-container", "-n", "ctr", image).split()[0]
    mount = cs(env, tiny, "mount", container).strip()
    assert mount.startswith(f"{tmp_path}/graph/tiny/"), mount
    assert (Path(mount) / "etc" / "demo-release").read_text()
    (Path(mount) / "etc" / "from-the-container").write_text("written\n")
    cs(env, tiny, "unmount", container)
    ctr_layer = json.loads(cs(env, tiny, "container", "--json", container))[0]["layer"]
    assert "from-the-container" in cs(env, tiny, "changes", ctr_layer)
    assert ["Driver Name", "tiny"] in json.loads(cs(env, tiny, "status", "--json"))
    drivers = {row["name"]: row for row in json.loads(cs(env, tiny, "drivers", "--json"))}
    assert drivers["tiny"]["distribution"] == "containers-storage-tiny" and drivers["tiny"]["probe"] == "ok"

    # reopened without naming the driver: the tiny/ directory wins over overlay's priority
    plain = environ(tmp_path)
    assert [row["id"] for row in json.loads(cs(env, plain, "layers", "--json"))] == [layer, ctr_layer]
    assert ["Driver Name", "tiny"] in json.loads(cs(env, plain, "status", "--json"))
    assert not (tmp_path / "graph" / "overlay").exists()

    cs(env, tiny, "delete-container", container)
    cs(env, tiny, "delete-image", image)
    assert json.loads(cs(env, tiny, "layers", "--json")) is None  # Go's empty slice: null
    cs(env, tiny, "check")
    assert os.listdir(tmp_path / "graph" / "tiny") == []


def test_the_example_drivers_conformance_kit_passes(env: Path, tmp_path: Path) -> None:
    tests = copy_source(TINY / "tests", tmp_path / "tests")
    r = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pytest", str(tests), "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path, env=environ(tmp_path), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    assert " passed" in r.stdout and " failed" not in r.stdout


def test_the_reliability_suites_run_on_the_example_driver(env: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/reliability/test_kill.py", "tests/reliability/test_concurrency.py",
         "--reliability-driver", "tiny", "--soak-kills", "6", "--soak-seconds", "3"],
        cwd=REPO, env=environ(tmp_path), capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    summary = next(line for line in r.stdout.splitlines() if line.startswith("tiny "))
    assert " lost 0 " in summary and " kills 6 " in summary, summary
