"""Partial pulls through the Store: round trips through our writer (and upstream's)
give layers whose diff is the original tar, recorded as upstream records them, with
each dedup path (reflink, hard link, local chunk, ostree, blob) exercised."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from containers_storage.chunked import sources
from containers_storage.chunked.differ import get_differ
from containers_storage.chunked.errors import PartialPullsDisabled
from containers_storage.chunked.formats import LAYER_DATA_BIG_DATA, TOC_BIG_DATA
from containers_storage.chunked.zstdchunked import read_manifest
from containers_storage.store import Store, get_store

from .conftest import Blob, make_tar, pull, rand, store_options, tree_of


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def without_record_padding(tar: bytes) -> bytes:
    """The tar up to its end-of-archive marker: upstream's writer leaves the padding to
    a whole record (Python writes 10 KiB records) out of the tar-split, so upstream's
    own ``diff`` of such a layer ends there too."""
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        last = t.getmembers()[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    return tar[: end + 1024]


@pytest.mark.parametrize("how", ["ours", "zstd"])
def test_round_trip_diff_is_the_tar_vfs(
    vfs_store: Store, tree_v1: dict, write_blob: Callable[[bytes, str], Blob], how: str
) -> None:
    tar = make_tar(tree_v1)
    blob = write_blob(tar, how)
    layer, out = pull(vfs_store, blob)
    assert vfs_store.diff("", layer).read() == (tar if how == "ours" else without_record_padding(tar))
    plain = vfs_store.put_layer(diff=io.BytesIO(tar))[0]
    rec = vfs_store.layer(layer)
    assert rec.toc_digest == blob.annotations["io.github.containers.zstd-chunked.manifest-checksum"]
    assert rec.uncompressed_digest == ""
    assert rec.uncompressed_size == sum(len(v) for v in tree_v1.values() if isinstance(v, bytes))
    assert (rec.uidset, rec.gidset) == (plain.uidset, plain.gidset)
    assert rec.compressed_digest == "" and rec.compressed_size == 0
    assert set(rec.big_data_names) == {TOC_BIG_DATA, LAYER_DATA_BIG_DATA}
    manifest = read_manifest(blob.source(), blob.size, blob.annotations)
    assert vfs_store.layer_big_data(layer, TOC_BIG_DATA) == manifest.toc
    assert vfs_store.layer_big_data(layer, LAYER_DATA_BIG_DATA) == b'{"format":0}'
    assert vfs_store.diff("", plain.id).read() == tar
    assert out.stats.bytes_missing > 0 and out.stats.files_reflinked == 0


def test_estargz_written_by_upstream(
    vfs_store: Store, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    tar = make_tar(tree_v1)
    blob = write_blob(tar, "estargz")
    layer, _out = pull(vfs_store, blob)
    plain = vfs_store.put_layer(diff=io.BytesIO(tar))[0]
    assert tree_of(vfs_store.mount(layer)) == tree_of(vfs_store.mount(plain.id))
    rec = vfs_store.layer(layer)
    assert rec.toc_digest == blob.annotations["containerd.io/snapshot/stargz/toc.digest"]
    assert rec.uncompressed_digest == ""
    # no tar-split in eStargz: the diff is regenerated from the files
    assert not os.path.exists(vfs_store._layers.tar_split_path(layer))


def test_overlay_native_round_trip_and_upstream_reads_it(
    overlay_root: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    tar = make_tar(tree_v1)
    blob = write_blob(tar, "ours")
    with get_store(store_options(overlay_root, "overlay")) as s:
        layer, _out = pull(s, blob)
        diff_dir = s.differ_target(layer)
        assert os.path.basename(diff_dir) == "diff" and os.path.exists(os.path.join(diff_dir, "big"))
        assert s.diff("", layer).read() == tar
        assert not os.listdir(os.path.join(overlay_root, "graph", "overlay", "staging"))
    tool = Path(os.environ.get("UPSTREAM_DIR", "/var/tmp/cs-1.50.2")) / "containers-storage"
    if tool.exists():
        import subprocess

        args = [
            str(tool),
            "--graph",
            str(overlay_root / "graph"),
            "--run",
            str(overlay_root / "run"),
            "--storage-driver",
            "overlay",
        ]
        got = subprocess.run([*args, "diff", "-u", layer], capture_output=True, check=True).stdout
        assert got == tar


def two_versions(tree: dict) -> tuple[dict, dict]:
    v2 = dict(tree)
    v2["./lib/b.so"] = rand(90_000, 99)  # changed
    v2["./new"] = rand(20_000, 7)  # added
    big = bytearray(tree["./big"])
    big[200_000:200_010] = b"0123456789"  # a few bytes inside: only one chunk differs
    v2["./big"] = bytes(big)
    return tree, v2


def test_second_version_fetches_only_what_changed(
    vfs_store: Store, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    v1, v2 = two_versions(tree_v1)
    _, _first = pull(vfs_store, write_blob(make_tar(v1), "ours"))
    blob2 = write_blob(make_tar(v2), "ours")
    src = blob2.source()
    layer, out = pull(vfs_store, blob2, source=src)
    assert vfs_store.diff("", layer).read() == make_tar(v2)
    st = out.stats
    assert st.files_reflinked == 3  # conf, holey and a.so are unchanged
    assert st.chunks_local > 0  # ./big: all chunks but the edited one from v1's file
    assert st.bytes_missing < 90_000 + 20_000 + 200_000
    assert src.bytes_read < blob2.size * 0.5


def test_hard_link_dedup(tmp_path: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]) -> None:
    blob = write_blob(make_tar(tree_v1), "ours")
    with get_store(store_options(tmp_path / "s", "vfs", use_hard_links="true")) as s:
        first, _ = pull(s, blob)
        second, out = pull(s, write_blob(make_tar(tree_v1), "ours"))
        assert out.stats.files_hard_linked >= 5 and out.stats.bytes_missing == 0
        a = os.stat(os.path.join(s.mount(first), "lib/a.so"))
        b = os.stat(os.path.join(s.mount(second), "lib/a.so"))
        assert (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def test_reflink_copy_dedup_is_a_separate_file(
    vfs_store: Store, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    blob = write_blob(make_tar(tree_v1), "ours")
    first, _ = pull(vfs_store, blob)
    second, out = pull(vfs_store, blob)
    assert out.stats.files_reflinked >= 5 and out.stats.bytes_missing == 0
    a = os.stat(os.path.join(vfs_store.mount(first), "lib/a.so"))
    b = os.stat(os.path.join(vfs_store.mount(second), "lib/a.so"))
    assert a.st_ino != b.st_ino
    assert vfs_store.diff("", second).read() == make_tar(tree_v1)


def test_a_modified_source_file_is_not_trusted(
    vfs_store: Store, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    blob = write_blob(make_tar(tree_v1), "ours")
    first, _ = pull(vfs_store, blob)
    with open(os.path.join(vfs_store.mount(first), "lib/a.so"), "r+b") as f:
        f.write(b"tampered")
    second, out = pull(vfs_store, blob)
    assert Path(vfs_store.mount(second), "lib/a.so").read_bytes() == tree_v1["./lib/a.so"]
    # the whole file is not reused; its chunks that still match are, the others fetched
    assert out.stats.files_reflinked == 4
    assert 0 < out.stats.bytes_missing < 70_000


def test_ostree_repo_dedup(tmp_path: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]) -> None:
    repo = tmp_path / "repo"
    data = tree_v1["./lib/a.so"]
    digest = hashlib.sha256(data).hexdigest() + ".payload-link"
    (repo / "objects" / digest[:2]).mkdir(parents=True)
    (repo / "objects" / digest[:2] / digest[2:]).write_bytes(data)
    with get_store(store_options(tmp_path / "s", "vfs", ostree_repos=str(repo))) as s:
        layer, out = pull(s, write_blob(make_tar(tree_v1), "ours"))
        assert out.stats.files_from_ostree == 1
        assert Path(s.mount(layer), "lib/a.so").read_bytes() == data


def test_partial_pulls_must_be_enabled(
    tmp_path: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    blob = write_blob(make_tar(tree_v1), "ours")
    with get_store(store_options(tmp_path / "s", "vfs", enable_partial_images="false")) as s:
        differ = get_differ(s.pull_options, blob.size, blob.annotations, blob.source())
        with pytest.raises(PartialPullsDisabled):
            s.apply_diff_with_differ("", differ)
        assert not os.listdir(os.path.join(tmp_path, "s", "graph", "vfs", "staging"))


def test_convert_images_from_a_plain_layer(tmp_path: Path, tree_v1: dict) -> None:
    import gzip

    tar = make_tar(tree_v1)
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(gzip.compress(tar))
    with get_store(store_options(tmp_path / "s", "vfs")) as s, pytest.raises(PartialPullsDisabled):
        get_differ(s.pull_options, path.stat().st_size, {}, sources.FileSource(path))
    with get_store(store_options(tmp_path / "s", "vfs", convert_images="true")) as s:
        layer, _out = pull(s, Blob(path, {}))
        assert s.layer(layer).uncompressed_digest == sha(tar)
        assert s.diff("", layer).read() == tar


def test_apply_into_an_existing_layer(
    vfs_store: Store, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    blob = write_blob(make_tar(tree_v1), "ours")
    layer = vfs_store.create_layer()
    differ = get_differ(vfs_store.pull_options, blob.size, blob.annotations, blob.source())
    out = vfs_store.apply_diff_with_differ(layer.id, differ)
    assert out.target == ""
    assert Path(vfs_store.mount(layer.id), "etc/conf").read_bytes() == b"key=value\n"
    assert vfs_store.layer(layer.id).uidset == (0,)


def test_whiteouts_on_a_child_layer_generic_and_overlay(
    tmp_path: Path, write_blob: Callable[[bytes, str], Blob]
) -> None:
    base = make_tar({"./a/": None, "./a/x": b"x", "./a/y": b"y", "./b": b"b", "./o/": None, "./o/old": b"o"})
    child = make_tar({"./a/": None, "./a/.wh.x": b"", "./o/": None, "./o/.wh..wh..opq": b"", "./o/new": b"n"})
    with get_store(store_options(tmp_path / "s", "vfs")) as s:
        lower = s.put_layer(diff=io.BytesIO(base))[0]
        layer, _ = pull(s, write_blob(child, "ours"), parent=lower.id)
        root = s.mount(layer)
        assert sorted(os.listdir(root)) == ["a", "b", "o"]
        assert os.listdir(os.path.join(root, "a")) == ["y"]
        assert os.listdir(os.path.join(root, "o")) == ["new"]
        assert s.diff("", layer).read() == child


def test_staging_directories_of_dead_processes_are_collected(
    tmp_path: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    import subprocess
    import sys

    blob = write_blob(make_tar(tree_v1), "ours")
    opts = store_options(tmp_path / "s", "vfs")
    script = f"""
import json, sys
from containers_storage.store import get_store
from containers_storage.config import StoreOptions
from containers_storage.chunked import sources
from containers_storage.chunked.differ import get_differ
opts = StoreOptions(graph_root={opts.graph_root!r}, run_root={opts.run_root!r}, driver_name="vfs",
                    pull_options={opts.pull_options!r})
s = get_store(opts)
src = sources.FileSource({str(blob.path)!r})
out = s.apply_diff_with_differ("", get_differ(s.pull_options, src.size, {blob.annotations!r}, src))
print(out.target, flush=True)
sys.stdin.read()
"""
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        target = child.stdout.readline().strip()
        assert os.path.isdir(target)
        with get_store(opts) as s:
            s.garbage_collect()
            assert os.path.isdir(target)  # its process still holds it
            mine = s.apply_diff_with_differ(
                "", get_differ(s.pull_options, blob.size, blob.annotations, blob.source())
            )
            child.kill()
            child.wait()
            s.garbage_collect()
            assert not os.path.exists(target)
            assert os.path.isdir(mine.target)  # held by this process
            layer = s.create_layer()
            s.apply_diff_from_staging_directory(layer.id, mine.target, mine)
            assert os.listdir(os.path.dirname(mine.target)) == []
    finally:
        child.kill()
        child.wait()


def test_cleanup_refuses_other_directories(vfs_store: Store, tmp_path: Path) -> None:
    from containers_storage.errors import StorageError

    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(StorageError, match="not a staging directory"):
        vfs_store.cleanup_staging_directory(str(other))
    assert other.exists()


@pytest.mark.parametrize("how", ["ours", "zstd", "estargz"])
def test_upstream_pull_of_the_same_blob_matches(
    overlay_root: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob], how: str
) -> None:
    """A blob from our writer or upstream's (zstd:chunked, eStargz), pulled by upstream's
    differ and ours into overlay stores: the same files, modes, owners and contents."""
    from .conftest import CHUNKEDTOOL

    if not CHUNKEDTOOL.exists():
        pytest.skip(f"upstream's chunkedtool is not built at {CHUNKEDTOOL}")
    import subprocess

    blob = write_blob(make_tar(tree_v1), how)
    conf = overlay_root / "conf"
    up = overlay_root / "up"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\nrunroot = "{up}/run"\ngraphroot = "{up}/graph"\n'
        '[storage.options]\npull_options = {enable_partial_images = "true", use_hard_links = "false"}\n'
    )
    ann = overlay_root / "ann.json"
    ann.write_text(json.dumps(blob.annotations))
    done = subprocess.run(
        [
            str(CHUNKEDTOOL),
            "--graph",
            f"{up}/graph",
            "--run",
            f"{up}/run",
            "pull",
            str(blob.path),
            str(blob.size),
            str(ann),
        ],
        env={**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)},
        capture_output=True,
        check=True,
    )
    theirs = json.loads(done.stdout)
    with get_store(store_options(overlay_root / "ours", "overlay")) as s:
        src = blob.source()
        layer, _out = pull(s, blob, source=src)
        ours = tree_of(s.differ_target(layer))
        rec = s.layer(layer)
    upstream_layers = json.loads((up / "graph" / "overlay-layers" / "layers.json").read_text())
    [up_rec] = upstream_layers
    # upstream 1.50.2 records the TOC digest as the DiffID; we record it as 1.52 does
    assert rec.toc_digest == up_rec["diff-digest"] and rec.uncompressed_digest == ""
    assert rec.uncompressed_size == up_rec["diff-size"]
    # upstream sets them from a Go map: in random order
    assert sorted(rec.big_data_names) == sorted(up_rec["big-data-names"])
    up_tree = tree_of(str(up / "graph" / "overlay" / theirs["layer"] / "diff"))
    assert ours == up_tree
    assert src.bytes_read <= theirs["bytes_fetched"]


def _random_tree(rng: random.Random) -> dict[str, bytes | str | None]:
    tree: dict[str, bytes | str | None] = {"./": None}
    dirs = ["./"]
    files: list[str] = []
    for i in range(rng.randint(5, 40)):
        kind = rng.random()
        parent = rng.choice(dirs)
        name = f"{parent}{'d' if kind < 0.15 else 'f'}{i}"
        if kind < 0.15:
            tree[name + "/"] = None
            dirs.append(name + "/")
        elif kind < 0.8 or not files:
            size = rng.choice([0, 1, rng.randint(2, 5000), rng.randint(5000, 300_000)])
            data = bytearray(rng.randbytes(size))
            if size > 20_000 and rng.random() < 0.5:  # a run of zeros: a hole chunk
                start, n = rng.randint(0, size - 10_000), rng.randint(9000, 10_000)
                data[start : start + n] = bytes(n)
            tree[name] = bytes(data)
            files.append(name)
        elif kind < 0.9:
            tree[name] = "->" + rng.choice(files).rsplit("/", 1)[-1]
        else:
            tree[name] = "=>" + rng.choice(files)
    return tree


def _mutated(tree: dict[str, bytes | str | None], rng: random.Random) -> dict[str, bytes | str | None]:
    out = dict(tree)
    for name, data in tree.items():
        if isinstance(data, bytes) and data and rng.random() < 0.3:
            edit = bytearray(data)
            at = rng.randrange(len(edit))
            edit[at : at + 8] = rng.randbytes(8)
            out[name] = bytes(edit)
    return out


def test_random_trees_round_trip(tmp_path: Path, write_blob: Callable[[bytes, str], Blob]) -> None:
    """Random trees (holes, empty files, links, nested directories), a first version and
    an edited second one pulled after it: each layer's diff is its tar, byte for byte."""
    seed = int.from_bytes(os.urandom(8), "little")
    rng = random.Random(seed)
    with get_store(store_options(tmp_path / "s", "vfs")) as s:
        for _ in range(3):
            v1 = _random_tree(rng)
            v2 = _mutated(v1, rng)
            for tree in (v1, v2):
                tar = make_tar(tree)
                layer, out = pull(s, write_blob(tar, "ours"))
                assert s.diff("", layer).read() == tar, f"seed {seed}"
                assert out.stats.bytes_total == sum(len(v) for v in tree.values() if isinstance(v, bytes))


def test_content_from_the_store_through_a_symlinked_directory(
    vfs_store: Store, write_blob: Callable[[bytes, str], Blob]
) -> None:
    """Files whose path goes through a symlink to a directory of the same layer, their
    content in another layer (copied by the worker threads, which resolve the path in
    the layer as the extractor does): the layer is what a plain import gives."""
    a, b = rand(30_000, 11), rand(40_000, 12)
    pull(vfs_store, write_blob(make_tar({"./": None, "./a": a, "./b": b}), "ours"))
    tar = make_tar(
        {"./": None, "./y/": None, "./x": "->y", "./x/g": b, "./x/f": a, "./y/h": a, "./z": "->/y"}
    )
    layer, out = pull(vfs_store, write_blob(tar, "ours"))
    assert out.stats.files_reflinked == 3
    plain = vfs_store.put_layer(diff=io.BytesIO(tar))[0]
    assert tree_of(vfs_store.mount(layer)) == tree_of(vfs_store.mount(plain.id))
    assert Path(vfs_store.mount(layer), "y", "g").read_bytes() == b
    assert vfs_store.diff("", layer).read() == tar
