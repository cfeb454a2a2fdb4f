"""A broken configuration, a wrong driver option or an out-of-range flag value stops the
command with one line naming what was wrong, and creates or saves nothing
(``containers_storage.testing.configs``: one line per case).

``CS_UPSTREAM_TOOL`` naming upstream's ``containers-storage`` also runs every case
through it and checks the recorded upstream answer.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from containers_storage.testing.configs import (
    BROKEN_FILES,
    DRIVER_OPTIONS,
    FLAG_VALUES,
    BrokenFile,
    DriverOption,
    FlagValue,
)

from .conftest import Result, driver_installed, run_main

pytestmark = pytest.mark.skipif(not driver_installed("vfs"), reason="the vfs driver is not installed")

UPSTREAM = os.environ.get("CS_UPSTREAM_TOOL", "")
needs_upstream = pytest.mark.skipif(
    not (UPSTREAM and os.access(UPSTREAM, os.X_OK)),
    reason="set CS_UPSTREAM_TOOL to upstream's containers-storage to compare with it",
)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory (wrong types once became directories there) and an
    environment that reads only the test's configuration."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for name in ("STORAGE_DRIVER", "STORAGE_OPTS", "XDG_CONFIG_HOME", "_CONTAINERS_USERNS_CONFIGURED",
                 "_CONTAINERS_ROOTLESS_UID"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _conf(work: Path, content: bytes, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = work / "storage.conf"
    path.write_bytes(content)
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(path))
    return path


def _roots(work: Path) -> list[str]:
    return ["--graph", str(work / "graph"), "--run", str(work / "run")]


def _one_line_error(r: Result) -> str:
    assert r.status == 1, r.stdout + r.stderr
    assert r.stdout.startswith("error initializing: ") and r.stdout.count("\n") == 1, r.stdout
    assert "Traceback" not in r.stderr and "Error:" not in r.stdout
    return r.stdout[len("error initializing: "):-1]


def _nothing_created(work: Path) -> None:
    assert not (work / "graph").exists() and not (work / "run").exists()
    assert os.listdir(work / "cwd") == []


@pytest.mark.parametrize("case", BROKEN_FILES, ids=lambda c: c.name)
def test_broken_file_stops_even_with_both_roots(case: BrokenFile, work: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = _conf(work, case.content, monkeypatch)
    text = _one_line_error(run_main(*_roots(work), "-s", "vfs", "layers"))
    assert str(path) in text and case.key in text.replace(str(path), "")
    _nothing_created(work)


@pytest.mark.parametrize("case", BROKEN_FILES, ids=lambda c: c.name)
def test_broken_file_stops_the_defaults(case: BrokenFile, work: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = _conf(work, case.content, monkeypatch)
    text = _one_line_error(run_main("layers"))
    assert str(path) in text and case.key in text.replace(str(path), "")
    _nothing_created(work)


@pytest.mark.parametrize(("name", "expected"), [
    ("directory", "read {path}: is a directory"),
    ("missing", "stat {path}: no such file or directory"),
])
def test_configuration_path_that_is_no_file(name: str, expected: str, work: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = work / name
    if name == "directory":
        path.mkdir()
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(path))
    assert _one_line_error(run_main(*_roots(work), "-s", "vfs", "layers")) == expected.format(path=path)
    _nothing_created(work)


def test_endless_configuration_is_refused(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", "/dev/zero")
    assert "/dev/zero" in _one_line_error(run_main(*_roots(work), "-s", "vfs", "layers"))


def test_unknown_keys_are_a_warning_as_upstream(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _conf(work, b'[storage]\ndriver = "vfs"\nbogus = "x"\n', monkeypatch)
    r = run_main(*_roots(work), "-s", "vfs", "layers")
    assert r.status == 0, r.stdout + r.stderr


# -- driver options ----------------------------------------------------------------------
def _driver_ready(case: DriverOption) -> None:
    if not driver_installed(case.driver):
        pytest.skip(f"the {case.driver} driver is not installed")
    if case.driver == "overlay" and os.geteuid() != 0:
        pytest.skip("kernel overlay mounts need root")


def _driver_args(case: DriverOption, work: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    if case.options is None:
        _conf(work, (f'[storage]\ndriver = "{case.driver}"\ngraphroot = "{work}/graph"\n'
                     f'runroot = "{work}/run"\n' + case.config).encode(), monkeypatch)
        return []
    _conf(work, b"", monkeypatch)
    return [*_roots(work), "-s", case.driver, *(f"--storage-opt={o}" for o in case.options)]


@pytest.mark.parametrize("case", DRIVER_OPTIONS, ids=lambda c: c.name)
def test_wrong_driver_option_is_refused_at_start(case: DriverOption, work: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _driver_ready(case)
    try:
        text = _one_line_error(run_main(*_driver_args(case, work, monkeypatch), "layers"))
    finally:
        run_main(*_roots(work), "-s", case.driver, "shutdown")
    assert case.named in text


# -- out-of-range flag values ------------------------------------------------------------
def _prepare(work: Path) -> dict[str, str]:
    """A store with a layer and an image on it, and a file to copy."""
    base = [*_roots(work), "-s", "vfs"]
    layer = run_main(*base, "create-layer").stdout.strip()
    image = run_main(*base, "create-image", layer).stdout.strip()
    src = work / "src"
    src.write_text("x")
    return {"layer": layer, "image": image, "src": str(src)}


def _store_state(work: Path) -> tuple[str, str, str]:
    base = [*_roots(work), "-s", "vfs"]
    return (run_main(*base, "layers", "--json").stdout, run_main(*base, "images", "--json").stdout,
            run_main(*base, "containers", "--json").stdout)


@pytest.mark.parametrize("case", FLAG_VALUES, ids=lambda c: c.name)
def test_out_of_range_flag_value_is_refused(case: FlagValue, work: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _conf(work, b"", monkeypatch)
    names = _prepare(work)
    before = _store_state(work)
    r = run_main(*_roots(work), "-s", "vfs", *(a.format(**names) for a in case.argv))
    assert r.status == 1 and r.stderr.count("\n") == 1, r.stdout + r.stderr
    assert r.stderr.startswith("invalid value ") and f" for flag {case.flag}: " in r.stderr
    assert case.upstream in r.stderr
    assert _store_state(work) == before


# -- upstream's answers, when its tool is at hand -----------------------------------------
def _upstream(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([UPSTREAM, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def _upstream_env(path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "XDG_CONFIG"))}
    env["CONTAINERS_STORAGE_CONF"] = str(path)
    return env


@needs_upstream
@pytest.mark.parametrize("case", BROKEN_FILES, ids=lambda c: c.name)
def test_upstream_answer_to_broken_file(case: BrokenFile, tmp_path: Path) -> None:
    path = tmp_path / "storage.conf"
    path.write_bytes(case.content)
    p = _upstream([*_roots(tmp_path), "-s", "vfs", "layers"], _upstream_env(path), tmp_path)
    if case.upstream is None:
        assert p.returncode == 0, p.stdout + p.stderr
    else:
        assert p.returncode == 1 and p.stdout.startswith(f"error initializing: {case.upstream}"), p.stdout


@needs_upstream
@pytest.mark.parametrize("case", DRIVER_OPTIONS, ids=lambda c: c.name)
def test_upstream_answer_to_driver_option(case: DriverOption, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _driver_ready(case)
    args = _driver_args(case, tmp_path, monkeypatch)
    env = _upstream_env(Path(os.environ["CONTAINERS_STORAGE_CONF"]))
    try:
        p = _upstream([*args, "layers"], env, tmp_path)
    finally:
        _upstream([*_roots(tmp_path), "-s", case.driver, "shutdown"], env, tmp_path)
    if case.upstream is None:
        assert p.returncode == 0, p.stdout + p.stderr
    else:
        assert p.returncode == 1 and p.stdout.startswith(f"error initializing: {case.upstream}"), p.stdout


@needs_upstream
@pytest.mark.parametrize("case", FLAG_VALUES, ids=lambda c: c.name)
def test_upstream_answer_to_flag_value(case: FlagValue, tmp_path: Path) -> None:
    path = tmp_path / "storage.conf"
    path.write_bytes(b"")
    env = _upstream_env(path)
    base = [*_roots(tmp_path), "-s", "vfs"]
    layer = _upstream([*base, "create-layer"], env, tmp_path).stdout.strip()
    image = _upstream([*base, "create-image", layer], env, tmp_path).stdout.strip()
    (tmp_path / "src").write_text("x")
    names = {"layer": layer, "image": image, "src": str(tmp_path / "src")}
    p = _upstream([*base, *(a.format(**names) for a in case.argv)], env, tmp_path)
    assert p.returncode == 1 and case.upstream in p.stdout + p.stderr, p.stdout + p.stderr
    assert json.loads(_upstream([*base, "containers", "--json"], env, tmp_path).stdout) == []
