"""Rebuild the fixture's population with our Store from the same inputs
(go-store-inputs/) and compare the record files with the ones upstream's tool wrote:
same records, same keys in the same order, same values -- except the creation times and
the container layer's random ID, which differ on every regeneration."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from containers_storage.store import ContainerOptions, ImageOptions, Store, get_store

from .conftest import FIXTURES, options

INPUTS = FIXTURES / "go-store-inputs"
IDS = dict(line.split("=", 1) for line in (INPUTS / "ids.env").read_text().split())


def _in(name: str) -> bytes:
    return (INPUTS / name).read_bytes()


def populate(s: Store) -> None:
    """The population order of the fixtures README."""
    s.put_layer(
        IDS["L_BASE_GZ"],
        names=["base-gz", "base-layer", "temporary-name"],
        diff=io.BytesIO(_in("base.tar.gz")),
    )
    s.put_layer(IDS["L_BASE_ZST"], names=["base-zst", "zst-old-name"], diff=io.BytesIO(_in("base.tar.zst")))
    s.put_layer(
        IDS["L_CHILD"], parent=IDS["L_BASE_GZ"], names=["child-whiteouts"], diff=io.BytesIO(_in("child.tar"))
    )
    s.create_layer(IDS["L_MOD"], parent=IDS["L_CHILD"], names=["mod-layer"])
    s.mount(IDS["L_MOD"])
    s.unmount(IDS["L_MOD"])
    s.remove_names("base-gz", ["temporary-name"])
    s.add_names("mod-layer", ["mod-alias"])
    s.set_names("base-zst", ["base-zst", "zst-renamed"])
    s.set_layer_big_data("base-gz", "notes.txt", _in("layer-notes.txt"))
    s.set_layer_big_data("mod-layer", "Blob/Key:1.json", _in("layer-blob.json"))
    s.set_metadata("child-whiteouts", 'layer metadata with "quotes", <angle brackets> & an ampersand')
    s.set_metadata("mod-layer", '{"layer":"mod"}')
    one = s.create_image(
        IDS["IMG1"],
        ["example.com/fixture/one:latest", "localhost/one:v1"],
        IDS["L_MOD"],
        '{"created-by":"create-image"}',
    )
    m1, m2, index = _in("manifest1.json"), _in("manifest2.json"), _in("index.json")
    for key, data in [
        ("manifest-sha256:21b617f105ffd82fff1952ef17517c3c2607367570f6687625c47c39c3ee1bb2", m1),
        ("manifest-sha256:c56fc2ce27cd404142614bab1346ab3aa529900fe53336ea75100ed31fa1126a", index),
        ("manifest", m1),
        ("sha256:20d11cb8dda5d7d522aef2e383e1cae73092797960bf689762f6f496d6958e4a", _in("config1.json")),
        ("sha256:abc/def", _in("image-abc-def.txt")),
    ]:
        s.set_image_big_data(one.id, key, data)
    s.set_metadata(one.id, '{"note":"image one","n":1}')
    two = s.create_image(
        IDS["IMG2"],
        ["example.com/fixture/two:latest"],
        IDS["L_BASE_ZST"],
        options=ImageOptions(
            digest="sha256:2fbaa44b9dbe42dc5e12f77c2096e58144f567e41b50c4cc95f6c583320ed855"
        ),
    )
    for key, data in [
        ("manifest", m2),
        ("manifest-sha256:c56fc2ce27cd404142614bab1346ab3aa529900fe53336ea75100ed31fa1126a", index),
        ("sha256:f12b5cde7dc86e665a125b386e909ea22fb0b4b51151932574109a64497b161f", _in("config2.json")),
        ("notes/übersicht v1", _in("image-notes.txt")),
    ]:
        s.set_image_big_data(two.id, key, data)
    s.set_metadata(two.id, _in("image2-metadata.txt").decode())
    s.add_names(two.id, ["localhost/two:extra"])
    s.add_names(two.id, ["localhost/one:v1"])
    s.remove_names(two.id, ["localhost/two:extra"])
    ctr = s.create_container(
        IDS["CTR"], ["ctr-one", "ctr-alias"], one.id, options=ContainerOptions(metadata="first")
    )
    s.set_container_big_data(ctr.id, "state.json", _in("container-state.json"))
    s.set_container_big_data(ctr.id, "weird key/ü:1", _in("container-weird.txt"))
    s.set_metadata(ctr.id, _in("container-metadata.txt").decode())
    s.add_names(ctr.id, ["ctr-extra"])
    s.remove_names(ctr.id, ["ctr-alias"])
    s.mount(ctr.id)
    s.unmount(ctr.id)


def _records(path: Path, volatile_layer: str) -> list[list[tuple[str, object]]]:
    """Records as ordered key/value lists, without times and the random layer ID."""
    out = []
    for rec in json.loads(path.read_text()):
        items = [(k, v) for k, v in rec.items() if k != "created"]
        items = [(k, "<ctr-layer>" if v == volatile_layer else v) for k, v in items]
        out.append(items)
    return out


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rebuilt")
    with get_store(options(root)) as s:
        populate(s)
    return root


@pytest.mark.parametrize(
    "rel", ["vfs-layers/layers.json", "vfs-images/images.json", "vfs-containers/containers.json"]
)
def test_record_files_match_upstream(rebuilt: Path, fixture_root: Path, rel: str) -> None:
    def ctr_layer(root: Path) -> str:
        return str(
            json.loads((root / "graph" / "vfs-containers" / "containers.json").read_text())[0]["layer"]
        )

    ours = _records(rebuilt / "graph" / rel, ctr_layer(rebuilt))
    theirs = _records(fixture_root / "graph" / rel, ctr_layer(fixture_root))
    assert ours == theirs


def test_created_is_go_formatted(rebuilt: Path) -> None:
    import re

    for rec in json.loads((rebuilt / "graph" / "vfs-layers" / "layers.json").read_text()):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", rec["created"])


@pytest.mark.parametrize("layer", ["L_BASE_GZ", "L_BASE_ZST", "L_CHILD"])
def test_tar_split_matches_upstream(rebuilt: Path, fixture_root: Path, layer: str) -> None:
    name = f"{IDS[layer]}.tar-split.gz"
    ours = gzip.decompress((rebuilt / "graph" / "vfs-layers" / name).read_bytes())
    theirs = gzip.decompress((fixture_root / "graph" / "vfs-layers" / name).read_bytes())
    assert ours == theirs


def test_big_data_files_match_upstream(rebuilt: Path, fixture_root: Path) -> None:
    for kind in ("vfs-images", "vfs-containers", "vfs-layers"):
        base = fixture_root / "graph" / kind
        for f in base.rglob("*"):
            if f.is_file() and f.parent != base and "userdata" not in f.parts:
                mine = rebuilt / "graph" / kind / f.relative_to(base)
                assert mine.read_bytes() == f.read_bytes(), f
