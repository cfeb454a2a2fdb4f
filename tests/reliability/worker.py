"""One process of the concurrency run (``python worker.py ROLE GRAPH RUN DRIVER ID SECONDS
SEED LOG``): a writer mixing every operation on objects of its own (plus a name all writers
fight over), a CLI writer doing the same through the command, or a reader. Each
acknowledged operation is appended to LOG as one JSON line, flushed before the next one
starts, with how long it took (lock waits included)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import time
from collections import Counter
from typing import Any

from containers_storage.config import StoreOptions
from containers_storage.store import Store, get_store

HOT = "hot-name"


def diff(tag: str, n: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        top = tarfile.TarInfo(tag)
        top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tf.addfile(top)
        for i in range(n):
            data = f"{tag}-{i}\n".encode() * 50
            info = tarfile.TarInfo(f"{tag}/f{i}")
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Writer:
    def __init__(self, s: Store | None, wid: str, rng: random.Random, log: Any, cli: list[str]) -> None:
        self.s, self.wid, self.rng, self.log, self.cli = s, wid, rng, log, cli
        self.n = 0
        self.layers: list[str] = []  # plain layers of ours
        self.empty: list[str] = []  # created empty, waiting for a diff
        self.images: dict[str, str] = {}  # image -> top layer
        self.containers: dict[str, str] = {}  # container -> image
        self.mounted: list[str] = []

    def note(self, op: str, took: float, **facts: Any) -> None:
        self.log.write(json.dumps({"op": op, "took": took, **facts}) + "\n")
        self.log.flush()

    def name(self, kind: str) -> str:
        self.n += 1
        return f"{self.wid}-{kind}{self.n}"

    def step(self) -> None:
        ops = ["import", "create-image", "create-container", "set-names", "set-data", "mount", "unmount",
               "create-layer", "applydiff", "delete-image", "delete-container"]  # fmt: skip
        op = self.rng.choice(ops)
        start = time.monotonic()
        facts = getattr(self, "op_" + op.replace("-", "_"))()
        if facts is not None:
            self.note(op, time.monotonic() - start, **facts)

    def run_cli(self, *args: str, data: bytes = b"") -> str:
        proc = subprocess.run([*self.cli, *args], input=data, capture_output=True, check=False, timeout=300)
        if proc.returncode != 0:
            # the tool prints "error initializing: ..." on stdout (as upstream), the rest on stderr
            out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
            raise RuntimeError(f"{args}: exit {proc.returncode}: {err}{out[-2000:]}")
        return proc.stdout.decode()

    # every operation: the API, or the command for a CLI writer
    def op_import(self) -> dict[str, Any]:
        name, parent = self.name("l"), self.rng.choice([*self.layers, ""])
        blob = diff(name, self.rng.randint(1, 30))
        if self.s:
            lid = self.s.put_layer(names=[name], parent=parent, diff=io.BytesIO(blob))[0].id
        else:
            lid = json.loads(self.run_cli("import-layer", "--json", "-n", name, *([parent] if parent else []),
                                          data=blob))["id"]  # fmt: skip
        self.layers.append(lid)
        return {"id": lid, "kind": "layer", "names": [name]}

    def op_create_layer(self) -> dict[str, Any] | None:
        if len(self.empty) > 2:
            return None
        name = self.name("e")
        if self.s:
            lid = self.s.create_layer(names=[name]).id
        else:
            lid = json.loads(self.run_cli("create-layer", "--json", "-n", name))["id"]
        self.empty.append(lid)
        return {"id": lid, "kind": "layer", "names": [name]}

    def op_applydiff(self) -> dict[str, Any] | None:
        if not self.empty:
            return None
        lid = self.empty.pop()
        blob = diff(f"d{lid[:8]}", 5)
        if self.s:
            self.s.apply_diff(lid, io.BytesIO(blob))
        else:
            self.run_cli("applydiff", lid, data=blob)
        self.layers.append(lid)
        return {"id": lid, "diff": "sha256:" + hashlib.sha256(blob).hexdigest()}

    def op_create_image(self) -> dict[str, Any] | None:
        if not self.layers or len(self.images) > 6:
            return None
        name, top = self.name("i"), self.rng.choice(self.layers)
        if self.s:
            iid = self.s.create_image(names=[name], layer=top).id
        else:
            iid = json.loads(self.run_cli("create-image", "--json", "-n", name, top))["id"]
        self.images[iid] = top
        return {"id": iid, "kind": "image", "names": [name], "top": top}

    def op_create_container(self) -> dict[str, Any] | None:
        if not self.images or len(self.containers) > 5:
            return None
        name, image = self.name("c"), self.rng.choice(sorted(self.images))
        if self.s:
            cid = self.s.create_container(names=[name], image=image).id
        else:
            cid = json.loads(self.run_cli("create-container", "--json", "-n", name, image))["id"]
        self.containers[cid] = image
        return {"id": cid, "kind": "container", "names": [name], "image": image}

    def op_set_names(self) -> dict[str, Any] | None:
        if not self.images:
            return None
        image = self.rng.choice(sorted(self.images))
        names = [self.name("n"), *([HOT] if self.rng.random() < 0.5 else [])]
        if self.s:
            self.s.set_names(image, names)
        else:
            self.run_cli("set-names", *(a for n in names for a in ("-n", n)), image)
        return {"id": image, "names": names}

    def op_set_data(self) -> dict[str, Any] | None:
        if not self.images:
            return None
        image, key = self.rng.choice(sorted(self.images)), self.rng.choice(["manifest", "config", "extra"])
        data = os.urandom(self.rng.choice([10, 4000, 100_000]))
        if self.s:
            self.s.set_image_big_data(image, key, data)
        else:
            self.run_cli("set-image-data", image, key, data=data)
        return {"id": image, "key": key, "digest": "sha256:" + hashlib.sha256(data).hexdigest()}

    def op_mount(self) -> dict[str, Any] | None:
        if not self.containers:
            return None
        cid = self.rng.choice(sorted(self.containers))
        if self.s:
            self.s.mount(cid)
        else:
            self.run_cli("mount", cid)
        self.mounted.append(cid)
        return {"id": cid}

    def op_unmount(self) -> dict[str, Any] | None:
        if not self.mounted:
            return None
        cid = self.mounted.pop()
        if self.s:
            self.s.unmount(cid)
        else:
            self.run_cli("unmount", cid)
        return {"id": cid}

    def op_delete_container(self) -> dict[str, Any] | None:
        idle = sorted(set(self.containers) - set(self.mounted))
        if not idle:
            return None
        cid = self.rng.choice(idle)
        if self.s:
            self.s.delete_container(cid)
        else:
            self.run_cli("delete-container", cid)
        del self.containers[cid]
        return {"id": cid, "deleted": True}

    def op_delete_image(self) -> dict[str, Any] | None:
        lonely = sorted(set(self.images) - set(self.containers.values()))
        if not lonely:
            return None
        iid = self.rng.choice(lonely)
        if self.s:
            gone = self.s.delete_image(iid)
        else:
            gone = json.loads(self.run_cli("delete-image", "--json", iid))[iid].get("deleted-layers", [])
        del self.images[iid]
        # layers the deletion took along are no longer ours to use
        self.layers = [x for x in self.layers if x not in gone]
        return {"id": iid, "deleted": True, "layers": gone}

    def finish(self) -> None:
        while self.mounted:
            self.op_unmount()


def reader(s: Store, log: Any, deadline: float) -> None:
    while time.monotonic() < deadline:
        start = time.monotonic()
        layers, images, containers = s.layers(), s.images(), s.containers()
        took = time.monotonic() - start
        dup = [
            n
            for kind in (layers, images, containers)
            for n, c in Counter(n for r in kind for n in r.names).items()
            if c > 1
        ]
        log.write(json.dumps({"op": "read", "took": took, "dup": dup, "images": len(images)}) + "\n")
        log.flush()
        time.sleep(0.02)


def main() -> None:
    role, graph, run, driver, wid, seconds, seed, logpath = sys.argv[1:9]
    deadline = time.monotonic() + float(seconds)
    rng = random.Random(f"{seed}:{wid}")
    opts = StoreOptions(graph_root=graph, run_root=run, driver_name=driver)
    cli = [
        sys.executable,
        "-m",
        "containers_storage.cli",
        "--graph",
        graph,
        "--run",
        run,
        "--storage-driver",
        driver,
    ]
    with open(logpath, "a") as log:
        if role == "cli":
            w = Writer(None, wid, rng, log, cli)
            while time.monotonic() < deadline:
                w.step()
            w.finish()
            return
        with get_store(opts) as s:
            if role == "reader":
                reader(s, log, deadline)
                return
            w = Writer(s, wid, rng, log, cli)
            while time.monotonic() < deadline:
                w.step()
            w.finish()


if __name__ == "__main__":
    main()
