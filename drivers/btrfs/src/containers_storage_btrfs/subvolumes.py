"""Removing a subvolume together with the subvolumes nested in it (a container may create
its own, and the kernel refuses to destroy a subvolume that still holds one)."""

from __future__ import annotations

import errno
import logging
import os

from .ioctl import (
    child_subvolumes,
    destroy_qgroup,
    destroy_subvolume,
    is_subvolume,
    open_dir,
    subvolume_id,
)

log = logging.getLogger(__name__)


def nested_subvolumes(path: str) -> list[str]:
    """Subvolumes below ``path`` (not ``path`` itself), deepest first.

    Asks the kernel for each subvolume's children (cost grows with the number of nested
    subvolumes, not with the layer's size); without the privilege for that, walks the tree.
    """
    try:
        found = _search_nested(path)
    except PermissionError:
        found = walk_nested(path)
    found.sort(key=lambda p: p.count("/"), reverse=True)
    return found


def _search_nested(path: str) -> list[str]:
    found: list[str] = []
    stack = [path]
    while stack:
        current = stack.pop()
        with open_dir(current) as fd:
            for rel in child_subvolumes(fd):
                child = os.path.join(current, rel)
                found.append(child)
                stack.append(child)
    return found


def walk_nested(path: str) -> list[str]:
    """Subvolumes below ``path`` found by walking it; only directories are stat'ed and
    symbolic links are not followed."""
    found: list[str] = []
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if is_subvolume(entry.stat(follow_symlinks=False)):
                found.append(entry.path)
            stack.append(entry.path)
    return found


def delete_subvolume(parent: str, name: str, quota: bool) -> None:
    """Destroy subvolume ``parent/name`` and every subvolume nested in it; with quotas on,
    also drop their level-0 quota groups."""
    path = os.path.join(parent, name)
    for nested in nested_subvolumes(path):
        _destroy(nested, quota)
    _destroy(path, quota)


def _destroy(path: str, quota: bool) -> None:
    qgroupid = 0
    if quota:
        with open_dir(path) as fd:
            qgroupid = subvolume_id(fd)
    with open_dir(os.path.dirname(path)) as dir_fd:
        destroy_subvolume(dir_fd, os.path.basename(path))
        if qgroupid:
            _drop_qgroup(dir_fd, qgroupid)


def _drop_qgroup(dir_fd: int, qgroupid: int) -> None:
    """Delete the quota group of a destroyed subvolume so that stale limits do not pile up.

    Linux 6.8+ refuses while the cleaner still frees the subvolume (EBUSY) and removes
    the group itself afterwards; ENOENT means it is already gone.
    """
    try:
        destroy_qgroup(dir_fd, qgroupid)
    except OSError as e:
        if e.errno not in (errno.EBUSY, errno.ENOENT, errno.EINVAL):
            log.warning("btrfs: %s", e)
