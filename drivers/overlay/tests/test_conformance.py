"""The core's conformance kit (driver-api.md §7) on real kernel overlay mounts."""

from __future__ import annotations

import io
import os
import stat
import tarfile

from containers_storage.drivers.api import ApplyDiffOpts, ChangeKind, Driver
from containers_storage.idtools import IDMappings
from containers_storage.testing.conformance import DriverConformance, sorted_changes


class TestOverlayConformance(DriverConformance):
    deep_layers = 200
    diff_apply_files = 10
    children_share_parent = True
    opaque_dir_is_delete = True

    def test_whiteouts_are_kernel_whiteouts_on_disk(self, driver: Driver) -> None:
        """Tar whiteouts become kernel whiteouts in ``diff`` and the native changes report
        them as upstream's overlay does: an opaque directory that replaced a lower one is
        a Delete plus Adds of its new contents (the fixture store shows the same)."""
        driver.create("wbase", None)
        root = driver.get("wbase")
        try:
            for rel in ("gone", "dir/old", "dir/keep-not", "other/x"):
                os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
                with open(os.path.join(root, rel), "w") as fh:
                    fh.write(rel)
        finally:
            driver.put("wbase")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for name, data in ((".wh.gone", b""), ("dir/.wh..wh..opq", b""), ("dir/new", b"new")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        buf.seek(0)
        driver.create("wtop", "wbase")
        driver.apply_diff("wtop", "wbase", ApplyDiffOpts(diff=buf))
        diff = os.path.join(driver.home, "wtop", "diff")
        st = os.lstat(os.path.join(diff, "gone"))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.getxattr(os.path.join(diff, "dir"), "trusted.overlay.opaque") == b"y"
        root = driver.get("wtop")
        try:
            assert not os.path.exists(os.path.join(root, "gone"))
            assert sorted(os.listdir(os.path.join(root, "dir"))) == ["new"]
            assert os.path.exists(os.path.join(root, "other", "x"))
        finally:
            driver.put("wtop")
        want = [("/gone", ChangeKind.DELETE), ("/dir", ChangeKind.DELETE), ("/dir/new", ChangeKind.ADD)]
        got = sorted_changes(driver.changes("wtop", IDMappings(), "wbase", IDMappings()))
        assert got == sorted(want)
