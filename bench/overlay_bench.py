"""overlay benchmark: 150- and 500-layer chains against the vfs driver, in the same run.

Measures, for each depth: building the chain (one small file per layer), mounting and
unmounting the top layer (median of ``--repeat``), the native ``changes`` and ``diff``
of the top layer against the generic (mount-and-walk) ones, and applying a tar of ``--files`` files
natively into a new layer against the vfs driver's apply. Operations the core cannot run
yet are reported as ``n/a`` with the reason. Needs root (kernel overlay mounts).

Usage::

    python bench/overlay_bench.py [--depths 150,500] [--repeat 5] [--files 2000] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable

from containers_storage.drivers.api import ApplyDiffOpts, Driver, DriverConfig
from containers_storage.drivers.fsutil import remove_tree
from containers_storage.idtools import IDMappings
from containers_storage_overlay.driver import OverlayDriver
from containers_storage_overlay.mounting import lowerdir_plus_supported
from containers_storage_vfs.driver import VFSDriver


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def chain(d: Driver, depth: int) -> list[str]:
    ids = [f"{k:064x}" for k in range(depth + 1)]
    d.create(ids[0], None)
    for k in range(1, depth + 1):
        d.create(ids[k], ids[k - 1])
        root = d.get(ids[k])
        with open(os.path.join(root, f"f{k}"), "w") as f:
            f.write(str(k))
        d.put(ids[k])
    return ids


def tar_of(files: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(files):
            data = os.urandom(512)
            info = tarfile.TarInfo(f"d{i // 100}/file-{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def fmt(t: float | None) -> str:
    return f"{t * 1000:9.1f} ms" if t is not None else "      n/a"


def attempt(fn: Callable[[], float]) -> tuple[float | None, str]:
    try:
        return fn(), ""
    except Exception as e:  # a missing core piece is reported, not fatal
        return None, f"{type(e).__name__}: {e}"


def run_depth(work: str, depth: int, repeat: int, files: int) -> list[str]:
    """Print one depth's figures; returns notes on what could not be measured."""
    notes: list[str] = []
    ov = OverlayDriver(DriverConfig("overlay", f"{work}/o{depth}/graph", f"{work}/o{depth}/run"))
    vf = VFSDriver(DriverConfig("vfs", f"{work}/v{depth}/graph", f"{work}/v{depth}/run"))
    t0 = time.perf_counter()
    oids = chain(ov, depth)
    t_ov_chain = time.perf_counter() - t0
    t0 = time.perf_counter()
    vids = chain(vf, depth)
    t_vf_chain = time.perf_counter() - t0

    def cycle(d: Driver, top: str) -> Callable[[], None]:
        def run() -> None:
            d.get(top)
            d.put(top)

        return run

    t_ov_mount = timed(cycle(ov, oids[-1]), repeat)
    t_vf_mount = timed(cycle(vf, vids[-1]), repeat)
    t_native, _ = attempt(
        lambda: timed(lambda: ov.changes(oids[-1], IDMappings(), oids[-2], IDMappings()), repeat)
    )
    t_generic, why = attempt(
        lambda: timed(lambda: Driver.changes(ov, oids[-1], IDMappings(), oids[-2], IDMappings()), repeat)
    )
    if why:
        notes.append(f"generic changes: {why}")

    def read_diff(native: bool) -> None:
        fn = ov.diff if native else (lambda *a: Driver.diff(ov, *a))
        with fn(oids[-1], IDMappings(), oids[-2], IDMappings()) as stream:
            while stream.read(1 << 20):
                pass

    t_ndiff, _ = attempt(lambda: timed(lambda: read_diff(True), repeat))
    t_gdiff, why = attempt(lambda: timed(lambda: read_diff(False), repeat))
    if why:
        notes.append(f"generic diff: {why}")
    data = tar_of(files)

    def apply(d: Driver, parent: str) -> float:
        d.create("applied", parent)
        t = time.perf_counter()
        d.apply_diff("applied", parent, ApplyDiffOpts(diff=io.BytesIO(data)))
        return time.perf_counter() - t

    # the new layer sits on the second-highest layer: 500 lowers is the maximum
    t_ov_apply, why_o = attempt(lambda: apply(ov, oids[-2]))
    t_vf_apply, why_v = attempt(lambda: apply(vf, vids[-2]))
    notes += [f"apply: {w}" for w in (why_o, why_v) if w]
    print(f"\n== chain of {depth} layers ==")
    rows = [
        ("create chain", "overlay", t_ov_chain, "vfs", t_vf_chain),
        ("mount+unmount", "overlay", t_ov_mount, "vfs", t_vf_mount),
        ("changes (top)", "native", t_native, "generic", t_generic),
        ("diff (top)", "native", t_ndiff, "generic", t_gdiff),
        (f"apply {files} files", "overlay", t_ov_apply, "vfs", t_vf_apply),
    ]
    for what, a_name, a, b_name, b in rows:
        print(f"{what:18} {a_name:8}{fmt(a)}   {b_name:8}{fmt(b)}   ratio {ratio(a, b)}")
    ov.cleanup()
    vf.cleanup()
    return notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--depths", default="150,500")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("overlay_bench needs root for kernel overlay mounts")
    work = tempfile.mkdtemp(prefix="overlay-bench-", dir=args.dir)
    print(f"kernel {os.uname().release}; lowerdir+ (new mount API) supported: {lowerdir_plus_supported()}")
    notes: list[str] = []
    try:
        for depth in (int(x) for x in args.depths.split(",")):
            notes += run_depth(work, depth, args.repeat, args.files)
        for n in sorted(set(notes)):
            print("note:", n)
    finally:
        remove_tree(work)


if __name__ == "__main__":
    main()
