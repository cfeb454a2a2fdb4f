"""Rootless use, run in a forked child that has dropped to an unprivileged user: with the
fuse-overlayfs mount program, and with native overlay inside a user namespace."""

from __future__ import annotations

import ctypes
import encodings.ascii
import encodings.latin_1  # noqa: F401
import json
import os
import shutil
import stat
import traceback
from collections.abc import Callable

import pytest

from containers_storage.drivers.api import DriverConfig, MountOpts
from containers_storage.drivers.fsutil import libc
from containers_storage.idtools import IDMappings
from containers_storage_overlay.driver import OverlayDriver

UID = GID = 1000
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000


def _as_user(work: str, body: Callable[[], dict[str, object]], userns: bool = False) -> dict[str, object]:
    """Run ``body`` in a child as UID/GID 1000 (optionally then as root of a new user
    namespace mapping only that user); its result comes back as JSON."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        code = 0
        try:
            os.setgroups([])
            os.setgid(GID)
            os.setuid(UID)
            if userns:
                # setuid() made the process non-dumpable, which hides /proc/self from it
                libc().prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
                if libc().unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
                    raise OSError(ctypes.get_errno(), "unshare")
                with open("/proc/self/setgroups", "w") as f:
                    f.write("deny")
                with open("/proc/self/uid_map", "w") as f:
                    f.write(f"0 {UID} 1")
                with open("/proc/self/gid_map", "w") as f:
                    f.write(f"0 {GID} 1")
            out = body()
        except BaseException:
            out = {"error": traceback.format_exc()}
            code = 1
        os.write(w, json.dumps(out).encode())
        os.close(w)
        os._exit(code)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks) or b"{}")
    assert "error" not in result, result.get("error")
    return dict(result)


def _scenario(work: str, options: tuple[str, ...]) -> dict[str, object]:
    d = OverlayDriver(
        DriverConfig(
            requested_name="overlay",
            root=os.path.join(work, "graph"),
            run_root=os.path.join(work, "run"),
            options=options,
            id_mappings=IDMappings(),
        )
    )
    try:
        d.create("base", None)
        root = d.get("base")
        for name in ("keep", "gone"):
            with open(os.path.join(root, name), "w") as f:
                f.write(name)
        os.mkdir(os.path.join(root, "dir"))
        with open(os.path.join(root, "dir", "old"), "w") as f:
            f.write("old")
        d.put("base")
        d.create_read_write("top", "base")
        root = d.get("top")
        os.unlink(os.path.join(root, "gone"))
        shutil.rmtree(os.path.join(root, "dir"))
        os.mkdir(os.path.join(root, "dir"))
        with open(os.path.join(root, "dir", "new"), "w") as f:
            f.write("new")
        d.put("top")
        ro = d.get("top", MountOpts(options=("ro",)))
        seen = sorted(os.listdir(ro)) + sorted("dir/" + n for n in os.listdir(os.path.join(ro, "dir")))
        mounted_as = os.stat(ro).st_dev != os.stat(os.path.join(d.home, "top")).st_dev
        d.put("top")
        upper = os.path.join(d.home, "top", "diff")
        on_disk = {}
        for name in os.listdir(upper):
            st = os.lstat(os.path.join(upper, name))
            on_disk[name] = "whiteout" if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else oct(st.st_mode)
        return {
            "seen": seen,
            "mounted": mounted_as,
            "on_disk": on_disk,
            "status": dict(d.status()),
            "program": d.opts.mount_program,
            "userxattr": d.userxattr,
            "size": d.diff_size("top", IDMappings(), "base", IDMappings()),
            "xattrs": os.listxattr(os.path.join(upper, "dir")),
        }
    finally:
        for layer in ("top", "base"):
            if d.exists(layer):
                d.remove(layer)
        d.cleanup()


def _user_dir(scratch_dir: str) -> str:
    if os.geteuid() != 0:
        pytest.skip("dropping to another user needs root")
    os.chmod(scratch_dir, 0o755)
    work = os.path.join(scratch_dir, "user")
    os.mkdir(work)
    os.chown(work, UID, GID)
    return work


def test_unprivileged_without_namespace_picks_fuse_overlayfs(scratch_dir: str) -> None:
    """Outside a user namespace kernel overlay cannot be mounted: the driver chooses
    fuse-overlayfs from PATH, as upstream."""
    program = shutil.which("fuse-overlayfs")
    if not program:
        pytest.skip("fuse-overlayfs not installed")
    work = _user_dir(scratch_dir)

    def body() -> dict[str, object]:
        cfg = DriverConfig(requested_name="overlay", root=f"{work}/graph", run_root=f"{work}/run")
        OverlayDriver.probe(cfg)
        d = OverlayDriver(cfg)
        d.cleanup()
        return {"program": d.opts.mount_program, "shifting": d.supports_shifting()}

    assert _as_user(work, body) == {"program": program, "shifting": True}


def test_unprivileged_without_fuse_overlayfs_is_refused_with_reason(scratch_dir: str) -> None:
    from containers_storage.errors import DriverPrerequisites

    work = _user_dir(scratch_dir)

    def body() -> dict[str, object]:
        os.environ["PATH"] = "/nonexistent"
        cfg = DriverConfig(requested_name="overlay", root=f"{work}/graph", run_root=f"{work}/run")
        try:
            OverlayDriver.probe(cfg)
        except DriverPrerequisites as e:
            return {"probe": str(e), "created": os.path.exists(f"{work}/graph")}
        return {}

    saved = os.environ.get("PATH", "")
    try:
        res = _as_user(work, body)
    finally:
        os.environ["PATH"] = saved
    assert "not running as root" in str(res["probe"]) and res["created"] is False


def test_fuse_overlayfs_as_unprivileged_user(scratch_dir: str) -> None:
    program = shutil.which("fuse-overlayfs")
    if not program or not shutil.which("fusermount3"):
        pytest.skip("fuse-overlayfs/fusermount3 not installed")
    if os.stat("/dev/fuse").st_mode & 0o006 != 0o006:
        pytest.skip("/dev/fuse is not read-writable by unprivileged users (Debian's udev makes it 0666)")
    work = _user_dir(scratch_dir)
    res = _as_user(work, lambda: _scenario(work, (f"overlay.mount_program={program}",)), userns=True)
    assert res["program"] == program
    assert res["mounted"]
    assert res["seen"] == ["dir", "keep", "dir/new"]
    with open(os.path.join(work, "graph", "overlay", ".has-mount-program")) as f:
        assert f.read() == "true"
    status = res["status"]
    assert isinstance(status, dict)
    assert status["Native Overlay Diff"] == "false" and status["Supports shifting"] == "true"


def test_native_overlay_in_user_namespace(scratch_dir: str) -> None:
    work = _user_dir(scratch_dir)
    env_path = os.environ.get("PATH", "")
    os.environ["PATH"] = "/nonexistent"  # no fuse-overlayfs: kernel overlay must be used
    try:
        res = _as_user(work, lambda: _scenario(work, ("overlay.skip_mount_home=true",)), userns=True)
    finally:
        os.environ["PATH"] = env_path
    assert res["program"] == "" and res["userxattr"] is True
    assert res["mounted"]
    assert res["seen"] == ["dir", "keep", "dir/new"]
    assert res["on_disk"]["gone"] == "whiteout"  # type: ignore[index]
    assert "user.overlay.opaque" in res["xattrs"]  # type: ignore[operator]
