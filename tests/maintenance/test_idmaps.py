"""ID-mapped layers and containers with real files owned by mapped IDs: mapped copies of
an image's top layer (on-disk.md §5.4), re-owned container layers, diffs in container
IDs, store-default maps, read-only images, and ID shifting at mount time on overlay."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from containers_storage.idtools import IDMap
from containers_storage.store import (
    CheckOptions,
    ContainerOptions,
    DiffOptions,
    IDMappingOptions,
    LayerOptions,
    Store,
    get_store,
)

from .conftest import needs_root, options, overlay_available, release_mounts, tar_bytes

pytestmark = needs_root

FILES = {"etc/": b"", "etc/shadow": b"root:*:\n", "home/": b"", "home/user/": b"", "home/user/rc": b"alias\n"}
OWNERS = {"home/user/": (1000, 1000), "home/user/rc": (1000, 1001), "etc/shadow": (0, 42)}
MAPS = (IDMap(0, 100000, 65536),)
OTHER = (IDMap(0, 200000, 65536),)


def mapped(maps: tuple[IDMap, ...] = MAPS) -> ContainerOptions:
    return ContainerOptions(id_mapping=IDMappingOptions(uid_map=maps, gid_map=maps))


def owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def tar_owners(stream: io.BufferedIOBase | bytes) -> dict[str, tuple[int, int]]:
    data = stream if isinstance(stream, bytes) else stream.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name.rstrip("/"): (m.uid, m.gid) for m in tf}


def image_with_owners(s: Store) -> tuple[str, str]:
    layer, _ = s.put_layer(names=["base"], diff=io.BytesIO(tar_bytes(FILES, OWNERS)))
    return s.create_image(names=["img"], layer=layer.id).id, layer.id


def test_mapped_copy_of_the_top_layer_owns_files_by_host_ids(store: Store) -> None:
    image, top = image_with_owners(store)
    vfs = Path(store.graph_root) / "vfs" / "dir"
    ctr = store.create_container(image=image, options=mapped())
    (copy,) = store.image(image).mapped_top_layers
    assert store.layer(ctr.layer_id).parent == copy
    assert owner(vfs / copy / "home/user/rc") == (101000, 101001)
    assert owner(vfs / copy / "etc/shadow") == (100000, 100042)
    assert owner(vfs / copy / "home/user") == (101000, 101000)
    assert owner(vfs / top / "home/user/rc") == (1000, 1001)  # the image's layer is untouched
    root = Path(store.mount(ctr.id))
    assert owner(root / "home/user/rc") == (101000, 101001)
    new = root / "home/user/new"
    new.write_text("x")
    os.chown(new, 101000, 101000)
    store.unmount(ctr.id)
    # diffs speak container IDs
    with store.diff("", copy, DiffOptions(compression=0)) as d:
        assert tar_owners(d)["home/user/rc"] == (1000, 1001)
    with store.diff("", ctr.layer_id, DiffOptions(compression=0)) as d:
        assert tar_owners(d)["home/user/new"] == (1000, 1000)
    report = store.check(CheckOptions.everything())
    assert (report.layers, report.images, report.containers) == ({}, {}, {})


def test_copies_per_mapping_and_host_mapped_containers_use_the_top_layer(store: Store) -> None:
    image, top = image_with_owners(store)
    a = store.create_container(image=image, options=mapped())
    b = store.create_container(image=image, options=mapped())
    c = store.create_container(image=image, options=mapped(OTHER))
    host = store.create_container(
        image=image,
        options=ContainerOptions(id_mapping=IDMappingOptions(host_uid_mapping=True, host_gid_mapping=True)),
    )
    first, second = store.image(image).mapped_top_layers
    parents = [store.layer(x.layer_id).parent for x in (a, b, c, host)]
    assert parents == [first, first, second, top]
    assert store.layer(second).uid_map == OTHER
    assert store.container(host.id).uid_map == () and store.layer(host.layer_id).uid_map == ()
    for ctr in (a, b, c, host):
        store.delete_container(ctr.id)
    assert set(store.delete_image(image)) == {top, first, second}
    assert store.layers() == []


def test_layer_maps_apply_to_extracted_files_and_are_inherited(store: Store) -> None:
    vfs = Path(store.graph_root) / "vfs" / "dir"
    opts = LayerOptions(id_mapping=IDMappingOptions(uid_map=MAPS, gid_map=MAPS))
    base, _ = store.put_layer(options=opts, diff=io.BytesIO(tar_bytes(FILES, OWNERS)))
    assert owner(vfs / base.id / "home/user/rc") == (101000, 101001)
    child, _ = store.put_layer(
        parent=base.id, diff=io.BytesIO(tar_bytes({"tmp/": b"", "tmp/x": b"x"}, {"tmp/x": (7, 8)}))
    )
    assert store.layer(child.id).uid_map == MAPS  # no maps given: the parent's
    assert owner(vfs / child.id / "tmp/x") == (100007, 100008)
    with store.diff("", child.id, DiffOptions(compression=0)) as d:
        assert tar_owners(d)["tmp/x"] == (7, 8)
    # a layer asking for other maps than its parent's gets the parent's files re-owned
    other = store.create_layer(
        parent=base.id, options=LayerOptions(id_mapping=IDMappingOptions(uid_map=OTHER, gid_map=OTHER))
    )
    assert owner(vfs / other.id / "home/user/rc") == (201000, 201001)


def test_store_default_maps(tmp_path: Path) -> None:
    with get_store(options(tmp_path / "s", uid_map=MAPS, gid_map=OTHER)) as s:
        layer, _ = s.put_layer(diff=io.BytesIO(tar_bytes(FILES, OWNERS)))
        assert (layer.uid_map, layer.gid_map) == (MAPS, OTHER)
        assert owner(Path(s.graph_root) / "vfs" / "dir" / layer.id / "home/user/rc") == (101000, 201001)
        ctr = s.create_container()
        assert s.layer(ctr.layer_id).uid_map == MAPS


def test_read_only_image_gets_no_copy_the_container_layer_is_reowned(tmp_path: Path) -> None:
    ro_root = tmp_path / "ro"
    with get_store(options(ro_root)) as ro:
        image, top = image_with_owners(ro)
    ro_graph = ro_root / "graph"
    with get_store(options(tmp_path / "main", driver_options=[f"vfs.imagestore={ro_graph}"])) as s:
        ctr = s.create_container(image=image, options=mapped())
        assert s.image(image).mapped_top_layers == ()
        clayer = s.layer(ctr.layer_id)
        assert clayer.parent == top and clayer.uid_map == MAPS
        main_vfs = Path(s.graph_root) / "vfs" / "dir"
        assert owner(main_vfs / ctr.layer_id / "home/user/rc") == (101000, 101001)
        assert owner(ro_graph / "vfs" / "dir" / top / "home/user/rc") == (1000, 1001)
        s.delete_container(ctr.id)


def test_overlay_shifts_at_mount_time(tmp_path: Path) -> None:
    if not overlay_available():
        pytest.skip("kernel overlayfs needed")
    s = get_store(options(tmp_path / "s", "overlay"))
    try:
        if not s.driver.supports_shifting():
            pytest.skip("no ID-mapped mounts here")
        image, top = image_with_owners(s)
        ctr = s.create_container(image=image, options=mapped())
        # no copy and no re-owning: the container's maps are applied when mounting
        assert s.image(image).mapped_top_layers == ()
        assert s.layer(ctr.layer_id).uid_map == () and s.container(ctr.id).uid_map == MAPS
        assert owner(Path(s.graph_root) / "overlay" / top / "diff/home/user/rc") == (1000, 1001)
        root = Path(s.mount(ctr.id))
        try:
            assert owner(root / "home/user/rc") == (101000, 101001)
        finally:
            s.unmount(ctr.id)
        # maps that are not one contiguous range cannot be shifted: a mapped copy is made
        split = (IDMap(0, 300000, 1000), IDMap(1000, 400000, 64536))
        other = s.create_container(image=image, options=mapped(split))
        (copy,) = s.image(image).mapped_top_layers
        assert s.layer(copy).uid_map == split
        root = Path(s.mount(other.id))
        try:
            assert owner(root / "home/user/rc") == (400000, 400001)  # 1000 starts the 2nd range
            assert owner(root / "etc/shadow") == (300000, 300042)
        finally:
            s.unmount(other.id)
        report = s.check(CheckOptions.everything())
        assert (report.layers, report.images, report.containers) == ({}, {}, {})
        s.delete_container(other.id)
        s.delete_container(ctr.id)
    finally:
        release_mounts(s)
        s.close()


def test_parent_owners_lists_only_ids_the_maps_cannot_represent(tmp_path: Path) -> None:
    """The directories above a mapped layer's mount point must be reachable from inside
    the user namespace; owners outside the maps are reported."""
    outer = tmp_path / "outer"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    os.chown(outer, 555, 556)
    os.chown(inner, 100005, 100006)  # inside the maps: representable
    with get_store(options(inner)) as s:
        layer = s.create_layer(options=LayerOptions(id_mapping=IDMappingOptions(uid_map=MAPS, gid_map=MAPS)))
        ctr = s.create_container(options=mapped())
        s.mount(layer.id)
        s.mount(ctr.id)
        try:
            uids, gids = s.layer_parent_owners(layer.id)
            assert 555 in uids and 556 in gids and 0 in uids
            assert 100005 not in uids and 100006 not in gids
            assert s.container_parent_owners(ctr.id) == (uids, gids)
        finally:
            s.unmount(layer.id)
            s.unmount(ctr.id)
        plain = s.create_layer()
        assert s.layer_parent_owners(plain.id) == ([], [])
