"""The library's side of ``containers_storage.testing.configs``: a broken ``storage.conf``
is a :class:`ConfigError` of one line naming the file and the key, whichever way the
options are loaded; wrong driver options stop the store from opening, naming the option;
out-of-range values are refused by the parsers the flags use.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from containers_storage.cli.copy import _parse_chown
from containers_storage.cli.errtext import CommandError
from containers_storage.cli.gofmt import parse_duration
from containers_storage.config import (
    StoreOptions,
    complete_store_options,
    load_store_options,
    parse_id_map_setting,
    parse_uint32,
)
from containers_storage.errors import ConfigError, IncompleteOptions, InvalidOption
from containers_storage.plugins import get_plugin_host
from containers_storage.store import get_store
from containers_storage.testing.configs import (
    BROKEN_FILES,
    DRIVER_OPTIONS,
    FLAG_VALUES,
    BrokenFile,
    DriverOption,
    FlagValue,
)


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def _env(path: Path, home: Path) -> dict[str, str]:
    return {"CONTAINERS_STORAGE_CONF": str(path), "HOME": str(home)}


def _names_file_and_key(error: ConfigError, path: Path, key: str) -> None:
    text = str(error)
    assert "\n" not in text and str(path) in text and key in text.replace(str(path), ""), text
    for raw in ("UnicodeDecodeError", "RecursionError", "codec can't decode", "Traceback"):
        assert raw not in text


@pytest.mark.parametrize("case", BROKEN_FILES, ids=lambda c: c.name)
def test_load_store_options_refuses(case: BrokenFile, tmp_path: Path, cwd: Path) -> None:
    path = tmp_path / "storage.conf"
    path.write_bytes(case.content)
    with pytest.raises(ConfigError) as info:
        load_store_options(_env(path, tmp_path))
    _names_file_and_key(info.value, path, case.key)
    assert os.listdir(cwd) == []


@pytest.mark.parametrize("case", BROKEN_FILES, ids=lambda c: c.name)
def test_given_roots_do_not_skip_the_configuration(case: BrokenFile, tmp_path: Path, cwd: Path) -> None:
    """upstream's GetStore reads storage.conf whatever the options say."""
    path = tmp_path / "storage.conf"
    path.write_bytes(case.content)
    given = StoreOptions(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), driver_name="vfs")
    with pytest.raises(ConfigError) as info:
        complete_store_options(given, _env(path, tmp_path))
    _names_file_and_key(info.value, path, case.key)
    assert os.listdir(cwd) == [] and not (tmp_path / "g").exists()


def test_broken_rootless_user_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream logs it and goes on with other roots than the configured ones."""
    monkeypatch.setattr(os, "geteuid", lambda: 1234)
    cfg = tmp_path / "cfg" / "containers"
    cfg.mkdir(parents=True)
    (cfg / "storage.conf").write_text('[storage]\ngraphroot = ["/a"]\n')
    env = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "_CONTAINERS_ROOTLESS_UID": "1234", "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    with pytest.raises(ConfigError) as info:
        load_store_options(env)
    _names_file_and_key(info.value, cfg / "storage.conf", "storage.graphroot")


def test_every_option_empty_takes_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "storage.conf"
    path.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{tmp_path}/g"\nrunroot = "{tmp_path}/r"\n'
                    '[storage.options.vfs]\nignore_chown_errors = "true"\n')
    env = _env(path, tmp_path)
    opts = complete_store_options(StoreOptions(), env)
    assert (opts.graph_root, opts.run_root, opts.driver_name) == (f"{tmp_path}/g", f"{tmp_path}/r", "vfs")
    assert opts.driver_options == ["vfs.ignore_chown_errors=true"]
    only_graph = complete_store_options(StoreOptions(graph_root="rel"), env)
    assert (only_graph.graph_root, only_graph.run_root) == (os.path.abspath("rel"), f"{tmp_path}/r")
    assert only_graph.driver_name == ""  # a given option set is not mixed with the file's
    with pytest.raises(IncompleteOptions, match="no storage runroot or graphroot specified"):
        complete_store_options(StoreOptions(driver_name="vfs"), env)


# -- driver options ----------------------------------------------------------------------
@pytest.mark.parametrize("case", DRIVER_OPTIONS, ids=lambda c: c.name)
def test_store_refuses_wrong_driver_option(case: DriverOption, tmp_path: Path) -> None:
    if get_plugin_host().driver_info(case.driver) is None:
        pytest.skip(f"the {case.driver} driver is not installed")
    if case.driver == "overlay" and os.geteuid() != 0:
        pytest.skip("kernel overlay mounts need root")
    if case.options is None:
        path = tmp_path / "storage.conf"
        path.write_text(f'[storage]\ndriver = "{case.driver}"\ngraphroot = "{tmp_path}/g"\n'
                        f'runroot = "{tmp_path}/r"\n' + case.config)
        opts = load_store_options(_env(path, tmp_path))
    else:
        opts = StoreOptions(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"),
                            driver_name=case.driver, driver_options=list(case.options))
    with pytest.raises(InvalidOption) as info:
        get_store(opts).close()
    assert case.named in str(info.value) and "\n" not in str(info.value)


# -- out-of-range values -----------------------------------------------------------------
def _flag_value(case: FlagValue) -> str:
    for i, arg in enumerate(case.argv):
        if arg == case.flag:
            return case.argv[i + 1]
        if arg.startswith(case.flag + "="):
            return arg.partition("=")[2]
    raise AssertionError(case)


_PARSERS = {
    "--uidmap": (lambda v: parse_id_map_setting(v, "uid"), ConfigError),
    "--gidmap": (lambda v: parse_id_map_setting(v, "gid"), ConfigError),
    "--chown": (_parse_chown, CommandError),
    "--max": (parse_duration, ValueError),
}


@pytest.mark.parametrize("case", FLAG_VALUES, ids=lambda c: c.name)
def test_parser_refuses_out_of_range_value(case: FlagValue) -> None:
    parse, error = _PARSERS[case.flag]
    with pytest.raises(error) as info:
        parse(_flag_value(case))
    assert case.upstream in str(info.value)


@pytest.mark.parametrize("text", ["4294967295", "0", "007"])
def test_uint32_range_is_upstreams(text: str) -> None:
    assert parse_uint32(text) == int(text)


@pytest.mark.parametrize("text", ["4294967296", "-1", "+1", " 1", "1_000", "\u0663", "", "1e3"])
def test_uint32_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="strconv.ParseUint"):
        parse_uint32(text)
