"""Many small entries and a decompression bomb: our ``import-layer`` against upstream's
tool (when built) and GNU tar, in the same run (issue 18).

* entries: a tar of ``--files`` one-byte files in ``--dirs`` directories (200,000 in 200
  by default, 200 MB uncompressed) imported into a fresh vfs store;
* bomb: a gzip'd tar holding one ``--bomb-gib`` GiB file of zeros (2 MB on disk).

Each run is a fresh process measured with ``/usr/bin/time`` (wall time, peak RSS). GNU
tar extracting the same tar into a directory is the floor for the entries case.
Prints a table with ratios against upstream (or GNU tar when upstream is absent).

Run as root: ``.venv/bin/python bench/entries_bench.py [--dir /var/tmp] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "core"))

from containers_storage.archive.tarwriter import END_OF_ARCHIVE, Header, encode
from containers_storage.testing.bombs import write_bomb

UPSTREAM = "/var/tmp/cs-1.50.2/containers-storage"
OURS = os.path.join(os.path.dirname(sys.executable), "containers-storage")


def build_entries(path: str, dirs: int, files: int) -> None:
    per_dir = files // dirs
    pad = bytes(511)
    with open(path, "wb") as out:
        for d in range(dirs):
            dname = b"d%03d/" % d
            out.write(encode(Header(name=dname, typeflag=ord("5"), mode=0o755, mtime=1_700_000_000)))
            block = []
            for f in range(per_dir):
                h = Header(
                    name=dname + b"f%05d" % f, typeflag=ord("0"), mode=0o644, size=1, mtime=1_700_000_000
                )
                block.append(encode(h) + b"x" + pad)
            out.write(b"".join(block))
        out.write(END_OF_ARCHIVE)


def timed(argv: list[str], stdin_path: str, cwd: str) -> tuple[float, int]:
    """(seconds, peak RSS in MB) of one run of ``argv`` reading ``stdin_path``."""
    with open(stdin_path, "rb") as stdin:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", *argv],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
            check=False,
        )
    last = proc.stderr.decode().strip().splitlines()[-1]
    if proc.returncode:
        raise SystemExit(f"{argv[0]} failed: {proc.stderr.decode()}")
    seconds, kb = last.split()
    return float(seconds), int(kb) // 1024


def import_cmd(tool: str, scratch: str, driver: str = "vfs") -> list[str]:
    graph, run = tempfile.mkdtemp(dir=scratch), tempfile.mkdtemp(dir=scratch)
    return [tool, "--graph", graph, "--run", run, "-s", driver, "import-layer"]


def _remove(path: str) -> None:
    subprocess.run(["rm", "-rf", path], check=False)  # faster than shutil for 200,000 files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--dirs", type=int, default=200)
    ap.add_argument("--files", type=int, default=200_000)
    ap.add_argument("--bomb-gib", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip", choices=("entries", "bomb"), action="append", default=[])
    args = ap.parse_args()
    have_upstream = os.access(UPSTREAM, os.X_OK)
    scratch = tempfile.mkdtemp(prefix="entries-bench-", dir=args.dir)
    rows: list[tuple[str, str, float, int]] = []
    try:
        cases: list[tuple[str, str]] = []
        if "entries" not in args.skip:
            tar = os.path.join(scratch, "entries.tar")
            build_entries(tar, args.dirs, args.files)
            cases.append(("entries", tar))
        if "bomb" not in args.skip:
            bomb = os.path.join(scratch, "bomb.tar.gz")
            with open(bomb, "wb") as f:
                write_bomb(f, int(args.bomb_gib * (1 << 30)), "gzip")
            cases.append(("bomb", bomb))
        for case, path in cases:
            tools = [("ours", OURS)] + ([("upstream", UPSTREAM)] if have_upstream else [])
            for _ in range(args.repeat):
                for name, tool in tools:
                    work = tempfile.mkdtemp(dir=scratch)
                    rows.append((case, name, *timed(import_cmd(tool, work), path, work)))
                    print(*rows[-1], flush=True)
                    _remove(work)
                if case == "entries":
                    work = tempfile.mkdtemp(dir=scratch)
                    rows.append((case, "GNU tar -x", *timed(["tar", "-xf", "-", "-C", work], path, work)))
                    print(*rows[-1], flush=True)
                    _remove(work)
    finally:
        _remove(scratch)
    if not have_upstream:
        print(f"(upstream's tool not found at {UPSTREAM}: skipped)")
    print("| case | tool | seconds | peak RSS MB | time ratio | RSS ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for case, name, secs, mb in rows:
        ref_name = "upstream" if have_upstream else "GNU tar -x"
        ref = next((r for r in rows if r[0] == case and r[1] == ref_name), None)
        ratio = f"{secs / ref[2]:.2f}x" if ref and ref[2] else "-"
        mratio = f"{mb / ref[3]:.2f}x" if ref and ref[3] else "-"
        print(f"| {case} | {name} | {secs:.1f} | {mb} | {ratio} | {mratio} |")


if __name__ == "__main__":
    main()
