"""Partial-pull fixtures: tar trees, blobs from our writer (and upstream's chunkedtool
when it is built), stores with partial pulls enabled."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from containers_storage.chunked import sources, writer
from containers_storage.chunked.differ import ChunkedDiffer, DifferOutput, get_differ
from containers_storage.config import StoreOptions
from containers_storage.store import Store, get_store

CHUNKEDTOOL = Path(os.environ.get("UPSTREAM_DIR", "/var/tmp/cs-1.50.2")) / "chunkedtool"
PARTIAL = {"enable_partial_images": "true", "use_hard_links": "false"}


def make_tar(files: dict[str, bytes | str | None], mtime: int = 1_700_000_000) -> bytes:
    """A tar of ``files``: bytes are regular files, ``"->x"`` symlinks, ``"=>x"`` hard
    links, None directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str) and content.startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                tar.addfile(info)
            elif isinstance(content, str) and content.startswith("=>"):
                info.type, info.linkname = tarfile.LNKTYPE, content[2:]
                tar.addfile(info)
            else:
                assert isinstance(content, bytes)
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def rand(n: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


@pytest.fixture
def tree_v1() -> dict[str, bytes | str | None]:
    return {
        "./": None,
        "./etc/": None,
        "./etc/conf": b"key=value\n",
        "./big": rand(400_000, 1),
        "./holey": rand(5000, 2) + bytes(200_000) + rand(3000, 3),
        "./empty": b"",
        "./link": "->big",
        "./hard": "=>./etc/conf",
        "./lib/": None,
        "./lib/a.so": rand(70_000, 4),
        "./lib/b.so": rand(90_000, 5),
    }


class Blob:
    def __init__(self, path: Path, annotations: dict[str, str]) -> None:
        self.path = path
        self.annotations = annotations

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def source(self) -> sources.FileSource:
        return sources.FileSource(self.path)


@pytest.fixture
def write_blob(tmp_path: Path) -> Callable[[bytes, str], Blob]:
    counter = iter(range(1000))

    def make(tar: bytes, how: str = "ours") -> Blob:
        n = next(counter)
        out = tmp_path / f"blob{n}"
        if how == "ours":
            with open(out, "wb") as f:
                ann = writer.compress(io.BytesIO(tar), f)
            return Blob(out, ann)
        if not CHUNKEDTOOL.exists():
            pytest.skip(f"upstream's chunkedtool is not built at {CHUNKEDTOOL}")
        tar_path = tmp_path / f"in{n}.tar"
        tar_path.write_bytes(tar)
        import json

        done = subprocess.run([str(CHUNKEDTOOL), how, str(tar_path), str(out)], capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        ann = json.loads(done.stdout)
        ann.pop("diff_id", None)
        return Blob(out, ann)

    return make


def store_options(root: Path, driver: str, **pull: str) -> StoreOptions:
    return StoreOptions(
        graph_root=str(root / "graph"),
        run_root=str(root / "run"),
        driver_name=driver,
        pull_options={**PARTIAL, **pull},
    )


@pytest.fixture
def vfs_store(tmp_path: Path) -> Iterator[Store]:
    with get_store(store_options(tmp_path / "s", "vfs")) as s:
        yield s


@pytest.fixture
def overlay_root() -> Iterator[Path]:
    from containers_storage.testing.backends import disk_scratch_dir, overlay_unavailable

    reason = overlay_unavailable()
    if reason:
        pytest.skip(reason)
    with disk_scratch_dir("cs-chunked-") as d:
        yield Path(d)


def pull(
    store: Store, blob: Blob, parent: str = "", source: object | None = None
) -> tuple[str, DifferOutput]:
    """A whole partial pull as a client does it: differ, stage, create, apply."""
    src = source or blob.source()
    differ: ChunkedDiffer = get_differ(store.pull_options, blob.size, blob.annotations, src)  # type: ignore[arg-type]
    out = store.apply_diff_with_differ("", differ)
    try:
        layer = store.create_layer(parent=parent)
        store.apply_diff_from_staging_directory(layer.id, out.target, out)
    except BaseException:
        if os.path.isdir(out.target):
            store.cleanup_staging_directory(out.target)
        raise
    return layer.id, out


def tree_of(path: str) -> dict[str, tuple[int, int, int, bytes]]:
    """name -> (mode, uid, gid, content or link target) of everything below ``path``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                data = os.readlink(full).encode()
            elif os.path.isfile(full):
                data = Path(full).read_bytes()
            else:
                data = b""
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, data)
    return out
