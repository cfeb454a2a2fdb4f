"""``import-image`` and ``export-image`` on the command line."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from containers_storage.cli.main import main

from .conftest import Roots
from .layouts import Image, Layout, oci_layout, sha256, standard_layers


def cli(roots: Roots, *args: str) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.BytesIO()
    status = main(
        ["--graph", str(roots.graph), "--run", str(roots.run), "-s", "vfs", *args], stdout=out, stderr=err
    )
    return status, out.getvalue().decode(), err.getvalue().decode()


def test_import_and_export(tmp_path: Path, roots: Roots) -> None:
    image = Image(standard_layers())
    src = oci_layout(tmp_path / "lay", image).root
    status, out, err = cli(roots, "import-image", "-n", "example.com/a:1", "-n", "b", f"oci:{src}:latest")
    assert (status, err) == (0, "")
    assert out == f"{image.id}\n\texample.com/a:1\n\tlocalhost/b:latest\n"
    status, out, _ = cli(roots, "images", "--json")
    assert json.loads(out)[0]["digest"] == sha256(image.manifest)
    status, out, err = cli(roots, "export-image", "b", f"oci:{tmp_path / 'out'}")
    assert (status, err) == (0, "")
    digest = json.loads((tmp_path / "out" / "index.json").read_text())["manifests"][0]["digest"]
    assert out == f"{digest}\n"
    status, out, err = cli(
        roots, "export-image", "--format", "docker-archive", image.id[:12], str(tmp_path / "d.tar")
    )
    assert (status, out, err) == (0, f"sha256:{image.id}\n", "")
    status, out, _ = cli(roots, "export-image", "--json", "--compress", "zstd", "b", f"oci:{tmp_path / 'z'}")
    report = json.loads(out)
    assert report["config-digest"] == sha256(image.config)
    assert len(report["layers"]) == 3


def test_import_json_and_platform(tmp_path: Path, roots: Roots) -> None:
    layers = standard_layers(("none",))
    layout = Layout(tmp_path / "multi")
    arm = Image(layers, architecture="arm64", variant="v8")
    layout.add(layout.put_index([Image(layers), arm]), "m")
    status, out, err = cli(
        roots, "import-image", "--json", "--platform", "linux/arm64", f"oci:{layout.root}:m"
    )
    assert (status, err) == (0, "")
    rec = json.loads(out)
    assert rec["id"] == arm.id and rec["names"] == ["localhost/m:latest"]


def test_errors_are_one_line(tmp_path: Path, roots: Roots) -> None:
    layers = standard_layers(("none",))
    layout = Layout(tmp_path / "multi")
    layout.add(layout.put_index([Image(layers)]), "m")
    status, out, err = cli(roots, "import-image", "--platform", "linux/ppc64le", f"oci:{layout.root}:m")
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "no image for linux/ppc64le" in err and "it has: linux/amd64" in err
    status, _, err = cli(roots, "import-image", str(tmp_path / "nothing"))
    assert status == 1 and "no such file or directory" in err
    status, _, err = cli(roots, "export-image", "missing", str(tmp_path / "out"))
    assert status == 1 and "image not known" in err
    status, out, _ = cli(roots, "import-image")
    assert status == 1 and out.startswith("import-image: more arguments required.\n")


def test_progress_bar_only_on_a_terminal(tmp_path: Path, roots: Roots) -> None:
    image = Image(standard_layers())
    src = oci_layout(tmp_path / "lay", image).root
    cmd = [
        sys.executable,
        "-m",
        "containers_storage.cli",
        "--graph",
        str(roots.graph),
        "--run",
        str(roots.run),
        "-s",
        "vfs",
        "import-image",
        str(src),
    ]
    plain = subprocess.run(cmd, capture_output=True, check=True)
    assert plain.stderr == b""
    (roots.graph / "vfs-images" / "images.json").unlink()  # import again (layers are reused)
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=slave, check=True)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert proc.stdout.startswith(image.id.encode())
    text = shown.decode()
    for i in (1, 2, 3):
        assert f"Copying blob {i}/3 sha256:" in text
    assert "already in the store" in text
