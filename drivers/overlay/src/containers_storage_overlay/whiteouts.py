"""Kernel overlay whiteouts on disk (on-disk.md §13.3): 0/0 character devices for deleted
paths and the opaque xattr for directories hiding their lower contents."""

from __future__ import annotations

import errno
import os
import stat

#: the opaque xattr's value
OPAQUE_VALUE = b"y"


def xattr_name(what: str, userxattr: bool) -> str:
    """``trusted.overlay.<what>``, or ``user.overlay.<what>`` for ``userxattr`` mounts."""
    return f"{'user' if userxattr else 'trusted'}.overlay.{what}"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    """Opaque under either xattr namespace (a rootless store uses ``user.``)."""
    for userxattr in (False, True):
        try:
            if os.getxattr(path, xattr_name("opaque", userxattr), follow_symlinks=False) == OPAQUE_VALUE:
                return True
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return False
