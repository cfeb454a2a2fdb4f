"""The reliability harness: the command run as real processes (killed at will), counters
for the summary, layer tarballs, and the checks every fault is followed by."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from containers_storage.config import StoreOptions
from containers_storage.drivers.fsutil import mountpoints_below, remove_tree
from containers_storage.store import Store, get_store
from containers_storage.testing.backends import undo_mounts

#: no command of ours may wait longer than this for a lock, however the last one died
LOCK_BOUND = 60.0


@dataclass
class Tally:
    runs: int = 0
    kills: int = 0
    #: killed commands that had finished (and so were acknowledged) before the signal
    finished_first: int = 0
    faults: int = 0
    checks: int = 0
    repairs: int = 0
    #: items repair removed, all touched by the interrupted command
    repaired_items: int = 0
    lost: int = 0
    #: mounts a kill left uncounted, taken down by the next mount/unmount of the container
    adopted_mounts: int = 0
    max_lock_wait: float = 0.0

    def add(self, other: Tally) -> None:
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            setattr(self, f.name, max(mine, theirs) if f.name == "max_lock_wait" else mine + theirs)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        return (
            f"runs {self.runs}  kills {self.kills} (finished first {self.finished_first})  "
            f"faults {self.faults}  checks {self.checks}  repairs {self.repairs} "
            f"(items {self.repaired_items})  adopted mounts {self.adopted_mounts}  lost {self.lost}  "
            f"max lock wait {self.max_lock_wait:.2f}s"
        )


@dataclass(frozen=True)
class Cli:
    """A store's roots and driver, and the command that works on it, run as
    ``python -m containers_storage.cli`` (never a name looked up on PATH)."""

    graph: str
    run: str
    driver: str

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable, "-m", "containers_storage.cli",
            "--graph", self.graph, "--run", self.run, "--storage-driver", self.driver, *args,
        ]  # fmt: skip

    def __call__(
        self, *args: str, stdin: bytes = b"", timeout: float = LOCK_BOUND
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(
                self.argv(*args), input=stdin, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{' '.join(args)} hung for {timeout}s (a lock or mount stuck?)") from exc

    def ok(self, *args: str, stdin: bytes = b"") -> str:
        proc = self(*args, stdin=stdin)
        assert proc.returncode == 0, f"{' '.join(args)}: {proc.stderr.decode(errors='replace')}"
        return proc.stdout.decode()

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )

    def options(self) -> StoreOptions:
        return StoreOptions(graph_root=self.graph, run_root=self.run, driver_name=self.driver)

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        s = get_store(self.options())
        try:
            yield s
        finally:
            s.close()


def release_store(cli: Cli) -> None:
    """Unmount what the store still counts and whatever is left below its roots, then
    remove them (btrfs subvolumes and ZFS datasets included, through the driver)."""
    with contextlib.suppress(Exception):
        cli("shutdown", "-f", timeout=120)
    with contextlib.suppress(Exception), cli.store() as s:
        s.wipe()
    for root in (cli.graph, cli.run):
        undo_mounts(root)
        with contextlib.suppress(OSError):
            remove_tree(root)


def tarball(files: dict[str, bytes], compress: bool = False) -> bytes:
    """A layer diff: ``name/`` entries are directories, ``name -> target`` symlinks,
    ``name => target`` hard links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            if " -> " in name or " => " in name:
                link = " -> " if " -> " in name else " => "
                path, target = name.split(link)
                info = tarfile.TarInfo(path)
                info.type = tarfile.SYMTYPE if link == " -> " else tarfile.LNKTYPE
                info.linkname, info.mtime, info.mode = target, 1_700_000_000, 0o777  # as on disk
                tf.addfile(info)
                continue
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1_700_000_000
            if name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode, info.uid, info.gid = len(data), 0o644, len(name) % 3, 0
                tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=1, mtime=0) if compress else raw


def sample_diffs(tag: str) -> dict[str, bytes]:
    """Diffs of several sizes: small ones finish between kills, the big one is usually
    killed while being applied."""
    small = tarball({"etc/": b"", f"etc/{tag}": tag.encode() * 10, "etc/link -> " + tag: b""})
    mixed = tarball(
        {
            "usr/": b"",
            "usr/lib/": b"",
            **{f"usr/lib/f{i:03}": os.urandom(64) * (i % 40 + 1) for i in range(200)},
            "usr/lib/hard => usr/lib/f001": b"",
            "usr/bin -> lib": b"",
        },
        compress=True,
    )
    big = tarball({"data/": b"", **{f"data/blob{i}": os.urandom(1 << 18) for i in range(24)}})
    return {"small": small, "mixed": mixed, "big": big}


# -- checks after a fault -------------------------------------------------------------


@dataclass
class Snapshot:
    """What a loaded store holds, as the harness compares it."""

    layers: dict[str, tuple[tuple[str, ...], str, str]] = field(default_factory=dict)  # names, parent, diff
    images: dict[str, tuple[tuple[str, ...], str, dict[str, str]]] = field(default_factory=dict)
    containers: dict[str, tuple[tuple[str, ...], str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, s: Store) -> Snapshot:
        snap = cls()
        for layer in s.layers():
            snap.layers[layer.id] = (tuple(layer.names), layer.parent, layer.uncompressed_digest)
        for img in s.images():
            snap.images[img.id] = (tuple(img.names), img.top_layer, dict(img.big_data_digests))
        for ctr in s.containers():
            snap.containers[ctr.id] = (tuple(ctr.names), ctr.image_id, ctr.layer_id)
        return snap

    def all_ids(self) -> set[str]:
        return set(self.layers) | set(self.images) | set(self.containers)


def names_unique(snap: Snapshot) -> list[str]:
    """Names held twice within one kind of object (must be none)."""
    dup: list[str] = []
    for kind in (snap.layers, snap.images, snap.containers):
        counts = Counter(n for rec in kind.values() for n in rec[0])
        dup += [n for n, c in counts.items() if c > 1]
    return dup


def check_report(cli: Cli, quick: bool) -> tuple[int, dict[str, list[str]], str]:
    """``check --json`` (shuts the store down with force, as upstream): exit status, the
    damaged items by section, and what it said on stderr."""
    proc = cli("check", "--json", *(["-q"] if quick else []), timeout=600)
    out = proc.stdout.decode()
    report = json.loads(out[out.index("{") :]) if "{" in out else {}
    return (
        proc.returncode,
        {k: sorted(v or {}) for k, v in report.items()},
        proc.stderr.decode(errors="replace"),
    )


def stuck_locks(cli: Cli) -> list[str]:
    """Lock files below the roots that another process still holds (must be none once
    every command has ended)."""
    held = []
    for root in (cli.graph, cli.run):
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if not name.endswith(".lock"):
                    continue
                path = os.path.join(dirpath, name)
                fd = os.open(path, os.O_RDWR)
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    held.append(path)
                finally:
                    os.close(fd)  # drops the probe lock
    return held


def stray_mounts(cli: Cli) -> list[str]:
    """Mounts left below the roots once the store is shut down (must be none)."""
    return mountpoints_below(cli.graph) + mountpoints_below(cli.run)


def json_records_intact(cli: Cli) -> list[str]:
    """Record files that do not parse (a truncated write would show here)."""
    bad = []
    for root in (cli.graph, cli.run):
        for dirpath, _dirs, files in os.walk(root):
            if dirpath.count(os.sep) - root.count(os.sep) > 1:
                continue  # records live in <driver>-layers/ etc., not inside layers
            for name in files:
                if name.endswith(".json") and not name.startswith("."):
                    path = os.path.join(dirpath, name)
                    with open(path, "rb") as f:
                        data = f.read()
                    if data.strip():
                        try:
                            json.loads(data)
                        except ValueError:
                            bad.append(path)
    return bad
