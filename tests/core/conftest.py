"""Installed distributions made on the spot: ``*.dist-info`` folders with entry points and
modules in a directory of their own, seen by an in-process :class:`PluginHost` (its
``discover``) or by a subprocess (``PYTHONPATH``), exactly as pip would have left them."""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from containers_storage.entrypoints import EntryPoint, entry_points
from containers_storage.plugins import PluginHost

REPO = Path(__file__).resolve().parents[2]


@dataclass
class FakeSite:
    """A site directory of fake distributions."""

    path: Path

    def add(
        self,
        dist: str,
        version: str,
        entry_points: dict[str, dict[str, str]],
        modules: dict[str, str] | None = None,
    ) -> None:
        """Install ``dist`` with ``entry_points`` ({group: {name: value}}) and ``modules``
        ({dotted module name: source})."""
        info = self.path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(
            "".join(
                f"[{group}]\n" + "".join(f"{n} = {v}\n" for n, v in eps.items())
                for group, eps in entry_points.items()
            )
        )
        for module, source in (modules or {}).items():
            target = self.path.joinpath(*module.split(".")).with_suffix(".py")
            target.parent.mkdir(parents=True, exist_ok=True)
            for parent in target.relative_to(self.path).parents:
                if str(parent) != ".":
                    (self.path / parent / "__init__.py").touch()
            target.write_text(textwrap.dedent(source))

    def discover(self, group: str) -> list[EntryPoint]:
        """What this site alone offers, as a host's ``discover``."""
        return entry_points(group, [str(self.path)])

    def host(self) -> PluginHost:
        """A plugin host that sees only this site's distributions."""
        return PluginHost(discover=self.discover)

    def env(self) -> dict[str, str]:
        """The environment of a subprocess that sees this site besides the installed ones."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "CONTAINERS_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.path), env.get("PYTHONPATH", "")]))
        return env


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    """A fresh fake site, importable in this process for the test's duration."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    before = set(sys.modules)
    yield FakeSite(path)  # type: ignore[misc]
    for name in set(sys.modules) - before:  # the fake modules must not leak into other tests
        module = sys.modules.get(name)
        if module is not None and str(getattr(module, "__file__", "") or "").startswith(str(path)):
            del sys.modules[name]


#: a plugin module offering one driver class (a vfs subclass) under ``NAME``
def driver_plugin(
    name: str, *, class_name: str | None = None, priority: int = 50, aliases: tuple[str, ...] = ()
) -> str:
    own = class_name or name
    return f"""
        from containers_storage.drivers.api import DriverInfo
        from containers_storage.hookspecs import hookimpl
        from containers_storage_vfs.driver import VFSDriver

        class Driver(VFSDriver):
            name = {own!r}

        @hookimpl
        def cstorage_drivers():
            return [DriverInfo(name={name!r}, load=lambda: Driver, priority={priority}, aliases={aliases!r})]
        """
