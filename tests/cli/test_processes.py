"""The tool as a real process: ``python -m``, the installed console script, pipes, ``-U``
and ``unshare`` (as an unprivileged user)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Store, run_process

SCRIPT = str(Path(sys.executable).parent / "containers-storage")
L1 = "1" * 64


def test_module_and_console_script_agree(empty_store: Store) -> None:
    r = run_process(*empty_store.prefix, "create-layer", "--id", L1, "-n", "x")
    assert (r.status, r.stdout) == (0, f"{L1}\n\tx\n"), r.stderr
    via_script = run_process(*empty_store.prefix, "layers", "--json", argv0=[SCRIPT])
    via_module = run_process(*empty_store.prefix, "layers", "--json")
    assert via_script.status == via_module.status == 0
    assert via_script.out == via_module.out and via_script.out.startswith(b'[{"id":"' + L1.encode())


def test_errors_are_one_line_without_traceback(empty_store: Store) -> None:
    r = run_process(*empty_store.prefix, "layer-parent-owners", "no-such-layer", "--json")
    assert r.status == 1
    r = run_process(*empty_store.prefix, "get-layer-data", "nope", "key", argv0=[SCRIPT])
    assert r.status == 1 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_usage_error_names_the_program(tmp_path: Path) -> None:
    r = run_process("--bogus", argv0=[SCRIPT])
    assert r.status == 1 and f"See '{SCRIPT} containers-storage --help'." in r.stderr


def test_broken_pipe_is_quiet(empty_store: Store) -> None:
    for i in range(3):
        run_process(*empty_store.prefix, "create-layer", "-n", f"l{i}")
    proc = subprocess.run(
        f"{sys.executable} -m containers_storage.cli {' '.join(empty_store.prefix)} layers | head -c 1",
        shell=True, capture_output=True, check=False,
    )
    assert b"Traceback" not in proc.stderr


NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A directory an unprivileged user can reach (pytest's own base is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cli-unpriv-", dir="/tmp"))
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _unprivileged(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """How to run the tool as user 65534: an interpreter that user can execute inside a
    user namespace (ours may live under a private home directory), with our packages."""
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONTAINERS")}
    env.update(HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if not os.path.exists(python):
            continue
        probe = subprocess.run([*NOBODY, "unshare", "-U", "--map-root-user", python, "-c", "pass"],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            if python != sys.executable:
                own = [p for p in sys.path if p and not p.startswith(sys.base_prefix) and os.path.isdir(p)]
                env["PYTHONPATH"] = os.pathsep.join(own)
            return [*NOBODY, python, "-m", "containers_storage.cli"], env
    pytest.skip("no Python interpreter usable by an unprivileged user in a user namespace")


def test_unshare_runs_the_command_as_root_of_a_user_namespace(open_tmp: Path) -> None:
    tmp_path = open_tmp
    cli, env = _unprivileged(tmp_path)
    roots = ["-g", str(tmp_path / "g"), "-R", str(tmp_path / "r"), "-s", "vfs"]
    script = "id -u; echo $_CONTAINERS_ROOTLESS_UID"
    r = run_process(*roots, "unshare", "sh", "-c", script, argv0=cli, env=env)
    assert (r.status, r.stdout) == (0, "0\n65534\n"), r.stderr
    r = run_process(*roots, "unshare", "false", argv0=cli, env=env)
    assert (r.status, r.stderr) == (1, "exit status 1\n")


def test_unshare_flag_reexecutes_the_command(open_tmp: Path) -> None:
    tmp_path = open_tmp
    cli, env = _unprivileged(tmp_path)
    roots = ["-g", str(tmp_path / "g"), "-R", str(tmp_path / "r"), "-s", "vfs"]
    r = run_process("-U", *roots, "create-layer", "--id", L1, argv0=cli, env=env)
    assert (r.status, r.stdout) == (0, f"{L1}\n"), r.stderr
    r = run_process("-U", *roots, "layers", "-q", argv0=cli, env=env)
    assert (r.status, r.stdout) == (0, f"{L1}\n"), r.stderr
    # files made inside belong to the invoking user outside
    assert (tmp_path / "g" / "vfs" / "dir" / L1).stat().st_uid == 65534


def test_unshare_as_root_still_makes_a_namespace(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    roots = ["-g", str(tmp_path / "g"), "-R", str(tmp_path / "r"), "-s", "vfs"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONTAINERS")}
    r = run_process(*roots, "unshare", "readlink", "/proc/self/ns/user", env=env)
    assert r.status == 0, r.stderr
    assert r.stdout != os.readlink("/proc/self/ns/user") + "\n"


def _run_with_terminal_stderr(cmd: list[str], stdin: bytes) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` with standard error on a pseudo-terminal; returns status, stdout, tty text."""
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        out, _ = proc.communicate(stdin, timeout=120)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        return proc.returncode, out, seen
    finally:
        os.close(master)


def test_progress_line_only_on_a_terminal(empty_store: Store) -> None:
    from .test_commands import BASE_TAR

    cli = [sys.executable, "-m", "containers_storage.cli", *empty_store.prefix]
    status, out, tty = _run_with_terminal_stderr([*cli, "import-layer", "--id", L1], BASE_TAR.read_bytes())
    assert status == 0 and out == f"{L1}\n".encode()
    assert b"Importing: " in tty
    status, out, tty = _run_with_terminal_stderr([*cli, "diff", "-u", L1], b"")
    assert status == 0 and out == BASE_TAR.read_bytes()
    assert b"Writing diff: " in tty
    r = run_process(*empty_store.prefix, "diff", "-u", L1)
    assert r.err == b"" and r.out == BASE_TAR.read_bytes()
