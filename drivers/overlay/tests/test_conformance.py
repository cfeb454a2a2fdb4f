"""The core's conformance kit (driver-api.md §7) on real kernel overlay mounts."""

from __future__ import annotations

import os
import stat

from containers_storage.drivers.api import Driver
from containers_storage.testing.conformance import DriverConformance, apply_whiteout_diff


class TestOverlayConformance(DriverConformance):
    deep_layers = 200
    diff_apply_files = 10
    children_share_parent = True
    opaque_dir_is_delete = True

    def test_whiteouts_are_kernel_whiteouts_on_disk(self, driver: Driver) -> None:
        """Tar whiteouts become kernel whiteouts in ``diff``: a 0/0 character device for a
        deleted file and the opaque xattr on a directory that hides the lower one."""
        apply_whiteout_diff(driver, "wbase", "wtop")
        diff = os.path.join(driver.home, "wtop", "diff")
        st = os.lstat(os.path.join(diff, "gone"))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.getxattr(os.path.join(diff, "dir"), "trusted.overlay.opaque") == b"y"
