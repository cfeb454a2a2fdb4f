"""The plugin host: a typed facade over pluggy, and plugin discovery.

The rest of the core asks this module for drivers, locks and additional layers; nothing
else calls ``pm.hook.*``. Discovery rules (the promises of :mod:`containers_storage.hookspecs`):

* a *named* driver loads only its own entry point (the lean reader of
  :mod:`containers_storage.entrypoints`, no full scan); probing or listing loads them all;
* loading is guarded everywhere: an entry point whose module raises, is missing or lacks
  the named attribute, or whose plugin offers a driver under another name, is recorded as
  broken with the reason (naming the driver and its distribution) and never crashes a
  listing or a store that uses another driver;
* one name, one source: a driver name (or alias) offered by two distributions, or by an
  entry point and an in-process :meth:`PluginHost.register`, is refused with an error
  naming both, as upstream refuses a second registration;
* ``containers_storage.plugins`` entry points load once per process, unless
  ``CONTAINERS_STORAGE_DISABLE_PLUGINS`` is set.

Every entry point is read by the lean reader, which knows the distribution of each (the
messages name it); stevedore's reader drops the distribution and merges two distributions
that point at the same module, so it cannot say who offers a name twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from . import hookspecs
from .entrypoints import EntryPoint, entry_points
from .errors import DriverLoadError, DuplicateDriver
from .structs import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import pluggy

    from .additional_layers import AdditionalLayer
    from .drivers.api import Driver, DriverInfo
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

IN_PROCESS = "registered in this process"
#: reads the entry points of one group (tests and embedders may pass their own)
Discover = Callable[[str], list[EntryPoint]]


@dataclass(frozen=True, slots=True)
class PluginRecord:
    """One installed plugin, for listings."""

    group: str
    name: str
    module: str
    distribution: str
    version: str


@dataclass(frozen=True, slots=True)
class EntryStatus:
    """One installed entry point and what loading it gave: the drivers it offers, or why
    it cannot be used (``error``, one line)."""

    entry_point: EntryPoint
    infos: tuple[DriverInfo, ...] = ()
    error: str = ""

    @property
    def origin(self) -> str:
        return origin_of(self.entry_point)


def origin_of(ep: EntryPoint) -> str:
    """``containers-storage-tiny 1.0.0``: the distribution an entry point comes from."""
    return f"{ep.distribution} {ep.version}".strip()


def exception_text(exc: BaseException) -> str:
    """One line saying what went wrong; our own errors are already sentences."""
    from .errors import StorageError

    text = " ".join(str(exc).split())
    if isinstance(exc, StorageError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginHost:
    """Owns the pluggy PluginManager and answers the core's questions.

    The manager (and pluggy, with ``typing`` and ``inspect``) is made when a hook is
    really needed: a call of a hook some registered plugin other than the built-ins
    implements, or the registration of a plugin that pluggy has to check. Until then
    plugins wait in a list -- only the built-ins and driver modules whose one hook is a
    plain ``cstorage_drivers()`` (which the host calls directly) -- and the lock hook
    calls the built-ins' implementations itself, in pluggy's order.
    """

    def __init__(self, discover: Discover = entry_points) -> None:
        self._pm: pluggy.PluginManager | None = None
        #: (plugin, name) registered while there is no manager, in registration order
        self._pending: list[tuple[object, str]] = []
        self._discover = discover
        self._lock = threading.RLock()
        #: driver names and aliases -> the offer, and who made it
        self._drivers: dict[str, DriverInfo] = {}
        self._origins: dict[str, str] = {}
        #: names offered by more than one source -> those sources
        self._conflicts: dict[str, tuple[str, ...]] = {}
        self._entries: dict[EntryPoint, EntryStatus] = {}
        self._plugin_errors: dict[EntryPoint, str] = {}
        self._all_drivers_loaded = False
        self._plugins_loaded = False
        import importlib

        for name in BUILTIN_PLUGINS:
            self._pending.append((importlib.import_module(name), name))

    @property
    def pm(self) -> pluggy.PluginManager:
        """The pluggy plugin manager, with every plugin registered so far."""
        if self._pm is None:
            import pluggy

            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            for plugin, name in self._pending:
                pm.register(plugin, name=name)
            self._pending.clear()
            self._pm = pm
        return self._pm

    # -- registration ------------------------------------------------------------------
    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding applications). A driver
        name it offers that an installed entry point or an earlier registration already
        offers is refused with :class:`DuplicateDriver`."""
        with self._lock:
            origin = f"plugin {name or type(plugin).__name__} {IN_PROCESS}"
            infos = _offers(plugin)
            taken = {ep.name: origin_of(ep) for ep in self._discover(DRIVER_GROUP)} if infos else {}
            for info in infos:
                for key in (info.name, *info.aliases):
                    other = self._origins.get(key) or taken.get(key)
                    if other is not None:
                        raise _duplicate(key, (other, origin))
            self.pm.register(plugin, name=name)
            self._adopt(infos, origin)

    def _adopt(self, infos: tuple[DriverInfo, ...], origin: str) -> None:
        for info in infos:
            for key in (info.name, *info.aliases):
                have = self._origins.get(key)
                if have is not None and self._drivers[key] is not info:
                    self._conflicts[key] = (*self._conflicts.get(key, (have,)), origin)
                    continue
                self._drivers[key] = info
                self._origins[key] = origin

    def _register_module(self, module: object, name: str) -> None:
        if self._pm is None and _can_wait(module):
            if all(name != n and module is not p for p, n in self._pending):
                self._pending.append((module, name))
            return
        if self.pm.get_plugin(name) is None and not self.pm.is_registered(module):
            self.pm.register(module, name=name)

    def _load_entry(self, ep: EntryPoint) -> EntryStatus:
        """Import one driver entry point, guarded: a failure becomes the status's error."""
        status = self._entries.get(ep)
        if status is not None:
            return status
        try:
            plugin = ep.load()
            infos = _offers(plugin)
            if not infos:
                raise DriverLoadError(message=f"{_where(ep)} offers no driver (no cstorage_drivers result)")
            wrong = [i.name for i in infos if i.name != ep.name]
            if wrong:
                named = ", ".join(f'"{n}"' for n in wrong)
                raise DriverLoadError(
                    message=f"{_where(ep)} offers a driver named {named}: the entry point's name "
                    "must be the driver's name (DriverInfo.name and Driver.name)"
                )
            self._register_module(plugin, f"{DRIVER_GROUP}:{ep.name}")
        except Exception as exc:  # a broken plugin must not make every store unusable
            status = EntryStatus(ep, error=exception_text(exc))
        else:
            status = EntryStatus(ep, infos)
            self._adopt(infos, origin_of(ep))
        self._entries[ep] = status
        return status

    def load_external_plugins(self) -> None:
        """Import the ``containers_storage.plugins`` group once (unless disabled)."""
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            if os.environ.get(DISABLE_ENV):
                return
            for ep in self._discover(PLUGIN_GROUP):
                try:
                    self._register_module(ep.load(), f"{PLUGIN_GROUP}:{ep.name}")
                except Exception as exc:  # a broken plugin must not make every store unusable
                    self._plugin_errors[ep] = exception_text(exc)
                    _report_broken(f"{ep.name} ({origin_of(ep)})", exc)

    # -- drivers -----------------------------------------------------------------------
    def driver_info(self, name: str) -> DriverInfo | None:
        """The driver offered under ``name`` (or an alias), importing only its plugin.
        None when nothing installed offers it; :class:`DriverLoadError` when its entry
        point is broken, :class:`DuplicateDriver` when two sources offer it."""
        with self._lock:
            self.refuse_duplicate(name)
            if name in self._drivers:
                return self._drivers[name]
            named = [ep for ep in self._discover(DRIVER_GROUP) if ep.name == name]
            if len({ep.distribution for ep in named}) > 1:
                raise _duplicate(name, tuple(origin_of(ep) for ep in named))
            for ep in named:
                status = self._load_entry(ep)
                self.refuse_duplicate(name)
                if status.error:
                    raise _broken(status)
            if name not in self._drivers:
                self.load_all_drivers()  # an alias is known only once its plugin is loaded
                self.refuse_duplicate(name)
            return self._drivers.get(name)

    def refuse_duplicate(self, name: str) -> None:
        """Raise :class:`DuplicateDriver` when more than one source offers ``name``."""
        sources = self._conflicts.get(name)
        if sources:
            raise _duplicate(name, sources)

    def origin(self, name: str) -> str:
        """Who offers the driver ``name``: a distribution and version, or a plugin
        registered in this process."""
        return self._origins.get(name, "an unknown source")

    def load_all_drivers(self) -> list[DriverInfo]:
        """Every loadable installed driver, by priority (lower first, then by name)."""
        with self._lock:
            if not self._all_drivers_loaded:
                self._all_drivers_loaded = True
                found = self._discover(DRIVER_GROUP)
                for name in dict.fromkeys(ep.name for ep in found):
                    same = [ep for ep in found if ep.name == name]
                    if len({ep.distribution for ep in same}) > 1:
                        self._conflicts[name] = tuple(origin_of(ep) for ep in same)
                for ep in found:
                    self._load_entry(ep)
            unique = {id(i): i for i in self._drivers.values()}
            return sorted(unique.values(), key=lambda i: (i.priority, i.name))

    def driver_entries(self) -> list[EntryStatus]:
        """Every installed driver entry point with its status (loads them all)."""
        with self._lock:
            self.load_all_drivers()
            return [self._load_entry(ep) for ep in self._discover(DRIVER_GROUP)]

    def broken_drivers(self) -> list[EntryStatus]:
        """The driver entry points that could not be loaded (after a full scan)."""
        with self._lock:
            self.load_all_drivers()
            return [s for s in self._entries.values() if s.error]

    def installed_driver_names(self) -> list[str]:
        return [i.name for i in self.load_all_drivers()]

    def driver_class(self, info: DriverInfo) -> type[Driver]:
        """Import the driver's class (``info.load``), guarded: failures and a class that
        calls itself by another name are :class:`DriverLoadError` naming the driver and
        its distribution."""
        from .drivers.api import Driver

        where = f'storage driver "{info.name}" from {self.origin(info.name)}'
        try:
            cls = info.load()
        except Exception as exc:
            raise DriverLoadError(message=f"{where} cannot be loaded: {exception_text(exc)}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Driver)):
            raise DriverLoadError(message=f"{where}: its load() returned {cls!r}, not a Driver subclass")
        own = getattr(cls, "name", None)
        if own != info.name:
            raise DriverLoadError(
                message=f"{where}: its class {cls.__module__}.{cls.__qualname__} is named {own!r}; "
                "Driver.name, DriverInfo.name and the entry point's name must agree"
            )
        return cls

    # -- locks and additional layers ------------------------------------------------------
    def lock(self, path: str, read_only: bool = False, kind: str = "posix") -> Lock:
        lock: Lock | None
        if self._pm is None:
            lock = self._call_waiting("cstorage_lock", path=path, read_only=read_only, kind=kind)
        else:
            lock = self.pm.hook.cstorage_lock(path=path, read_only=read_only, kind=kind)
        if lock is None:
            from .errors import ConfigError

            raise ConfigError(message=f"no lock provider for lock kind {kind!r}")
        return lock

    def _call_waiting(self, hook: str, **kwargs: Any) -> Any:
        """A firstresult hook over the waiting plugins, as pluggy calls it: tryfirst
        implementations, then plain, then trylast; later registrations first within each;
        the first result that is not None."""
        marker = hookspecs.PROJECT + "_impl"
        impls: list[tuple[int, Callable[..., Any]]] = []
        for plugin, _name in reversed(self._pending):
            func = getattr(plugin, hook, None)
            opts = getattr(func, marker, None)
            if func is not None and isinstance(opts, dict):
                impls.append((0 if opts.get("tryfirst") else 2 if opts.get("trylast") else 1, func))
        for _rank, func in sorted(impls, key=lambda item: item[0]):
            result = func(**kwargs)
            if result is not None:
                return result
        return None

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
            for ep in self._discover(group):
                out.append(PluginRecord(group, ep.name, ep.value, ep.distribution, ep.version))
        out += [
            PluginRecord("builtin", n.rsplit(".", 1)[1], n, "containers-storage", "") for n in BUILTIN_PLUGINS
        ]
        return out

    def plugin_error(self, record: PluginRecord) -> str:
        """Why a ``containers_storage.plugins`` entry point did not load ("" if it did or
        was not tried)."""
        for ep, text in self._plugin_errors.items():
            if (ep.name, ep.value, ep.distribution) == (record.name, record.module, record.distribution):
                return text
        return ""


def _offers(plugin: object) -> tuple[DriverInfo, ...]:
    """The drivers a plugin offers through its ``cstorage_drivers`` hook."""
    from .drivers.api import DriverInfo

    impl: Any = getattr(plugin, "cstorage_drivers", None)
    if impl is None:
        return ()
    infos = tuple(impl() or ())
    for info in infos:
        if not isinstance(info, DriverInfo):
            raise DriverLoadError(message=f"cstorage_drivers() returned {info!r}, not a DriverInfo")
    return infos


def _can_wait(plugin: object) -> bool:
    """Whether registering ``plugin`` with pluggy can wait for the manager: a module
    whose only hook implementation is a plain ``cstorage_drivers()`` (no required
    arguments, not a wrapper, no other spec name) -- pluggy's checks could not refuse it,
    and the host calls that function directly. Anything else is registered at once."""
    if type(plugin) is not type(os):
        return False
    marker = hookspecs.PROJECT + "_impl"
    for attr in dir(plugin):
        value = getattr(plugin, attr, None)
        opts = getattr(value, marker, None)
        if not isinstance(opts, dict):
            continue
        code = getattr(value, "__code__", None)
        if (
            attr != "cstorage_drivers"
            or code is None
            or code.co_argcount > len(getattr(value, "__defaults__", None) or ())
            or opts.get("wrapper")
            or opts.get("hookwrapper")
            or opts.get("specname") not in (None, "cstorage_drivers")
        ):
            return False
    return True


def _where(ep: EntryPoint) -> str:
    return f'entry point "{ep.name} = {ep.value}" of {origin_of(ep)}'


def _broken(status: EntryStatus) -> DriverLoadError:
    ep = status.entry_point
    return DriverLoadError(
        message=f'storage driver "{ep.name}" from {status.origin} is installed but cannot be loaded: '
        f"{status.error}"
    )


def _duplicate(name: str, sources: tuple[str, ...]) -> DuplicateDriver:
    listed = " and ".join(sorted(set(sources)))
    hint = "" if any(s.endswith(IN_PROCESS) for s in sources) else " (uninstall one of them)"
    return DuplicateDriver(
        message=f'storage driver "{name}" is offered by {listed}; one name must have one source{hint}'
    )


def _report_broken(name: str, exc: BaseException) -> None:
    import sys

    print(f"containers-storage: cannot load plugin {name}: {exception_text(exc)}", file=sys.stderr)


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_plugin_host() -> PluginHost:
    """The process-wide plugin host (created on first use)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost()
        return _host
