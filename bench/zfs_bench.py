"""zfs driver benchmark on a scratch pool made for the run (root; zfs-fuse or OpenZFS).

Each figure is compared with a reference timed in the same run on the same pool:

* creating a child of a layer that holds a large tree: zfs (snapshot + clone) vs vfs
  (a full copy of the tree) on a dataset of the same pool; removing it again; a zfs child
  of an empty layer for scale;
* mounting a layer (``get`` + ``put``): zfs (through ``zfs mount`` with zfs-fuse) vs vfs
  (a path);
* applying the tree's tar to a new layer (``apply_diff``) vs GNU ``tar -x`` into a
  directory of the same pool;
* the layer's full diff (``diff`` without parent, read to the end) vs GNU ``tar -c`` read
  to the end through a pipe.

Usage::

    python bench/zfs_bench.py [--size-mb 200] [--repeat 5] [--json out.json]

Times are medians of ``--repeat`` runs (vfs copies: of ``min(repeat, 3)``), warm cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from trees import drain, gnu_tar_create, make_driver, make_tree, print_results

from containers_storage.drivers.api import ApplyDiffOpts, Driver
from containers_storage.idtools import IDMappings

NO_MAPS = IDMappings()


def samples(fn: Callable[[int], object], count: int) -> list[float]:
    """Wall times of ``fn(0)`` .. ``fn(count - 1)``."""
    out = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def layer_diff(driver: Driver, layer: str) -> None:
    stream = driver.diff(layer, NO_MAPS, None, NO_MAPS)
    try:
        drain(stream)
    finally:
        stream.close()


def bench(mnt: str, workdir: str, size_mb: int, repeat: int) -> dict[str, float | int | str]:
    from containers_storage_vfs.driver import VFSDriver
    from containers_storage_zfs.driver import ZfsDriver

    out: dict[str, float | int | str] = {}
    zfs = make_driver(ZfsDriver, "zfs", os.path.join(mnt, "g-zfs"))
    vfs = make_driver(VFSDriver, "vfs", os.path.join(mnt, "g-vfs"))
    assert isinstance(zfs, ZfsDriver)
    out["zfs_implementation"] = zfs.mounter.kind
    try:
        zfs.create("base", None)
        nbytes, nentries = make_tree(zfs.get("base"), size_mb << 20)
        vfs.create("base", None)
        subprocess.run(["cp", "-a", zfs.get("base") + "/.", vfs.get("base")], check=True)
        zfs.put("base")
        zfs.put("base")
        vfs.put("base")
        vfs.put("base")
        os.sync()
        out.update(tree_bytes=nbytes, tree_entries=nentries)

        # child creation and removal
        zfs.create("empty", None)
        zfs_empty = samples(lambda i: zfs.create(f"echild{i}", "empty"), repeat)
        for i in range(repeat):
            zfs.remove(f"echild{i}")
        zfs.remove("empty")
        zfs_create = samples(lambda i: zfs.create(f"child{i}", "base"), repeat)
        zfs_remove = samples(lambda i: zfs.remove(f"child{i}"), repeat)
        n_vfs = min(repeat, 3)
        vfs_create = samples(lambda i: vfs.create(f"child{i}", "base"), n_vfs)
        vfs_remove = samples(lambda i: vfs.remove(f"child{i}"), n_vfs)
        out.update(
            zfs_child_of_empty_create_s=median(zfs_empty),
            zfs_child_create_s=median(zfs_create),
            vfs_child_create_s=median(vfs_create),
            child_create_ratio_vfs_over_zfs=median(vfs_create) / median(zfs_create),
            zfs_child_remove_s=median(zfs_remove),
            vfs_child_remove_s=median(vfs_remove),
            child_remove_ratio_vfs_over_zfs=median(vfs_remove) / median(zfs_remove),
        )

        # mounting
        def get_put(driver: Driver) -> Callable[[int], None]:
            def run(_: int) -> None:
                driver.get("base")
                driver.put("base")

            return run

        zfs_mount = samples(get_put(zfs), repeat * 4)
        vfs_mount = samples(get_put(vfs), repeat * 4)
        out.update(zfs_get_put_s=median(zfs_mount), vfs_get_put_s=median(vfs_mount))

        # whole-layer diff vs tar -c, apply vs tar -x
        tar_path = os.path.join(workdir, "tree.tar")
        with open(tar_path, "wb") as out_file:
            src = zfs.get("base")
            tar_cmd = ["tar", "--numeric-owner", "-C", src, "-cf", "-", "."]
            subprocess.run(tar_cmd, stdout=out_file, check=True)
            tar_c = samples(lambda i: gnu_tar_create(src), repeat)
            zfs.put("base")
        out["gnu_tar_create_s"] = median(tar_c)
        try:
            zfs_diff = samples(lambda i: layer_diff(zfs, "base"), repeat)
            out.update(zfs_diff_s=median(zfs_diff), diff_ratio_over_gnu_tar=median(zfs_diff) / median(tar_c))

            tar_x, applied = [], []
            for i in range(repeat):
                dest = os.path.join(mnt, f"tar-x{i}")
                os.makedirs(dest)
                start = time.perf_counter()
                subprocess.run(["tar", "--numeric-owner", "-C", dest, "-xf", tar_path], check=True)
                tar_x.append(time.perf_counter() - start)
                shutil.rmtree(dest)
                zfs.create(f"applied{i}", None)
                with open(tar_path, "rb") as f:
                    start = time.perf_counter()
                    zfs.apply_diff(f"applied{i}", None, ApplyDiffOpts(diff=f))
                    applied.append(time.perf_counter() - start)
                zfs.remove(f"applied{i}")
            out.update(
                gnu_tar_extract_s=median(tar_x),
                zfs_apply_s=median(applied),
                apply_ratio_over_gnu_tar=median(applied) / median(tar_x),
            )
        except ImportError as e:  # the generic diff is not in this checkout yet
            out["diff_apply"] = f"skipped: {e}"
        zfs.remove("base")
        vfs.remove("base")
    finally:
        zfs.cleanup()
        vfs.cleanup()
    return out


def run(workdir: str, size_mb: int, repeat: int) -> dict[str, float | int | str]:
    from containers_storage_zfs.scratch import destroy_dataset, scratch_pool, zfs_service

    pool_size = f"{max(8, size_mb * 12 // 1024 + 2)}G"
    with (
        zfs_service() as zfs,
        scratch_pool(zfs, workdir, pool_size, name=f"csbench{os.getpid()}") as (
            pool,
            mnt,
        ),
    ):
        # graph roots on a dataset of their own, found through the mount table as in use
        dataset, root = f"{pool}/bench", os.path.join(mnt, "bench")
        zfs.run("create", "-o", f"mountpoint={root}", dataset)
        try:
            return bench(root, workdir, size_mb, repeat)
        finally:
            destroy_dataset(zfs, dataset)


def main() -> int:
    from containers_storage_zfs.scratch import Unavailable, unavailable_reason

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=200, help="size of the benchmark tree (MiB)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--workdir", help="where the pool's file goes (default: a temporary directory)")
    args = p.parse_args()
    reason = unavailable_reason() or (None if shutil.which("tar") else "GNU tar is not installed")
    if reason:
        print(f"zfs bench skipped: {reason}", file=sys.stderr)
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="zfs-bench-", dir=args.workdir) as workdir:
            results = run(workdir, args.size_mb, args.repeat)
    except Unavailable as e:
        print(f"zfs bench skipped: {e}", file=sys.stderr)
        return 0
    print_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
