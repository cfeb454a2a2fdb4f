"""The README's Python guide runs as written: its python blocks, in order, in one fresh
interpreter, against a store in a temporary directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- python-guide:start -->", "<!-- python-guide:end -->"

#: executes each block with its README line number in tracebacks
RUNNER = """
import sys
namespace = {"__name__": "__guide__"}
for line, code in BLOCKS:
    exec(compile("\\n" * (line - 1) + code, "README.md", "exec"), namespace)
print("GUIDE-OK")
"""


def guide_blocks() -> list[tuple[int, str]]:
    text = README.read_text()
    start, end = text.index(START), text.index(END)
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text[start:end], re.S | re.M):
        line = text[: start + match.start(1)].count("\n") + 1
        blocks.append((line, match.group(1)))
    return blocks


def test_guide_has_the_promised_examples() -> None:
    code = "\n".join(block for _, block in guide_blocks())
    for call in ("get_store(", "StoreOptions(", "load_store_options(", "put_layer(", "create_image(",
                 "create_container(", "mount(", "image_big_data(", "except LayerUnknown"):
        assert call in code, call


def test_guide_examples_run(tmp_path: Path) -> None:
    from containers_storage.plugins import get_plugin_host

    if get_plugin_host().driver_info("vfs") is None:
        pytest.skip("the vfs driver is not installed")
    conf = tmp_path / "storage.conf"
    conf.write_text(
        '[storage]\ndriver = "vfs"\n'
        f'graphroot = "{tmp_path}/configured/graph"\nrunroot = "{tmp_path}/configured/run"\n'
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_DRIVER", "STORAGE_OPTS")}
    env.update(CONTAINERS_STORAGE_CONF=str(conf), TMPDIR=str(temp))
    script = f"BLOCKS = {guide_blocks()!r}\n" + RUNNER
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert proc.returncode == 0 and "GUIDE-OK" in proc.stdout, proc.stdout + proc.stderr
    assert f"configured: {tmp_path}/configured/graph vfs" in proc.stdout
    assert "as expected: layer not known" in proc.stdout
    (store_root,) = temp.iterdir()  # the guide's store lived in the temporary directory only
    assert (store_root / "graph" / "vfs-images" / "images.json").exists()
