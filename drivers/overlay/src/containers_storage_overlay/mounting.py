"""Kernel overlay mounts of any depth, and mounts through a FUSE mount program.

mount(2) takes all options in one page. Upstream's 26-character short links fit about
128 lowers; deeper stacks are mounted with the new mount API (one ``lowerdir+`` call per
lower, Linux 6.8+), or -- on older kernels -- from a helper process whose working
directory makes the paths short (relative to the home, then ``/proc/self/fd`` numbers),
as on-disk.md §13.4 describes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from containers_storage.drivers import mounts
from containers_storage.drivers.fsutil import libc
from containers_storage.idtools import IDMappings

#: value length limit of one fsconfig(2) string parameter
_FSCONFIG_MAX = 255

#: techniques, in the order tried
TECHNIQUES = ("mount", "fsconfig", "relative", "fd")


@dataclass(frozen=True, slots=True)
class OverlaySpec:
    """What to mount: ``lowers`` topmost first; no ``upper`` → a read-only stack."""

    lowers: Sequence[str]
    upper: str | None = None
    work: str | None = None
    #: option words (``nodev``, ``userxattr``, ``volatile``, ``metacopy=on``, ...)
    options: Sequence[str] = ()
    mount_label: str = ""

    def data(
        self, lowers: Sequence[str] | None = None, upper: str | None = None, work: str | None = None
    ) -> str:
        """Mount data as upstream builds it (paths may be replaced by shorter forms)."""
        text = "lowerdir=" + ":".join(self.lowers if lowers is None else lowers)
        if self.upper is not None:
            text += f",upperdir={upper or self.upper},workdir={work or self.work}"
        words = [w for w in self.options if w]
        if words:
            text += "," + ",".join(words)
        if self.mount_label:
            text += f',context="{self.mount_label}"'
        return text


def _escape(path: str) -> str:
    """Overlay splits lowerdir at ':' and unescapes '\\'."""
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def mount_overlay(spec: OverlaySpec, target: str, cwd_home: str, technique: str | None = None) -> str:
    """Mount ``spec`` on ``target``; returns the technique used. ``cwd_home`` is the
    directory the relative technique works from (the driver home). ``technique`` forces
    one (tests); by default the first that applies is used."""
    flags, words = mounts.parse_mount_options(spec.options)
    limit = mounts.page_size()
    if technique in (None, "mount"):
        data = OverlaySpec(
            [_escape(p) for p in spec.lowers], spec.upper, spec.work, words, spec.mount_label
        ).data()
        if len(data) < limit:
            mounts.mount("overlay", target, "overlay", flags, data)
            return "mount"
        if technique:
            raise _too_long(spec, target)
    if technique == "fsconfig" or (technique is None and lowerdir_plus_supported()):
        _mount_fsconfig(spec, words, flags, target)
        return "fsconfig"
    if technique in (None, "relative"):
        rel = [os.path.relpath(p, cwd_home) if p.startswith(cwd_home + "/") else p for p in spec.lowers]
        up = os.path.relpath(spec.upper, cwd_home) if spec.upper else None
        wk = os.path.relpath(spec.work, cwd_home) if spec.work else None
        rel_data = OverlaySpec([_escape(p) for p in rel], up, wk, words, spec.mount_label).data()
        if len(rel_data) < limit:
            mounts.mount_in_dir(
                cwd_home, "overlay", os.path.relpath(target, cwd_home), "overlay", flags, rel_data
            )
            return "relative"
        if technique:
            raise _too_long(spec, target)
    _mount_fd_numbers(spec, words, flags, target)
    return "fd"


_lowerdir_plus: bool | None = None


def lowerdir_plus_supported() -> bool:
    """Whether overlay takes lowers one by one (``lowerdir+``, Linux 6.8+); probed once."""
    global _lowerdir_plus
    if _lowerdir_plus is None:
        try:
            with mounts.FsContext("overlay") as ctx:
                ctx.set_string("lowerdir+", "/")
            _lowerdir_plus = True
        except OSError:
            _lowerdir_plus = False
    return _lowerdir_plus


def _too_long(spec: OverlaySpec, target: str) -> OSError:
    return OSError(errno.E2BIG, f"overlay mount data of {len(spec.lowers)} lowers exceeds a page", target)


def describe(spec: OverlaySpec, limit: int = 400) -> str:
    """Mount data for error messages, shortened for deep stacks."""
    data = spec.data()
    if len(data) <= limit:
        return data
    return f"{data[: limit // 2]}...{data[-limit // 2 :]} ({len(spec.lowers)} lowers)"


def _mount_fsconfig(spec: OverlaySpec, words: Sequence[str], flags: int, target: str) -> None:
    opened: list[int] = []
    try:
        with mounts.FsContext("overlay") as ctx:
            ctx.set_string("source", "overlay")
            for path in spec.lowers:
                if len(os.fsencode(path)) > _FSCONFIG_MAX:
                    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                    opened.append(fd)
                    path = f"/proc/self/fd/{fd}"
                ctx.set_string("lowerdir+", path)
            if spec.upper is not None and spec.work is not None:
                ctx.set_string("upperdir", spec.upper)
                ctx.set_string("workdir", spec.work)
            for word in words:
                ctx.set_option(word)
            if spec.mount_label:
                ctx.set_string("context", spec.mount_label)
            ctx.create()
            ctx.mount_at(target, mounts.mount_attributes(flags))
    finally:
        for fd in opened:
            os.close(fd)


def _mount_fd_numbers(spec: OverlaySpec, words: Sequence[str], flags: int, target: str) -> None:
    fds = [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in spec.lowers]
    try:
        data = OverlaySpec([str(fd) for fd in fds], spec.upper, spec.work, words, spec.mount_label).data()
        if len(data) >= mounts.page_size():
            raise _too_long(spec, target)
        mounts.mount_in_dir(
            "/proc/self/fd", "overlay", os.path.abspath(target), "overlay", flags, data, pass_fds=fds
        )
    finally:
        for fd in fds:
            os.close(fd)


# -- FUSE mount programs ---------------------------------------------------------------
def _map_option(kind: str, maps: Sequence[object]) -> str:
    from containers_storage.idtools import IDMap

    entries = [m for m in maps if isinstance(m, IDMap)]
    if len(entries) == 1 and entries[0].size == 1:
        return f"squash_to_{kind}={entries[0].host_id}"
    return f"{kind}mapping=" + ":".join(f"{m.container_id}:{m.host_id}:{m.size}" for m in entries)


def mount_program_options(data: str, maps: IDMappings | None, force_mask: bool) -> str:
    """The ``-o`` argument for a mount program (on-disk.md §13.4)."""
    if maps is not None and maps.uids:
        data += f",{_map_option('uid', maps.uids)},{_map_option('gid', maps.gids)}"
    if force_mask:
        data += ",xattr_permissions=2"
    return data


def run_mount_program(program: str, data: str, target: str, cwd: str) -> None:
    proc = subprocess.run(
        [program, "-o", data, target], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    if proc.returncode != 0:
        out = proc.stderr.decode("utf-8", "replace").strip() or "<stderr empty>"
        raise OSError(
            errno.EIO, f"using mount program {program}: {out}: exit status {proc.returncode}", target
        )


def unmount_fuse(target: str) -> None:
    """fusermount3 -u, fusermount -u, else syncfs and a lazy unmount."""
    for tool in ("fusermount3", "fusermount"):
        exe = shutil.which(tool)
        if exe and subprocess.run([exe, "-u", target], capture_output=True, check=False).returncode == 0:
            return
    with contextlib.suppress(OSError):
        fd = os.open(target, os.O_DIRECTORY)
        try:
            libc().syncfs(fd)
        finally:
            os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        mounts.unmount_if_mounted(target)
