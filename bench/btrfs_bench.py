"""btrfs driver benchmark, on a loop-mounted btrfs made for the run (root only).

What it measures, each against a reference timed in the same run on the same filesystem:

* creating a child of a layer that holds a 250+ MB tree: btrfs (a snapshot) vs vfs (a
  full copy of the tree; reflinked where the copy helper can) and vs a plain data copy
  (``cp -a --reflink=never``), and removing it again;
* applying the tree's tar to a new layer (``apply_diff``) vs GNU ``tar -x``;
* producing the layer's diff (``diff`` with no parent, read to the end) vs GNU ``tar -c``
  read to the end through a pipe;
* the diff of a child against its parent after a few changes (no reference: GNU tar has no
  such operation; reported as time only).

Usage::

    python bench/btrfs_bench.py [--size-mb 260] [--repeat 5] [--json out.json]

Times are medians of ``--repeat`` runs (btrfs snapshots: of ``4 * repeat``; vfs and plain
copies: of ``min(repeat, 3)``), warm cache.
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

from containers_storage.drivers.api import ApplyDiffOpts
from containers_storage.idtools import IDMappings
from containers_storage.testing.loopdev import loop_filesystem, loop_unavailable


def timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def gnu_tar_extract(tar_path: str, dest: str) -> None:
    os.makedirs(dest)
    subprocess.run(["tar", "--numeric-owner", "-C", dest, "-xf", tar_path], check=True)


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def run(workdir: str, size_mb: int, repeat: int) -> dict[str, float | int | str]:
    from containers_storage_btrfs.driver import BtrfsDriver
    from containers_storage_vfs.driver import VFSDriver

    out: dict[str, float | int | str] = {}
    image_size = max(8 << 30, size_mb * (14 << 20))
    with loop_filesystem(workdir, "btrfs", image_size, ["mkfs.btrfs", "-q", "-f"]) as fs:
        mnt = fs.mountpoint
        bt = make_driver(BtrfsDriver, "btrfs", os.path.join(mnt, "g-btrfs"))
        vfs = make_driver(VFSDriver, "vfs", os.path.join(mnt, "g-vfs"))
        try:
            # the same tree in a base layer of each driver
            bt.create("base", None)
            nbytes, nentries = make_tree(bt.get("base"), size_mb << 20)
            vfs.create("base", None)
            subprocess.run(
                ["cp", "-a", "--reflink=never", bt.get("base") + "/.", vfs.get("base")], check=True
            )
            os.sync()
            out.update(tree_bytes=nbytes, tree_entries=nentries)

            # child creation and removal
            bt.create("empty", None)
            snaps = 4 * repeat  # snapshots are cheap: more samples steady the median
            bt_empty = [timed(bt.create, f"echild{i}", "empty") for i in range(snaps)]
            for i in range(snaps):
                bt.remove(f"echild{i}")
            bt.remove("empty")
            bt_create = [timed(bt.create, f"child{i}", "base") for i in range(snaps)]
            bt_remove = [timed(bt.remove, f"child{i}") for i in range(snaps)]
            vfs_runs = min(repeat, 3)
            vfs_create = [timed(vfs.create, f"child{i}", "base") for i in range(vfs_runs)]
            vfs_remove = [timed(vfs.remove, f"child{i}") for i in range(vfs_runs)]
            plain = []
            for i in range(vfs_runs):
                dest = os.path.join(mnt, f"plain-copy{i}")
                plain.append(timed(subprocess.run, ["cp", "-a", "--reflink=never", bt.get("base"), dest]))
                shutil.rmtree(dest)
            out.update(
                btrfs_child_of_empty_create_s=median(bt_empty),
                btrfs_child_create_s=median(bt_create),
                vfs_child_create_s=median(vfs_create),
                cp_a_no_reflink_s=median(plain),
                child_create_ratio_vfs_over_btrfs=median(vfs_create) / median(bt_create),
                btrfs_child_remove_s=median(bt_remove),
                vfs_child_remove_s=median(vfs_remove),
                child_remove_ratio_vfs_over_btrfs=median(vfs_remove) / median(bt_remove),
            )

            # diff (whole layer) vs GNU tar -c
            tar_path = os.path.join(workdir, "tree.tar")
            subprocess.run(["tar", "--numeric-owner", "-C", bt.get("base"), "-cf", tar_path, "."], check=True)
            tar_c = [timed(gnu_tar_create, bt.get("base")) for _ in range(repeat)]
            out["gnu_tar_create_s"] = median(tar_c)
            try:
                no_maps = IDMappings()

                def our_diff() -> None:
                    stream = bt.diff("base", no_maps, None, no_maps)
                    try:
                        drain(stream)
                    finally:
                        stream.close()

                ours = [timed(our_diff) for _ in range(repeat)]
                out["btrfs_diff_s"] = median(ours)
                out["diff_ratio_over_gnu_tar"] = median(ours) / median(tar_c)

                # apply vs GNU tar -x, both into fresh directories of the same btrfs
                tar_x, applied = [], []
                for i in range(repeat):
                    dest = os.path.join(mnt, f"tar-x{i}")
                    tar_x.append(timed(gnu_tar_extract, tar_path, dest))
                    shutil.rmtree(dest)
                    bt.create(f"applied{i}", None)

                    def apply(i: int = i) -> None:
                        with open(tar_path, "rb") as f:
                            bt.apply_diff(f"applied{i}", None, ApplyDiffOpts(diff=f))

                    applied.append(timed(apply))
                    bt.remove(f"applied{i}")
                out.update(
                    gnu_tar_extract_s=median(tar_x),
                    btrfs_apply_s=median(applied),
                    apply_ratio_over_gnu_tar=median(applied) / median(tar_x),
                )

                # diff of a child against its parent after a few changes
                bt.create("upper", "base")
                top = bt.get("upper")
                for k, name in enumerate(sorted(os.listdir(os.path.join(top, "usr0")))[:20]):
                    with open(os.path.join(top, "usr0", name, f"new{k}"), "wb") as f:
                        f.write(os.urandom(4096))
                shutil.rmtree(os.path.join(top, "usr1"))

                def child_diff() -> None:
                    stream = bt.diff("upper", no_maps, "base", no_maps)
                    try:
                        drain(stream)
                    finally:
                        stream.close()

                out["btrfs_child_diff_s"] = median([timed(child_diff) for _ in range(repeat)])
                bt.remove("upper")
            except ImportError as e:  # the generic diff is not installed in this checkout
                out["diff_apply"] = f"skipped: {e}"
            bt.remove("base")
            vfs.remove("base")
        finally:
            bt.cleanup()
            vfs.cleanup()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=260, help="size of the benchmark tree (MiB)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--workdir", help="where the image goes (default: a temporary directory)")
    args = p.parse_args()
    reason = loop_unavailable("btrfs", "mkfs.btrfs", "tar", "cp")
    if reason:
        print(f"btrfs bench skipped: {reason}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="btrfs-bench-", dir=args.workdir) as workdir:
        results = run(workdir, args.size_mb, args.repeat)
    print_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
