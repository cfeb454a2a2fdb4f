"""``info``: the store section as YAML and JSON, the layer tree's sizes on vfs and overlay,
and pyyaml kept off every other path."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Store, _cleanup_store, driver_installed, run_main


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _overlay_usable() -> bool:
    if os.geteuid() != 0 or not driver_installed("overlay"):
        return False
    with open("/proc/filesystems") as f:
        return "overlay" in f.read()


@pytest.fixture(params=["vfs", "overlay"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    driver = request.param
    if driver == "overlay" and not _overlay_usable():
        pytest.skip("kernel overlay mounts need root and the overlay driver")
    if not driver_installed(driver):
        pytest.skip(f"the {driver} driver is not installed")
    s = Store(str(tmp_path / "graph"), str(tmp_path / "run"), driver)
    yield s
    _cleanup_store(s)


def _ok(store: Store, *args: str, stdin: bytes = b"") -> str:
    r = store(*args, stdin=stdin)
    assert r.status == 0, r.stderr
    return r.stdout


def _populate(store: Store) -> dict[str, Any]:
    """base <- app (image "app", and a container) ; base <- tool (image "tool");
    base is also image "base". Returns the layer IDs and the diff sizes imported."""
    base_tar = _tar({"etc/os-release": b"ID=test\n" * 100, "bin/sh": os.urandom(20000)})
    app_tar = _tar({"app/run": os.urandom(7000)})
    tool_tar = _tar({"tool/x": os.urandom(3000)})
    base = _ok(store, "import-layer", stdin=base_tar).strip()
    app = _ok(store, "import-layer", base, stdin=app_tar).strip()
    tool = _ok(store, "import-layer", base, stdin=tool_tar).strip()
    _ok(store, "create-image", "-n", "base", base)
    _ok(store, "create-image", "-n", "app", app)
    _ok(store, "create-image", "-n", "tool", tool)
    container = _ok(store, "create-container", "-n", "c1", "app").split()[0]
    return {
        "base": base, "app": app, "tool": tool, "container": container,
        "sizes": {base: len(base_tar), app: len(app_tar), tool: len(tool_tar)},
    }


def _container_layer(store: Store, container: str) -> str:
    (record,) = json.loads(_ok(store, "containers", "--json"))
    assert record["id"] == container
    return str(record["layer"])


def _steady(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the filesystem's free space, which other processes change."""
    steady = json.loads(json.dumps(report))
    steady["store"].pop("graphRootUsed")
    return steady


def _walk(nodes: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str | None]]:
    stack: list[tuple[dict[str, Any], str | None]] = [(n, None) for n in nodes]
    while stack:
        node, parent = stack.pop()
        yield node, parent
        stack.extend((child, node["id"]) for child in node.get("children", []))


def test_yaml_by_default_and_json_say_the_same(store: Store) -> None:
    made = _populate(store)
    report = yaml.safe_load(_ok(store, "info"))
    assert _steady(json.loads(_ok(store, "info", "--format", "json"))) == _steady(report)
    section = report["store"]
    assert section["graphRoot"] == store.graph and section["runRoot"] == store.run
    assert section["graphDriverName"] == store.driver
    assert (section["layerStore"], section["imageStore"], section["containerStore"]) == (
        {"number": 4}, {"number": 3}, {"number": 1}
    )
    assert section["lockKind"] == "posix" and section["transientStore"] is False
    assert section["backingFilesystem"] and not section["backingFilesystem"].startswith("<unknown")
    assert isinstance(section["graphStatus"], dict)
    if store.driver == "overlay":
        assert section["graphStatus"]["Backing Filesystem"] == section["backingFilesystem"]
    assert 0 < section["graphRootUsed"] <= section["graphRootAllocated"]
    usage = section["diskUsage"]
    imported = sum(made["sizes"].values())
    assert usage["layers"] >= imported  # plus the container layer's own diff
    # base is used by three images and the container, app by its image and the container
    assert usage["shared"] == made["sizes"][made["base"]] + made["sizes"][made["app"]]
    assert usage["sharedLayers"] == 2
    assert usage["store"] > 0
    drivers = {d["name"]: d for d in report["plugins"]["drivers"]}
    assert drivers[store.driver]["status"] == "ok"
    assert {"posix", "portable"} <= {p["name"] for p in report["plugins"]["plugins"]}
    assert "layers" not in report


def test_layers_tree_gives_own_shared_and_chain_sizes(store: Store) -> None:
    made = _populate(store)
    report = json.loads(_ok(store, "info", "--layers", "--format", "json"))
    assert _steady(yaml.safe_load(_ok(store, "info", "--layers"))) == _steady(report)
    nodes = {node["id"]: (node, parent) for node, parent in _walk(report["layers"])}
    assert len(nodes) == 4
    sizes = made["sizes"]
    base, parent = nodes[made["base"]]
    assert parent is None and [n["id"] for n in report["layers"]] == [made["base"]]
    assert (base["size"], base["sharedSize"], base["chainSize"], base["users"]) == (
        sizes[made["base"]], sizes[made["base"]], sizes[made["base"]], 4
    )
    app, parent = nodes[made["app"]]
    assert parent == made["base"]
    assert (app["size"], app["sharedSize"], app["users"]) == (sizes[made["app"]], sizes[made["app"]], 2)
    assert app["chainSize"] == sizes[made["base"]] + sizes[made["app"]]
    tool, parent = nodes[made["tool"]]
    assert parent == made["base"]
    assert (tool["size"], tool["sharedSize"], tool["users"]) == (sizes[made["tool"]], 0, 1)
    container_layer = _container_layer(store, made["container"])
    top, parent = nodes[container_layer]
    assert parent == made["app"] and top["users"] == 1 and top["sharedSize"] == 0
    assert top["size"] == 0  # nothing written in the container yet
    assert "children" not in top


def test_layers_size_of_a_written_container_layer(store: Store, tmp_path: Path) -> None:
    made = _populate(store)
    container_layer = _container_layer(store, made["container"])
    root = _ok(store, "mount", made["container"]).strip()
    try:
        Path(root, "new-file").write_bytes(b"x" * 12345)
    finally:
        _ok(store, "unmount", made["container"])
    report = json.loads(_ok(store, "info", "--layers", "--format", "json"))
    top = next(node for node, _ in _walk(report["layers"]) if node["id"] == container_layer)
    assert top["size"] == 12345  # the driver's diff size: changed files' bytes, as upstream's DiffSize


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    if not driver_installed("vfs"):
        pytest.skip("the vfs driver is not installed")
    store = Store(str(tmp_path / "g"), str(tmp_path / "r"), "vfs")
    r = store("info", "--format", "xml")
    assert r.status == 1 and r.stdout == ""
    assert r.stderr == 'invalid value "xml" for flag --format: want yaml or json\n'


def test_pyyaml_is_loaded_by_info_only(tmp_path: Path) -> None:
    if not driver_installed("vfs"):
        pytest.skip("the vfs driver is not installed")
    code = (
        "import sys\n"
        "from containers_storage.cli.main import main\n"
        "prefix = ['-g', sys.argv[1], '-R', sys.argv[2], '-s', 'vfs']\n"
        "for args in (['layers'], ['images', '--json'], ['status'], ['drivers'], ['check'],\n"
        "             ['info', '--format', 'json']):\n"
        "    main(prefix + args)\n"
        "    assert 'yaml' not in sys.modules, args\n"
        "main(prefix + ['info'])\n"
        "assert 'yaml' in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "g"), str(tmp_path / "r")],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    r = run_main("-g", str(tmp_path / "g"), "-R", str(tmp_path / "r"), "-s", "vfs", "info")
    assert r.status == 0 and yaml.safe_load(r.stdout)["store"]["layerStore"] == {"number": 0}
