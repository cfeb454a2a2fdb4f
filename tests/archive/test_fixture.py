"""The upstream-written vfs store: its tar-split files replay to the exact streams
upstream's ``diff -u`` gave, our recording of the same inputs equals upstream's, and
the generic changes / diff size match upstream's answers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage.archive.apply import apply_tar
from containers_storage.archive.changes import changes, changes_size
from containers_storage.archive.export import tar_changes
from containers_storage.archive.ingest import apply_layer_stream
from containers_storage.archive.tarsplit import DirectoryFileGetter, assemble
from containers_storage.idtools import IDMappings

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
INPUTS = FIXTURES / "go-store-inputs"
pytestmark = [
    pytest.mark.skipif(not (FIXTURES / "go-store-vfs.tar.zst").exists(), reason="fixtures not present"),
    pytest.mark.skipif(os.geteuid() != 0, reason="restoring the fixture needs root"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    dest = tmp_path_factory.mktemp("go-store-vfs")
    unpack = f"tar --xattrs --xattrs-include='*' --numeric-owner -xpf - -C {dest}"
    subprocess.run(f"zstd -dc {FIXTURES / 'go-store-vfs.tar.zst'} | {unpack}", shell=True, check=True)
    yield dest


@pytest.fixture(scope="module")
def expected() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads((FIXTURES / "expected-vfs.json").read_text())
    return data


@pytest.fixture(scope="module")
def ids() -> dict[str, str]:
    return dict(
        line.strip().split("=", 1) for line in (INPUTS / "ids.env").read_text().splitlines() if "=" in line
    )


def test_tar_split_replays_match_upstream_diffs(store: Path, expected: dict[str, dict[str, object]]) -> None:
    layers = store / "graph" / "vfs-layers"
    replayed = 0
    for ts in sorted(layers.glob("*.tar-split.gz")):
        lid = ts.name.split(".")[0]
        with DirectoryFileGetter(str(store / "graph" / "vfs" / "dir" / lid)) as getter, open(ts, "rb") as f:
            digest = hashlib.sha256(b"".join(assemble(f, getter))).hexdigest()
        assert expected[f"diff -u {lid} | sha256sum"]["stdout"] == f"{digest}  -\n"
        replayed += 1
    assert replayed == 3


@pytest.mark.parametrize(
    ("blob", "layer"),
    [("base.tar.gz", "L_BASE_GZ"), ("base.tar.zst", "L_BASE_ZST"), ("child.tar", "L_CHILD")],
)
def test_recording_equals_upstream(
    tmp_path: Path, store: Path, ids: dict[str, str], blob: str, layer: str
) -> None:
    lid = ids[layer]
    records = json.loads((store / "graph" / "vfs-layers" / "layers.json").read_text())
    record = next(r for r in records if r["id"] == lid)
    out = io.BytesIO()
    with open(INPUTS / blob, "rb") as f:
        result = apply_layer_stream(f, lambda s: apply_tar(s, str(tmp_path)), out)
    theirs = gzip.decompress((store / "graph" / "vfs-layers" / f"{lid}.tar-split.gz").read_bytes())
    assert gzip.decompress(out.getvalue()) == theirs
    assert result.compressed_digest == record["compressed-diff-digest"]
    assert result.compressed_size == record["compressed-size"]
    assert result.uncompressed_digest == record["diff-digest"]
    assert result.uncompressed_size == record["diff-size"]
    assert result.compression == record.get("compression", 0)
    assert result.uids == record.get("uidset", []) and result.gids == record.get("gidset", [])


@pytest.mark.parametrize(
    ("layer", "parent"), [("L_MOD", "L_CHILD"), ("L_CHILD", "L_BASE_GZ"), ("L_MOD", "L_BASE_GZ")]
)
def test_changes_and_size_match_upstream(
    store: Path, expected: dict[str, dict[str, object]], ids: dict[str, str], layer: str, parent: str
) -> None:
    root = store / "graph" / "vfs" / "dir"
    lid, pid = ids[layer], ids[parent]
    found = changes(str(root / lid), IDMappings(), str(root / pid), IDMappings())
    kinds = {0: "Modify", 1: "Add", 2: "Delete"}
    lines = sorted(f'{kinds[c.kind]} "{c.path}"' for c in found)
    direct = parent == {"L_MOD": "L_CHILD", "L_CHILD": "L_BASE_GZ"}[layer]
    key = f"changes {lid}" if direct else f"changes {lid} {pid}"
    assert lines == sorted(str(expected[key]["stdout"]).splitlines())
    size_key = f"diffsize {lid}" if direct else f"diffsize {lid} {pid}"
    assert f"{changes_size(str(root / lid), found)}\n" == expected[size_key]["stdout"]


def test_generated_diff_lists_upstream_names(
    store: Path, expected: dict[str, dict[str, object]], ids: dict[str, str]
) -> None:
    root = store / "graph" / "vfs" / "dir"
    lid = ids["L_MOD"]
    found = changes(str(root / lid), IDMappings(), str(root / ids["L_CHILD"]), IDMappings())
    data = b"".join(tar_changes(str(root / lid), found))
    names = subprocess.run(
        ["tar", "--quoting-style=literal", "-tf", "-"], input=data, capture_output=True, check=True
    ).stdout
    assert names.decode() == expected[f"diff -u {lid} | tar --quoting-style=literal -tf -"]["stdout"]


def test_generated_diff_bytes_match_upstream(
    store: Path, expected: dict[str, dict[str, object]], ids: dict[str, str]
) -> None:
    """Upstream looks user names up on the host: the fixture was made where uid 1000 is
    ``cloudsdk``; elsewhere the bytes legitimately differ."""
    try:
        name = pwd.getpwuid(1000).pw_name
    except KeyError:
        name = ""
    if name != "cloudsdk":
        pytest.skip("host user database differs from the fixture generator's")
    root = store / "graph" / "vfs" / "dir"
    lid = ids["L_MOD"]
    found = changes(str(root / lid), IDMappings(), str(root / ids["L_CHILD"]), IDMappings())
    digest = hashlib.sha256(b"".join(tar_changes(str(root / lid), found))).hexdigest()
    assert expected[f"diff -u {lid} | sha256sum"]["stdout"] == f"{digest}  -\n"
