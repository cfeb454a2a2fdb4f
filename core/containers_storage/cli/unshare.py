"""``-U`` and ``unshare``: re-run the command line inside a new user namespace (cli.md §2).

UID/GID 0 inside map to the invoking user, followed by the user's ``/etc/subuid`` /
``/etc/subgid`` ranges (consecutively). Unprivileged users need the setuid helpers
``newuidmap``/``newgidmap`` for the subordinate ranges; without them only their own IDs
are mapped. The namespace also gets a private mount namespace, as upstream's.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import subprocess
import sys

from .context import Console, Context

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_DONE_ENV = "_CONTAINERS_USERNS_CONFIGURED"


def already_in_namespace() -> bool:
    if os.environ.get(_DONE_ENV):
        return True
    rootless_uid = os.environ.get("_CONTAINERS_ROOTLESS_UID", "")
    return os.geteuid() == 0 and rootless_uid.isdigit() and int(rootless_uid) > 0


def _sub_ranges(user: str, path: str) -> list[tuple[int, int]]:
    """``(host start, size)`` ranges of ``user`` in /etc/subuid or /etc/subgid, sorted."""
    from ..config import subordinate_ids
    from ..errors import ConfigError

    try:
        return [(m.host_id, m.size) for m in subordinate_ids(user, path)]
    except (ConfigError, ValueError):
        return []


def _mappings(own: int, ranges: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """``(container, host, size)`` triples: own ID at 0, then the ranges consecutively."""
    out = [(0, own, 1)]
    next_id = 1
    for start, size in ranges:
        out.append((next_id, start, size))
        next_id += size
    return out


def _write_maps(pid: int, uid: int, gid: int, user: str) -> None:
    uid_maps = _mappings(uid, _sub_ranges(user, "/etc/subuid"))
    gid_maps = _mappings(gid, _sub_ranges(user, "/etc/subgid"))
    helpers = shutil.which("newuidmap"), shutil.which("newgidmap")
    if uid != 0 and all(helpers) and (len(uid_maps) > 1 or len(gid_maps) > 1):
        for helper, maps in zip(helpers, (uid_maps, gid_maps), strict=True):
            flat = [str(n) for triple in maps for n in triple]
            subprocess.run([str(helper), str(pid), *flat], check=True)
        return
    if uid != 0:
        # Without helpers an unprivileged process may map only its own IDs.
        uid_maps, gid_maps = uid_maps[:1], gid_maps[:1]
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
    for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write("".join(f"{c} {h} {s}\n" for c, h, s in maps))


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def maybe_reexec(console: Console, args: list[str], *, even_for_root: bool) -> int | None:
    """Re-run ``args`` in a new user namespace; return the child's status to exit with.

    Returns None when no re-execution is needed (already inside, or root without
    ``even_for_root``).
    """
    if already_in_namespace() or (os.geteuid() == 0 and not even_for_root):
        return None
    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    console.flush()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(ready_r)
        os.close(go_w)
        try:
            _unshare(_CLONE_NEWUSER | _CLONE_NEWNS)
        except OSError as exc:
            os.write(2, f"error creating user namespace: {exc.strerror}\n".encode())
            os._exit(1)
        os.write(ready_w, b"1")
        os.close(ready_w)
        if os.read(go_r, 1) != b"1":
            os._exit(1)
        env = dict(os.environ)
        env[_DONE_ENV] = "done"
        env["_CONTAINERS_ROOTLESS_UID"] = str(uid)
        env["_CONTAINERS_ROOTLESS_GID"] = str(gid)
        try:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            os.execve(sys.executable, [sys.executable, "-m", "containers_storage.cli", *args], env)
        except OSError as exc:
            os.write(2, f"{exc}\n".encode())
        os._exit(127)
    os.close(ready_w)
    os.close(go_r)
    ok = os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    if ok:
        try:
            _write_maps(pid, uid, gid, user)
            os.write(go_w, b"1")
        except (OSError, subprocess.CalledProcessError) as exc:
            console.err(f"error setting up ID mappings: {exc}\n")
    os.close(go_w)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1


def unshare_command(ctx: Context) -> int:
    """Run the given command (or ``$SHELL``) inside the namespace; failures exit 1."""
    argv = ctx.args or [os.environ.get("SHELL") or "/bin/sh"]
    try:
        proc = subprocess.run(argv, check=False)
    except FileNotFoundError:
        ctx.console.err(f'exec: "{argv[0]}": executable file not found in $PATH\n')
        return 1
    except OSError as exc:
        ctx.console.err(f"fork/exec {argv[0]}: {exc.strerror}\n")
        return 1
    if proc.returncode != 0:
        if proc.returncode < 0:
            import signal

            name = signal.strsignal(-proc.returncode) or str(-proc.returncode)
            ctx.console.err(f"signal: {name[:1].lower() + name[1:]}\n")
        else:
            ctx.console.err(f"exit status {proc.returncode}\n")
        return 1
    return 0
