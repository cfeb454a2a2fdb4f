"""The reference site: it builds with warnings as errors and every reference checked, a
broken docstring reference fails that build, and the pages cover the public surface."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import containers_storage

#: each exported name and its module
HOMES = {n: m for m, names in containers_storage._HOMES.items() for n in names.split()}

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _sphinx(
    source: Path, out: Path, *extra: str, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    if not os.environ.get("CI"):  # CI installs the docs extra (scripts/test): never skip there
        for module in ("sphinx", "myst_parser"):
            pytest.importorskip(module, reason="the docs extra is not installed (pip install -e '.[docs]')")
    env = None if pythonpath is None else {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "-n", "--keep-going", "-q", "-b", "html",
         *extra, str(source), str(out)],
        capture_output=True, text=True, timeout=600, check=False, env=env,
    )


def test_site_builds_without_warnings(tmp_path: Path) -> None:
    proc = _sphinx(DOCS, tmp_path / "html")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    store_page = (tmp_path / "html" / "api" / "store.html").read_text()
    assert 'id="containers_storage.store.Store.put_layer"' in store_page
    internals = (tmp_path / "html" / "internals.html").read_text()
    assert 'id="module-containers_storage.archive.tarheader"' in internals


def _project(tmp_path: Path, docstring_ref: str) -> tuple[Path, Path]:
    """A one-page site, configured as ours, documenting a module whose docstring has
    ``docstring_ref``."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "refcheck_sample.py").write_text(
        f'"""Sample module. See {docstring_ref}."""\n\n\nclass Present:\n    """Documented."""\n'
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "index.rst").write_text("Sample\n======\n\n.. automodule:: refcheck_sample\n   :members:\n")
    return source, pkg


@pytest.mark.parametrize(
    ("ref", "fails"),
    [
        (":class:`Present`", False),
        (":class:`NoSuchClass`", True),
        (":func:`containers_storage.store.get_stroe`", True),
        (":meth:`Present.missing`", True),
    ],
)
def test_a_broken_docstring_reference_fails_the_build(tmp_path: Path, ref: str, fails: bool) -> None:
    source, pkg = _project(tmp_path, ref)
    proc = _sphinx(source, tmp_path / "html", "-c", str(DOCS), pythonpath=pkg)
    if fails:
        target = re.search(r"`(.*)`", ref)
        assert target is not None
        assert proc.returncode != 0
        assert f"reference target not found: {target.group(1)}" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr


def _page(name: str) -> str:
    return (DOCS / "api" / f"{name}.rst").read_text()


def test_every_public_store_method_is_on_the_store_page() -> None:
    from containers_storage.store import Store

    page = _page("store")
    listed = set(re.findall(r"^\.\. auto(?:method|property):: Store\.(\w+)$", page, re.M))
    public = {name for name, _ in inspect.getmembers(Store) if not name.startswith("_")}
    assert public == listed, (sorted(public - listed), sorted(listed - public))


def test_every_root_export_is_on_the_root_page() -> None:
    page = _page("index")
    missing = [name for name in containers_storage.__all__ if not re.search(rf"[.~`]{name}`", page)]
    errors_classes = {n for n in containers_storage.__all__ if HOMES[n] == ".errors"}
    assert set(missing) <= errors_classes  # the errors page lists those (automodule)
    assert ":mod:`containers_storage.errors`" in page


def test_the_pages_cover_what_the_reference_promises() -> None:
    documented = set()
    for page in (DOCS / "api").glob("*.rst"):
        documented.update(re.findall(r"^\.\. automodule:: (\S+)$", page.read_text(), re.M))
    for module in ("containers_storage", "containers_storage.store", "containers_storage.config",
                   "containers_storage.records.model", "containers_storage.errors",
                   "containers_storage.hookspecs", "containers_storage.plugins",
                   "containers_storage.drivers.api", "containers_storage.testing.conformance",
                   "containers_storage.imageio", "containers_storage.chunked",
                   "containers_storage.chunked.differ"):
        assert module in documented, module
