"""The conformance kit itself: its failures say the rule and the value, it builds drivers
on temporary roots by itself, passes options, and the README's snippet runs as written.
Kits are run in a pytest process of their own on a directory holding only the test file,
as a driver author's repository would."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from containers_storage.testing import conformance, store_scenarios

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "examples" / "tiny-driver"


def run_kit(
    tmp_path: Path, source: str, *args: str, pythonpath: str = ""
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_kit_run.py").write_text(textwrap.dedent(source))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath, "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "test_kit_run.py", "-q", "-p", "no:cacheprovider", "-rfE", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("module", [conformance, store_scenarios], ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_assertion_states_its_rule(module: object) -> None:
    """Each ``assert`` has a message, and nothing uses ``pytest.raises`` (whose failure is
    a bare "DID NOT RAISE"): :func:`expect_raises` says the rule instead."""
    path = Path(module.__file__)  # type: ignore[attr-defined]
    tree = ast.parse(path.read_text())
    bare = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert) and node.msg is None]
    assert not bare, f"asserts without a message in {path.name} at lines {bare}"
    raises = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "raises"
        and getattr(node.value, "id", "") == "pytest"
    ]
    assert not raises, f"pytest.raises in {path.name} at lines {raises}"


SLOPPY = """
    import os
    from containers_storage.testing.conformance import DriverConformance
    from containers_storage_vfs.driver import VFSDriver

    class SloppyDriver(VFSDriver):
        name = "vfs"

        def create(self, id, parent, opts=None):
            super().create(id, parent, opts)
            os.chmod(self._path(id), 0o755)

    class TestSloppy(DriverConformance):
        driver_class = SloppyDriver
"""


def test_a_failure_says_the_rule_and_the_value(tmp_path: Path) -> None:
    r = run_kit(tmp_path, SLOPPY, "-k", "test_create_empty or test_create_base")
    assert r.returncode == 1, r.stdout + r.stderr
    assert (
        "AssertionError: a new base layer's root must be a directory of mode 0555, "
        "got a directory of mode 0755"
        in r.stdout
    )
    assert "AssertionError: layer Base1's root must have mode 0555, got 0755" in r.stdout


def test_the_kit_builds_drivers_on_temporary_roots_and_passes_options(tmp_path: Path) -> None:
    source = """
        from containers_storage.testing.conformance import DriverConformance
        from containers_storage_vfs.driver import VFSDriver

        class TestVfs(DriverConformance):
            driver_class = VFSDriver
            driver_options = ("vfs.ignore_chown_errors=false",)
    """
    r = run_kit(tmp_path, source, "-k", "option or store or probe or status or create_base")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"\b8 passed\b", r.stdout), r.stdout


def test_a_driver_that_ignores_unknown_options_fails_saying_so(tmp_path: Path) -> None:
    source = """
        from containers_storage.testing.conformance import DriverConformance
        from containers_storage_vfs.driver import VFSDriver

        class Lenient(VFSDriver):
            name = "lenient"

            def __init__(self, config):
                from dataclasses import replace
                super().__init__(replace(config, options=()))
                self.config = config

        class TestLenient(DriverConformance):
            driver_class = Lenient
    """
    r = run_kit(tmp_path, source, "-k", "test_unknown_option_is_refused")
    assert r.returncode == 1
    assert (
        "Failed: a driver built with the unknown option 'lenient.kit_no_such_option=1' must refuse it, "
        "but it returned None"
    ) in r.stdout


def test_without_driver_class_or_factory_the_kit_says_what_to_do(tmp_path: Path) -> None:
    source = """
        from containers_storage.testing.conformance import DriverConformance

        class TestNothing(DriverConformance):
            pass
    """
    r = run_kit(tmp_path, source, "-k", "test_create_empty")
    assert r.returncode == 1
    assert (
        "TestNothing must set driver_class (the Driver subclass under test) or a driver_factory" in r.stdout
    )


def readme_kit_snippet() -> str:
    readme = (REPO / "README.md").read_text()
    blocks = [textwrap.dedent(b) for b in re.findall(r"^ *```python\n(.*?)^ *```", readme, re.S | re.M)]
    snippets = [b for b in blocks if b.startswith("# tests/test_conformance.py\n")]
    assert len(snippets) == 1, "the README has one kit snippet, headed '# tests/test_conformance.py'"
    return snippets[0]


def test_readme_kit_snippet_is_the_example_drivers_test_file() -> None:
    snippet = readme_kit_snippet().split("\n", 1)[1]
    assert snippet == (TINY / "tests" / "test_conformance.py").read_text()


def test_readme_kit_snippet_runs_as_written(tmp_path: Path) -> None:
    r = run_kit(tmp_path, readme_kit_snippet(), pythonpath=str(TINY / "src"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert re.search(r"\b3\d passed\b", r.stdout), r.stdout
