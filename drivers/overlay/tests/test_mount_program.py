"""A FUSE mount program (fuse-overlayfs) configured explicitly, as root: AUFS whiteouts
on disk, force_mask with the real metadata in an xattr, generic diffs through the mount."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile

import pytest

from containers_storage.drivers import mounts
from containers_storage.drivers.api import ApplyDiffOpts, ChangeKind
from containers_storage.errors import InvalidOption
from containers_storage.idtools import IDMappings

from .conftest import DriverMaker

PROGRAM = shutil.which("fuse-overlayfs")
pytestmark = pytest.mark.skipif(PROGRAM is None, reason="fuse-overlayfs is not installed")


def _tar(entries: list[tuple[str, bytes, int]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_force_mask_keeps_real_metadata_in_xattr(driver_factory: DriverMaker) -> None:
    """On disk only: fuse-overlayfs 1.10 (Debian 12) on this kernel fails readdir with
    ENODATA whenever ``xattr_permissions`` is on, even outside this driver."""
    d = driver_factory((f"overlay.mount_program={PROGRAM}", "overlay.force_mask=shared"))
    d.create("base", None)
    assert stat.S_IMODE(os.stat(os.path.join(d.home, "base", "diff")).st_mode) == 0o755
    size = d.apply_diff(
        "base", None, ApplyDiffOpts(diff=_tar([("keep", b"k", 0o600), ("gone", b"g", 0o644)]))
    )
    assert size == 2
    diff = os.path.join(d.home, "base", "diff")
    assert stat.S_IMODE(os.stat(os.path.join(diff, "keep")).st_mode) == 0o755
    assert os.getxattr(os.path.join(diff, "keep"), "user.containers.override_stat") == b"0:0:0600"
    with pytest.raises(InvalidOption, match="'force_mask' is supported only with 'mount_program'"):
        driver_factory(("overlay.force_mask=private",))


def test_mount_program_layers(driver_factory: DriverMaker) -> None:
    d = driver_factory((f"overlay.mount_program={PROGRAM}",))
    status = dict(d.status())
    assert status["Native Overlay Diff"] == "false" and status["Supports shifting"] == "true"
    with open(os.path.join(d.home, ".has-mount-program")) as f:
        assert f.read() == "true"
    d.create("base", None)
    d.apply_diff("base", None, ApplyDiffOpts(diff=_tar([("keep", b"k", 0o600), ("gone", b"g", 0o644)])))
    d.create("top", "base")
    d.apply_diff("top", "base", ApplyDiffOpts(diff=_tar([(".wh.gone", b"", 0o644), ("new", b"n", 0o640)])))
    top_diff = os.path.join(d.home, "top", "diff")
    assert os.path.isfile(os.path.join(top_diff, ".wh.gone"))  # AUFS form, no device node
    root = d.get("top")
    try:
        m = mounts.find_mount(root)
        assert m is not None and m.fstype.startswith("fuse")
        assert sorted(os.listdir(root)) == ["keep", "new"]
        assert stat.S_IMODE(os.stat(os.path.join(root, "keep")).st_mode) == 0o600
        with open(os.path.join(root, "written"), "w") as f:
            f.write("w")
    finally:
        d.put("top")
    assert not os.path.exists(root)
    assert os.path.exists(os.path.join(top_diff, "written"))
    got = sorted((c.path, int(c.kind)) for c in d.changes("top", IDMappings(), "base", IDMappings()))
    assert got == [("/gone", ChangeKind.DELETE), ("/new", ChangeKind.ADD), ("/written", ChangeKind.ADD)]
    with (
        d.diff("top", IDMappings(), "base", IDMappings()) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tf,
    ):
        assert sorted(m.name for m in tf) == [".wh.gone", "new", "written"]
    # with a mount program the size is native (upstream): the .wh. marker file counts 0
    assert d.diff_size("top", IDMappings(), "base", IDMappings()) == 2
