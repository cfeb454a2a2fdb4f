"""Several processes work on one store at once, and processes killed at random points
leave a store that loads and is cleaned up by the next writer."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from containers_storage.store import get_store

from .conftest import options

WORKER = r"""
import json, sys
from containers_storage.config import StoreOptions
import pytest

from containers_storage.store import get_store
from containers_storage import errors
root, wid, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opts = StoreOptions(graph_root=root + "/graph", run_root=root + "/run", driver_name="vfs")
kept, deleted = [], []
with get_store(opts) as s:
    for n in range(rounds):
        layer = s.create_layer(names=[f"w{wid}-l{n}"])
        img = s.create_image(names=[f"w{wid}-i{n}"], layer=layer.id)
        s.add_names(img.id, ["shared-name", f"w{wid}-extra{n}"])
        ctr = s.create_container(names=[f"w{wid}-c{n}"], image=img.id)
        s.set_container_big_data(ctr.id, "state.json", b"{}")
        shared = s.layer("shared-base").id
        s.mount(shared)  # counted across processes in mountpoints.json
        s.unmount(shared)
        if n % 2:
            s.delete_container(ctr.id)
            s.delete_image(img.id)
            deleted += [layer.id, img.id, ctr.id]
        else:
            kept += [layer.id, img.id, ctr.id, ctr.layer_id]
print(json.dumps({"kept": kept, "deleted": deleted}))
"""


def _check_consistent(root: Path) -> None:
    with get_store(options(root)) as s:
        layers, images, containers = s.layers(), s.images(), s.containers()
    for recs in (layers, images, containers):
        names = Counter(n for r in recs for n in r.names)
        assert not [n for n, c in names.items() if c > 1], "a name is claimed twice"
        assert len({r.id for r in recs}) == len(recs)
    assert not [x for x in layers if x.incomplete]
    ids = {x.id for x in layers}
    on_disk = {d for d in os.listdir(root / "graph" / "vfs" / "dir") if not d.startswith(".")}
    assert on_disk == ids, "layer contents and records disagree"
    for c in containers:
        assert c.layer_id in ids
    for i in images:
        assert not i.top_layer or i.top_layer in ids


def test_eight_processes_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with get_store(options(root)) as s:
        s.create_layer(names=["shared-base"])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), str(w), "15"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(8)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    kept = {i for r in results for i in r["kept"]}
    deleted = {i for r in results for i in r["deleted"]}
    with get_store(options(root)) as s:
        present = {x.id for x in s.layers()} | {x.id for x in s.images()} | {x.id for x in s.containers()}
        assert kept <= present
        assert not (deleted & present)
        assert len(s.images_by_digest("sha256:" + "0" * 64)) == 0
        shared = [i for i in s.images() if "shared-name" in i.names]
        assert len(shared) <= 1
        assert s.mounted("shared-base") == 0  # every mount was matched by an unmount
    _check_consistent(root)


VICTIM = r"""
import io, sys, tarfile
from containers_storage.config import StoreOptions
import pytest

from containers_storage.store import get_store
root = sys.argv[1]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tf:
    for i in range(40):
        data = bytes(2000)
        info = tarfile.TarInfo(f"dir/file{i}")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
blob = buf.getvalue()
opts = StoreOptions(graph_root=root + "/graph", run_root=root + "/run", driver_name="vfs")
with get_store(opts) as s:
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        base = s.create_layer()
        child, _ = s.put_layer(parent=base.id, diff=io.BytesIO(blob))
        img = s.create_image(layer=child.id)
        ctr = s.create_container(image=img.id)
        s.delete_container(ctr.id)
        s.delete_image(img.id)
"""


def test_sigkill_at_random_points_leaves_a_loadable_store(tmp_path: Path) -> None:
    root = tmp_path / "k"
    with get_store(options(root)) as s:
        s.create_layer(names=["survivor"])
    rng = random.Random(1234)
    for _round in range(8):
        p = subprocess.Popen(
            [sys.executable, "-c", VICTIM, str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        with get_store(options(root)) as s:
            s.layers()  # loads (and, being read-write, finishes interrupted work)
            assert s.layer("survivor").names == ("survivor",)
            # the next write of each kind cleans that kind's leftovers
            s.create_container(image=s.create_image(layer=s.create_layer().id).id)
        for d in ("vfs-layers", "vfs-images", "vfs-containers"):
            assert not [
                n
                for n in os.listdir(root / "graph" / d)
                if n.startswith(".tmp-") and n.endswith(tuple("0123456789")) and ".json" in n
            ], "temp files of killed writers were not swept"
        for f in ("layers.json", "volatile-layers.json"):
            path = root / "graph" / "vfs-layers" / f
            if path.exists() and path.stat().st_size:
                json.loads(path.read_text())
        _check_consistent(root)


def test_threads_share_one_store(tmp_path: Path) -> None:
    """Threads of one process exclude each other through the in-process side of the
    locks (POSIX locks alone would not)."""
    import threading

    root = tmp_path / "t"
    errors: list[BaseException] = []
    with get_store(options(root)) as s:

        def work(t: int) -> None:
            try:
                for n in range(10):
                    layer = s.create_layer(names=[f"t{t}-{n}"])
                    img = s.create_image(names=[f"t{t}-i{n}"], layer=layer.id)
                    s.add_names(img.id, ["moving"])
                    if n % 3 == 0:
                        s.delete_image(img.id)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert not errors, errors
        assert len(s.images()) == 4 * 6
        assert len([i for i in s.images() if "moving" in i.names]) <= 1
    _check_consistent(root)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk_loses_nothing(tmp_path: Path) -> None:
    """A record save that hits ENOSPC fails with a clear error, leaves the old file and
    the in-memory view as they were, and the store carries on once space is back."""
    from containers_storage import errors

    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        with get_store(options(mnt)) as s:
            layer = s.create_layer(names=["l"])
            s.create_image(names=["keep"], layer=layer.id)
            images_json = mnt / "graph" / "vfs-images" / "images.json"
            before = images_json.read_bytes()
            filler = mnt / "filler"
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            with pytest.raises(errors.StorageError, match="No space left|no space"):
                s.create_image(names=["x" * 200], layer=layer.id, metadata="m" * 200_000)
            assert images_json.read_bytes() == before
            assert [i.names for i in s.images()] == [("keep",)]
            filler.unlink()
            s.create_image(names=["after"], layer=layer.id)
            assert [i.names for i in s.images()] == [("keep",), ("after",)]
        with get_store(options(mnt)) as s:
            assert len(s.images()) == 2
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
