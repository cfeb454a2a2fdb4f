"""``[storage.options.NAME]`` reaches a third-party driver; an option a driver does not
declare in ``option_keys`` is refused before it is probed, naming the driver and option."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from containers_storage.cli.main import main
from containers_storage.config import StoreOptions, load_store_options
from containers_storage.drivers.api import CreateOpts, Driver, DriverConfig, DriverInfo, MountOpts
from containers_storage.drivers.options import option_map
from containers_storage.drivers.select import open_driver
from containers_storage.errors import InvalidOption
from containers_storage.hookspecs import hookimpl
from containers_storage.plugins import PluginHost


class Paint(Driver):
    """A third-party driver with one option: directories, like the example driver."""

    name = "paint"
    option_keys: ClassVar[frozenset[str] | None] = frozenset({"colour"})
    probed: ClassVar[list[str]] = []

    @classmethod
    def probe(cls, config: DriverConfig) -> None:
        cls.probed.append(config.root)

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.colour = option_map(config.options, "paint.", ".").get("colour", "none")

    def create(self, id: str, parent: str | None, opts: CreateOpts | None = None) -> None:
        os.makedirs(os.path.join(self.home, id))

    def remove(self, id: str) -> None:
        os.rmdir(os.path.join(self.home, id))

    def get(self, id: str, opts: MountOpts | None = None) -> str:
        return os.path.join(self.home, id)

    def put(self, id: str) -> None:
        """Nothing is mounted."""

    def exists(self, id: str) -> bool:
        return os.path.isdir(os.path.join(self.home, id))

    def list_layers(self) -> list[str]:
        return os.listdir(self.home) if os.path.isdir(self.home) else []


class Plain(Paint):
    """A driver that declares no options (the default)."""

    name = "plain"
    option_keys = frozenset()


class Offer:
    @hookimpl
    def cstorage_drivers(self) -> list[DriverInfo]:
        return [DriverInfo(name="paint", load=lambda: Paint), DriverInfo(name="plain", load=lambda: Plain)]


@pytest.fixture
def host() -> Iterator[PluginHost]:
    h = PluginHost()
    h.register(Offer())
    Paint.probed.clear()
    yield h


def _conf(tmp_path: Path, driver: str, table: str) -> dict[str, str]:
    path = tmp_path / "storage.conf"
    path.write_text(f'[storage]\ndriver = "{driver}"\ngraphroot = "{tmp_path}/g"\nrunroot = "{tmp_path}/r"\n'
                    f"[storage.options.{driver}]\n{table}")
    return {"CONTAINERS_STORAGE_CONF": str(path), "HOME": str(tmp_path)}


def test_table_reaches_the_driver(tmp_path: Path, host: PluginHost) -> None:
    opts = load_store_options(_conf(tmp_path, "paint", 'colour = "red"\n'))
    assert opts.driver_options == ["paint.colour=red"]
    driver = open_driver(opts, host)
    assert isinstance(driver, Paint) and driver.colour == "red"


def test_unknown_table_key_is_refused_before_the_probe(tmp_path: Path, host: PluginHost) -> None:
    opts = load_store_options(_conf(tmp_path, "paint", 'colour = "red"\nshape = "round"\n'))
    with pytest.raises(InvalidOption) as info:
        open_driver(opts, host)
    assert str(info.value) == (
        'storage driver "paint" does not know the option paint.shape (its options: colour)'
    )
    assert Paint.probed == []


@pytest.mark.parametrize("option", ["plain.x=1", ".x=1", "x=1", "vfs.ignore_chown_errors=true"])
def test_a_driver_declaring_nothing_takes_no_option(tmp_path: Path, host: PluginHost, option: str) -> None:
    opts = StoreOptions(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), driver_name="plain",
                        driver_options=[option])
    refused = r'storage driver "plain" does not know the option .*\(its options: none\)'
    with pytest.raises(InvalidOption, match=refused):
        open_driver(opts, host)


@pytest.mark.parametrize("option", ["paint.colour=blue", ".colour=blue", "colour=blue", "PAINT.Colour=blue"])
def test_declared_option_forms(tmp_path: Path, host: PluginHost, option: str) -> None:
    opts = StoreOptions(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), driver_name="paint",
                        driver_options=[option])
    driver = open_driver(opts, host)
    assert isinstance(driver, Paint) and driver.colour == "blue"


def test_command_line_refuses_an_unknown_option(tmp_path: Path, host: PluginHost,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("containers_storage.plugins.get_plugin_host", lambda: host)
    env = _conf(tmp_path, "paint", 'size = "1G"\n')
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STORAGE_OPTS", raising=False)
    monkeypatch.delenv("STORAGE_DRIVER", raising=False)
    out, err = io.BytesIO(), io.BytesIO()
    assert main(["layers"], stdout=out, stderr=err) == 1
    assert out.getvalue().decode() == (
        'error initializing: storage driver "paint" does not know the option paint.size '
        "(its options: colour)\n"
    )
