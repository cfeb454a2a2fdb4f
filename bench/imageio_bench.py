"""Import of a real multi-layer image into a vfs store: ``containers-storage
import-image`` against ``skopeo copy oci:... containers-storage:...`` of the same OCI
layout, in the same run (root; needs skopeo and GNU tar).

The image is built here from real trees of this machine, one layer each (default: the
Python standard library, Perl's library and /usr/share/doc), compressed as registries
serve them (gzip; ``--compression`` picks none, gzip, zstd or all). Each timed run is a
whole process on a fresh store, ours and skopeo's interleaved; the figure is the median
of ``--repeat`` runs (wall time, and CPU time of the process with its children), the
ratio ours / skopeo; the two take turns going first. Both run in a private mount namespace
with a scratch /var/lib (skopeo writes a blob cache under /var/lib/containers).

Our modules are byte-compiled first, as pip does when it installs them: the checkout is
an editable install, and with ``PYTHONDONTWRITEBYTECODE`` set (as in this project's
shells) every process -- the tool and each checksum helper -- would otherwise compile
every module it imports from source on each run, a cost no installed copy has.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zstandard

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from trees import print_results

DEFAULT_TREES = ("/usr/lib/python3.11", "/usr/lib/x86_64-linux-gnu/perl", "/usr/share/doc")
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def _put(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def build_layout(root: Path, trees: list[str], compression: str) -> tuple[int, int]:
    """An OCI layout of ``trees`` (one GNU tar layer each); (uncompressed, blob) bytes."""
    (root / "blobs" / "sha256").mkdir(parents=True)
    layers, diff_ids, plain, packed = [], [], 0, 0
    for tree in trees:
        tar = subprocess.run(["tar", "--numeric-owner", "-C", "/", "-cf", "-", tree.lstrip("/")],
                             capture_output=True, check=True).stdout
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        if compression == "gzip":
            blob = gzip.compress(tar, compresslevel=6, mtime=0)
        elif compression == "zstd":
            blob = zstandard.ZstdCompressor(level=3).compress(tar)
        else:
            blob = tar
        layers.append({"mediaType": LAYER_TYPES[compression], **_put(root, blob)})
        plain += len(tar)
        packed += len(blob)
    config = json.dumps({
        "created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_put(root, config)},
        "layers": layers,
    }).encode()
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **_put(root, manifest),
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return plain, packed


def in_namespace(scratch: Path, cmd: list[str]) -> list[str]:
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /var/lib && exec "$@"', str(scratch), *cmd]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children)."""
    subprocess.run(["sync"], check=True)
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def byte_compile() -> None:
    """``.pyc`` files for the core and the vfs driver (``__pycache__`` is git-ignored)."""
    import compileall

    import containers_storage
    import containers_storage_vfs

    for package in (containers_storage, containers_storage_vfs):
        for path in package.__path__:
            compileall.compile_dir(path, quiet=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compression", choices=("none", "gzip", "zstd", "all"), default="gzip")
    ap.add_argument("--tree", action="append", help="a directory to make a layer of (repeatable)")
    ap.add_argument("--dir", default="/var/tmp", help="where the layout and the stores go")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("skopeo") is None:
        print("needs root and skopeo", file=sys.stderr)
        return 2
    ours_cmd = [str(Path(sys.executable).with_name("containers-storage"))]
    byte_compile()
    trees = args.tree or [t for t in DEFAULT_TREES if os.path.isdir(t)]
    kinds = ("none", "gzip", "zstd") if args.compression == "all" else (args.compression,)
    work = Path(tempfile.mkdtemp(prefix="cs-bench-imageio-", dir=args.dir))
    results: dict[str, float | int | str] = {"trees": " ".join(trees)}
    try:
        (work / "varlib").mkdir()
        conf = work / "storage.conf"
        conf.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{work}/r"\ngraphroot = "{work}/g"\n')
        env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf), "TMPDIR": str(work)}
        for kind in kinds:
            layout = work / f"layout-{kind}"
            plain, packed = build_layout(layout, trees, kind)
            results[f"{kind}: image MB (uncompressed / blobs)"] = f"{plain / 1e6:.1f} / {packed / 1e6:.1f}"
            ours_t, theirs_t = [], []
            for i in range(args.repeat):
                g, r = work / f"g{i}", work / f"r{i}"
                ours = in_namespace(work / "varlib", [
                    *ours_cmd, "--graph", str(g / "ours"), "--run", str(r / "ours"), "-s", "vfs",
                    "import-image", "-n", "bench:1", f"oci:{layout}:latest"])
                theirs = in_namespace(work / "varlib", [
                    "skopeo", "copy", "-q", f"oci:{layout}:latest",
                    f"containers-storage:[vfs@{g / 'theirs'}+{r / 'theirs'}]localhost/bench:1"])
                # each goes first in every other round: neither always runs right after
                # the last round's stores were deleted
                if i % 2 == 0:
                    ours_t.append(timed(ours, env))
                    theirs_t.append(timed(theirs, env))
                else:
                    theirs_t.append(timed(theirs, env))
                    ours_t.append(timed(ours, env))
                same = (g / "ours" / "vfs-images" / "images.json").read_bytes() == (
                    g / "theirs" / "vfs-images" / "images.json").read_bytes()
                if not same:
                    print("warning: the two stores' images.json differ", file=sys.stderr)
                shutil.rmtree(g)
                shutil.rmtree(r, ignore_errors=True)
            for what, index in (("wall", 0), ("cpu", 1)):
                ours = statistics.median(t[index] for t in ours_t)
                theirs = statistics.median(t[index] for t in theirs_t)
                results[f"{kind}: {what} s ours (median of {args.repeat})"] = ours
                results[f"{kind}: {what} s skopeo (median of {args.repeat})"] = theirs
                results[f"{kind}: {what} ratio ours/skopeo"] = ours / theirs
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
