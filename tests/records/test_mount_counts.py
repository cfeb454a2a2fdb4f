"""Mount records whose count no mounting could produce (negative, beyond 2**31-1, beyond
int64): clamped on load -- a negative count is no mount, an impossible one a single
mount -- reported by check, rewritten (never removed) by repair. Upstream's v1.50.2 tool
refuses a count beyond int64 (every command fails) and takes any other as it is."""

from __future__ import annotations

from typing import Any

import pytest

from containers_storage.errors import LayerMountCountInvalid, LoadError
from containers_storage.store import RepairOptions

from .conftest import Site

#: what the count becomes as loaded
CASES = [(-5, 0), (-(1 << 70), 0), (1 << 31, 1), ((1 << 63) - 1, 1), (10**30, 1)]


def set_count(site: Site, count: object) -> None:
    site.edit("mounts", lambda data: data[0].__setitem__("count", count))


@pytest.mark.parametrize(("count", "taken"), CASES)
def test_counts_are_clamped_and_unmount_ends(site: Site, count: int, taken: int) -> None:
    set_count(site, count)
    with site.open() as s:
        assert s.layer(site.container_layer).mount_count == taken
        assert s.unmount(site.container) is False  # one unmount is the last (or none was needed)
        assert s.layer(site.container_layer).mount_count == 0
    assert site.records("mounts") == []


@pytest.mark.parametrize(("count", "taken"), CASES)
def test_check_reports_the_count_and_repair_removes_nothing(site: Site, count: int, taken: int) -> None:
    set_count(site, count)
    with site.open() as s:
        report: Any = s.check()
        errs = report.layers[site.container_layer]
        assert [type(e) for e in errs] == [LayerMountCountInvalid]
        assert f"mount count {count} is out of range" in str(errs[0]) and f"taken as {taken}" in str(errs[0])
        assert not report.images and not report.containers
        assert s.repair(report, RepairOptions.everything()) == []
        assert {c.id for c in s.containers()} == {site.container}
        assert len(s.layers()) == 3 and len(s.images()) == 1
        assert not s.check().layers
    left = site.records("mounts")
    assert [m["count"] for m in left] == ([1] if taken else [])


def test_the_command_line_check_says_so(site: Site) -> None:
    set_count(site, 10**30)
    res = site.cli("check")
    assert res.status == 1
    assert f"layer {site.container_layer}: mount count {10**30} is out of range" in res.stdout


@pytest.mark.parametrize("count", ["3", 2.0, True, [1]])
def test_a_count_that_is_no_integer_is_refused_naming_the_field(site: Site, count: object) -> None:
    set_count(site, count)
    with pytest.raises(LoadError, match="malformed mount record: field 'count'"), site.open() as s:
        s.layers()
