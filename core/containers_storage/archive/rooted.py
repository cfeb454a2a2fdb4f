"""A directory tree addressed through file descriptors, confined to its root.

Symlinks met while resolving a directory are followed by hand with the root acting as
``/`` (as under ``chroot``), so nothing outside the root is ever reached; the kernel is
never asked to follow a symlink (every open uses ``O_NOFOLLOW``).
"""

from __future__ import annotations

import errno
import os
import stat

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SYMLINKS = 40
_MAX_CACHED_DIRS = 256

Parts = tuple[bytes, ...]


class RootedDir:
    """Open directories below ``root`` by (logical) component tuples, with caches.

    Call :meth:`forget` after removing or replacing a directory or a symlink, since
    cached resolutions may have gone through it. Descriptors pushed out of the cache
    stay open until :meth:`settle` (called between entries), so one handed out for the
    current entry is never closed -- or its number reused -- under its user's feet.
    Every walk is iterative: a tree thousands of directories deep costs no recursion.
    """

    def __init__(self, root: str | bytes) -> None:
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._fds: dict[Parts, int] = {}
        self._evicted: list[int] = []
        self._resolved: dict[Parts, Parts] = {}

    def close(self) -> None:
        self.forget()
        os.close(self.root_fd)

    def settle(self) -> None:
        """Close the descriptors evicted from the cache since the last call."""
        for fd in self._evicted:
            os.close(fd)
        self._evicted.clear()

    def forget(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._resolved.clear()
        self.settle()

    def fd(self, real: Parts) -> int:
        """An ``O_PATH`` descriptor of the real (symlink-free) directory ``real``."""
        if not real:
            return self.root_fd
        fd = self._fds.get(real)
        if fd is not None:
            return fd
        known = len(real) - 1
        while known and real[:known] not in self._fds:
            known -= 1
        fd = self._fds[real[:known]] if known else self.root_fd
        for depth in range(known + 1, len(real) + 1):
            fd = os.open(real[depth - 1], _DIR_FLAGS, dir_fd=fd)
            if len(self._fds) >= _MAX_CACHED_DIRS:
                self._evicted.append(self._fds.pop(next(iter(self._fds))))
            self._fds[real[:depth]] = fd
        return fd

    def resolve(self, parts: Parts, create: bool = False) -> Parts:
        """Real path of the directory named ``parts``; missing ones are made (0755) if
        ``create``, else FileNotFoundError. A non-directory gives NotADirectoryError."""
        if not parts:
            return ()
        hit = self._resolved.get(parts)
        if hit is not None:
            return hit
        known = len(parts) - 1
        while known and parts[:known] not in self._resolved:
            known -= 1
        real = list(self._resolved[parts[:known]]) if known else []
        for depth in range(known + 1, len(parts) + 1):
            real = self._walk(real, [parts[depth - 1]], create, [0])
            self._resolved[parts[:depth]] = tuple(real)
        return tuple(real)

    def _walk(self, real: list[bytes], comps: list[bytes], create: bool, hops: list[int]) -> list[bytes]:
        for comp in comps:
            if comp in (b"", b"."):
                continue
            if comp == b"..":
                if real:
                    real.pop()
                continue
            pfd = self.fd(tuple(real))
            try:
                st = os.lstat(comp, dir_fd=pfd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(comp, 0o755, dir_fd=pfd)
                real.append(comp)
                continue
            if stat.S_ISDIR(st.st_mode):
                real.append(comp)
            elif stat.S_ISLNK(st.st_mode):
                hops[0] += 1
                if hops[0] > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", comp)
                target = os.readlink(comp, dir_fd=pfd)
                if target.startswith(b"/"):
                    real = []
                real = self._walk(real, target.split(b"/"), create, hops)
            else:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", comp)
        return real

    def open_file(self, parts: Parts, flags: int = os.O_RDONLY) -> int:
        """Open the non-symlink file ``parts`` (its parent resolved in the root)."""
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "is the root directory")
        pfd = self.fd(self.resolve(parts[:-1]))
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)


def remove_all(dfd: int, name: bytes, st: os.stat_result | None = None) -> None:
    """Remove ``name`` under ``dfd`` recursively, never following symlinks.

    Iterative, holding one directory descriptor at a time (climbing back through
    ``..``, which inside the tree being removed is the directory it came from), so
    neither the depth nor the path length of the tree matters."""
    if st is None:
        try:
            st = os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)
        return
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    cur = os.open(name, flags, dir_fd=dfd)
    names = [name]  # the path from ``dfd`` down to ``cur``
    pending = [_empty_files(cur)]  # subdirectories still to remove, per level
    try:
        while pending:
            if pending[-1]:
                child = pending[-1].pop()
                sub = os.open(child, flags, dir_fd=cur)
                os.close(cur)
                cur = sub
                names.append(child)
                pending.append(_empty_files(cur))
                continue
            pending.pop()
            done = names.pop()
            if pending:
                up = os.open("..", flags, dir_fd=cur)
                os.close(cur)
                cur = up
                os.rmdir(done, dir_fd=cur)
    finally:
        os.close(cur)
    os.rmdir(name, dir_fd=dfd)


def _empty_files(fd: int) -> list[bytes]:
    """Unlink every non-directory in the directory ``fd``; its subdirectories' names."""
    with os.scandir(fd) as it:
        children = [(os.fsencode(e.name), e.is_dir(follow_symlinks=False)) for e in it]
    dirs = []
    for child, is_dir in children:
        if is_dir:
            dirs.append(child)
        else:
            os.unlink(child, dir_fd=fd)
    return dirs
