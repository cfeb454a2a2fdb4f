"""The storage.conf reader without tomllib: what it accepts reads as tomllib reads it, and
whatever tomllib refuses it leaves to tomllib (generated files, never seed-pinned)."""

from __future__ import annotations

import random
import subprocess
import tomllib
from pathlib import Path

from containers_storage.simpletoml import loads

UPSTREAM_CONF = """\
# This file is the configuration file for all tools
[storage]

# Default Storage Driver, Must be set for proper operation.
driver = "overlay"

runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
# imagestore = ""

[storage.options]
additionalimagestores = [
]

pull_options = {enable_partial_images = "false", use_hard_links = "false", ostree_repos=""}

[storage.options.overlay]
mountopt = "nodev"

[storage.options.thinpool]
"""

PIECES = [
    "[storage]\n", "[storage.options]\n", "[storage.options.overlay]\n", "[ storage . options ]\n",
    "[storage]\n", "[[storage]]\n", "[storage.options.thinpool]\n", "['q']\n",
    'driver = "overlay"\n', "driver = 'vfs'\n", 'driver = "a\\"b"\n', 'driver="x" # c\n',
    'runroot = "/run/x"\n', "size = 10\n", "size = -0\n", "size = 012\n", "size = 1_0\n",
    "ok = true\n", "ok = false\n", "ok = True\n", "f = 1.5\n", "d = 1979-05-27\n",
    "a = [\n]\n", 'a = ["x", "y",]\n', "a = [ 1, 2 ]\n", 'a = [\n  "x", # c\n  "y"\n]\n',
    "a = [[1]]\n", 'p = {x = "1", y = true}\n', "p = {}\n", "p = {x = 1,}\n", 'p = {x = {y = 1}}\n',
    "# comment\n", "\n", "   \n", "k.j = 1\n", '"q" = 1\n', "k = \"\"\"m\"\"\"\n", "k = 'a\\b'\n",
    "k = \n", "= 1\n", "k = 1 2\n", "k = \"x\ty\"\n", "k = \"\u00e9\"\n", "x = 1\r\n", "x = \"\x01\"\n",
    "mountopt = \"nodev,metacopy=on\"\n", "k = -5\n", "k = +5\n", "tab\t=\t1\n",
]


def check(text: str) -> bool:
    """Whether the reader took ``text`` (else tomllib reads it)."""
    got = loads(text)
    try:
        want = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        assert got is None, text
        return False
    assert got is None or got == want, text
    return got is not None


def test_upstream_storage_conf_is_read_without_tomllib() -> None:
    assert loads(UPSTREAM_CONF) == tomllib.loads(UPSTREAM_CONF)


def test_generated_files_read_as_tomllib_reads_them() -> None:
    files = ("".join(random.choice(PIECES) for _ in range(random.randint(0, 8))) for _ in range(20000))
    taken = sum(check(text) for text in files)
    assert taken > 1000  # the reader is really exercised, not only its fallback


def test_mutated_files_read_as_tomllib_reads_them() -> None:
    for _ in range(20000):
        chars = list(UPSTREAM_CONF)
        for _ in range(random.randint(1, 3)):
            i = random.randrange(len(chars))
            op = random.random()
            if op < 0.4:
                del chars[i]
            elif op < 0.7:
                chars.insert(i, random.choice('[]{}=,."\'#\n \t1ax\\'))
            else:
                chars[i] = random.choice('[]{}=,."\'#\n \t1ax\\')
        check("".join(chars))


def test_a_storage_conf_keeps_tomllib_off_the_start_up_path(tmp_path: Path) -> None:
    conf = tmp_path / "storage.conf"
    text = UPSTREAM_CONF.replace("overlay", "vfs").replace("/run/containers/storage", str(tmp_path / "r"))
    conf.write_text(text.replace("/var/lib/containers/storage", str(tmp_path / "g")))
    code = (
        "import sys\nfrom containers_storage.cli.main import main\n"
        "sys.argv = ['containers-storage', 'layers']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    )
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTAINERS_", "STORAGE_"))}
    env["CONTAINERS_STORAGE_CONF"] = str(conf)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    modules = set(out.stdout.split("MODULES", 1)[1].split())
    assert not modules & {"tomllib", "re", "typing", "datetime"}, out.stderr
