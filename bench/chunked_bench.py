"""Partial pulls: two versions of a real tree (the Python standard library, 5% of its
files changed in v2) as zstd:chunked blobs from our writer, served over HTTP from
127.0.0.1 by a server counting bytes. Pull v1 fully, then v2 partially; report the bytes
fetched for v2 as a share of its blob and the time against a full import of v2 in the
same run, and upstream's ``chunkedtool pull`` of the same blobs side by side.

    python bench/chunked_bench.py [--tree /usr/lib/python3.11] [--changed 0.05]
        [--driver overlay|vfs] [--dir /var/tmp] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.server
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from trees import print_results

from containers_storage.chunked import writer
from containers_storage.chunked.differ import get_differ
from containers_storage.chunked.sources import HTTPSource
from containers_storage.config import StoreOptions
from containers_storage.store import get_store

CHUNKEDTOOL = Path(os.environ.get("UPSTREAM_DIR", "/var/tmp/cs-1.50.2")) / "chunkedtool"


def tree_tars(src: str, changed: float, seed: int = 7) -> tuple[bytes, bytes, int, int]:
    """v1 is ``src`` as it is; v2 has ``changed`` of its regular files rewritten (a few
    bytes changed in the middle, or appended to for small files)."""
    rng = random.Random(seed)
    files = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                files.append(full)
    pick = set(rng.sample(files, max(1, int(len(files) * changed))))

    def build(edit: bool) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for dirpath, dirnames, filenames in os.walk(src):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                rel = os.path.relpath(dirpath, src)
                info = tar.gettarinfo(dirpath, arcname="./" if rel == "." else f"./{rel}")
                tar.addfile(info)
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    arc = f"./{os.path.normpath(os.path.join(rel, name))}"
                    info = tar.gettarinfo(full, arcname=arc)
                    if info.isreg():
                        data = Path(full).read_bytes()
                        if edit and full in pick:
                            mid = len(data) // 2
                            data = data[:mid] + b"# changed in v2\n" + data[mid:]
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
                    else:
                        tar.addfile(info)
        return buf.getvalue()

    return build(False), build(True), len(files), len(pick)


class _Server(http.server.ThreadingHTTPServer):
    served = 0
    blobs: dict[str, bytes] = {}


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        blob = self.server.blobs[self.path]
        spec = self.headers.get("Range", "").removeprefix("bytes=")
        ranges = [tuple(int(x) for x in p.split("-")) for p in spec.split(",") if p]
        if not ranges:
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)
            self.server.served += len(blob)
            return
        body = io.BytesIO()
        for a, b in ranges:
            body.write(b"\r\n--SEP\r\nContent-Range: bytes %d-%d/%d\r\n\r\n" % (a, b, len(blob)))
            body.write(blob[a : b + 1])
            self.server.served += b - a + 1
        body.write(b"\r\n--SEP--\r\n")
        self.send_response(206)
        self.send_header("Content-Type", "multipart/byteranges; boundary=SEP")
        self.send_header("Content-Length", str(len(body.getvalue())))
        self.end_headers()
        self.wfile.write(body.getvalue())


def ours(
    work: str, driver: str, server: _Server, url: str, blobs: dict[str, tuple[bytes, dict[str, str]]]
) -> dict[str, float]:
    root = tempfile.mkdtemp(dir=work, prefix="ours-")
    opts = StoreOptions(
        graph_root=f"{root}/g",
        run_root=f"{root}/r",
        driver_name=driver,
        pull_options={"enable_partial_images": "true", "use_hard_links": "false"},
    )
    out: dict[str, float] = {}
    with get_store(opts) as s:
        for name in ("v1", "v2"):
            data, ann = blobs[name]
            server.served = 0
            t0 = time.perf_counter()
            d = get_differ(s.pull_options, len(data), ann, HTTPSource(url + "/" + name))
            staged = s.apply_diff_with_differ("", d)
            layer = s.create_layer()
            s.apply_diff_from_staging_directory(layer.id, staged.target, staged)
            out[f"{name}_seconds"] = time.perf_counter() - t0
            out[f"{name}_bytes_fetched"] = server.served
        t0 = time.perf_counter()
        s.put_layer(diff=io.BytesIO(blobs["v2"][0]))
        out["import_v2_seconds"] = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    return out


def upstream(work: str, url: str, blobs: dict[str, tuple[bytes, dict[str, str]]]) -> dict[str, float]:
    root = tempfile.mkdtemp(dir=work, prefix="upstream-")
    conf = os.path.join(root, "conf")
    with open(conf, "w") as f:
        f.write(
            f'[storage]\ndriver = "overlay"\nrunroot = "{root}/r"\ngraphroot = "{root}/g"\n'
            '[storage.options]\npull_options = {enable_partial_images = "true", use_hard_links = "false"}\n'
        )
    out: dict[str, float] = {}
    for name in ("v1", "v2"):
        data, ann = blobs[name]
        ann_path = os.path.join(root, name + ".json")
        with open(ann_path, "w") as f:
            json.dump(ann, f)
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                str(CHUNKEDTOOL),
                "--graph",
                f"{root}/g",
                "--run",
                f"{root}/r",
                "pull",
                url + "/" + name,
                str(len(data)),
                ann_path,
            ],
            env={**os.environ, "CONTAINERS_STORAGE_CONF": conf},
            capture_output=True,
            check=True,
        )
        out[f"{name}_seconds"] = time.perf_counter() - t0
        out[f"{name}_bytes_fetched"] = json.loads(done.stdout)["bytes_fetched"]
    subprocess.run(["umount", "-R", f"{root}/g/overlay"], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", default=os.path.dirname(os.__file__))
    ap.add_argument("--changed", type=float, default=0.05)
    ap.add_argument("--driver", default="overlay")
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    work = tempfile.mkdtemp(dir=args.dir, prefix="cs-chunked-bench-")
    try:
        t1, t2, nfiles, nchanged = tree_tars(args.tree, args.changed)
        blobs: dict[str, tuple[bytes, dict[str, str]]] = {}
        t0 = time.perf_counter()
        for name, tar in (("v1", t1), ("v2", t2)):
            buf = io.BytesIO()
            ann = writer.compress(io.BytesIO(tar), buf)
            blobs[name] = (buf.getvalue(), ann)
        write_s = (time.perf_counter() - t0) / 2
        server = _Server(("127.0.0.1", 0), _Handler)
        server.blobs = {"/" + k: v[0] for k, v in blobs.items()}
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        runs = [ours(work, args.driver, server, url, blobs) for _ in range(args.repeat)]
        med = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0]}
        size2 = len(blobs["v2"][0])
        results: dict[str, float | int | str] = {
            "tree": f"{args.tree} ({nfiles} files, {len(t2)} tar bytes, {nchanged} changed in v2)",
            "driver": args.driver,
            "v2 blob bytes": size2,
            "writer seconds per blob": round(write_s, 2),
            "ours: v2 bytes fetched": int(med["v2_bytes_fetched"]),
            "ours: v2 fetched share of blob": f"{100 * med['v2_bytes_fetched'] / size2:.2f}%",
            "ours: v2 partial pull s": round(med["v2_seconds"], 3),
            "ours: v2 full import-layer s": round(med["import_v2_seconds"], 3),
            "ours: partial / full import": f"{med['v2_seconds'] / med['import_v2_seconds']:.2f}x",
            "ours: v1 pull s": round(med["v1_seconds"], 3),
        }
        if CHUNKEDTOOL.exists():
            up = [upstream(work, url, blobs) for _ in range(args.repeat)]
            umed = {k: sorted(r[k] for r in up)[len(up) // 2] for k in up[0]}
            results["upstream: v2 bytes fetched"] = int(umed["v2_bytes_fetched"])
            results["upstream: v2 fetched share of blob"] = f"{100 * umed['v2_bytes_fetched'] / size2:.2f}%"
            results["upstream: v2 partial pull s (process)"] = round(umed["v2_seconds"], 3)
        server.shutdown()
        print_results(results, args.json)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
