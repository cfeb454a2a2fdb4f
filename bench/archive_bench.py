"""Layer diff throughput against GNU tar, in the same run (issue 4).

Builds a tarball of real files (the Python standard library and site-packages found on
this machine, 250+ MB / 8,000+ entries), then for uncompressed, gzip and zstd input:
  * GNU tar extracting it vs our safe extraction (``apply_tar``) and vs the full store
    ingest path (``apply_layer_stream``: hashes + tar-split + extraction);
  * GNU tar creating a tar of the extracted tree vs our generated diff (``tar_tree``)
    and vs a tar-split replay;
and the peak RSS of each of our runs (each measured in a fresh child process).

Run as root: ``.venv/bin/python bench/archive_bench.py [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

SOURCES = [
    "/usr/lib/python3",
    "/usr/lib/python3.11",
    os.path.join(sys.prefix, "lib"),
    "/usr/share/perl",
    "/usr/lib/x86_64-linux-gnu/perl",
]
PY = sys.executable

CHILD = r"""
import io, json, os, resource, sys, time
from containers_storage.archive.apply import apply_tar
from containers_storage.archive.compression import decompressed_chunks
from containers_storage.archive.ingest import IterReader
from containers_storage.archive.export import tar_tree
from containers_storage.archive.ingest import apply_layer_stream
from containers_storage.archive.tarsplit import DirectoryFileGetter, assemble
op, src, dest, extra = sys.argv[1:5]
start = time.perf_counter()
if op == "apply":
    with open(src, "rb") as f:
        apply_tar(IterReader(decompressed_chunks(f)[1]), dest)
elif op == "ingest":
    with open(src, "rb") as f, open(extra, "wb") as ts:
        r = apply_layer_stream(f, lambda s: apply_tar(s, dest), ts)
elif op == "tree":
    with open(os.devnull, "wb") as out:
        for chunk in tar_tree(src):
            out.write(chunk)
elif op == "replay":
    with open(extra, "rb") as ts, DirectoryFileGetter(src) as g, open(os.devnull, "wb") as out:
        for chunk in assemble(ts, g):
            out.write(chunk)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def mb(path: str) -> float:
    return os.path.getsize(path) / 1e6


def sh(cmd: str) -> float:
    subprocess.run("sync", check=True)
    start = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True)
    return time.perf_counter() - start


def ours(op: str, src: str, dest: str, extra: str = "-") -> dict[str, float]:
    subprocess.run("sync", check=True)
    out = subprocess.run([PY, "-c", CHILD, op, src, dest, extra], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {"seconds": min(r["seconds"] for r in runs), "maxrss_kb": max(r["maxrss_kb"] for r in runs)}


def fresh(path: str) -> str:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="work directory to use (kept)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dest-dir", help="where to extract (default: the work directory's filesystem)")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="archive-bench-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    try:
        run(work, args.repeat, args.dest_dir)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(work: str, repeat: int, dest_dir: str | None) -> None:
    tarball = os.path.join(work, "layer.tar")
    if not os.path.exists(tarball):
        dirs = " ".join(p.lstrip("/") for p in SOURCES if os.path.isdir(p))
        sh(f"tar --numeric-owner -cf {tarball} -C / {dirs}")
        sh(f"gzip -6 -c {tarball} > {tarball}.gz")
        sh(f"zstd -q -3 -c {tarball} > {tarball}.zst")
    entries = int(
        subprocess.run(f"tar -tf {tarball} | wc -l", shell=True, capture_output=True, text=True).stdout
    )
    print(
        f"input: {mb(tarball):.0f} MB uncompressed, {entries} entries; "
        f"gzip {mb(tarball + '.gz'):.0f} MB, zstd {mb(tarball + '.zst'):.0f} MB"
    )
    dest = os.path.join(dest_dir or work, "archive-bench-out")
    tsfile = os.path.join(work, "tar-split.gz")
    variants = [
        ("none", tarball, "tar -xpf {src} -C {dest}"),
        ("gzip", tarball + ".gz", "tar -xzpf {src} -C {dest}"),
        ("zstd", tarball + ".zst", "tar --zstd -xpf {src} -C {dest}"),
    ]
    rows = []
    for name, src, gnu in variants:
        # interleaved, so that filesystem writeback drift hits both sides alike
        t_gnu, applied, ingested = [], [], []
        for _ in range(repeat):
            t_gnu.append(sh(gnu.format(src=src, dest=fresh(dest))))
            applied.append(ours("apply", src, fresh(dest)))
            ingested.append(ours("ingest", src, fresh(dest), tsfile))
        rows.append((f"apply {name}", min(t_gnu), best(applied)))
        rows.append((f"ingest {name} (+sha256, tar-split)", min(t_gnu), best(ingested)))
    # (through cat: GNU tar skips reading file contents when it writes to /dev/null itself)
    t_create, trees, replays = [], [], []
    for _ in range(repeat):
        t_create.append(sh(f"tar --numeric-owner -cf - -C {dest} . | cat > /dev/null"))
        trees.append(ours("tree", dest, "-"))
        replays.append(ours("replay", dest, "-", tsfile))
    rows.append(("diff (generated from files)", min(t_create), best(trees)))
    rows.append(("diff (tar-split replay)", min(t_create), best(replays)))
    print(f"{'operation':38} {'GNU tar s':>9} {'ours s':>8} {'ratio':>6} {'peak RSS MB':>11}")
    for label, ref, res in rows:
        print(
            f"{label:38} {ref:9.2f} {res['seconds']:8.2f} {res['seconds'] / ref:6.2f} "
            f"{res['maxrss_kb'] / 1024:11.0f}"
        )
    base = ours_baseline()
    print(f"(python with the package imported, doing nothing: {base:.0f} MB RSS)")
    shutil.rmtree(dest, ignore_errors=True)


def ours_baseline() -> float:
    code = (
        "import resource, containers_storage.archive.ingest; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    return int(subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout) / 1024


if __name__ == "__main__":
    main()
