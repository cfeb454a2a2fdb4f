"""Numbers in records as upstream's decoder reads them: sizes and counts are Go int64,
UID/GID sets uint32, ID maps Go ints. A number outside its type, a float or a string is
refused with the file and the field named (upstream refuses these too); a negative size,
which upstream loads, is loaded and never misbehaves."""

from __future__ import annotations

import pytest

from containers_storage.errors import InvalidMappings, LoadError, StorageError
from containers_storage.idtools import IDMap

from .conftest import Site

HUGE = "1" + "0" * 30
INT64_MAX = str((1 << 63) - 1)


def plant(site: Site, kind: str, field: str, text: str, *, key: str = "") -> None:
    """Set ``field`` of the first record (``field[key]`` for maps) to the JSON ``text``."""

    def edit(data: list[dict[str, object]]) -> None:
        data[0][field] = {key: "@@"} if key else "@@"

    site.edit(kind, edit)
    site.write(kind, site.path(kind).read_bytes().replace(b'"@@"', text.encode()))


def load_error(site: Site) -> str:
    with pytest.raises(LoadError) as info, site.open() as s:
        s.layers()
        s.images()
        s.containers()
    return str(info.value)


@pytest.mark.parametrize("field", ["diff-size", "compressed-size", "compression"])
@pytest.mark.parametrize("text", [HUGE, "-" + HUGE, str(1 << 63), "1.5", "1e3", '"12"', "true", "[[[[1]]]]"])
def test_a_layer_number_upstream_cannot_read_is_refused_naming_the_field(
    site: Site, field: str, text: str
) -> None:
    plant(site, "layers", field, text)
    before = site.path("layers").read_bytes()
    msg = load_error(site)
    assert str(site.path("layers")) in msg and repr(field) in msg and len(msg) < 400
    res = site.cli("layers")
    assert res.status == 1 and repr(field) in res.stderr
    assert site.path("layers").read_bytes() == before


@pytest.mark.parametrize("kind", ["images", "containers"])
def test_a_big_data_size_upstream_cannot_read_is_refused(site: Site, kind: str) -> None:
    plant(site, kind, "big-data-sizes", HUGE, key="manifest")
    assert "'big-data-sizes'" in load_error(site)


@pytest.mark.parametrize("text", ["-1", str(1 << 32), "1.0"])
def test_uid_sets_are_uint32(site: Site, text: str) -> None:
    plant(site, "layers", "uidset", f"[{text}]")
    assert "'uidset'" in load_error(site)


@pytest.mark.parametrize("text", [HUGE, '"5"', "5.0", "true"])
def test_an_id_map_entry_upstream_cannot_read_is_refused(site: Site, text: str) -> None:
    plant(site, "layers", "uidmap", f'[{{"container_id":0,"host_id":0,"size":{text}}}]')
    assert "'uidmap'" in load_error(site)


def test_sizes_upstream_loads_are_loaded(site: Site) -> None:
    """int64's extremes and negative sizes load (as upstream's); listing, sizes and
    diffs keep working."""
    plant(site, "layers", "compressed-size", "-7")
    site.edit("layers", lambda data: data[1].__setitem__("diff-size", int(INT64_MAX)))
    with site.open() as s:
        assert s.layer(site.base).compressed_size == -7
        assert s.layer(site.child).uncompressed_size == int(INT64_MAX)
        s.diff("", site.base).read()
    assert site.cli("layers").status == 0


@pytest.mark.parametrize("value", [-7, 9])
def test_an_unknown_compression_fails_the_diff_clearly(site: Site, value: int) -> None:
    site.edit("layers", lambda data: data[0].__setitem__("compression", value))
    want = f"layer {site.base}: unsupported compression format {value}"
    with site.open() as s, pytest.raises(StorageError, match=want):
        s.diff("", site.base)


@pytest.mark.parametrize("field", ["container_id", "host_id", "size"])
@pytest.mark.parametrize("value", [1 << 63, -(1 << 63) - 1, "5", 5.0, True])
def test_id_maps_that_no_record_could_hold_are_refused(field: str, value: object) -> None:
    """An API caller's IDMap is checked when made: a map upstream could not read back
    never reaches layers.json."""
    args: dict[str, object] = {"container_id": 0, "host_id": 0, "size": 1, field: value}
    with pytest.raises(InvalidMappings, match=field):
        IDMap(**args)  # type: ignore[arg-type]
