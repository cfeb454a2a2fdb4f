"""Package-level counterparts of upstream's functions outside the Store (README, Python
API): configuration file, mount options, ID-mapping options, the rootless run dir."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage import config, rootless
from containers_storage.config import (
    default_config_file,
    load_store_options,
    reload_configuration_file,
    set_default_config_file_path,
)
from containers_storage.drivers.options import default_mount_options, mount_options
from containers_storage.errors import ConfigError, InvalidOption
from containers_storage.idtools import IDMap
from containers_storage.store import IDMappingOptions, RepairOptions


def conf(path: Path, graph: str, extra: str = "") -> str:
    path.write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{graph}"\nrunroot = "{graph}-run"\n{extra}')
    return str(path)


@pytest.fixture
def default_path_reset() -> Iterator[None]:
    yield
    set_default_config_file_path(None)


def test_default_config_file(tmp_path: Path) -> None:
    assert default_config_file(env={"CONTAINERS_STORAGE_CONF": "/x.conf"}) == "/x.conf"
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": "/nowhere"}
    assert default_config_file(rootless=True, env=env) == f"{tmp_path}/containers/storage.conf"
    assert default_config_file(rootless=True, env={"HOME": "/h"}) == "/h/.config/containers/storage.conf"
    root = config.OVERRIDE_CONFIG if os.path.exists(config.OVERRIDE_CONFIG) else config.SYSTEM_CONFIG
    assert default_config_file(rootless=False, env={}) == root


def test_set_default_config_file_path_is_the_only_file_read(tmp_path: Path, default_path_reset: None) -> None:
    mine = conf(tmp_path / "mine.conf", f"{tmp_path}/mine")
    other = conf(tmp_path / "other.conf", f"{tmp_path}/other")
    env = {"CONTAINERS_STORAGE_CONF": other, "HOME": str(tmp_path)}
    assert load_store_options(env).graph_root == f"{tmp_path}/other"
    set_default_config_file_path(mine)
    assert default_config_file(env=env) == mine
    assert load_store_options(env).graph_root == f"{tmp_path}/mine"
    # a missing or broken file is refused and the path in force stays
    with pytest.raises(ConfigError, match="no such file"):
        set_default_config_file_path(str(tmp_path / "missing.conf"))
    (tmp_path / "bad.conf").write_text("[storage\n")
    with pytest.raises(ConfigError):
        set_default_config_file_path(str(tmp_path / "bad.conf"))
    assert default_config_file(env=env) == mine
    set_default_config_file_path(None)
    assert load_store_options(env).graph_root == f"{tmp_path}/other"


def test_reload_configuration_file(tmp_path: Path) -> None:
    opts = reload_configuration_file(conf(tmp_path / "s.conf", "/g", 'imagestore = "/i"\n'), env={})
    assert (opts.graph_root, opts.run_root, opts.image_store) == ("/g", "/g-run", "/i")
    assert opts.driver_name == "overlay"
    # a missing file is not an error: nothing from it, the environment still applies
    gone = reload_configuration_file(str(tmp_path / "gone.conf"), env={"STORAGE_DRIVER": "vfs"})
    assert (gone.graph_root, gone.run_root, gone.driver_name) == ("", "", "vfs")
    (tmp_path / "bad.conf").write_text("[storage\n")
    with pytest.raises(ConfigError):
        reload_configuration_file(str(tmp_path / "bad.conf"), env={})


def test_mount_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_path_reset: None) -> None:
    assert mount_options("overlay", ["overlay.size=1G", "Overlay.MountOpt = nodev,metacopy=on"]) == [
        "nodev",
        "metacopy=on",
    ]
    assert mount_options("vfs", [".mountopt=ro", "overlay.mountopt=nodev"]) == ["ro"]
    assert mount_options("vfs", ["overlay.mountopt=nodev"]) == []
    assert mount_options("vfs", [".mountopt=ro", "not-an-option"]) == ["ro"]
    with pytest.raises(InvalidOption, match="unable to parse key/value option: not-an-option"):
        mount_options("vfs", ["not-an-option", ".mountopt=ro"])
    monkeypatch.delenv("STORAGE_OPTS", raising=False)
    monkeypatch.delenv("STORAGE_DRIVER", raising=False)
    path = conf(tmp_path / "s.conf", "/g", '[storage.options]\nmountopt = "nodev,noatime"\n')
    set_default_config_file_path(path)
    assert default_mount_options() == ["nodev", "noatime"]


def test_id_mapping_options_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    one = IDMappingOptions.parse(["0:100000:65536"])
    assert one.uid_map == one.gid_map == (IDMap(0, 100000, 65536),)
    assert not one.host_uid_mapping and not one.host_gid_mapping
    two = IDMappingOptions.parse(["0:1:1", "1:100000:10:11:200:5"], ["0:2:1"])
    assert two.uid_map == (IDMap(0, 1, 1), IDMap(1, 100000, 10), IDMap(11, 200, 5))
    assert two.gid_map == (IDMap(0, 2, 1),)
    with pytest.raises(ConfigError, match=r"failed to create ParseUIDMap UID=\[0:1\]: .*malformed"):
        IDMappingOptions.parse(["0:1"])
    with pytest.raises(ConfigError, match="failed to create NewIDMappings for uidmap=nosuchuser-cs"):
        IDMappingOptions.parse(sub_uid_user="nosuchuser-cs")
    monkeypatch.setattr(os, "getuid", lambda: 0)
    assert IDMappingOptions.parse() == IDMappingOptions(host_uid_mapping=True, host_gid_mapping=True)
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setattr(os, "getgid", lambda: 1001)
    mine = IDMappingOptions.parse()
    assert (mine.uid_map, mine.gid_map) == ((IDMap(0, 1000, 1),), (IDMap(0, 1001, 1),))


def test_rootless_runtime_dir(tmp_path: Path) -> None:
    run = tmp_path / "xdg"
    run.mkdir(0o700)
    path = rootless.runtime_dir(1000, env={"XDG_RUNTIME_DIR": str(run)})
    assert path == f"{run}/containers"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert rootless.runtime_dir(1000, env={"XDG_RUNTIME_DIR": str(run)}) == path  # already there
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(ConfigError, match="unable to make rootless runtime"):
        rootless.runtime_dir(1000, env={"XDG_RUNTIME_DIR": str(blocked)})


def test_repair_everything() -> None:
    assert RepairOptions.everything() == RepairOptions(remove_containers=True)
    assert RepairOptions() == RepairOptions(remove_containers=False)
