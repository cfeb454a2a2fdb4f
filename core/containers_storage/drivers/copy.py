"""Copying a layer tree with full metadata (vfs copy-on-create, and any driver that needs
a full copy): reflink first, then copy_file_range, then a plain copy."""

from __future__ import annotations

import errno
import fcntl
import os
import stat

_FICLONE = 0x40049409
_CHUNK = 1 << 30

#: xattrs copied along with files (upstream's vfs copies capabilities and user.*; trusted.*
#: overlay markers only when privileged)
_XATTR_PREFIXES_USER = ("user.", "security.capability")
_XATTR_PREFIXES_ROOT = (*_XATTR_PREFIXES_USER, "trusted.overlay.")


class _Copier:
    def __init__(self, privileged: bool) -> None:
        self.privileged = privileged
        self.xattr_prefixes = _XATTR_PREFIXES_ROOT if privileged else _XATTR_PREFIXES_USER
        self.links: dict[tuple[int, int], str] = {}
        self.reflink = True
        self.copy_range = True

    def copy_file_data(self, src: str, dst: str, size: int) -> None:
        fin = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                self._copy_fd(fin, fout, size)
            finally:
                os.close(fout)
        finally:
            os.close(fin)

    def _copy_fd(self, fin: int, fout: int, size: int) -> None:
        if size == 0:
            return
        if self.reflink:
            try:
                fcntl.ioctl(fout, _FICLONE, fin)
                return
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
                    raise
                self.reflink = False
        if self.copy_range:
            try:
                left = size
                while left > 0:
                    n = os.copy_file_range(fin, fout, min(left, _CHUNK))
                    if n == 0:
                        break
                    left -= n
                if left <= 0:
                    return
                # the file grew or shrank meanwhile: finish with plain reads
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                self.copy_range = False
                os.lseek(fin, 0, os.SEEK_SET)
                os.lseek(fout, 0, os.SEEK_SET)
                os.ftruncate(fout, 0)
        while chunk := os.read(fin, 1 << 20):
            os.write(fout, chunk)

    def copy_xattrs(self, src: str, dst: str) -> None:
        try:
            names = os.listxattr(src, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EPERM):
                return
            raise
        for name in names:
            if name.startswith(self.xattr_prefixes):
                try:
                    os.setxattr(
                        dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False
                    )
                except OSError as e:
                    if e.errno not in (errno.ENOTSUP, errno.EPERM) or name.startswith("user."):
                        raise

    def finish(self, dst: str, st: os.stat_result, is_link: bool) -> None:
        """Owner, mode and times after the content (chown clears setuid bits)."""
        try:
            os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
        except PermissionError:
            if self.privileged:
                raise
        if not is_link:
            os.chmod(dst, stat.S_IMODE(st.st_mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    def copy_entry(self, src: str, dst: str, st: os.stat_result) -> bool:
        """Copy one non-directory entry; False when it was skipped (devices, rootless)."""
        mode = st.st_mode
        if stat.S_ISREG(mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key)
            if first is not None:
                os.link(first, dst)
                return True
            self.links[key] = dst
        if stat.S_ISREG(mode):
            self.copy_file_data(src, dst, st.st_size)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(dst, 0o600)
        elif stat.S_ISSOCK(mode):
            os.mknod(dst, stat.S_IFSOCK | 0o600)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            if not self.privileged:
                return False
            os.mknod(dst, stat.S_IFMT(mode) | 0o600, st.st_rdev)
        else:
            return False
        self.copy_xattrs(src, dst)
        self.finish(dst, st, stat.S_ISLNK(mode))
        return True


def copy_tree(src: str, dst: str) -> None:
    """Copy the *contents* of directory ``src`` into the existing directory ``dst``.

    Preserves types, owners, modes (incl. setuid/sticky), times, hard links between the
    copied files and the xattrs upstream's vfs keeps. Device nodes are skipped when not
    running as root, as upstream does rootless.
    """
    copier = _Copier(privileged=os.geteuid() == 0)
    dirs: list[tuple[str, os.stat_result]] = []
    stack = [(src, dst)]
    while stack:
        s_dir, d_dir = stack.pop()
        with os.scandir(s_dir) as it:
            entries = list(it)
        for entry in entries:
            s_path, d_path = entry.path, os.path.join(d_dir, entry.name)
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(d_path, 0o700)
                copier.copy_xattrs(s_path, d_path)
                dirs.append((d_path, st))
                stack.append((s_path, d_path))
            else:
                copier.copy_entry(s_path, d_path, st)
    # directories last, deepest first, so their times survive the entries written in them
    for d_path, st in reversed(dirs):
        copier.finish(d_path, st, False)


def copy_file_content(fin: int, fout: int, size: int) -> None:
    """Copy ``size`` bytes between open files from their current offsets: a reflink
    when the filesystem shares extents, else ``copy_file_range``, else read/write."""
    _Copier(privileged=False)._copy_fd(fin, fout, size)
