"""storage.conf, environment and defaults (config.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from containers_storage.config import (
    _read_config,
    driver_options_from_config,
    expand_path,
    load_store_options,
    options_from_file,
    subordinate_ids,
)
from containers_storage.errors import ConfigError
from containers_storage.idtools import IDMap


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_explicit_config_file_is_the_only_one(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "s.conf",
        f'[storage]\ndriver = "overlay2"\ngraphroot = "{tmp_path}/g"\nrunroot = "{tmp_path}/r"\n',
    )
    opts = load_store_options({"CONTAINERS_STORAGE_CONF": conf, "HOME": str(tmp_path)})
    assert opts.driver_name == "overlay"
    assert opts.graph_root == f"{tmp_path}/g" and opts.run_root == f"{tmp_path}/r"


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or directory"):
        load_store_options({"CONTAINERS_STORAGE_CONF": str(tmp_path / "nope.conf")})


def test_storage_driver_and_opts_env_override_the_file(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "s.conf",
        '[storage]\ndriver = "overlay"\ngraphroot = "/g"\nrunroot = "/r"\n'
        '[storage.options]\nmountopt = "nodev"\n',
    )
    env = {"CONTAINERS_STORAGE_CONF": conf, "STORAGE_DRIVER": "vfs", "STORAGE_OPTS": "vfs.a=1,vfs.b=2"}
    opts = options_from_file(conf, env, 0)
    assert opts.driver_name == "vfs"
    assert opts.driver_options == ["vfs.a=1", "vfs.b=2"]
    env["STORAGE_OPTS"] = ""
    assert options_from_file(conf, env, 0).driver_options == []


def test_driver_option_list_order_matches_upstream(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "s.conf",
        """[storage]
driver = "overlay"
[storage.options]
additionalimagestores = ["/ro1", "/ro2"]
size = "10G"
mount_program = "/usr/bin/fuse-overlayfs"
mountopt = "nodev"
[storage.options.overlay]
mountopt = "metacopy=on"
inodes = "100"
""",
    )
    cfg = _read_config(conf)
    assert driver_options_from_config(cfg, "overlay") == [
        "overlay.imagestore=/ro1",
        "overlay.imagestore=/ro2",
        "overlay.size=10G",
        "overlay.mount_program=/usr/bin/fuse-overlayfs",
        "overlay.mountopt=nodev",
        "overlay.mount_program=/usr/bin/fuse-overlayfs",
        "overlay.mountopt=metacopy=on",
        "overlay.size=10G",
        "overlay.inodes=100",
    ]


def test_btrfs_min_space_suppresses_size(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "s.conf",
        '[storage]\ndriver = "btrfs"\n[storage.options.btrfs]\nmin_space = "1G"\nsize = "5G"\n',
    )
    assert driver_options_from_config(_read_config(conf), "btrfs") == ["btrfs.min_space=1G"]


def test_string_force_mask_makes_file_unparsable(tmp_path: Path) -> None:
    conf = write(tmp_path / "s.conf", '[storage]\n[storage.options]\nforce_mask = "0755"\n')
    with pytest.raises(ConfigError, match="force_mask"):
        _read_config(conf)


def test_malformed_remap_uids_uses_upstream_wording(tmp_path: Path) -> None:
    conf = write(tmp_path / "s.conf", '[storage]\n[storage.options]\nremap-uids = "0:1"\n')
    with pytest.raises(
        ConfigError, match=r'remap-uids setting is malformed expected \["uint32:uint32:uint32"\]'
    ):
        options_from_file(conf, {}, 0)


def test_remap_uids_parsed(tmp_path: Path) -> None:
    conf = write(tmp_path / "s.conf", '[storage]\n[storage.options]\nremap-uids = "0:100000:65536"\n')
    assert options_from_file(conf, {}, 0).uid_map == (IDMap(0, 100000, 65536),)


def test_subordinate_ids(tmp_path: Path) -> None:
    f = write(tmp_path / "subuid", "# comment\nalice:200000:1000\nbob:1:2\nalice:100000:500\n")
    assert subordinate_ids("alice", f) == (IDMap(0, 100000, 500), IDMap(500, 200000, 1000))
    with pytest.raises(ConfigError, match='no subuid ranges found for user "carol"'):
        subordinate_ids("carol", f)


def test_expand_path(tmp_path: Path) -> None:
    assert expand_path("/x/$UID/${FOO}/$BAR", {"FOO": "foo"}, 42) == "/x/42/foo"


def test_imagestore_must_differ_from_graphroot(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "s.conf",
        f'[storage]\ngraphroot = "{tmp_path}"\nrunroot = "/r"\nimagestore = "{tmp_path}"\n',
    )
    with pytest.raises(ConfigError, match="must either be not set or be a different than graphroot"):
        load_store_options({"CONTAINERS_STORAGE_CONF": conf})


def test_rootless_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1234)
    env = {
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "_CONTAINERS_ROOTLESS_UID": "1234",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    (tmp_path / "graph").mkdir()
    opts = load_store_options(env)
    assert opts.graph_root == f"{tmp_path}/.local/share/containers/storage"
    assert opts.run_root == f"{tmp_path}/run/containers"


def test_rootless_user_config_replaces_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1234)
    cfg = tmp_path / "cfg" / "containers"
    cfg.mkdir(parents=True)
    write(cfg / "storage.conf", '[storage]\ndriver = "vfs"\nrootless_storage_path = "$HOME/$UID/store"\n')
    env = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    opts = load_store_options(env)
    assert opts.driver_name == "vfs"
    assert opts.graph_root == f"{tmp_path}/1234/store"


def test_errors_give_the_line_of_the_key(tmp_path: Path) -> None:
    conf = write(tmp_path / "s.conf", '# comment\n[storage]\ndriver = "vfs"\n\nrunroot = 5\n')
    with pytest.raises(ConfigError) as info:
        _read_config(conf)
    assert str(info.value) == f"{conf}, line 5: storage.runroot must be a string, not an integer"
    conf = write(tmp_path / "s.conf", '[storage.options]\nsize = "1G"\npull_options = {a = "x", b = 2}\n')
    with pytest.raises(ConfigError) as info:
        _read_config(conf)
    message = f"{conf}, line 3: storage.options.pull_options.b must be a string, not an integer"
    assert str(info.value) == message


def test_syntax_errors_name_the_last_key(tmp_path: Path) -> None:
    conf = write(tmp_path / "s.conf", '[storage]\ndriver = "vfs"\n[storage.options]\nsize = "1G" junk\n')
    with pytest.raises(ConfigError) as info:
        _read_config(conf)
    where = f'{conf}, line 4, column 13 (key "storage.options.size")'
    assert str(info.value).startswith(f"{where}: not valid TOML: ")


def test_unknown_keys_are_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    conf = write(tmp_path / "s.conf", '[storage]\ngraphrot = "/x"\n[storage.options]\nsiz = "1G"\n')
    with caplog.at_level("WARNING", logger="containers_storage.config"):
        _read_config(conf)
        _read_config(conf)
    assert [r.getMessage() for r in caplog.records] == [
        f'Failed to decode the keys ["storage.graphrot" "storage.options.siz"] from "{conf}"'
    ]


def test_driver_table_keys_upstream_ignores_go_to_the_driver(tmp_path: Path) -> None:
    conf = write(tmp_path / "s.conf", '[storage]\ndriver = "vfs"\n[storage.options.vfs]\n'
                 'ignore_chown_errors = "true"\nbogus = "1"\n[storage.options.overlay]\nother = "2"\n')
    cfg = _read_config(conf)
    assert driver_options_from_config(cfg, "vfs") == ["vfs.ignore_chown_errors=true", "vfs.bogus=1"]
    assert driver_options_from_config(cfg, "overlay2") == ["overlay.other=2"]
    assert driver_options_from_config(cfg, "") == []


def test_zero_auto_userns_sizes_mean_the_defaults(tmp_path: Path) -> None:
    text = "[storage.options]\nauto-userns-min-size = 0\nauto-userns-max-size = 0\n"
    conf = write(tmp_path / "s.conf", text)
    opts = options_from_file(conf, {}, 0)
    assert (opts.auto_userns_min_size, opts.auto_userns_max_size) == (1024, 65536)
