"""Choosing and initialising the graph driver (config.md §5).

Explicit name (option, ``STORAGE_DRIVER``, ``storage.conf``, all folded into
``StoreOptions.driver_name`` by the caller) first; otherwise a driver that already owns
the graph root; otherwise the installed drivers in priority order, skipping those whose
probe says they cannot run here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import (
    PROBE_SKIPPABLE,
    DriverError,
    DriverNotInstalled,
    NoDriverAvailable,
)
from .api import Driver, DriverConfig, DriverInfo
from .options import check_known_options

if TYPE_CHECKING:
    from ..config import StoreOptions
    from ..plugins import PluginHost

#: upstream's probing order when no driver_priority is configured
DEFAULT_PRIORITY = ("overlay", "aufs", "btrfs", "zfs", "vfs")


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


def init_driver(info: DriverInfo, options: StoreOptions, requested_name: str) -> Driver:
    """Probe and construct one driver; probe failures propagate with their reason."""
    cls = info.load()
    config = driver_config(options, requested_name)
    check_known_options(cls, config)
    cls.probe(config)
    return cls(config)


def _not_installed(name: str, host: PluginHost) -> DriverNotInstalled:
    installed = host.installed_driver_names()
    have = ", ".join(installed) if installed else "none"
    return DriverNotInstalled(
        message=f'storage driver "{name}" is not installed (installed drivers: {have}); '
        f"install it with: pip install containers-storage-{name}"
    )


def _nothing_installed() -> NoDriverAvailable:
    return NoDriverAvailable(
        message="no storage driver is installed; install one, e.g.: pip install containers-storage-vfs"
    )


def open_driver(options: StoreOptions, host: PluginHost) -> Driver:
    """The driver a store with ``options`` uses."""
    if options.driver_name:
        info = host.driver_info(options.driver_name)
        if info is None:
            raise _not_installed(options.driver_name, host)
        return init_driver(info, options, options.driver_name)
    return _probe(options, host)


def _probe(options: StoreOptions, host: PluginHost) -> Driver:
    installed = host.load_all_drivers()
    if not installed:
        raise _nothing_installed()
    by_name: dict[str, DriverInfo] = {}
    for info in installed:
        for key in (info.name, *info.aliases):
            by_name[key] = info
    priority = list(options.driver_priority) or list(DEFAULT_PRIORITY)
    prior = [
        n
        for n in by_name
        if os.path.isdir(os.path.join(options.graph_root, n))
        and (n != "vfs" or options.driver_priority)
        and n in priority
    ]
    if len(prior) > 1:
        raise DriverError(
            message=f"{options.graph_root} contains several valid graphdrivers: {', '.join(prior)}; "
            "Please cleanup or explicitly choose storage driver (-s <DRIVER>)"
        )
    if prior:
        return init_driver(by_name[prior[0]], options, prior[0])
    reasons: list[str] = []
    tried: set[int] = set()
    candidates = [by_name[n] for n in priority if n in by_name]
    candidates += [i for i in installed if i not in candidates]
    for info in candidates:
        if id(info) in tried:
            continue
        tried.add(id(info))
        try:
            return init_driver(info, options, info.name)
        except PROBE_SKIPPABLE as e:
            reasons.append(f"{info.name}: {e}")
    detail = "; ".join(reasons)
    raise NoDriverAvailable(message=f"no supported storage backend found ({detail})")
