"""Paths may be os.PathLike wherever the Store takes one (typed so mypy agrees: the
snippet below is checked with mypy --strict), and compression is the Compression enum."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from containers_storage.archive.compression import Compression
from containers_storage.config import StoreOptions
from containers_storage.store import AutoUserNsOptions, DiffOptions, Store, get_store

from .conftest import options, tar_bytes

TYPED_USE = textwrap.dedent(
    """
    from pathlib import Path
    from containers_storage.archive.types import Compression
    from containers_storage.config import StoreOptions
    from containers_storage.store import AutoUserNsOptions, DiffOptions, get_store

    root = Path("/tmp/x")
    opts = StoreOptions(graph_root=root / "g", run_root=root / "r", image_store=root / "i", driver_name="vfs")
    graph: str = opts.graph_root
    with get_store(opts) as s:
        s.set_container_directory_file("c", Path("f"), b"")
        s.from_container_run_directory("c", Path("f"))
        s.cleanup_staging_directory(root / "staging")
        s.diff("", "l", DiffOptions(compression=Compression.GZIP))
    AutoUserNsOptions(passwd_file=Path("/etc/passwd"))
    """
)


def test_the_typed_use_passes_mypy_strict(tmp_path: Path) -> None:
    snippet = tmp_path / "use.py"
    snippet.write_text(TYPED_USE)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--follow-imports=silent",
            str(snippet),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={"MYPYPATH": str(root / "core"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_store_options_take_path_objects_and_read_back_str(store_root: Path) -> None:
    opts = StoreOptions(graph_root=store_root / "graph", run_root=store_root / "run", driver_name="vfs")
    assert opts.graph_root == str(store_root / "graph") and isinstance(opts.graph_root, str)
    with get_store(opts) as s:
        assert s.graph_root == str(store_root / "graph")
        assert s.create_layer().id
    with pytest.raises(TypeError, match="^graph_root must be a str or os.PathLike"):
        StoreOptions(graph_root=5)  # type: ignore[arg-type]


def test_container_files_take_path_objects(store: Store) -> None:
    ctr = store.create_container().id
    store.set_container_directory_file(ctr, Path("sub") / "f", b"one")
    store.set_container_run_directory_file(ctr, Path("g"), b"two")
    assert store.from_container_directory(ctr, Path("sub/f")) == b"one"
    assert store.from_container_run_directory(ctr, Path("g")) == b"two"
    with pytest.raises(TypeError, match="^file must be a str or os.PathLike path, not bytes"):
        store.from_container_directory(ctr, b"sub/f")  # type: ignore[arg-type]


def test_auto_userns_files_may_be_paths() -> None:
    opts = AutoUserNsOptions(passwd_file=Path("/etc/passwd"))
    assert Path(opts.passwd_file) == Path("/etc/passwd")


def test_diff_options_use_the_enum() -> None:
    assert DiffOptions(compression=Compression.GZIP).compression is Compression.GZIP
    converted = DiffOptions(compression=2)  # type: ignore[arg-type]
    assert converted.compression is Compression.GZIP
    with pytest.raises(TypeError, match="^compression must be a Compression"):
        DiffOptions(compression="gzip")  # type: ignore[arg-type]


def test_layer_records_hold_the_enum_and_keep_upstreams_numbers(store: Store, store_root: Path) -> None:
    import gzip

    layer, _ = store.put_layer(diff=gzip.compress(tar_bytes({"f": b"x"})))
    assert store.layer(layer.id).compression is Compression.GZIP
    layers_json = store_root / "graph" / "vfs-layers" / "layers.json"
    records = json.loads(layers_json.read_text())
    assert records[0]["compression"] == 2
    # a number this version does not know still loads (as upstream's does) and is kept
    records[0]["compression"] = 7
    layers_json.write_text(json.dumps(records))
    with get_store(options(store_root)) as again:
        rec = again.layer(layer.id)
        assert rec.compression == 7 and isinstance(rec.compression, Compression)
        again.set_names(layer.id, ["renamed"])
    assert json.loads(layers_json.read_text())[0]["compression"] == 7
