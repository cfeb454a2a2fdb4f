"""Staging directories of partial pulls: ``<driver home>/staging/<random>``, each with
a lock (``<random>.lock``) its creator holds until the layer takes the directory or the
caller cleans it up, so that ``gc`` can tell abandoned directories (their process died)
from ones still waiting for ``apply_diff_from_staging_directory``.

Also the core's generic way of giving a staged tree to a driver without native support:
the tree was written with AUFS-style whiteouts (plain ``.wh.`` files), which the merge
turns into deletions in the layer's directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
import threading
import time

from ..archive.apply import WHITEOUT_OPAQUE, WHITEOUT_PREFIX
from ..archive.rooted import remove_all
from ..drivers.copy import _Copier
from ..errors import StorageError

STAGING = "staging"
_LOCK_SUFFIX = ".lock"
#: staging directories without a lock (upstream's) are left this long before gc
UNLOCKED_GRACE = 24 * 3600

_held: dict[str, int] = {}
_held_mutex = threading.Lock()


def staging_home(driver_home: str) -> str:
    return os.path.join(driver_home, STAGING)


def create(driver_home: str) -> str:
    """A new, locked, empty staging directory."""
    home = staging_home(driver_home)
    os.makedirs(home, 0o700, exist_ok=True)
    while True:
        path = os.path.join(home, secrets.token_hex(8))
        fd = os.open(path + _LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        with _held_mutex:
            _held[path] = fd
        return path


def check(driver_home: str, path: str) -> str:
    """``path`` as a staging directory of this driver, or an error saying it is not."""
    path = os.path.abspath(path)
    if os.path.dirname(path) != staging_home(driver_home) or not os.path.isdir(path):
        raise StorageError(message=f"{path!r} is not a staging directory")
    return path


def release(path: str) -> None:
    """Forget the directory (it was taken by the layer or removed) and drop its lock."""
    with _held_mutex:
        fd = _held.pop(path, None)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path + _LOCK_SUFFIX)
    if fd is not None:
        os.close(fd)


def remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        parent = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            remove_all(parent, os.fsencode(os.path.basename(path)), st)
        finally:
            os.close(parent)
    release(path)


def collect(driver_home: str, now: float | None = None) -> list[str]:
    """Remove abandoned staging directories; returns their paths."""
    home = staging_home(driver_home)
    try:
        names = os.listdir(home)
    except FileNotFoundError:
        return []
    now = time.time() if now is None else now
    removed = []
    for name in names:
        if name.endswith(_LOCK_SUFFIX):
            if not os.path.exists(os.path.join(home, name[: -len(_LOCK_SUFFIX)])):
                _drop_orphan_lock(os.path.join(home, name))
            continue
        path = os.path.join(home, name)
        with _held_mutex:
            if path in _held:
                continue
        lock = path + _LOCK_SUFFIX
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                if now - os.lstat(path).st_mtime < UNLOCKED_GRACE:
                    continue
            except FileNotFoundError:
                continue
            remove(path)
            removed.append(path)
            continue
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its creator is alive
            remove(path)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def _drop_orphan_lock(lock: str) -> None:
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(lock)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the generic commit: merge a staged tree into a layer directory ----------------------
def merge_into(staging: str, target: str) -> None:
    """Move the staged tree into ``target`` (a layer's full contents, its parent's files
    included): whiteouts delete, opaque markers empty a directory of what the staged
    tree does not bring, everything else replaces what is there. Files are renamed when
    both are on one filesystem, else copied (reflinked where possible)."""
    copier = _Copier(privileged=os.geteuid() == 0)
    dirs: list[tuple[str, os.stat_result]] = []
    _merge_dir(staging, target, copier, dirs)
    for path, st in reversed(dirs):
        copier.finish(path, st, False)


def _merge_dir(src: str, dst: str, copier: _Copier, dirs: list[tuple[str, os.stat_result]]) -> None:
    with os.scandir(src) as it:
        names = sorted(e.name for e in it)
    raw = [os.fsencode(n) for n in names]
    if WHITEOUT_OPAQUE in raw:
        keep = {n for n in names if not os.fsencode(n).startswith(WHITEOUT_PREFIX)}
        for existing in os.listdir(dst):
            if existing not in keep:
                _remove_path(os.path.join(dst, existing))
    for name in names:
        bname = os.fsencode(name)
        if bname.startswith(WHITEOUT_PREFIX):
            if bname != WHITEOUT_OPAQUE and not bname.startswith(b".wh..wh."):
                _remove_path(os.path.join(dst, name[len(".wh.") :]))
            continue
        s_path, d_path = os.path.join(src, name), os.path.join(dst, name)
        st = os.lstat(s_path)
        try:
            dst_st: os.stat_result | None = os.lstat(d_path)
        except FileNotFoundError:
            dst_st = None
        if stat.S_ISDIR(st.st_mode):
            if dst_st is not None and not stat.S_ISDIR(dst_st.st_mode):
                _remove_path(d_path)
                dst_st = None
            if dst_st is None:
                os.mkdir(d_path, 0o700)
            copier.copy_xattrs(s_path, d_path)
            dirs.append((d_path, st))
            _merge_dir(s_path, d_path, copier, dirs)
            continue
        if dst_st is not None:
            _remove_path(d_path)
        try:
            os.rename(s_path, d_path)
        except OSError as exc:
            if exc.errno != 18:  # EXDEV
                raise
            copier.copy_entry(s_path, d_path, st)


def _remove_path(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    parent = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_all(parent, os.fsencode(os.path.basename(path)), st)
    finally:
        os.close(parent)
