"""vfs benchmark: creating a child layer (a full copy of the parent) against GNU
``cp -a --reflink=auto`` copying the same tree on the same filesystem, in the same run.

Usage::

    python bench/vfs_bench.py [--size-mb 260] [--repeat 3] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from trees import make_tree, median_time

from containers_storage.drivers.api import DriverConfig
from containers_storage.drivers.fsutil import backing_fs_name, remove_tree
from containers_storage_vfs.driver import VFSDriver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=int, default=260)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vfs-bench-", dir=args.dir)
    try:
        d = VFSDriver(DriverConfig("vfs", f"{work}/graph", f"{work}/run"))
        d.create("base", None)
        base = d.get("base")
        os.chmod(base, 0o755)
        size, entries = make_tree(base, args.size_mb << 20)
        cp_target = f"{work}/cp-copy"

        def cp() -> None:
            subprocess.run(["cp", "-a", "--reflink=auto", f"{base}/.", cp_target], check=True)

        def cp_setup() -> None:
            shutil.rmtree(cp_target, ignore_errors=True)
            os.mkdir(cp_target)

        def ours() -> None:
            d.create("child", "base")

        t_cp = median_time(cp, args.repeat, cp_setup)
        t_vfs = median_time(ours, args.repeat, lambda: d.remove("child"))
        t_rm = median_time(lambda: d.remove("child"), 1)
        t_rmrf = median_time(lambda: subprocess.run(["rm", "-rf", cp_target], check=True), 1)
        print(f"filesystem: {backing_fs_name(base + '/x')}; tree: {size / 1e6:.0f} MB, {entries} entries")
        print(f"cp -a --reflink=auto : {t_cp:.3f} s")
        print(f"vfs create child     : {t_vfs:.3f} s  (ratio {t_vfs / t_cp:.2f}x cp)")
        print(f"rm -rf               : {t_rmrf:.3f} s")
        print(f"vfs remove layer     : {t_rm:.3f} s  (ratio {t_rm / t_rmrf:.2f}x rm -rf)")
    finally:
        remove_tree(work)


if __name__ == "__main__":
    main()
