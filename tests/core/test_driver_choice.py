"""Driver choice (config.md §5) and its errors, with real driver classes on real dirs."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from containers_storage.config import StoreOptions
from containers_storage.drivers.api import Driver, DriverConfig, DriverInfo
from containers_storage.drivers.select import open_driver
from containers_storage.errors import (
    DriverError,
    DriverLoadError,
    DriverNotInstalled,
    DriverPrerequisites,
    DuplicateDriver,
    NoDriverAvailable,
)
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


def EmptyHost() -> PluginHost:
    """A plugin host that sees no installed entry points (as with the core alone)."""
    return PluginHost(discover=lambda group: [])


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


def test_alias_uses_its_canonical_drivers_directory(tmp_path: Path) -> None:
    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 100, aliases=("vfs2",))))
    driver = open_driver(opts(tmp_path, driver_name="vfs2"), host)
    assert driver.name == "vfs" and driver.home == str(tmp_path / "g" / "vfs")
    driver.create("made-as-vfs2", None)
    same = open_driver(opts(tmp_path, driver_name="vfs"), host)
    assert same.list_layers() == ["made-as-vfs2"]


def test_alias_directory_that_upstream_filled_is_kept(tmp_path: Path) -> None:
    """Upstream's ``-s overlay2`` keeps layers in ``<root>/overlay2``; such a store (the
    alias directory has content, the canonical one does not exist) opens where it is."""
    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 100, aliases=("vfs2",))))
    (tmp_path / "g" / "vfs2" / "dir" / "old-layer").mkdir(parents=True)
    (tmp_path / "g" / "vfs").mkdir()  # what a store makes for its driver's name: still empty
    for name in ("vfs2", "vfs"):
        driver = open_driver(opts(tmp_path, driver_name=name), host)
        assert driver.home == str(tmp_path / "g" / "vfs2") and driver.list_layers() == ["old-layer"]
    assert open_driver(opts(tmp_path, driver_priority=["vfs"]), host).list_layers() == ["old-layer"]
    (tmp_path / "g" / "vfs" / "dir").mkdir()  # once the canonical directory holds a store, it wins
    assert open_driver(opts(tmp_path, driver_name="vfs2"), host).home == str(tmp_path / "g" / "vfs")


def test_alias_and_canonical_directories_are_one_prior_driver(tmp_path: Path) -> None:
    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 100, aliases=("vfs2",))))
    for d in ("vfs", "vfs2"):  # what opening once under each name leaves
        (tmp_path / "g" / d).mkdir(parents=True)
    driver = open_driver(opts(tmp_path, driver_priority=["vfs"]), host)
    assert driver.home == str(tmp_path / "g" / "vfs")


def test_third_party_priority_is_honoured(tmp_path: Path) -> None:
    """DriverInfo.priority orders every installed driver; no built-in list comes first."""

    class Mine(VFSDriver):
        name = "mine"

    class Preferred(VFSDriver):
        name = "overlay"

    host = EmptyHost()
    host.register(
        Offer(_info("overlay", Preferred, 10), _info("vfs", VFSDriver, 100), _info("mine", Mine, 5))
    )
    assert type(open_driver(opts(tmp_path), host)) is Mine


def test_configured_priority_comes_before_driver_priorities(tmp_path: Path) -> None:
    class Mine(VFSDriver):
        name = "mine"

    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 100), _info("mine", Mine, 5)))
    assert type(open_driver(opts(tmp_path, driver_priority=["vfs"]), host)) is VFSDriver


def test_third_party_store_is_recognised_when_reopened(tmp_path: Path) -> None:
    """A graph root made with a third-party driver reopens with it without naming it,
    although a built-in driver has a better priority."""

    class Mine(VFSDriver):
        name = "mine"

    class Preferred(VFSDriver):
        name = "overlay"

    host = EmptyHost()
    host.register(Offer(_info("overlay", Preferred, 10), _info("mine", Mine, 90)))
    made = open_driver(opts(tmp_path, driver_name="mine"), host)
    made.create("layer-of-mine", None)
    reopened = open_driver(opts(tmp_path), host)
    assert type(reopened) is Mine and reopened.list_layers() == ["layer-of-mine"]
    assert not (tmp_path / "g" / "overlay").exists()


def test_prior_directory_is_looked_for_in_the_image_store_of_a_split_store(tmp_path: Path) -> None:
    class Mine(VFSDriver):
        name = "mine"

    class Preferred(VFSDriver):
        name = "overlay"

    host = EmptyHost()
    host.register(Offer(_info("overlay", Preferred, 10), _info("mine", Mine, 90)))
    (tmp_path / "img" / "mine").mkdir(parents=True)
    driver = open_driver(opts(tmp_path, image_store=str(tmp_path / "img")), host)
    assert type(driver) is Mine and driver.home == str(tmp_path / "img" / "mine")


def test_one_priority_field() -> None:
    """The probing order lives in DriverInfo.priority only; Driver has no second one."""
    assert not hasattr(Driver, "priority")
    assert "priority" in {f.name for f in fields(DriverInfo)}


def test_class_named_otherwise_than_its_offer_is_refused(tmp_path: Path) -> None:
    class Mislabelled(VFSDriver):
        name = "something-else"

    host = EmptyHost()
    host.register(Offer(_info("mine", Mislabelled, 5)), name="my-plugin")
    with pytest.raises(DriverLoadError) as info:
        open_driver(opts(tmp_path, driver_name="mine"), host)
    text = str(info.value)
    assert 'storage driver "mine" from plugin my-plugin registered in this process' in text
    assert "is named 'something-else'" in text and "must agree" in text


def test_driver_class_that_cannot_be_imported_names_driver_and_source(tmp_path: Path) -> None:
    def load() -> type[Driver]:
        raise ImportError("No module named 'mine_heavy_part'")

    host = EmptyHost()
    host.register(Offer(DriverInfo(name="mine", load=load)), name="my-plugin")
    with pytest.raises(DriverLoadError) as info:
        open_driver(opts(tmp_path, driver_name="mine"), host)
    assert str(info.value) == (
        'storage driver "mine" from plugin my-plugin registered in this process cannot be loaded: '
        "ImportError: No module named 'mine_heavy_part'"
    )
    assert "not installed" not in str(info.value) and "pip install" not in str(info.value)
    # probing skips it with its reason instead of failing the store
    host.register(Offer(_info("vfs", VFSDriver, 100)))
    assert type(open_driver(opts(tmp_path / "p"), host)) is VFSDriver


def test_registering_a_taken_name_is_refused() -> None:
    host = EmptyHost()
    host.register(Offer(_info("vfs", VFSDriver, 100)), name="first")
    with pytest.raises(DuplicateDriver, match='"vfs" is offered by plugin first registered in this process '
                       "and plugin second registered in this process"):
        host.register(Offer(_info("vfs", VFSDriver, 1)), name="second")
    with pytest.raises(DuplicateDriver, match="offered by containers-storage-vfs 0.1.0 and plugin third"):
        PluginHost().register(Offer(_info("vfs", VFSDriver, 1)), name="third")


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
    host = PluginHost(discover=lambda group: [broken] if group == plugins.PLUGIN_GROUP else [])
    host.load_external_plugins()
    assert (
        "cannot load plugin broken (broken-dist 1.0): ImportError: missing dependency xyz"
        in capsys.readouterr().err
    )
    assert "broken_plugin" not in sys.modules


def test_external_plugins_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    from containers_storage import plugins

    calls: list[str] = []
    monkeypatch.setenv(plugins.DISABLE_ENV, "1")
    PluginHost(discover=lambda group: calls.append(group) or []).load_external_plugins()
    assert plugins.PLUGIN_GROUP not in calls
