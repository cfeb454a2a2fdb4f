"""The plugin host: a typed facade over pluggy, and plugin discovery.

The rest of the core asks this module for drivers, locks and additional layers; nothing
else calls ``pm.hook.*``. Discovery rules (see :mod:`containers_storage.hookspecs`):

* a *named* driver loads only its own entry point (lean lookup, no full scan);
* probing or listing loads every driver through stevedore;
* ``containers_storage.plugins`` entry points load once per process, unless
  ``CONTAINERS_STORAGE_DISABLE_PLUGINS`` is set.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .entrypoints import entry_points

if TYPE_CHECKING:
    from .additional_layers import AdditionalLayer
    from .drivers.api import DriverInfo
    from .locks.api import Lock

DRIVER_GROUP = "containers_storage.drivers"
PLUGIN_GROUP = "containers_storage.plugins"
DISABLE_ENV = "CONTAINERS_STORAGE_DISABLE_PLUGINS"
#: built-in plugins, registered like external ones (trylast implementations)
BUILTIN_PLUGINS = (
    "containers_storage.locks.posix",
    "containers_storage.locks.portable",
    "containers_storage.als",
)


@dataclass(frozen=True, slots=True)
class PluginRecord:
    """One installed plugin, for listings."""

    group: str
    name: str
    module: str
    distribution: str
    version: str


class PluginHost:
    """Owns the pluggy PluginManager and answers the core's questions."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._lock = threading.RLock()
        self._drivers: dict[str, DriverInfo] = {}
        self._all_drivers_loaded = False
        self._plugins_loaded = False
        import importlib

        for name in BUILTIN_PLUGINS:
            self.pm.register(importlib.import_module(name), name=name)

    # -- registration ------------------------------------------------------------------
    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding applications)."""
        with self._lock:
            self.pm.register(plugin, name=name)
            self._collect_drivers(plugin)

    def _collect_drivers(self, plugin: object) -> None:
        impl = getattr(plugin, "cstorage_drivers", None)
        if impl is None:
            return
        for info in impl():
            for key in (info.name, *info.aliases):
                self._drivers.setdefault(key, info)

    def _register_module(self, module: object, name: str) -> None:
        if self.pm.get_plugin(name) is None and not self.pm.is_registered(module):
            self.pm.register(module, name=name)
            self._collect_drivers(module)

    def load_external_plugins(self) -> None:
        """Import the ``containers_storage.plugins`` group once (unless disabled)."""
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            if os.environ.get(DISABLE_ENV):
                return
            for ep in entry_points(PLUGIN_GROUP):
                try:
                    module = ep.load()
                except Exception as exc:  # a broken plugin must not make every store unusable
                    _report_broken(ep.name, exc)
                    continue
                self._register_module(module, f"{PLUGIN_GROUP}:{ep.name}")

    # -- drivers -----------------------------------------------------------------------
    def driver_info(self, name: str) -> DriverInfo | None:
        """The driver offered under ``name`` (or an alias), importing only its plugin."""
        with self._lock:
            if name in self._drivers:
                return self._drivers[name]
            for ep in entry_points(DRIVER_GROUP):
                if ep.name == name:
                    self._register_module(ep.load(), f"{DRIVER_GROUP}:{ep.name}")
                    break
            if name not in self._drivers:
                self.load_all_drivers()
            return self._drivers.get(name)

    def load_all_drivers(self) -> list[DriverInfo]:
        """Every installed driver (stevedore over the entry points), by priority."""
        with self._lock:
            if not self._all_drivers_loaded:
                self._all_drivers_loaded = True
                from stevedore import ExtensionManager

                mgr = ExtensionManager(DRIVER_GROUP, invoke_on_load=False, on_load_failure_callback=_warn)
                for ext in mgr:
                    self._register_module(ext.plugin, f"{DRIVER_GROUP}:{ext.name}")
            unique = {id(i): i for i in self._drivers.values()}
            return sorted(unique.values(), key=lambda i: (i.priority, i.name))

    def installed_driver_names(self) -> list[str]:
        return [i.name for i in self.load_all_drivers()]

    # -- locks and additional layers ------------------------------------------------------
    def lock(self, path: str, read_only: bool = False, kind: str = "posix") -> Lock:
        lock: Lock | None = self.pm.hook.cstorage_lock(path=path, read_only=read_only, kind=kind)
        if lock is None:
            from .errors import ConfigError

            raise ConfigError(message=f"no lock provider for lock kind {kind!r}")
        return lock

    def additional_layer(self, digest: str, image_ref: str, stores: list[str]) -> AdditionalLayer | None:
        result: AdditionalLayer | None = self.pm.hook.cstorage_additional_layer(
            digest=digest, image_ref=image_ref, stores=stores
        )
        return result

    # -- listing -------------------------------------------------------------------------
    def installed(self) -> list[PluginRecord]:
        """Installed drivers and plugins with the distribution each comes from."""
        out = []
        for group in (DRIVER_GROUP, PLUGIN_GROUP):
            for ep in entry_points(group):
                out.append(PluginRecord(group, ep.name, ep.value, ep.distribution, ep.version))
        out += [
            PluginRecord("builtin", n.rsplit(".", 1)[1], n, "containers-storage", "") for n in BUILTIN_PLUGINS
        ]
        return out


def _report_broken(name: str, exc: BaseException) -> None:
    import sys

    print(f"containers-storage: cannot load plugin {name}: {exc}", file=sys.stderr)


def _warn(manager: Any, entrypoint: Any, exc: BaseException) -> None:
    _report_broken(entrypoint.name, exc)


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_plugin_host() -> PluginHost:
    """The process-wide plugin host (created on first use)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost()
        return _host
