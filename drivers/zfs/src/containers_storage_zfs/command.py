"""Running the ``zfs`` and ``zpool`` commands and reading their machine output.

Only output requested with ``-H`` (tab-separated, no headers) and ``-p`` (exact numbers)
is parsed. zfs-fuse's ``zfs list`` knows neither ``-p`` nor ``-t``, so everything is read
through ``zfs get -H -p -o name,property,value``, which both implementations accept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence

from containers_storage.errors import DriverError, DriverPrerequisites

#: a hung zfs-fuse daemon must not hang the store forever
TIMEOUT = 300.0

#: stable English messages from the tools (matched by :meth:`ZfsCommandError.says`)
_ENV = {**os.environ, "LC_ALL": "C"}


class ZfsCommandError(DriverError):
    """A ``zfs``/``zpool`` invocation failed; carries its stderr."""

    default_message = "zfs command failed"

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip() or "(no error output)"
        super().__init__(message=f"{' '.join(argv)}: exit status {returncode}: {detail}")

    def says(self, text: str) -> bool:
        return text in self.stderr


class Zfs:
    """The ``zfs``/``zpool`` command pair found on ``PATH``."""

    def __init__(self, zfs: str, zpool: str) -> None:
        self.zfs = zfs
        self.zpool = zpool

    @classmethod
    def find(cls) -> Zfs:
        zfs = shutil.which("zfs")
        if zfs is None:
            raise DriverPrerequisites("the 'zfs' command is not available (not found on PATH)")
        zpool = shutil.which("zpool") or os.path.join(os.path.dirname(zfs), "zpool")
        return cls(zfs, zpool)

    def _run(self, argv: list[str]) -> str:
        try:
            proc = subprocess.run(
                argv, capture_output=True, env=_ENV, timeout=TIMEOUT, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as e:
            raise ZfsCommandError(argv, -1, f"no answer within {TIMEOUT:.0f}s") from e
        except OSError as e:
            raise ZfsCommandError(argv, -1, str(e)) from e
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise ZfsCommandError(argv, proc.returncode, stderr)
        return proc.stdout.decode("utf-8", "surrogateescape")

    def run(self, *args: str) -> str:
        """``zfs ARGS``; returns stdout."""
        return self._run([self.zfs, *args])

    def run_zpool(self, *args: str) -> str:
        return self._run([self.zpool, *args])

    # -- reading -----------------------------------------------------------------------
    def get(
        self, datasets: Iterable[str], properties: Iterable[str], *, recursive: bool = False
    ) -> dict[str, dict[str, str]]:
        """Properties of datasets (and their descendants if ``recursive``), by dataset
        name then property; ``-`` (not applicable) is kept as given."""
        args = ["get", "-H", "-p", "-o", "name,property,value"]
        if recursive:
            args.append("-r")
        out: dict[str, dict[str, str]] = {}
        for line in self.run(*args, ",".join(properties), *datasets).splitlines():
            name, prop, value = line.split("\t", 2)
            out.setdefault(name, {})[prop] = value
        return out

    def filesystems(self, root: str) -> dict[str, str]:
        """``root`` and every filesystem below it, mapped to their ``canmount`` property."""
        found = self.get([root], ["type", "canmount"], recursive=True)
        return {name: p["canmount"] for name, p in found.items() if p.get("type") == "filesystem"}

    def dataset_type(self, name: str) -> str | None:
        """``filesystem``, ``snapshot``, ``volume``; None when the dataset does not exist."""
        try:
            return self.get([name], ["type"])[name]["type"]
        except ZfsCommandError as e:
            if e.says("does not exist"):
                return None
            raise

    def pool_health(self, pool: str) -> str:
        line = self.run_zpool("list", "-H", "-o", "name,health", pool).strip()
        return line.split("\t")[1]
