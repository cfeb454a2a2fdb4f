"""Big-store record benchmark: 20,000 layers and 10,000 images (issue 3, "Speed").

Builds the record files directly (upstream's format, realistic field sizes), then times
in fresh processes -- as a CLI call or a podman command would run -- :

* listing all layers / all images through the Store API;
* one name change on one image (load, change, atomic save);
* the same name change done the way upstream does it: decode every record, re-encode
  every record, write the whole file (reference, same run);
* ``python -I -c pass`` (interpreter start-up, reference).

Usage: ``.venv/bin/python bench/store_bench.py [--layers N] [--images N] [--runs R]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core"))

from containers_storage.gojson import dumps, go_map


def _digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def build(root: str, n_layers: int, n_images: int) -> None:
    layers = []
    for i in range(n_layers):
        rec = {
            "id": hashlib.sha256(f"layer{i}".encode()).hexdigest(),
            "names": [f"layer-{i}"] if i % 4 == 0 else None,
            "parent": hashlib.sha256(f"layer{i - 1}".encode()).hexdigest() if i % 5 else None,
            "created": "2024-05-01T10:20:30.123456789Z",
            "compressed-diff-digest": _digest(f"c{i}"),
            "compressed-size": 12345678,
            "diff-digest": _digest(f"u{i}"),
            "diff-size": 45678901,
            "compression": 2,
            "uidset": [0],
            "gidset": [0],
        }
        layers.append({k: v for k, v in rec.items() if v is not None})
    images = []
    for i in range(n_images):
        m, cfg = _digest(f"m{i}"), _digest(f"cfg{i}")
        images.append(
            {
                "id": hashlib.sha256(f"image{i}".encode()).hexdigest(),
                "digest": m,
                "names": [f"registry.example.com/project/image-{i}"],
                "layer": layers[(2 * i + 1) % n_layers]["id"],
                "metadata": '{"created-by":"bench"}',
                "big-data-names": [f"manifest-{m}", "manifest", cfg],
                "big-data-sizes": go_map({f"manifest-{m}": 1234, "manifest": 1234, cfg: 5678}),
                "big-data-digests": go_map(
                    {
                        f"manifest-{m}": m,
                        "manifest": m,
                        cfg: cfg,
                    }
                ),
                "created": "2024-05-01T10:20:30.123456789Z",
            }
        )
    for sub, name, recs in (("vfs-layers", "layers.json", layers), ("vfs-images", "images.json", images)):
        os.makedirs(os.path.join(root, "graph", sub), 0o700, exist_ok=True)
        with open(os.path.join(root, "graph", sub, name), "w") as f:
            f.write(dumps(recs))


OPEN = """
import sys, time
t0 = time.perf_counter()
from containers_storage.config import StoreOptions
from containers_storage.store import get_store
root = sys.argv[1]
s = get_store(StoreOptions(graph_root=root + "/graph", run_root=root + "/run", driver_name="vfs"))
"""

SCRIPTS = {
    "import + open store": OPEN + "print(time.perf_counter() - t0)",
    "list layers": OPEN + "n = len(s.layers())\nprint(time.perf_counter() - t0)",
    "list images": OPEN + "n = len(s.images())\nprint(time.perf_counter() - t0)",
    "one name change": OPEN + "s.add_names(sys.argv[2], ['bench:' + str(time.time_ns())])\n"
    "print(time.perf_counter() - t0)",
}

WHOLE_FILE = """
import json, os, sys, time
t0 = time.perf_counter()
if sys.argv[2:] == ["with-layers"]:  # upstream also loads the layer store first
    with open(sys.argv[1] + "/graph/vfs-layers/layers.json", "rb") as f:
        json.loads(f.read())
path = sys.argv[1] + "/graph/vfs-images/images.json"
with open(path, "rb") as f:
    recs = json.loads(f.read())
recs[len(recs) // 2]["names"].insert(0, "bench:" + str(time.time_ns()))
data = json.dumps(recs, separators=(",", ":"), ensure_ascii=False).encode()
tmp = path + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
    f.flush()
    os.fdatasync(f.fileno())
os.rename(tmp, path)
print(time.perf_counter() - t0)
"""


#: byte-compiled modules, as an installed package has them (this checkout's environment
#: may disable writing them, which would time the compiler instead)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(script: str, root: str, runs: int, *extra: str) -> tuple[float, float]:
    """Median in-process time and median wall time of a fresh process."""
    inner, wall = [], []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", script, root, *extra], capture_output=True, text=True, check=True, env=ENV
        )
        wall.append(time.perf_counter() - t)
        inner.append(float(out.stdout.strip() or 0))
    return statistics.median(inner), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=20000)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-bench-") as root:
        build(root, a.layers, a.images)
        sizes = {
            n: os.path.getsize(os.path.join(root, "graph", d, n))
            for d, n in (("vfs-layers", "layers.json"), ("vfs-images", "images.json"))
        }
        # first open creates the directories and lock files; not timed
        subprocess.run([sys.executable, "-c", OPEN, root], check=True, env=ENV)
        print(
            f"store: {a.layers} layers ({sizes['layers.json'] / 1e6:.1f} MB), "
            f"{a.images} images ({sizes['images.json'] / 1e6:.1f} MB); median of {a.runs} fresh processes"
        )
        py = statistics.median([_wall([sys.executable, "-I", "-c", "pass"]) for _ in range(a.runs)])
        print(f"{'python -I -c pass':28s} wall {py * 1000:7.1f} ms")
        target = f"registry.example.com/project/image-{a.images // 2}"
        rows = {name: run(script, root, a.runs, target) for name, script in SCRIPTS.items()}
        rows["ref: rewrite images.json"] = run(WHOLE_FILE, root, a.runs)
        rows["ref: + decode layers.json"] = run(WHOLE_FILE, root, a.runs, "with-layers")
        for name, (inner, wall) in rows.items():
            print(f"{name:28s} wall {wall * 1000:7.1f} ms   in-process {inner * 1000:7.1f} ms")
        ours = rows["one name change"][0]
        for ref in ("ref: rewrite images.json", "ref: + decode layers.json"):
            print(f"name change / {ref}: {ours / rows[ref][0]:.2f}x (in-process)")
        ours_save, full_save = save_ms(root, target), reencode_ms(root)
        print(f"save step alone: ours {ours_save:.1f} ms vs full re-encode {full_save:.1f} ms")


def save_ms(root: str, target: str) -> float:
    """In-process time of just the images.json save after one name change."""
    code = OPEN + (
        "with s._images.writing():\n"
        "    s._images.update_names(sys.argv[2], ['x'], 'add')\n"
        "    s._images.update_names(sys.argv[2], ['x'], 'remove')\n"
        "    t = time.perf_counter()\n"
        "    s._images.update_names(sys.argv[2], ['y'], 'add')\n"
        "    print(time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, root, target], capture_output=True, text=True, check=True, env=ENV
    )
    return float(out.stdout) * 1000


def reencode_ms(root: str) -> float:
    """Encoding every image record (Go-style escaping included) and writing the file."""
    code = (
        "import json, os, sys, time\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from containers_storage.gojson import dumps, go_map\n"
        "from containers_storage.records.files import write_atomic\n"
        "recs = json.loads(open(sys.argv[1] + '/graph/vfs-images/images.json', 'rb').read())\n"
        "t = time.perf_counter()\n"
        "write_atomic(sys.argv[1] + '/graph/vfs-images/images.json', dumps(recs).encode())\n"
        "print(time.perf_counter() - t)\n"
    )
    core = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core")
    out = subprocess.run([sys.executable, "-c", code, root, core], capture_output=True, text=True, check=True)
    return float(out.stdout) * 1000


def _wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
