"""``check`` right after importing each valid layer of the corpus
(containers_storage.testing.validlayers), ours and upstream's tool side by side on the
same input. Ours must be clean on every case, on vfs and (as root) overlay; upstream's
answer is recorded in ``UPSTREAM_NOT_CLEAN`` and compared when its tool is built (the
column skips otherwise). Each case where upstream is not clean is one where we do better:
upstream's replay of the diffs does not follow symlinks the way its applier does, gives a
directory without an entry of its own its child's attributes, compares a symlink's
permission bits, and its tar-split cannot reproduce sparse files."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from containers_storage.store import CheckOptions, get_store
from containers_storage.testing.validlayers import CASES, needs

from .conftest import options, overlay_available, release_mounts

UPSTREAM = Path(os.environ.get("UPSTREAM_DIR", "/var/tmp/cs-1.50.2")) / "containers-storage"

#: upstream v1.50.2's answer on vfs where it is not clean: "flagged" (check reports the
#: layer) or "refused" (import fails)
UPSTREAM_NOT_CLEAN = {
    "whiteout-only-child": "flagged",  # the parent directory's mtime
    "opaque-only-child": "flagged",  # the marker's mode taken for the directory
    "sparse-gnu": "refused",  # unhandled tar header type 83
    "sparse-gnu-extended-map": "refused",
    "sparse-pax-0.0": "flagged",  # the diff replays the logical content
    "sparse-pax-0.1": "flagged",
    "sparse-pax-1.0": "flagged",
    "symlink-modes-as-written": "flagged",  # 0644 in the archive, 0777 on disk
    "symlink-escape-then-file": "flagged",  # its diff opens the path on the host
    "symlink-escape-then-directory": "flagged",
    "symlink-relative-escape": "flagged",
    "symlink-to-a-directory-of-the-parent": "flagged",
    "symlink-chain": "flagged",
    "files-without-parent-directories": "flagged",  # parents take the file's attributes
    "file-replaced-by-symlink": "flagged",  # the parent directory's mtime
}
NO_OVERLAY = pytest.mark.skipif(not overlay_available(), reason="needs root and kernel overlay")
DRIVERS = ["vfs", pytest.param("overlay", marks=NO_OVERLAY)]


def _skip_unbuildable(case: str) -> None:
    reason = needs(case)
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("case", CASES)
def test_ours_checks_a_fresh_import_clean(tmp_path: Path, case: str, driver: str) -> None:
    _skip_unbuildable(case)
    s = get_store(options(tmp_path / "s", driver))
    try:
        parent = ""
        for blob in CASES[case]():
            parent = s.put_layer(parent=parent, diff=io.BytesIO(blob))[0].id
        image = s.create_image(layer=parent)
        report = s.check(CheckOptions.everything())
        assert not report.layers and not report.images, [str(e) for e in report.images.get(image.id, ())]
        assert not s.repair(report)
        assert s.exists(image.id)
    finally:
        release_mounts(s)
        s.shutdown(force=True)
        s.close()


def _upstream(root: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(UPSTREAM), "--graph", str(root / "graph"), "--run", str(root / "run"), "-s", "vfs", *args],
        input=stdin, capture_output=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.skipif(not os.access(UPSTREAM, os.X_OK), reason=f"upstream's tool is not built at {UPSTREAM}")
@pytest.mark.parametrize("case", CASES)
def test_upstream_answers_as_recorded(tmp_path: Path, case: str) -> None:
    _skip_unbuildable(case)
    parent: list[str] = []
    answer = "clean"
    for blob in CASES[case]():
        proc = _upstream(tmp_path, "import-layer", *parent, stdin=blob)
        if proc.returncode:
            answer = "refused"
            break
        parent = [proc.stdout.decode().split()[0]]
    if answer == "clean":
        assert _upstream(tmp_path, "create-image", *parent).returncode == 0
        answer = "clean" if _upstream(tmp_path, "check").returncode == 0 else "flagged"
    _upstream(tmp_path, "shutdown", "-f")
    assert answer == UPSTREAM_NOT_CLEAN.get(case, "clean")


def test_an_empty_import_survives_check_and_repair_on_the_command_line(tmp_path: Path) -> None:
    """Issue 20's report: ``import-layer`` of an empty stream, ``create-image``, then
    ``check`` flagged both and ``check -r`` deleted them."""
    from ..cli.conftest import run_main

    prefix = ["--graph", str(tmp_path / "g"), "--run", str(tmp_path / "r"), "-s", "vfs"]
    res = run_main(*prefix, "import-layer", stdin=b"")
    assert res.status == 0, res.stderr
    layer = res.stdout.split()[0]
    image = run_main(*prefix, "create-image", layer).stdout.split()[0]
    res = run_main(*prefix, "check")
    assert res.status == 0, res.stdout
    assert run_main(*prefix, "check", "-r").status == 0
    assert run_main(*prefix, "exists", "-l", layer).status == 0
    assert run_main(*prefix, "exists", "-i", image).status == 0
