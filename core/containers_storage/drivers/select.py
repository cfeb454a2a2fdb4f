"""Choosing and initialising the graph driver (config.md §5).

Explicit name (option, ``STORAGE_DRIVER``, ``storage.conf``, all folded into
``StoreOptions.driver_name`` by the caller) first. Otherwise a driver whose directory
already exists in the driver root (the graph root, or the image store of a split store)
wins, whoever ships it: every installed driver's name and aliases are looked for, not
only the built-in ones (vfs only when ``driver_priority`` is configured, as upstream).
Otherwise the installed drivers are probed: those ``driver_priority`` names first, then
all of them by :attr:`~containers_storage.drivers.api.DriverInfo.priority` (lower first),
skipping those whose probe says they cannot run here.

An alias (``overlay2``) uses its canonical driver's directory (``overlay``), so that a
store opened under either name is one store; only a store that upstream's tool wrote
under the alias (``-s overlay2`` keeps its layers in ``<root>/overlay2``) is opened in
that directory, under either name, while the canonical one is missing or empty.
"""

from __future__ import annotations

import os

from ..errors import (
    PROBE_SKIPPABLE,
    DriverError,
    DriverLoadError,
    DriverNotInstalled,
    NoDriverAvailable,
)
from .api import Driver, DriverConfig, DriverInfo
from .options import check_known_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import StoreOptions
    from ..plugins import EntryStatus, PluginHost


def driver_config(options: StoreOptions, requested_name: str) -> DriverConfig:
    from ..idtools import IDMappings

    split = bool(options.image_store)
    return DriverConfig(
        requested_name=requested_name,
        root=options.image_store if split else options.graph_root,
        run_root=options.run_root,
        image_store=options.graph_root if split else "",
        options=tuple(options.driver_options),
        id_mappings=IDMappings(tuple(options.uid_map), tuple(options.gid_map)),
    )


def driver_root(options: StoreOptions) -> str:
    """Where the driver keeps its directory: the image store of a split store."""
    return options.image_store or options.graph_root


def home_name(info: DriverInfo, root: str) -> str:
    """The name of ``info``'s directory under ``root``, whichever of its names was asked
    for: the canonical name, unless that directory is missing or empty while an alias's
    holds a store (upstream's ``-s overlay2``)."""
    if _non_empty(os.path.join(root, info.name)):
        return info.name
    for alias in info.aliases:
        if _non_empty(os.path.join(root, alias)):
            return alias
    return info.name


def _non_empty(path: str) -> bool:
    try:
        return bool(os.listdir(path))
    except OSError:
        return False


def init_driver(info: DriverInfo, options: StoreOptions, host: PluginHost) -> Driver:
    """Probe and construct one driver; probe failures propagate with their reason."""
    cls = host.driver_class(info)
    config = driver_config(options, home_name(info, driver_root(options)))
    check_known_options(cls, config)
    cls.probe(config)
    return cls(config)


def _broken_list(broken: list[EntryStatus]) -> str:
    return "; ".join(f"{s.entry_point.name} from {s.origin}: {s.error}" for s in broken)


def _not_installed(name: str, host: PluginHost) -> DriverNotInstalled:
    installed = host.installed_driver_names()
    have = ", ".join(installed) if installed else "none"
    broken = host.broken_drivers()
    unloadable = f"; installed but not loadable: {_broken_list(broken)}" if broken else ""
    return DriverNotInstalled(
        message=f'storage driver "{name}" is not installed (installed drivers: {have}{unloadable}); '
        f"install it with: pip install containers-storage-{name}"
    )


def open_driver(options: StoreOptions, host: PluginHost) -> Driver:
    """The driver a store with ``options`` uses."""
    if options.driver_name:
        info = host.driver_info(options.driver_name)
        if info is None:
            raise _not_installed(options.driver_name, host)
        return init_driver(info, options, host)
    return _probe(options, host)


def _probe(options: StoreOptions, host: PluginHost) -> Driver:
    installed = host.load_all_drivers()
    broken = host.broken_drivers()
    if not installed:
        if broken:
            raise NoDriverAvailable(message=f"no storage driver could be loaded: {_broken_list(broken)}")
        raise NoDriverAvailable(
            message="no storage driver is installed; install one, e.g.: pip install containers-storage-vfs"
        )
    root = driver_root(options)
    by_name = {key: info for info in installed for key in (info.name, *info.aliases)}
    for status in broken:  # its store is there, but we cannot open it without the driver
        if os.path.exists(os.path.join(root, status.entry_point.name)):
            raise DriverLoadError(
                message=f"{root} holds a store of the storage driver "
                f'"{status.entry_point.name}" from {status.origin}, which cannot be loaded: {status.error}'
            )
    prior: dict[str, str] = {}  # canonical name -> a directory found
    for key in sorted(by_name):
        if os.path.exists(os.path.join(root, key)):
            prior.setdefault(by_name[key].name, key)
    configured = list(options.driver_priority)
    eligible = [n for n in prior if n != "vfs" or configured]
    if eligible:
        if len(prior) > 1:
            raise DriverError(
                message=f"{root} contains several valid graphdrivers: {', '.join(prior.values())}; "
                "Please cleanup or explicitly choose storage driver (-s <DRIVER>)"
            )
        name = eligible[0]
        host.refuse_duplicate(name)
        return init_driver(by_name[name], options, host)
    reasons = [f"{n}: not installed" for n in configured if n not in by_name]
    order = [by_name[n] for n in configured if n in by_name] + installed
    for info in {id(i): i for i in order}.values():
        host.refuse_duplicate(info.name)
        try:
            return init_driver(info, options, host)
        except PROBE_SKIPPABLE as e:
            reasons.append(f"{info.name}: {e}")
        except DriverLoadError as e:  # an installed driver whose class cannot be imported
            reasons.append(f"{info.name}: {e}")
    reasons += [f"{s.entry_point.name}: {s.error}" for s in broken]
    detail = "; ".join(reasons)
    raise NoDriverAvailable(message=f"no supported storage backend found ({detail})")
