"""A small populated store whose record files the tests damage, opened afresh after."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from containers_storage.gojson import dumps, loads
from containers_storage.store import Store, get_store

from ..cli.conftest import Result, run_main
from ..store.conftest import options, tar_bytes

#: record files by kind, relative to the store root (vfs)
FILES = {
    "layers": "graph/vfs-layers/layers.json",
    "images": "graph/vfs-images/images.json",
    "containers": "graph/vfs-containers/containers.json",
    "mounts": "run/vfs-layers/mountpoints.json",
    "volatile-layers": "graph/vfs-layers/volatile-layers.json",
    "volatile-containers": "graph/vfs-containers/volatile-containers.json",
}


@dataclass
class Site:
    """Base layer, child layer, image on the child, container on the image (mounted)."""

    root: Path
    base: str
    child: str
    image: str
    container: str
    container_layer: str

    def path(self, kind: str) -> Path:
        return self.root / FILES[kind]

    def records(self, kind: str) -> list[dict[str, Any]]:
        p = self.path(kind)
        return loads(p.read_bytes().decode("utf-8", "surrogateescape"))  # type: ignore[no-any-return] if p.exists() else []

    def write(self, kind: str, data: list[dict[str, Any]] | bytes) -> None:
        self.path(kind).write_bytes(data if isinstance(data, bytes) else dumps(data).encode())

    def edit(self, kind: str, fn: Callable[[list[dict[str, Any]]], None]) -> None:
        data = self.records(kind)
        fn(data)
        self.write(kind, data)

    def open(self) -> Store:
        return get_store(options(self.root))

    def cli(self, *args: str) -> Result:
        roots = ("--graph", str(self.root / "graph"), "--run", str(self.root / "run"))
        return run_main(*roots, "-s", "vfs", *args)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    root = tmp_path / "store"
    with get_store(options(root)) as s:
        base, _ = s.put_layer(diff=io.BytesIO(tar_bytes({"a": b"base\n"})))
        child, _ = s.put_layer(parent=base.id, diff=io.BytesIO(tar_bytes({"b": b"child\n"})))
        img = s.create_image(names=["img"], layer=child.id)
        ctr = s.create_container(names=["ctr"], image=img.id)
        s.mount(ctr.id)
        s.unmount(ctr.id)
        s.mount(ctr.id)
    return Site(root, base.id, child.id, img.id, ctr.id, ctr.layer_id)
