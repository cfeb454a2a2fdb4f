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
    cached resolutions may have gone through it.
    """

    def __init__(self, root: str | bytes) -> None:
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._fds: dict[Parts, int] = {}
        self._resolved: dict[Parts, Parts] = {}

    def close(self) -> None:
        self.forget()
        os.close(self.root_fd)

    def forget(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._resolved.clear()

    def fd(self, real: Parts) -> int:
        """An ``O_PATH`` descriptor of the real (symlink-free) directory ``real``."""
        if not real:
            return self.root_fd
        fd = self._fds.get(real)
        if fd is None:
            fd = os.open(real[-1], _DIR_FLAGS, dir_fd=self.fd(real[:-1]))
            if len(self._fds) >= _MAX_CACHED_DIRS:
                os.close(self._fds.pop(next(iter(self._fds))))
            self._fds[real] = fd
        return fd

    def resolve(self, parts: Parts, create: bool = False) -> Parts:
        """Real path of the directory named ``parts``; missing ones are made (0755) if
        ``create``, else FileNotFoundError. A non-directory gives NotADirectoryError."""
        if not parts:
            return ()
        hit = self._resolved.get(parts)
        if hit is not None:
            return hit
        real = self._walk(list(self.resolve(parts[:-1], create)), [parts[-1]], create, [0])
        result = tuple(real)
        self._resolved[parts] = result
        return result

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
    """Remove ``name`` under ``dfd`` recursively, never following symlinks."""
    if st is None:
        try:
            st = os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)
        return
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    try:
        with os.scandir(fd) as it:
            children = [(os.fsencode(e.name), e.is_dir(follow_symlinks=False)) for e in it]
        for child, is_dir in children:
            if is_dir:
                remove_all(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dfd)
