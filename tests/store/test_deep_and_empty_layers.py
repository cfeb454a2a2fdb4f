"""Layers that stress the walks: a tree 2,000 directories deep (paths far beyond
PATH_MAX) imports, diffs, checks clean and deletes; a zero-byte tar-split file is
reported by check and makes diff fail clearly."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from containers_storage.archive.rooted import remove_all
from containers_storage.errors import TarSplitEmpty
from containers_storage.store import Store
from containers_storage.testing.hostile import make_tar, member

DEPTH = 2000


def _deep_tar(with_dirs: bool) -> bytes:
    name = "d/" * DEPTH
    members = [member("d/" * (i + 1), type=tarfile.DIRTYPE) for i in range(DEPTH)] if with_dirs else []
    return make_tar([*members, member(name + "f", b"deep")])


@pytest.mark.parametrize("with_dirs", [True, False], ids=["every-level", "one-entry"])
def test_deep_tree_round_trip(store: Store, tmp_path: Path, with_dirs: bool) -> None:
    data = _deep_tar(with_dirs)
    try:
        layer, _size = store.put_layer(diff=io.BytesIO(data))
        with store.diff("", layer.id) as diff:
            assert diff.read() == data
        report = store.check()
        assert not report.layers, report.layers
        store.delete_layer(layer.id)
    finally:  # pytest's own clean-up of tmp_path recurses: never leave a deep tree
        for dirpath in tmp_path.rglob("vfs/dir/*"):
            fd = os.open(dirpath.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                remove_all(fd, os.fsencode(dirpath.name))
            finally:
                os.close(fd)


def test_zero_byte_tar_split(store: Store) -> None:
    layer, _size = store.put_layer(diff=io.BytesIO(make_tar([member("f", b"x")])))
    ts = Path(store.graph_root) / "vfs-layers" / f"{layer.id}.tar-split.gz"
    ts.write_bytes(b"")
    report = store.check()
    assert "tar-split metadata is empty" in str(report.layers[layer.id][0])
    with pytest.raises(TarSplitEmpty), store.diff("", layer.id) as diff:
        diff.read()
