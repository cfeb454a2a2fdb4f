"""``check`` and ``repair`` on layers made by partial pulls. Such a layer's recorded
digest is not the digest of its uncompressed stream (upstream 1.50.2 records the TOC
digest there, 1.52 records it as ``toc-digest`` and leaves the DiffID empty), so a check
that compares the stream against it reports a healthy layer as damaged and ``check -r``
deletes it and its image. Upstream 1.50.2's own ``check`` does exactly that (recorded
below); ours must be clean, keep the layer, and still find real damage."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from containers_storage.store import Store, get_store

from .conftest import CHUNKEDTOOL, Blob, make_tar, pull, rand, store_options

UPSTREAM_TOOL = Path(os.environ.get("UPSTREAM_DIR", "/var/tmp/cs-1.50.2")) / "containers-storage"


def _store(driver: str, tmp_path: Path, overlay_root: Callable[[], Path]) -> Store:
    root = overlay_root() if driver == "overlay" else tmp_path
    return get_store(store_options(root / "s", driver))


@pytest.fixture
def overlay_dir(request: pytest.FixtureRequest) -> Callable[[], Path]:
    return lambda: request.getfixturevalue("overlay_root")  # type: ignore[no-any-return]


def _assert_clean_and_kept(s: Store, layers: list[str], image: str) -> None:
    report = s.check()
    assert (report.layers, report.images) == ({}, {})
    assert s.repair(report) == []
    for lid in layers:
        assert s.layer(lid).id == lid
    assert s.image(image).id == image


@pytest.mark.parametrize("driver", ["vfs", "overlay"])
@pytest.mark.parametrize("how", ["ours", "zstd", "estargz"])
def test_a_partial_layer_checks_clean_and_repair_keeps_it(
    driver: str,
    how: str,
    tmp_path: Path,
    overlay_dir: Callable[[], Path],
    tree_v1: dict,
    write_blob: Callable[[bytes, str], Blob],
) -> None:
    base = make_tar({"./": None, "./o/": None, "./o/old": b"o", "./gone": b"g"})
    child = {**tree_v1, "./o/": None, "./o/.wh..wh..opq": b"", "./.wh.gone": b""}
    with _store(driver, tmp_path, overlay_dir) as s:
        lower = s.put_layer(diff=io.BytesIO(base))[0]
        first, _ = pull(s, write_blob(make_tar(tree_v1), how))
        second, _ = pull(s, write_blob(make_tar(child), how), parent=lower.id)
        image = s.create_image(layer=second).id
        s.create_image(layer=first)
        _assert_clean_and_kept(s, [lower.id, first, second], image)
        # its diff is the stream a plain import of the same tar gives
        plain = s.put_layer(diff=io.BytesIO(make_tar(tree_v1)))[0]
        if how == "ours":
            assert s.diff("", first).read() == s.diff("", plain.id).read()
        if how != "estargz":  # eStargz keeps no tar-split; its diff is built from the files
            assert os.path.exists(s._layers.tar_split_path(first))


def test_a_layer_recorded_as_upstream_1_50_2_records_it_checks_clean(
    tmp_path: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    """1.50.2 writes the TOC digest as ``diff-digest`` and the sum of file sizes as
    ``diff-size``: a store it pulled into must not lose that layer to our ``check -r``."""
    opts = store_options(tmp_path / "s", "vfs")
    with get_store(opts) as s:
        layer, _ = pull(s, write_blob(make_tar(tree_v1), "ours"))
        image = s.create_image(layer=layer).id
    path = Path(opts.graph_root, "vfs-layers", "layers.json")
    records = json.loads(path.read_text())
    for rec in records:
        rec["diff-digest"] = rec.pop("toc-digest")
    path.write_text(json.dumps(records))
    with get_store(opts) as s:
        assert s.layer(layer).uncompressed_digest.startswith("sha256:")
        _assert_clean_and_kept(s, [layer], image)


def test_damage_to_a_partial_layer_is_still_found(
    tmp_path: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    with get_store(store_options(tmp_path / "s", "vfs")) as s:
        layer, _ = pull(s, write_blob(make_tar(tree_v1), "ours"))
        s.create_image(layer=layer)
        with open(os.path.join(s.mount(layer), "lib/a.so"), "ab") as f:
            f.write(b"more")
        s.unmount(layer)
        report = s.check()
        assert layer in report.layers
        assert any("lib/a.so" in str(e) or "a.so" in str(e) for e in report.layers[layer]), report.layers


def _upstream_pull(root: Path, blob: Blob) -> str:
    conf = root / "conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\nrunroot = "{root}/run"\ngraphroot = "{root}/graph"\n'
        '[storage.options]\npull_options = {enable_partial_images = "true", use_hard_links = "false"}\n'
    )
    ann = root / "ann.json"
    ann.write_text(json.dumps(blob.annotations))
    done = subprocess.run(
        [
            str(CHUNKEDTOOL),
            "--graph",
            f"{root}/graph",
            "--run",
            f"{root}/run",
            "pull",
            str(blob.path),
            str(blob.size),
            str(ann),
        ],
        env={**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)},
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr.decode()
    layer: str = json.loads(done.stdout)["layer"]
    return layer


def _upstream(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [
        str(UPSTREAM_TOOL),
        "--graph",
        f"{root}/graph",
        "--run",
        f"{root}/run",
        "--storage-driver",
        "overlay",
    ]
    return subprocess.run([*cmd, *args], capture_output=True)


@pytest.mark.parametrize("how", ["zstd", "estargz"])
def test_a_store_upstream_pulled_into(
    overlay_root: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob], how: str
) -> None:
    """Upstream 1.50.2 pulls, then: its own ``check`` reports the healthy layer (digest
    and size), ours does not; ``diff`` of it is the same stream from both tools (replayed
    from the tar-split for zstd:chunked, built from the files for eStargz)."""
    if not (CHUNKEDTOOL.exists() and UPSTREAM_TOOL.exists()):
        pytest.skip("upstream's chunkedtool and containers-storage are not built")
    tar = make_tar({**tree_v1, "./x": rand(3000, 9)})
    blob = write_blob(tar, how)
    layer = _upstream_pull(overlay_root, blob)
    theirs = _upstream(overlay_root, "check")
    assert theirs.returncode != 0 and b"layer content incorrect digest" in theirs.stdout
    up_diff = _upstream(overlay_root, "diff", "-u", layer)
    assert up_diff.returncode == 0, up_diff.stderr
    opts = store_options(overlay_root, "overlay")
    with get_store(opts) as s:
        image = s.create_image(layer=layer).id
        assert s.diff("", layer).read() == up_diff.stdout
        _assert_clean_and_kept(s, [layer], image)


def test_upstream_check_of_a_layer_we_pulled(
    overlay_root: Path, tree_v1: dict, write_blob: Callable[[bytes, str], Blob]
) -> None:
    """1.50.2 reading our record sees no DiffID: its check passes the layer over, so its
    ``check -r`` keeps it too."""
    if not UPSTREAM_TOOL.exists():
        pytest.skip("upstream's containers-storage is not built")
    with get_store(store_options(overlay_root, "overlay")) as s:
        layer, _ = pull(s, write_blob(make_tar(tree_v1), "ours"))
        s.create_image(layer=layer)
    done = _upstream(overlay_root, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _upstream(overlay_root, "check", "-r").returncode == 0
    assert layer.encode() in _upstream(overlay_root, "layers").stdout
