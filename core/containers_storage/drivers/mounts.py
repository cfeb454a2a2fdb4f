"""Mounting without the ``mount`` command: mount(2), umount2(2), the new mount API and
/proc/self/mountinfo, for any driver.

The classic :func:`mount` takes all filesystem options in one string that the kernel
limits to a page; the new mount API (:class:`FsContext`: fsopen/fsconfig/fsmount/
move_mount, Linux 5.2+) sets them one by one, which is how overlay mounts stacks of
hundreds of lower layers. :func:`mount_in_dir` runs mount(2) in a helper process whose
working directory is chosen by the caller, so relative paths (or ``/proc/self/fd``
numbers) shorten the option string on kernels without the new API.
"""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence

from ..structs import dataclass
from .fsutil import libc

# mount(2) flags (linux/mount.h)
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

# umount2(2) flags
MNT_FORCE = 0x1
MNT_DETACH = 0x2
MNT_EXPIRE = 0x4
UMOUNT_NOFOLLOW = 0x8

# new mount API (linux/mount.h); these syscall numbers are shared by every architecture
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_SET_FD = 5
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

#: mount(2) flags that have a per-mount attribute in the new API
_FLAG_TO_ATTR = {
    MS_RDONLY: MOUNT_ATTR_RDONLY,
    MS_NOSUID: MOUNT_ATTR_NOSUID,
    MS_NODEV: MOUNT_ATTR_NODEV,
    MS_NOEXEC: MOUNT_ATTR_NOEXEC,
    MS_NOATIME: MOUNT_ATTR_NOATIME,
    MS_STRICTATIME: MOUNT_ATTR_STRICTATIME,
    MS_NODIRATIME: MOUNT_ATTR_NODIRATIME,
    MS_NOSYMFOLLOW: MOUNT_ATTR_NOSYMFOLLOW,
}

#: option word -> (clear?, flag), like util-linux and upstream's mount.ParseOptions
_FLAG_WORDS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "suid": (True, MS_NOSUID),
    "nosuid": (False, MS_NOSUID),
    "dev": (True, MS_NODEV),
    "nodev": (False, MS_NODEV),
    "exec": (True, MS_NOEXEC),
    "noexec": (False, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS),
    "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK),
    "nomand": (True, MS_MANDLOCK),
    "atime": (True, MS_NOATIME),
    "noatime": (False, MS_NOATIME),
    "diratime": (True, MS_NODIRATIME),
    "nodiratime": (False, MS_NODIRATIME),
    "bind": (False, MS_BIND),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
}


def _raise_errno(what: str, path: str) -> None:
    e = ctypes.get_errno()
    raise OSError(e, f"{what}: {os.strerror(e)}", path)


def parse_mount_options(options: Iterable[str]) -> tuple[int, list[str]]:
    """Split option words into mount(2) flags and filesystem data words.

    Words may themselves be comma lists; empty words are dropped.
    """
    flags = 0
    data: list[str] = []
    for opt in options:
        for word in opt.split(","):
            word = word.strip()
            if not word:
                continue
            known = _FLAG_WORDS.get(word)
            if known is None:
                data.append(word)
            elif known[0]:
                flags &= ~known[1]
            else:
                flags |= known[1]
    return flags, data


def page_size() -> int:
    """The kernel's limit on mount(2) data (one page, terminating NUL included)."""
    return os.sysconf("SC_PAGE_SIZE")


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2); raises OSError naming ``target``."""
    rc = libc().mount(
        os.fsencode(source),
        os.fsencode(target),
        os.fsencode(fstype) if fstype else None,
        ctypes.c_ulong(flags),
        os.fsencode(data) if data else None,
    )
    if rc != 0:
        _raise_errno(f"mount {fstype or source}", target)


def unmount(target: str, flags: int = 0) -> None:
    """umount2(2); raises OSError naming ``target``."""
    if libc().umount2(os.fsencode(target), ctypes.c_int(flags)) != 0:
        _raise_errno("unmount", target)


def unmount_if_mounted(target: str, flags: int = MNT_DETACH) -> bool:
    """Unmount ``target`` when it is a mount point; True if something was unmounted."""
    try:
        unmount(target, flags | UMOUNT_NOFOLLOW)
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.ENOENT):
            return False
        raise
    return True


# -- /proc/self/mountinfo ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MountInfo:
    """One line of /proc/<pid>/mountinfo (proc(5))."""

    mount_id: int
    parent_id: int
    major_minor: str
    root: str
    mount_point: str
    options: str
    optional: tuple[str, ...]
    fstype: str
    source: str
    super_options: str


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    out = bytearray()
    raw = os.fsencode(field)
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and raw[i + 1 : i + 4].isdigit() and i + 4 <= len(raw):
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def mountinfo(pid: str = "self") -> list[MountInfo]:
    """Parsed /proc/<pid>/mountinfo, in the kernel's order (parents before children)."""
    with open(f"/proc/{pid}/mountinfo", "rb") as f:
        lines = f.read().decode("utf-8", "surrogateescape").splitlines()
    out = []
    for line in lines:
        fields = line.split(" ")
        sep = fields.index("-", 6)
        out.append(
            MountInfo(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                major_minor=fields[2],
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                options=fields[5],
                optional=tuple(fields[6:sep]),
                fstype=fields[sep + 1],
                source=_unescape(fields[sep + 2]),
                super_options=fields[sep + 3] if len(fields) > sep + 3 else "",
            )
        )
    return out


def find_mount(path: str) -> MountInfo | None:
    """The topmost mount whose mount point is exactly ``path`` (symlinks resolved)."""
    real = os.path.realpath(path)
    found = None
    for m in mountinfo():
        if m.mount_point == real:
            found = m
    return found


def is_mounted(path: str) -> bool:
    return find_mount(path) is not None


# -- the new mount API ------------------------------------------------------------------
def _syscall(*args: object) -> int:
    return int(libc().syscall(*args))


class FsContext:
    """A filesystem context from fsopen(2): set parameters one at a time (no page limit on
    the whole), create the superblock, then attach the mount with :meth:`mount_at`.

    Errors carry the kernel's own explanation from the context's message log when it
    wrote one (e.g. ``overlayfs: failed to resolve 'x': -2``).
    """

    def __init__(self, fstype: str) -> None:
        fd = _syscall(ctypes.c_long(_SYS_FSOPEN), os.fsencode(fstype), ctypes.c_uint(FSOPEN_CLOEXEC))
        if fd < 0:
            _raise_errno("fsopen", fstype)
        self.fd = fd
        self.fstype = fstype

    def __enter__(self) -> FsContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def messages(self) -> list[str]:
        """Drain the kernel's messages about this context (``e``/``w``/``i`` lines)."""
        out = []
        while True:
            try:
                msg = os.read(self.fd, 4096)
            except OSError:
                break
            if not msg:
                break
            out.append(msg.decode("utf-8", "replace"))
        return out

    def _fail(self, what: str) -> None:
        e = ctypes.get_errno()
        detail = "; ".join(self.messages())
        text = f"{what}: {os.strerror(e)}" + (f" ({detail})" if detail else "")
        raise OSError(e, text, self.fstype)

    def _config(self, cmd: int, key: bytes | None, value: object, aux: int) -> None:
        rc = _syscall(
            ctypes.c_long(_SYS_FSCONFIG),
            ctypes.c_int(self.fd),
            ctypes.c_uint(cmd),
            key,
            value,
            ctypes.c_int(aux),
        )
        if rc < 0:
            name = key.decode() if key else "create"
            self._fail(f"fsconfig {name}")

    def set_flag(self, key: str) -> None:
        self._config(FSCONFIG_SET_FLAG, key.encode(), None, 0)

    def set_string(self, key: str, value: str) -> None:
        self._config(FSCONFIG_SET_STRING, key.encode(), os.fsencode(value), 0)

    def set_fd(self, key: str, fd: int) -> None:
        self._config(FSCONFIG_SET_FD, key.encode(), None, fd)

    def set_option(self, word: str) -> None:
        """``key=value`` → string parameter, bare ``key`` → flag."""
        key, sep, value = word.partition("=")
        if sep:
            self.set_string(key, value)
        else:
            self.set_flag(key)

    def create(self) -> None:
        self._config(FSCONFIG_CMD_CREATE, None, None, 0)

    def mount_at(self, target: str, attr_flags: int = 0) -> None:
        """fsmount(2) the created superblock and move_mount(2) it onto ``target``."""
        mfd = _syscall(
            ctypes.c_long(_SYS_FSMOUNT),
            ctypes.c_int(self.fd),
            ctypes.c_uint(FSMOUNT_CLOEXEC),
            ctypes.c_uint(attr_flags),
        )
        if mfd < 0:
            self._fail("fsmount")
        try:
            rc = _syscall(
                ctypes.c_long(_SYS_MOVE_MOUNT),
                ctypes.c_int(mfd),
                b"",
                ctypes.c_int(AT_FDCWD),
                os.fsencode(target),
                ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
            )
            if rc < 0:
                _raise_errno("move_mount", target)
        finally:
            os.close(mfd)


def mount_attributes(flags: int) -> int:
    """mount(2) flags → fsmount(2) attributes (flags without an attribute are dropped)."""
    attrs = 0
    for flag, attr in _FLAG_TO_ATTR.items():
        if flags & flag:
            attrs |= attr
    return attrs


_new_api: bool | None = None


def new_mount_api_available() -> bool:
    """Whether fsopen(2) exists here (probed once with a filesystem every kernel has)."""
    global _new_api
    if _new_api is None:
        fd = _syscall(ctypes.c_long(_SYS_FSOPEN), b"proc", ctypes.c_uint(FSOPEN_CLOEXEC))
        if fd >= 0:
            os.close(fd)
            _new_api = True
        else:
            _new_api = ctypes.get_errno() not in (errno.ENOSYS, errno.EPERM)
    return _new_api


def mount_new_api(
    fstype: str, target: str, params: Sequence[tuple[str, str | None]], flags: int = 0, source: str = ""
) -> None:
    """Mount with the new API: each ``(key, value)`` is one fsconfig call (value None: a
    flag), ``flags`` are mount(2) flags turned into mount attributes."""
    with FsContext(fstype) as ctx:
        if source:
            ctx.set_string("source", source)
        for key, value in params:
            if value is None:
                ctx.set_flag(key)
            else:
                ctx.set_string(key, value)
        ctx.create()
        ctx.mount_at(target, mount_attributes(flags))


_HELPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a = [os.fsencode(x) for x in sys.argv[1:5]]
rc = libc.mount(a[0], a[1], a[2] or None, ctypes.c_ulong(int(sys.argv[5])), a[3] or None)
if rc != 0:
    e = ctypes.get_errno()
    sys.stderr.write(os.strerror(e))
    sys.exit(e)
"""


def mount_in_dir(
    cwd: str,
    source: str,
    target: str,
    fstype: str,
    flags: int = 0,
    data: str = "",
    pass_fds: Sequence[int] = (),
) -> None:
    """mount(2) from a helper process working in ``cwd``, so ``target`` and paths in
    ``data`` may be relative to it. ``cwd`` may be ``/proc/self/fd`` with ``pass_fds``:
    the helper inherits those descriptors under the same numbers, and ``data`` can name
    directories by number."""
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _HELPER, source, target, fstype, data, str(flags)],
        cwd=cwd,
        pass_fds=tuple(pass_fds),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if proc.returncode != 0:
        e = proc.returncode if 0 < proc.returncode < 256 else errno.EIO
        detail = proc.stderr.decode("utf-8", "replace").strip() or os.strerror(e)
        raise OSError(e, f"mount {fstype or source}: {detail}", target)


# -- ID-mapped bind mounts ----------------------------------------------------------------
_SYS_MOUNT_SETATTR = 442
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_IDMAP = 0x100000
_CLONE_NEWUSER = 0x10000000


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


_USERNS_HELPER = """
import ctypes, sys
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:
    sys.exit(ctypes.get_errno() or 1)
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.read()
"""


def user_namespace_fd(
    uid_maps: Sequence[tuple[int, int, int]], gid_maps: Sequence[tuple[int, int, int]]
) -> int:
    """A descriptor of a new user namespace with these ``(inside, outside, size)`` maps
    (for ID-mapped mounts). The helper process that owns it exits before returning."""
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _USERNS_HELPER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if proc.stdout.readline() != b"ready\n":
            code = proc.wait()
            raise OSError(
                code or errno.EPERM, f"creating a user namespace: {os.strerror(code or errno.EPERM)}"
            )
        for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
            with open(f"/proc/{proc.pid}/{name}", "w", encoding="ascii") as f:
                f.write("".join(f"{a} {b} {c}\n" for a, b, c in maps))
        return os.open(f"/proc/{proc.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        proc.stdin.close()
        proc.wait()
        proc.stdout.close()


def idmapped_bind_mount(source: str, target: str, userns_fd: int) -> None:
    """Bind ``source`` on ``target`` with file owners shown through ``userns_fd``'s maps
    (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount, Linux 5.12+)."""
    fd = _syscall(
        ctypes.c_long(_SYS_OPEN_TREE),
        ctypes.c_int(AT_FDCWD),
        os.fsencode(source),
        ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC),
    )
    if fd < 0:
        _raise_errno("open_tree", source)
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        rc = _syscall(
            ctypes.c_long(_SYS_MOUNT_SETATTR),
            ctypes.c_int(fd),
            b"",
            ctypes.c_uint(AT_EMPTY_PATH),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        )
        if rc < 0:
            _raise_errno("mount_setattr idmap", source)
        rc = _syscall(
            ctypes.c_long(_SYS_MOVE_MOUNT),
            ctypes.c_int(fd),
            b"",
            ctypes.c_int(AT_FDCWD),
            os.fsencode(target),
            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
        )
        if rc < 0:
            _raise_errno("move_mount", target)
    finally:
        os.close(fd)
