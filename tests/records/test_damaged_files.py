"""Record files that are not what a writer would leave: nested without end, binary
garbage, bytes that are not UTF-8. Each is read as upstream's v1.50.2 tool reads it, or
refused with one clear error naming the file -- never a RecursionError or a decoder's
exception -- and nothing is written over it."""

from __future__ import annotations

import json
import os

import pytest

from containers_storage.errors import LoadError, StorageError
from containers_storage.gojson import loads

from .conftest import Site

KINDS = ["layers", "images", "containers", "mounts"]
#: how deep upstream's decoder (jsoniter) reads; gojson.MAX_DEPTH
MAX_DEPTH = 10000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def plant_deep(site: Site, kind: str, depth: int) -> None:
    """An unknown key nested ``depth`` deep in the first record of ``kind``."""

    def plant(data: list[dict[str, object]]) -> None:
        data[0]["x-deep"] = "@@"

    site.edit(kind, plant)
    site.write(kind, site.path(kind).read_bytes().replace(b'"@@"', nested(depth).encode()))


def load_everything(site: Site) -> None:
    with site.open() as s:
        s.layers()
        s.images()
        s.containers()


def refused(site: Site, kind: str, why: str) -> None:
    """Opening the store fails with a LoadError naming the damaged file; the file and the
    command line say the same; the file is left as it was."""
    before = site.path(kind).read_bytes()
    with pytest.raises(StorageError) as info:
        load_everything(site)
    assert isinstance(info.value, LoadError)
    text = str(info.value)
    assert str(site.path(kind)) in text and "not a valid record file" in text and why in text
    assert "recursion" not in text.lower()
    command = "layers" if "layers" in kind or kind == "mounts" else kind.replace("volatile-", "")
    res = site.cli(command)
    assert res.status == 1
    assert str(site.path(kind)) in res.stderr and "not a valid record file" in res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert site.path(kind).read_bytes() == before


@pytest.mark.parametrize("kind", [*KINDS, "volatile-layers", "volatile-containers"])
def test_a_file_nested_without_end_is_refused(site: Site, kind: str) -> None:
    # upstream: "readObjectStart: expect { or n, but found [" naming the file
    site.write(kind, ("[" + nested(100_000) + "]").encode())
    refused(site, kind, f"nested deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("kind", KINDS)
def test_arrays_of_arrays_are_refused(site: Site, kind: str) -> None:
    site.write(kind, ("[" + nested(2000) + "]").encode())
    refused(site, kind, "not an array of objects")


@pytest.mark.parametrize("kind", KINDS)
def test_nesting_in_a_field_is_read_as_deep_as_upstream_reads_it(site: Site, kind: str) -> None:
    """Upstream reads (and keeps) a field nested 5,000 deep; so do we, and we write it
    back unchanged when another field of the record changes."""
    plant_deep(site, kind, 5000)
    load_everything(site)
    if kind == "layers":
        with site.open() as s:
            s.set_names(site.base, ["renamed"])
        raw = site.path(kind).read_bytes()
        assert b'"names":["renamed"]' in raw and b'"x-deep":' + nested(5000).encode() in raw


@pytest.mark.parametrize("kind", KINDS)
def test_nesting_past_upstreams_limit_is_refused(site: Site, kind: str) -> None:
    # upstream: "incrementDepth: exceeded max depth" naming the file
    plant_deep(site, kind, MAX_DEPTH + 100)
    refused(site, kind, f"nested deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("kind", [*KINDS, "volatile-layers", "volatile-containers"])
def test_binary_garbage_is_refused(site: Site, kind: str) -> None:
    # upstream: "decode slice: expect [ or n, but found ..." naming the file
    site.write(kind, b"\x8a\xe0." + os.urandom(64) + b"\xff\x00")
    refused(site, kind, "not a valid record file")


@pytest.mark.parametrize("kind", ["layers", "images", "containers"])
def test_names_that_are_not_utf8_are_read_and_kept(site: Site, kind: str) -> None:
    """Upstream reads a record whose name holds bytes that are not UTF-8 and prints the
    bytes as they are; so do we, and a rewrite of the file keeps them."""
    raw = site.path(kind).read_bytes()
    data = json.loads(raw)
    data[0]["names"] = ["@@"]
    site.write(kind, json.dumps(data).encode().replace(b"@@", b"bad\xff\xfename"))
    res = site.cli(kind)
    assert res.status == 0, res.stderr
    assert b"name: bad\xff\xfename\n" in res.out
    listed = site.cli(kind, "--json")  # Go's encoder writes U+FFFD for each such byte
    assert listed.status == 0 and b'"bad\\ufffd\\ufffdname"' in listed.out
    json.loads(listed.out)
    target = {"layers": site.child, "images": site.image, "containers": site.container}[kind]
    with site.open() as s:
        s.add_names(target, ["added"])
    assert b'"bad\xff\xfename"' in site.path(kind).read_bytes()
    assert site.cli(kind).status == 0


def test_a_deep_document_decodes_in_any_thread() -> None:
    """The deep decoder runs in its own thread; called from a worker thread (as the
    library's callers may), it still reads and refuses as in the main thread."""
    import threading

    out: list[object] = []

    def work() -> None:
        out.append(loads(nested(MAX_DEPTH - 10)))
        try:
            loads(nested(MAX_DEPTH + 100))
        except ValueError as exc:
            out.append(str(exc))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert isinstance(out[0], list) and out[1] == f"JSON nested deeper than {MAX_DEPTH} levels"
