"""Names, metadata and big-data keys that are not valid UTF-8 (surrogate escapes of the
bytes of a command-line argument or a file): refused with a clear error before anything
is written, so the store never holds a file it -- or another reader -- cannot take back.
Upstream's v1.50.2 tool writes U+FFFD in their place (the bytes are lost)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from containers_storage.errors import StorageError
from containers_storage.store import Store

from ..store.conftest import tar_bytes
from .conftest import Site

BAD = "bad\udcff\udcfename"


def tree(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if not name.endswith(".lock") and not p.is_symlink():
                out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() else b"<dir>"
    return out


WRITERS: dict[str, Callable[[Store, Site], object]] = {
    "add_names image": lambda s, site: s.add_names(site.image, [BAD]),
    "set_names layer": lambda s, site: s.set_names(site.base, ["ok", BAD]),
    "add_names container": lambda s, site: s.add_names(site.container, [BAD]),
    "set_metadata image": lambda s, site: s.set_metadata(site.image, BAD),
    "set_metadata layer": lambda s, site: s.set_metadata(site.child, BAD),
    "set_image_big_data key": lambda s, site: s.set_image_big_data(site.image, BAD, b"x"),
    "set_container_big_data key": lambda s, site: s.set_container_big_data(site.container, BAD, b"x"),
    "set_layer_big_data key": lambda s, site: s.set_layer_big_data(site.base, BAD, b"x"),
    "create_layer name": lambda s, site: s.create_layer(parent=site.base, names=[BAD]),
    "put_layer name": lambda s, site: s.put_layer(names=[BAD], diff=io.BytesIO(tar_bytes({"f": b"x"}))),
    "create_image name": lambda s, site: s.create_image(names=[BAD], layer=site.base),
    "create_image metadata": lambda s, site: s.create_image(layer=site.base, metadata=BAD),
    "create_container name": lambda s, site: s.create_container(names=[BAD], image=site.image),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_the_api_refuses_and_writes_nothing(site: Site, writer: str) -> None:
    before = tree(site.root)
    with site.open() as s:
        with pytest.raises(StorageError, match=r'"bad\\xff\\xfename" is not valid UTF-8'):
            WRITERS[writer](s, site)
        s.layers()
        s.images()
        s.containers()
    assert tree(site.root) == before


@pytest.mark.parametrize(
    "args",
    [
        ["add-names", "--name", BAD, "img"],
        ["set-names", "--name", BAD, "img"],
        ["create-layer", "--name", BAD],
        ["create-image", "--name", BAD, "img"],
        ["create-container", "--name", BAD, "img"],
        ["set-metadata", "-m", BAD, "img"],
    ],
)
def test_the_command_line_refuses_and_the_store_stays_readable(site: Site, args: list[str]) -> None:
    if args[0] == "create-image":
        args = [*args[:-1], site.base]
    before = tree(site.root)
    res = site.cli(*args)
    assert res.status == 1
    assert res.stderr.strip().endswith('"bad\\xff\\xfename" is not valid UTF-8'), res.stderr
    assert tree(site.root) == before
    assert site.cli("images").status == 0


def test_a_metadata_file_that_is_not_utf8_is_refused(site: Site, tmp_path: Path) -> None:
    meta = tmp_path / "meta.bin"
    meta.write_bytes(b"meta\xff\xfe\x00x")
    res = site.cli("set-metadata", "-f", str(meta), "img")
    assert res.status == 1 and "is not valid UTF-8" in res.stderr
    assert site.cli("images").status == 0
