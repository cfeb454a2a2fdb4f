"""Numbers on the command line and in the API's ID-map texts: out of range, negative or
not numbers at all are refused with the flag named, before anything is written (a map
field beyond uint32 once made layers.json unreadable to upstream)."""

from __future__ import annotations

import pytest

from containers_storage.errors import ConfigError
from containers_storage.store import IDMappingOptions

from .conftest import Site

OUT_OF_RANGE = ["0:0:1e20", "0:0:4294967296", "0:-1:10", "0:0:99999999999999999999999", "0:0:", "x:0:1"]


@pytest.mark.parametrize("flag", ["--uidmap", "--gidmap"])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("command", ["create-layer", "create-container"])
def test_id_map_flags_are_uint32(site: Site, flag: str, value: str, command: str) -> None:
    before = site.path("layers").read_bytes()
    args = [command, flag, value] + (["img"] if command == "create-container" else [])
    res = site.cli(*args)
    assert res.status == 1
    assert f"for flag {flag}" in res.stderr and 'expected ["uint32:uint32:uint32"]' in res.stderr
    assert site.path("layers").read_bytes() == before


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_the_api_parser_is_uint32_too(value: str) -> None:
    with pytest.raises(ConfigError, match="uint32"):
        IDMappingOptions.parse([value], [value])


CHOWNS = ["-1:-1", "-1", "99999999999:1", "1:4294967296", "4294967295", "0:4294967295", "a:b"]


@pytest.mark.parametrize("value", CHOWNS)
def test_copy_chown_is_a_real_owner(site: Site, value: str) -> None:
    """Upstream refuses all but 4294967295, which it passes to chown(2) as -1: the
    files keep their owner, silently. Ours refuses that too."""
    res = site.cli("copy", "--chown", value, "/etc/hostname", f"{site.base}:/copied")
    assert res.status == 1 and "for flag --chown" in res.stderr


@pytest.mark.parametrize("value", ["1e20h", "9999999999h", "h", "5", "1.5.5h", "-"])
def test_check_max_is_a_duration_go_can_hold(site: Site, value: str) -> None:
    res = site.cli("check", f"--max={value}")
    assert res.status == 1 and "for flag --max" in res.stderr
