"""The fixture store written by upstream's tool, read through our Python API: every
expected answer that the API can give (JSON listings, names, metadata, big data, digests,
diffs, sizes, changes, directories) must match ``expected-vfs.json``. Plain-text layouts
are the CLI's business and are checked in tests/cli."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from containers_storage.errors import StorageError
from containers_storage.gojson import dumps
from containers_storage.store import DiffOptions, Store

from .conftest import FIXTURES

EXPECTED: dict[str, dict[str, object]] = json.loads((FIXTURES / "expected-vfs.json").read_text())


def _json(value: object) -> str:
    return dumps(value) + "\n"


def _records(recs: list) -> str:  # type: ignore[type-arg]
    return _json([r.to_json(extra=False) for r in recs])


def _tar_names(data: bytes) -> str:
    names = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tf:
        for m in tf:
            names.append(m.name + ("/" if m.isdir() else ""))
    return "".join(n + "\n" for n in names)


def answer(s: Store, root: Path, cmd: str) -> tuple[str, int] | None:
    """What upstream's tool printed for ``cmd``, computed with the API; None if the
    command's output is plain text formatting (CLI territory)."""
    if " | " in cmd:
        left, right = cmd.split(" | ", 1)
        args = shlex.split(left)
        assert args[:2] == ["diff", "-u"]
        with s.diff("", args[2], DiffOptions(compression=0)) as f:
            data = f.read()
        if right == "sha256sum":
            return f"{hashlib.sha256(data).hexdigest()}  -\n", 0
        return _tar_names(data), 0
    args = shlex.split(cmd)
    op, rest = args[0], args[1:]
    as_json = "--json" in rest
    rest = [a for a in rest if not a.startswith("-")]
    try:
        if op == "layers" and as_json:
            return _records(s.layers()), 0
        if op == "images" and as_json:
            return _records(s.images()), 0
        if op == "containers" and as_json:
            return _records(s.containers()), 0
        if op in ("layer", "image", "container") and as_json:
            get = {"layer": s.layer, "image": s.image, "container": s.container}[op]
            found, code = [], 0
            for ref in rest:
                try:
                    found.append(get(ref))
                except StorageError:
                    code = 1
            return _records(found), code
        if op == "get-names":
            return "".join(n + "\n" for n in s.names(rest[0])), 0
        if op == "metadata" and as_json:
            return _json({i: s.metadata(i).strip() for i in sorted(rest)}), 0
        if op == "metadata":
            return "".join(f"{i}: {s.metadata(i).strip()}\n" for i in rest), 0
        if op in ("list-layer-data", "list-image-data", "list-container-data") and as_json:
            lister = {
                "list-layer-data": s.list_layer_big_data,
                "list-image-data": s.list_image_big_data,
                "list-container-data": s.list_container_big_data,
            }[op]
            keys = lister(rest[0])
            return _json(keys or None), 0
        if op == "get-layer-data":
            return s.layer_big_data(rest[0], rest[1]).decode(), 0
        if op == "get-image-data":
            return s.image_big_data(rest[0], rest[1]).decode(), 0
        if op == "get-container-data":
            return s.container_big_data(rest[0], rest[1]).decode(), 0
        if op == "get-image-data-digest":
            return s.image_big_data_digest(rest[0], rest[1]) + "\n", 0
        if op == "get-image-data-size":
            return f"{s.image_big_data_size(rest[0], rest[1])}\n", 0
        if op == "get-container-data-digest":
            return s.container_big_data_digest(rest[0], rest[1]) + "\n", 0
        if op == "get-container-data-size":
            return f"{s.container_big_data_size(rest[0], rest[1])}\n", 0
        if op == "images-by-digest" and as_json:
            return _records(s.images_by_digest(rest[0])), 0
        if op == "images-by-digest" and "--quiet" in args:
            return "".join(i.id + "\n" for i in s.images_by_digest(rest[0])), 0
        if op == "diffsize":
            return f"{s.diff_size(rest[1] if len(rest) > 1 else '', rest[0])}\n", 0
        if op == "changes" and as_json:
            ch = s.changes(rest[1] if len(rest) > 1 else "", rest[0])
            return _json([{"Path": c.path, "Kind": int(c.kind)} for c in ch]), 0
        if op == "get-container-dir":
            return s.container_directory(rest[0]).replace(str(root / "graph"), "$GRAPHROOT") + "\n", 0
        if op == "get-container-run-dir":
            return s.container_run_directory(rest[0]).replace(str(root / "run"), "$RUNROOT") + "\n", 0
        if op == "exists":
            return "".join(f"{i}: {'true' if s.exists(i) else 'false'}\n" for i in rest), 0
        if op == "mounted":
            n = s.mounted(rest[0])
            return (f"{rest[0]} mounted {n} times\n" if n else ""), 0
    except StorageError:
        return "", 1
    return None


#: commands whose answers the API gives (the rest is the CLI's text layout)
API_COMMANDS = frozenset(
    [
        "layers",
        "images",
        "containers",
        "layer",
        "image",
        "container",
        "get-names",
        "metadata",
        "list-layer-data",
        "list-image-data",
        "list-container-data",
        "get-layer-data",
        "get-image-data",
        "get-container-data",
        "get-image-data-digest",
        "get-image-data-size",
        "get-container-data-digest",
        "get-container-data-size",
        "images-by-digest",
        "diffsize",
        "changes",
        "get-container-dir",
        "get-container-run-dir",
        "exists",
        "mounted",
        "diff",
    ]
)


def _compare(cmd: str, got: str, want: dict[str, object]) -> None:
    if want.get("unordered"):
        if cmd.split()[1:2] == ["--json"]:
            a = Counter(json.dumps(x, sort_keys=True) for x in json.loads(got))
            b = Counter(json.dumps(x, sort_keys=True) for x in json.loads(str(want["stdout"])))
            assert a == b
        else:
            assert sorted(got.splitlines()) == sorted(str(want["stdout"]).splitlines())
    else:
        assert got == want["stdout"]


def _check_answers(store: Store, root: Path, expected: dict[str, dict[str, object]]) -> int:
    checked, failures = 0, []
    for cmd, want in expected.items():
        if cmd.split()[0] not in API_COMMANDS:
            continue
        try:
            result = answer(store, root, cmd)
        except Exception as exc:  # report every mismatch at once
            failures.append(f"{cmd}: {type(exc).__name__}: {exc}")
            continue
        if result is None:
            continue
        checked += 1
        got, code = result
        if want.get("volatile"):
            assert code == want["exit_code"], cmd
            continue
        try:
            assert code == want["exit_code"], f"exit code {code}"
            if code == 0 or want["stdout"]:
                _compare(cmd, got, want)
        except AssertionError as exc:
            failures.append(f"{cmd}: {exc}")
    assert not failures, "\n".join(failures)
    return checked


def test_expected_answers(fixture_store: Store, fixture_root: Path) -> None:
    """One store restore for all answers (none of them writes)."""
    assert _check_answers(fixture_store, fixture_root, EXPECTED) >= 100


@pytest.mark.skipif(os.geteuid() != 0, reason="the overlay driver needs root")
def test_expected_answers_overlay(tmp_path: Path) -> None:
    """The same answers from the store upstream wrote with its overlay driver."""
    from dataclasses import replace

    from containers_storage.store import get_store

    from .conftest import options, unpack_fixture

    root = unpack_fixture("overlay", tmp_path / "fx")
    expected = json.loads((FIXTURES / "expected-overlay.json").read_text())
    with get_store(replace(options(root), driver_name="overlay")) as s:
        assert _check_answers(s, root, expected) >= 100


@pytest.mark.parametrize(
    "ref", ["d6db310b17f0", "base-gz", "d6db310b17f0ac4411be77be1bfcdc91cab10f92d6e4caf3b9348f8c5609de1f"]
)
def test_lookup_forms(fixture_store: Store, ref: str) -> None:
    assert fixture_store.lookup(ref) == "d6db310b17f0ac4411be77be1bfcdc91cab10f92d6e4caf3b9348f8c5609de1f"


def test_reading_changes_nothing_on_disk(fixture_root: Path) -> None:
    from containers_storage.store import get_store

    from .conftest import options

    files = sorted((fixture_root / "graph").rglob("*.json"))
    before = {p: p.read_bytes() for p in files}
    with get_store(options(fixture_root)) as s:
        s.layers(), s.images(), s.containers(), s.image("3f3c347351e5")
    assert {p: p.read_bytes() for p in files} == before


def test_rewrite_keeps_upstream_bytes(fixture_root: Path) -> None:
    """Changing one image rewrites images.json with every other record byte-identical,
    in Go's encoding."""
    from containers_storage.store import get_store

    from .conftest import options

    path = fixture_root / "graph" / "vfs-images" / "images.json"
    before = path.read_text()
    with get_store(options(fixture_root)) as s:
        s.add_names("57cc607430aa", ["extra:name"])
        s.remove_names("57cc607430aa", ["extra:name"])
    after = path.read_text()
    one_before = json.loads(before)[0]
    assert json.loads(after)[0] == one_before
    assert after.split('{"id":"57cc')[0] == before.split('{"id":"57cc')[0]
    two = json.loads(after)[1]
    # each change walks the resulting names, moving each to the front (§5.2)
    assert two["names-history"] == [
        "example.com/fixture/two:latest",
        "localhost/one:v1",
        "extra:name",
        "localhost/two:extra",
    ]
    assert two["names"] == ["localhost/one:v1", "example.com/fixture/two:latest"]


def test_sizes_match_upstream(fixture_store: Store) -> None:
    """``Size:`` of upstream's plain ``image``/``container`` output."""
    assert fixture_store.image_size("3f3c347351e5") == 105058
    assert fixture_store.image_size("57cc607430aa") == 93307
    assert fixture_store.container_size("ctr-one") == 183
    assert fixture_store.layer_size("base-gz") == 92160
    assert fixture_store.layer_size("mod-layer") == -1
