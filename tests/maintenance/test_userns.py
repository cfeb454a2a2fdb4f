"""Automatic user namespaces: ranges from the subordinate IDs of the configured user,
sized from the image (layer ID sets, /etc/passwd and /etc/group inside it), never
overlapping another container's."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers_storage import errors, userns
from containers_storage.idtools import IDMap
from containers_storage.store import AutoUserNsOptions, ContainerOptions, Store, get_store

from .conftest import needs_root, options, release_mounts, tar_bytes

PASSWD = b"root:x:0:0::/root:/bin/sh\napp:x:5000:5000::/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
GROUP = b"root:x:0:\nstaff:x:3000:\nnogroup:x:65534:\n"


def test_interval_arithmetic() -> None:
    assert userns.normalize([(5, 10), (0, 3), (2, 6)]) == [(0, 10)]
    assert userns.subtract([(0, 100)], [(10, 20), (50, 60)]) == [(0, 10), (20, 50), (60, 100)]
    assert userns.find_available([(0, 10), (20, 50)], 15) == [(0, 10), (20, 25)]
    with pytest.raises(errors.NoAvailableIDs):
        userns.find_available([(0, 10)], 11)
    assert userns.zip_maps([(100, 110), (200, 300)], [(0, 15)]) == (IDMap(0, 100, 10), IDMap(10, 200, 5))


def test_additional_mappings_are_kept_out_of_the_automatic_ranges() -> None:
    extra = (IDMap(0, 0, 1),)  # container root is host root
    uids, gids = userns.auto_maps(10, [(1000, 2000)], [(1000, 2000)], [IDMap(0, 1000, 5)], [], extra, extra)
    assert uids == (IDMap(1, 1005, 9), IDMap(0, 0, 1))
    assert gids == (IDMap(1, 1000, 9), IDMap(0, 0, 1))


@pytest.fixture
def subids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The subordinate ID files, as /etc/subuid and /etc/subgid would hold them."""
    monkeypatch.delenv("_CONTAINERS_USERNS_CONFIGURED", raising=False)
    for name in ("subuid", "subgid"):
        (tmp_path / name).write_text("# ranges\ncontainers:100000:20000\nother:500000:65536\n")
    monkeypatch.setattr(userns, "SUBUID_FILE", str(tmp_path / "subuid"))
    monkeypatch.setattr(userns, "SUBGID_FILE", str(tmp_path / "subgid"))
    return tmp_path


@pytest.fixture
def store(tmp_path: Path, subids: Path) -> Iterator[Store]:
    s = get_store(options(tmp_path / "s", auto_userns_min_size=1024, auto_userns_max_size=65536))
    try:
        yield s
    finally:
        release_mounts(s)
        s.close()


def image(s: Store, files: dict[str, bytes], owners: dict[str, tuple[int, int]] | None = None) -> str:
    layer, _ = s.put_layer(diff=io.BytesIO(tar_bytes(files, owners)))
    return s.create_image(layer=layer.id).id


AUTO = ContainerOptions(auto_userns=True)


@needs_root
def test_sized_from_the_image_and_never_overlapping(store: Store) -> None:
    img = image(
        store,
        {"etc/": b"", "etc/passwd": PASSWD, "etc/group": GROUP, "srv/": b"", "srv/f": b"x"},
        {"srv/f": (1200, 1300)},
    )
    layers_before = {x.id for x in store.layers()}
    first = store.create_container(image=img, options=AUTO)
    # passwd's uid/gid 5000 (nobody aside) beats the minimum 1024 and the layer's 1300
    assert first.uid_map == (IDMap(0, 100000, 5001),) and first.gid_map == first.uid_map
    second = store.create_container(image=img, options=AUTO)
    assert second.uid_map == (IDMap(0, 105001, 5001),)
    sized = store.create_container(
        image=img, options=ContainerOptions(auto_userns=True, auto_userns_opts=AutoUserNsOptions(size=2000))
    )
    assert sized.uid_map == (IDMap(0, 110002, 2000),)
    # the throw-away layer used to read the image's files is gone
    made = {x.id for x in store.layers()} - layers_before
    assert made == {c.layer_id for c in (first, second, sized)} | set(store.image(img).mapped_top_layers)
    root = Path(store.mount(second.id))
    try:
        st = os.stat(root / "srv" / "f")
        assert (st.st_uid, st.st_gid) == (105001 + 1200, 105001 + 1300)
    finally:
        store.unmount(second.id)
    assert store.create_container(image=img, options=AUTO).uid_map == (IDMap(0, 112002, 5001),)
    with pytest.raises(errors.NoAvailableIDs):
        store.create_container(image=img, options=AUTO)  # 20000 IDs, 2997 left
    store.delete_container(first.id)
    assert store.create_container(image=img, options=AUTO).uid_map == (IDMap(0, 100000, 5001),)


@needs_root
def test_files_inside_the_image_cannot_point_outside(store: Store, tmp_path: Path) -> None:
    """An /etc/passwd that is a symlink to an absolute path is read inside the image."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("real-passwd", b"u:x:7000:7000::/:/bin/sh\n"),):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        d = tarfile.TarInfo("etc")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        link = tarfile.TarInfo("etc/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/../../../../real-passwd"
        tf.addfile(link)
    layer, _ = store.put_layer(diff=io.BytesIO(buf.getvalue()))
    img = store.create_image(layer=layer.id).id
    assert store.create_container(image=img, options=AUTO).uid_map == (IDMap(0, 100000, 7001),)
    host_passwd = tmp_path / "passwd"
    host_passwd.write_bytes(b"big:x:9000:9000::/:/bin/sh\n")
    opts = ContainerOptions(
        auto_userns=True, auto_userns_opts=AutoUserNsOptions(passwd_file=str(host_passwd))
    )
    assert store.create_container(image=img, options=opts).uid_map == (IDMap(0, 107001, 9001),)


def test_limits_and_missing_ranges(tmp_path: Path, subids: Path) -> None:
    with get_store(options(tmp_path / "s", auto_userns_max_size=4096)) as s:
        img = image(s, {"etc/": b"", "etc/passwd": b"big:x:70000:70000::/:/bin/sh\n"})
        with pytest.raises(
            errors.StorageError, match="bigger than the maximum value allowed with userns=auto 4096"
        ):
            s.create_container(image=img, options=AUTO)
        assert s.containers() == []
        # without an image the minimum size is used
        plain = s.create_container(options=AUTO)
        assert plain.uid_map == (IDMap(0, 100000, 1024),)
    with get_store(options(tmp_path / "t", root_auto_userns_user="nobody-has-ranges")) as s:
        with pytest.raises(errors.NoAvailableIDs):
            s.create_container(options=AUTO)
        assert s.containers() == [] and s.layers() == []
