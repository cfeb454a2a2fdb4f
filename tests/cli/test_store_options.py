"""How flags, storage.conf and the environment select the store (cli.md §3).

Every configuration here points at temporary roots through ``CONTAINERS_STORAGE_CONF``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import driver_installed, run_main

pytestmark = pytest.mark.skipif(not driver_installed("vfs"), reason="the vfs driver is not installed")


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "storage.conf"
    path.write_text(
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{tmp_path}/conf-graph"\n'
        f'runroot = "{tmp_path}/conf-run"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(path))
    for name in ("STORAGE_DRIVER", "STORAGE_OPTS", "_CONTAINERS_USERNS_CONFIGURED",
                 "_CONTAINERS_ROOTLESS_UID"):
        monkeypatch.delenv(name, raising=False)
    return path


def _status(*args: str) -> dict[str, str]:
    r = run_main(*args, "status")
    assert r.status == 0, r.stdout + r.stderr
    return dict(line.split(": ", 1) for line in r.stderr.splitlines())


def test_defaults_come_from_the_configuration(conf: Path) -> None:
    pairs = _status()
    assert pairs["Root"] == f"{conf.parent}/conf-graph"
    assert pairs["Run Root"] == f"{conf.parent}/conf-run"
    assert pairs["Driver Name"] == "vfs"


def test_flags_after_the_command_override_single_fields(conf: Path, tmp_path: Path) -> None:
    r = run_main("status", "--graph", str(tmp_path / "other"))
    pairs = dict(line.split(": ", 1) for line in r.stderr.splitlines())
    assert pairs["Root"] == str(tmp_path / "other") and pairs["Run Root"] == f"{conf.parent}/conf-run"


def test_storage_opts_env_is_read_only_with_defaults(conf: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_OPTS", "vfs.ignore_chown_errors=true")
    assert _status()["Driver Options"] == "[vfs.ignore_chown_errors=true]"
    pairs = _status("-g", str(tmp_path / "g"), "-R", str(tmp_path / "r"), "-s", "vfs")
    assert pairs["Driver Options"] == "[]"


def test_relative_roots_are_made_absolute(conf: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pairs = _status("-g", "rel-graph", "-R", "rel-run", "-s", "vfs")
    assert pairs["Root"] == str(tmp_path / "rel-graph") and pairs["Run Root"] == str(tmp_path / "rel-run")


def test_unreadable_configuration_fails_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(tmp_path / "missing.conf"))
    r = run_main("status")
    assert r.status == 1 and r.stdout.startswith("error initializing: ")


def test_debug_logs_the_options(conf: Path) -> None:
    r = run_main("--debug", "status")
    assert r.status == 0
    assert f'level=debug msg="Root: {conf.parent}/conf-graph"' in r.stderr
    assert 'msg="Driver Name: vfs"' in r.stderr
    quiet = run_main("--debug=false", "status")
    assert "level=debug" not in quiet.stderr


def test_list_flags_after_the_command_append_to_the_defaults(conf: Path) -> None:
    conf.write_text(conf.read_text() + '[storage.options.vfs]\nignore_chown_errors = "true"\n')
    assert _status()["Driver Options"] == "[vfs.ignore_chown_errors=true]"
    r = run_main("status", "--storage-opt", "vfs.ignore_chown_errors=false")
    pairs = dict(line.split(": ", 1) for line in r.stderr.splitlines())
    assert pairs["Driver Options"] == "[vfs.ignore_chown_errors=true vfs.ignore_chown_errors=false]"


def test_a_driver_before_the_command_skips_the_configuration(conf: Path) -> None:
    r = run_main("-s", "vfs", "status")
    assert r.status == 1
    assert r.stdout == (
        "error initializing: no storage runroot or graphroot specified: missing necessary StoreOptions\n"
    )


def test_storage_driver_env_is_read_with_defaults(conf: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    conf.write_text(conf.read_text().replace('driver = "vfs"\n', 'driver = "no-such-driver"\n'))
    monkeypatch.setenv("STORAGE_DRIVER", "vfs")
    assert _status()["Driver Name"] == "vfs"
    r = run_main("-g", str(tmp_path / "g"), "-R", str(tmp_path / "r"), "status")
    assert r.status == 1 or "Driver Name: vfs" not in r.stderr
