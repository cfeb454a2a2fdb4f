"""Hook specifications: the plugin author's reference.

containers-storage has three extension points, each a pluggy hook below. A plugin is a
module (or object) with functions named like these hooks and decorated with
:data:`hookimpl`; it is found through an entry point:

* group ``containers_storage.drivers`` -- one entry per graph driver, the entry point's
  name being the driver's name (``vfs = "containers_storage_vfs.plugin"``). When a store
  names its driver, only that entry point is imported.
* group ``containers_storage.plugins`` -- everything else (lock providers, additional
  layer stores). These are imported when a store opens, unless the environment variable
  ``CONTAINERS_STORAGE_DISABLE_PLUGINS`` is set to a non-empty value.

Built-in behaviour (the POSIX lock provider, the directory-layout additional layer store)
is registered the same way, so a plugin replaces it by answering first: hooks marked
*firstresult* stop at the first implementation that returns something other than None;
pluggy calls later-registered implementations first, and built-ins are ``trylast``.

Hot-path work never goes through hooks: the store calls hooks to *obtain* a driver class,
a lock or an additional-layer handle, then calls methods on those objects directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .additional_layers import AdditionalLayer
    from .drivers.api import DriverInfo
    from .locks.api import Lock

PROJECT = "containers_storage"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate plugin functions with this (``@hookimpl`` or ``@hookimpl(trylast=True)``).
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def cstorage_drivers() -> list[DriverInfo]:  # type: ignore[empty-body]
    """Offer graph drivers.

    Called when the plugin is registered, to learn which drivers it provides (usually
    one). Return a list of :class:`~containers_storage.drivers.api.DriverInfo`: the
    driver's canonical name, its aliases (``overlay2`` for ``overlay``), its probing
    priority (lower is tried first; upstream's order is overlay 10, btrfs 30, zfs 40,
    vfs 100) and a ``load`` callable that imports and returns the
    :class:`~containers_storage.drivers.api.Driver` subclass. Keep the plugin module
    itself light: import the driver's heavy code inside ``load``.

    Whether the driver can run *here* is answered by the class's
    :meth:`~containers_storage.drivers.api.Driver.probe`, which raises
    :class:`~containers_storage.errors.DriverNotSupported`,
    :class:`~containers_storage.errors.DriverPrerequisites` or
    :class:`~containers_storage.errors.IncompatibleFS` with the reason.

    Not firstresult: results of all plugins are collected.
    """


@hookspec(firstresult=True)
def cstorage_lock(path: str, read_only: bool, kind: str) -> Lock | None:  # type: ignore[empty-body]
    """Return the lock object for the lock file ``path``.

    Called whenever a store opens one of its lock files (``storage.lock``,
    ``layers.lock``, ``images.lock``, ``containers.lock``, ``mountpoints.lock``, digest
    locks). ``read_only`` is true for locks of read-only stores, which may only be taken
    for reading. ``kind`` is the configured lock kind: ``"posix"`` (the default, POSIX
    ``fcntl`` record locks that interoperate with upstream's Go processes) or
    ``"portable"`` (``filelock``, for filesystems without POSIX locks; *not*
    interoperable with upstream). Return None for kinds you do not provide.

    The returned object must implement :class:`~containers_storage.locks.api.Lock`.
    Within one process the same path must yield the same (counted) lock object.

    firstresult: the first non-None answer wins; the built-in providers are trylast.
    """


@hookspec(firstresult=True)
def cstorage_additional_layer(  # type: ignore[empty-body]
    digest: str, image_ref: str, stores: list[str]
) -> AdditionalLayer | None:
    """Find a layer in an additional layer store.

    Called by the store when asked for a layer by its compressed ``digest``
    (``sha256:...``) for the image ``image_ref`` before it would pull or apply it.
    ``stores`` are the configured additional-layer-store locations (``dir[:ref]``
    strings from ``additionallayerstores``). Return an
    :class:`~containers_storage.additional_layers.AdditionalLayer` handle -- which can put
    the layer into the store (``put_as``), reports its uncompressed digest and compressed
    size, and must be ``release``\\ d -- or None when the layer is not available there.

    firstresult: the first non-None answer wins; the built-in directory-layout store is
    trylast.
    """
