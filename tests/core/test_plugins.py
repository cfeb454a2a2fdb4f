"""Driver entry points as third parties ship them: broken ones are reported (never
crash, never "not installed"), names that disagree are refused, one name has one
source. Distributions are real ``*.dist-info`` folders (see conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from containers_storage.config import StoreOptions
from containers_storage.drivers.select import open_driver
from containers_storage.errors import DriverLoadError, DuplicateDriver, NoDriverAvailable
from containers_storage.plugins import DRIVER_GROUP

from .conftest import FakeSite, driver_plugin

BROKEN = {
    "raises": ("broken-raises", "raises_plugin", {"raises_plugin": "raise RuntimeError('boom at import')\n"}),
    "missing": ("broken-missing", "no_such_module_anywhere", {}),
    "noattr": ("broken-noattr", "noattr_plugin:not_there", {"noattr_plugin": "x = 1\n"}),
}
REASONS = {
    "raises": "RuntimeError: boom at import",
    "missing": "ModuleNotFoundError: No module named 'no_such_module_anywhere'",
    "noattr": "AttributeError: module 'noattr_plugin' has no attribute 'not_there'",
}


def opts(tmp_path: Path, **kw: object) -> StoreOptions:
    return StoreOptions(graph_root=str(tmp_path / "g"), run_root=str(tmp_path / "r"), **kw)  # type: ignore[arg-type]


def install_broken(site: FakeSite) -> None:
    for name, (dist, value, modules) in BROKEN.items():
        site.add(dist, "1.0", {DRIVER_GROUP: {name: value}}, modules)


def install_good(site: FakeSite, name: str = "good", dist: str = "good-driver", **kw: object) -> None:
    module = f"{dist.replace('-', '_')}_plugin"
    site.add(dist, "2.5", {DRIVER_GROUP: {name: module}}, {module: driver_plugin(name, **kw)})  # type: ignore[arg-type]


def test_every_entry_point_is_listed_with_why_it_is_broken(site: FakeSite) -> None:
    install_broken(site)
    install_good(site)
    host = site.host()
    statuses = {s.entry_point.name: s for s in host.driver_entries()}
    assert set(statuses) == {"raises", "missing", "noattr", "good"}
    for name, reason in REASONS.items():
        assert statuses[name].error == reason and statuses[name].infos == ()
    assert statuses["good"].error == "" and statuses["good"].infos[0].name == "good"
    assert [i.name for i in host.load_all_drivers()] == ["good"]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_named_broken_driver_says_installed_but_broken(site: FakeSite, tmp_path: Path, name: str) -> None:
    install_broken(site)
    with pytest.raises(DriverLoadError) as info:
        open_driver(opts(tmp_path, driver_name=name), site.host())
    text = str(info.value)
    dist = BROKEN[name][0]
    assert (
        text == f'storage driver "{name}" from {dist} 1.0 is installed but cannot be loaded: {REASONS[name]}'
    )
    assert "not installed" not in text and "pip install" not in text


def test_probing_skips_broken_drivers_and_says_so_when_none_is_left(site: FakeSite, tmp_path: Path) -> None:
    install_broken(site)
    with pytest.raises(NoDriverAvailable) as info:
        open_driver(opts(tmp_path), site.host())
    text = str(info.value)
    assert text.startswith("no storage driver could be loaded: ")
    for name, reason in REASONS.items():
        assert f"{name} from {BROKEN[name][0]} 1.0: {reason}" in text
    assert "pip install" not in text
    install_good(site)
    assert open_driver(opts(tmp_path), site.host()).name == "good"


def test_a_broken_drivers_store_is_not_opened_with_another_driver(site: FakeSite, tmp_path: Path) -> None:
    install_broken(site)
    install_good(site)
    (tmp_path / "g" / "raises").mkdir(parents=True)
    with pytest.raises(
        DriverLoadError, match='holds a store of the storage driver "raises" from broken-raises 1.0'
    ):
        open_driver(opts(tmp_path), site.host())
    assert not (tmp_path / "g" / "good").exists()


def test_a_named_driver_loads_only_its_own_entry_point(site: FakeSite, tmp_path: Path) -> None:
    install_broken(site)
    install_good(site)
    host = site.host()
    assert open_driver(opts(tmp_path, driver_name="good"), host).name == "good"
    assert [s.entry_point.name for s in host._entries.values()] == ["good"]


def test_entry_point_name_that_disagrees_with_driver_info_is_refused(site: FakeSite, tmp_path: Path) -> None:
    site.add(
        "odd-driver", "3.0", {DRIVER_GROUP: {"odd": "odd_plugin"}}, {"odd_plugin": driver_plugin("even")}
    )
    with pytest.raises(DriverLoadError) as info:
        open_driver(opts(tmp_path, driver_name="odd"), site.host())
    assert str(info.value) == (
        'storage driver "odd" from odd-driver 3.0 is installed but cannot be loaded: entry point '
        '"odd = odd_plugin" of odd-driver 3.0 offers a driver named "even": the entry point\'s name must '
        "be the driver's name (DriverInfo.name and Driver.name)"
    )
    with pytest.raises(NoDriverAvailable, match="odd from odd-driver 3.0: entry point"):
        open_driver(opts(tmp_path), site.host())


def test_driver_class_name_that_disagrees_is_refused(site: FakeSite, tmp_path: Path) -> None:
    install_good(site, class_name="other")
    with pytest.raises(DriverLoadError) as info:
        open_driver(opts(tmp_path, driver_name="good"), site.host())
    assert str(info.value).startswith(
        "storage driver \"good\" from good-driver 2.5: its class good_driver_plugin.Driver is named 'other'"
    )


def test_plugin_without_the_hook_is_refused(site: FakeSite, tmp_path: Path) -> None:
    site.add(
        "hookless", "1.0", {DRIVER_GROUP: {"hookless": "hookless_plugin"}}, {"hookless_plugin": "x = 1\n"}
    )
    with pytest.raises(DriverLoadError, match="offers no driver"):
        open_driver(opts(tmp_path, driver_name="hookless"), site.host())


def test_two_distributions_offering_one_name_are_refused(site: FakeSite, tmp_path: Path) -> None:
    install_good(site, "same", "first-dist")
    install_good(site, "same", "second-dist")
    expected = (
        'storage driver "same" is offered by first-dist 2.5 and second-dist 2.5; one name must have one '
        "source (uninstall one of them)"
    )
    with pytest.raises(DuplicateDriver) as info:
        open_driver(opts(tmp_path, driver_name="same"), site.host())
    assert str(info.value) == expected
    with pytest.raises(DuplicateDriver) as info:  # probing does not pick either silently
        open_driver(opts(tmp_path), site.host())
    assert str(info.value) == expected


def test_two_distributions_one_of_them_broken_are_still_refused(site: FakeSite, tmp_path: Path) -> None:
    install_good(site, "same", "first-dist")
    site.add("second-dist", "1.0", {DRIVER_GROUP: {"same": "no_such_module_anywhere"}})
    with pytest.raises(DuplicateDriver, match="offered by first-dist 2.5 and second-dist 1.0"):
        open_driver(opts(tmp_path, driver_name="same"), site.host())


def test_an_alias_taken_by_another_distribution_is_refused(site: FakeSite, tmp_path: Path) -> None:
    """Aliases are known once the plugins are loaded: probing and listing load them all
    and refuse the clash (a named driver loads its own entry point only, for start-up)."""
    install_good(site, "good", "good-driver")
    install_good(site, "other", "other-driver", aliases=("good",), priority=90)
    host = site.host()
    with pytest.raises(DuplicateDriver, match='"good" is offered by good-driver 2.5 and other-driver 2.5'):
        open_driver(opts(tmp_path), host)
    with pytest.raises(DuplicateDriver, match='"good" is offered by good-driver 2.5 and other-driver 2.5'):
        open_driver(opts(tmp_path, driver_name="good"), host)
    assert open_driver(opts(tmp_path, driver_name="other"), host).name == "other"
