"""Native overlay diffs (driver-api.md §5): changes and tar streams read straight from a
layer's upper directory and its lowers, with no mount."""

from __future__ import annotations

import errno
import os
import stat
from typing import IO, TYPE_CHECKING

from containers_storage.drivers.api import ApplyDiffOpts, Change, ChangeKind, WhiteoutFormat
from containers_storage.idtools import IDMappings

from . import whiteouts

if TYPE_CHECKING:
    from containers_storage.archive.tarsplit import DirectoryFileGetter


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise


def _same_time(a: int, b: int) -> bool:
    """Equal, or same second with one side lacking nanoseconds (upstream's sameFsTime)."""
    if a == b:
        return True
    return a // 1_000_000_000 == b // 1_000_000_000 and (a % 1_000_000_000 == 0 or b % 1_000_000_000 == 0)


def whited_out(lower: str, rel: str) -> bool:
    """Whether ``rel`` or one of its ancestors is a whiteout in ``lower``."""
    parts = rel.strip("/").split("/")
    path = lower
    for part in parts:
        path = os.path.join(path, part)
        st = _lstat(path)
        if st is None:
            return False
        if whiteouts.is_whiteout(st):
            return True
    return False


def replaced_lower_dir(lowers: list[str], rel: str) -> bool:
    """An opaque upper dir replaced a lower directory when some lower (scanned nearest
    first, stopping at a whiteout) has a non-whiteout entry there."""
    for lower in lowers:
        st = _lstat(os.path.join(lower, rel.lstrip("/")))
        if st is None:
            continue
        return not whiteouts.is_whiteout(st)
    return False


def changes(upper: str, lowers: list[str]) -> list[Change]:
    """Changes of the layer whose upper dir is ``upper`` over ``lowers`` (nearest first)."""
    out: list[Change] = []
    changed_dirs: set[str] = set()

    def visit(rel: str, st: os.stat_result, full: str) -> None:
        kind: ChangeKind | None
        if whiteouts.is_whiteout(st) or (
            stat.S_ISDIR(st.st_mode) and whiteouts.is_opaque(full) and replaced_lower_dir(lowers, rel)
        ):
            kind = ChangeKind.DELETE
        else:
            kind = ChangeKind.ADD
            for lower in lowers:
                if whited_out(lower, rel):
                    break
                lst = _stat(os.path.join(lower, rel.lstrip("/")))
                if lst is None:
                    continue
                if (
                    stat.S_ISDIR(lst.st_mode)
                    and stat.S_ISDIR(st.st_mode)
                    and st.st_size == lst.st_size
                    and st.st_mode == lst.st_mode
                    and _same_time(st.st_mtime_ns, lst.st_mtime_ns)
                ):
                    kind = None
                else:
                    kind = ChangeKind.MODIFY
                break
        if kind is None:
            return
        if stat.S_ISDIR(st.st_mode):
            changed_dirs.add(rel)
        if kind in (ChangeKind.ADD, ChangeKind.DELETE):
            missing = []
            parent = os.path.dirname(rel)
            while parent != "/":
                if parent not in changed_dirs:
                    missing.append(Change(parent, ChangeKind.MODIFY))
                    changed_dirs.add(parent)
                parent = os.path.dirname(parent)
            out.extend(reversed(missing))
        out.append(Change(rel, kind))

    def walk(dir_full: str, dir_rel: str) -> None:
        with os.scandir(dir_full) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{dir_rel}/{entry.name}" if dir_rel != "/" else f"/{entry.name}"
            st = entry.stat(follow_symlinks=False)
            visit(rel, st, entry.path)
            if stat.S_ISDIR(st.st_mode):
                walk(entry.path, rel)

    walk(upper, "/")
    return out


class DiffFileGetter:
    """Opens files by tar name from a layer's ``diff`` and then its lowers' (nearest
    first), so tar-split can be replayed without mounting (upstream's overlayFileGetter).
    Each directory is searched as the applier wrote it: symlinks in a name's parent part
    resolve inside that directory (``escape -> /`` then ``escape/file`` is ``/file``
    there), never on the host."""

    def __init__(self, diff_dirs: list[str]) -> None:
        self.diff_dirs = diff_dirs
        self._roots: dict[int, DirectoryFileGetter] = {}  # opened when first searched

    def open(self, name: str) -> IO[bytes]:
        """Names that would leave the layer (absolute, ``..``) are not found; the file
        itself is never a symlink followed out of the layer."""
        parts = name.split("/")
        if name.startswith("/") or ".." in parts:
            raise FileNotFoundError(errno.ENOENT, "name outside the layer", name)
        from containers_storage.archive.tarsplit import DirectoryFileGetter

        for i, d in enumerate(self.diff_dirs):
            try:
                root = self._roots.get(i)
                if root is None:
                    root = self._roots[i] = DirectoryFileGetter(d)
                return root.open(name)
            except OSError:
                continue
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)

    def close(self) -> None:
        for root in self._roots.values():
            root.close()
        self._roots.clear()


def apply(
    target: str,
    opts: ApplyDiffOpts,
    fmt: WhiteoutFormat,
    ignore_chown_errors: bool,
    force_mask: int | None,
    userxattr: bool,
) -> None:
    """Untar ``opts.diff`` straight into the layer's upper directory: tar whiteouts become
    kernel whiteouts (or stay AUFS names for a mount program)."""
    from containers_storage.archive.apply import ApplyOptions, apply_tar

    apply_tar(
        opts.diff,
        target,
        ApplyOptions(
            whiteout_format=fmt,
            id_mappings=opts.id_mappings,
            ignore_chown_errors=ignore_chown_errors,
            force_mask=force_mask,
            opaque_xattr=whiteouts.xattr_name("opaque", userxattr),
        ),
    )


def opaque_replaces_lower(lowers: list[str], rel: str) -> bool:
    """An opaque directory is exported with ``.wh..wh..opq`` only when it hides a lower
    directory: some lower (nearest first) has it, and none whites it out before."""
    for lower in lowers:
        if whited_out(lower, rel):
            return False
        if _lstat(os.path.join(lower, rel.strip("/"))) is not None:
            return True
    return False


def diff(upper: str, lowers: list[str], id_mappings: IDMappings, userxattr: bool) -> IO[bytes]:
    """Tar of the upper directory with kernel whiteouts turned into tar whiteouts."""
    from containers_storage.archive.export import TarBuilder, as_stream, tar_tree

    builder = TarBuilder(
        id_mappings,
        overlay_whiteouts=True,
        opaque_xattr=whiteouts.xattr_name("opaque", userxattr),
        opaque_wanted=lambda name: opaque_replaces_lower(lowers, os.fsdecode(name).rstrip("/")),
    )
    return as_stream(tar_tree(upper, builder))
