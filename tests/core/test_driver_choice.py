"""Driver choice (config.md §5) and its errors, with real driver classes on real dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from containers_storage.config import StoreOptions
from containers_storage.drivers.api import Driver, DriverConfig, DriverInfo
from containers_storage.drivers.select import open_driver
from containers_storage.errors import DriverError, DriverNotInstalled, DriverPrerequisites, NoDriverAvailable
from containers_storage.hookspecs import hookimpl
from containers_storage.plugins import PluginHost
from containers_storage_vfs.driver import VFSDriver


class RefusingDriver(VFSDriver):
    """A driver whose probe always says it cannot run here."""

    name = "refusing"

    @classmethod
    def probe(cls, config: DriverConfig) -> None:
        raise DriverPrerequisites(message=f"refusing cannot run on {config.root}")


class Offer:
    def __init__(self, *infos: DriverInfo) -> None:
        self.infos = list(infos)

    @hookimpl
    def cstorage_drivers(self) -> list[DriverInfo]:
        return self.infos


def _info(name: str, cls: type[Driver], priority: int, aliases: tuple[str, ...] = ()) -> DriverInfo:
    return DriverInfo(name=name, load=lambda: cls, priority=priority, aliases=aliases)


class EmptyHost(PluginHost):
    """A plugin host that sees no installed entry points (as with the core alone)."""

    def load_all_drivers(self) -> list[DriverInfo]:
        self._all_drivers_loaded = True
        return super().load_all_drivers()


def opts(tmp_path: Path, **kw: object) -> StoreOptions:
    return StoreOptions(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), **kw)  # type: ignore[arg-type]


def test_named_driver_loads_only_its_entry_point(tmp_path: Path) -> None:
    host = PluginHost()
    driver = open_driver(opts(tmp_path, driver_name="vfs"), host)
    assert isinstance(driver, VFSDriver)
    assert not host._all_drivers_loaded  # no full scan for a named driver


def test_named_driver_not_installed(tmp_path: Path) -> None:
    with pytest.raises(DriverNotInstalled) as info:
        open_driver(opts(tmp_path, driver_name="nosuch"), PluginHost())
    text = str(info.value)
    assert 'storage driver "nosuch" is not installed' in text
    assert "vfs" in text and "pip install containers-storage-nosuch" in text
    assert "\n" not in text


def test_named_driver_unusable_says_why(tmp_path: Path) -> None:
    host = EmptyHost()
    host.register(Offer(_info("refusing", RefusingDriver, 5)))
    with pytest.raises(DriverPrerequisites, match="refusing cannot run on"):
        open_driver(opts(tmp_path, driver_name="refusing"), host)


def test_no_driver_installed(tmp_path: Path) -> None:
    with pytest.raises(NoDriverAvailable, match="pip install containers-storage-vfs"):
        open_driver(opts(tmp_path), EmptyHost())


def test_probing_skips_unusable_drivers(tmp_path: Path) -> None:
    host = EmptyHost()
    host.register(Offer(_info("refusing", RefusingDriver, 5), _info("vfs", VFSDriver, 100)))
    assert isinstance(open_driver(opts(tmp_path), host), VFSDriver)


def test_probing_reports_every_reason(tmp_path: Path) -> None:
    host = EmptyHost()
    host.register(Offer(_info("refusing", RefusingDriver, 5)))
    with pytest.raises(NoDriverAvailable, match="refusing: .*refusing cannot run"):
        open_driver(opts(tmp_path), host)


def test_prior_driver_directory_wins(tmp_path: Path) -> None:
    class Other(VFSDriver):
        name = "other"

    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 1), _info("other", Other, 50)))
    (tmp_path / "g" / "other").mkdir(parents=True)
    driver = open_driver(opts(tmp_path, driver_priority=["vfs", "other"]), host)
    assert type(driver) is Other


def test_several_prior_drivers_is_an_error(tmp_path: Path) -> None:
    class Other(VFSDriver):
        name = "other"

    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 1), _info("other", Other, 50)))
    for d in ("vfs", "other"):
        (tmp_path / "g" / d).mkdir(parents=True)
    with pytest.raises(DriverError, match="contains several valid graphdrivers"):
        open_driver(opts(tmp_path, driver_priority=["vfs", "other"]), host)


def test_existing_vfs_store_is_not_detected_without_priority(tmp_path: Path) -> None:
    """Upstream quirk: vfs is not a 'prior' driver unless driver_priority is configured."""

    class Preferred(VFSDriver):
        name = "overlay"

    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 100), _info("overlay", Preferred, 10)))
    (tmp_path / "g" / "vfs").mkdir(parents=True)
    assert type(open_driver(opts(tmp_path), host)) is Preferred


def test_alias_keeps_requested_home(tmp_path: Path) -> None:
    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 100, aliases=("vfs2",))))
    driver = open_driver(opts(tmp_path, driver_name="vfs2"), host)
    assert driver.name == "vfs" and driver.home == str(tmp_path / "g" / "vfs2")


def test_unknown_vfs_option_is_named(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="vfs driver does not support vfs.size options"):
        open_driver(opts(tmp_path, driver_name="vfs", driver_options=["vfs.size=10G"]), PluginHost())
    with pytest.raises(DriverError, match="vfs driver does not support mount options"):
        open_driver(opts(tmp_path, driver_name="vfs", driver_options=["vfs.mountopt=nodev"]), PluginHost())


def test_split_image_store_roots(tmp_path: Path) -> None:
    o = opts(tmp_path, driver_name="vfs", image_store=str(tmp_path / "img"))
    driver = open_driver(o, PluginHost())
    assert driver.home == str(tmp_path / "img" / "vfs")
    assert str(tmp_path / "g") in driver.additional_image_stores()


def test_broken_external_plugin_is_reported_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from containers_storage import plugins
    from containers_storage.entrypoints import EntryPoint

    (tmp_path / "broken_plugin.py").write_text("raise ImportError('missing dependency xyz')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    broken = EntryPoint(plugins.PLUGIN_GROUP, "broken", "broken_plugin", "broken-dist", "1.0")
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [broken] if group == plugins.PLUGIN_GROUP else []
    )
    host = PluginHost()
    host.load_external_plugins()
    assert "cannot load plugin broken: missing dependency xyz" in capsys.readouterr().err
    assert "broken_plugin" not in sys.modules


def test_external_plugins_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    from containers_storage import plugins

    calls: list[str] = []
    monkeypatch.setattr(plugins, "entry_points", lambda group: calls.append(group) or [])
    monkeypatch.setenv(plugins.DISABLE_ENV, "1")
    PluginHost().load_external_plugins()
    assert plugins.PLUGIN_GROUP not in calls
