"""Hook specifications: the plugin author's reference.

The contract these hooks serve is in the repository's ``docs/spec/``: ``driver-api.md``
(what a graph driver does, and the conformance scenarios of
:mod:`containers_storage.testing.conformance`), ``on-disk.md``, ``cli.md`` and
``config.md``.

containers-storage has three extension points, each a pluggy hook below. A plugin is a
module (or object) with functions named like these hooks and decorated with
:data:`hookimpl`; it is found through an entry point:

* group ``containers_storage.drivers`` -- one entry per graph driver, the entry point's
  name being the driver's name (``vfs = "containers_storage_vfs.plugin"``); the plugin it
  points at offers exactly that driver (a distribution with two drivers points two entry
  points at two objects, ``pkg.plugin:first`` and ``pkg.plugin:second``). When a store
  names its driver, only that entry point is imported. A name that two distributions
  offer is refused with an error naming both, as upstream refuses a second registration
  of a driver name (an alias that takes another driver's name is found once every
  plugin is loaded: when probing or listing). An entry point that cannot be imported is
  listed as broken by ``containers-storage drivers`` and reported, with its
  distribution, by any store that asks for it; stores using other drivers still open.
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pluggy

    from .additional_layers import AdditionalLayer
    from .drivers.api import DriverInfo
    from .locks.api import Lock

PROJECT = "containers_storage"

if TYPE_CHECKING:
    hookspec = pluggy.HookspecMarker(PROJECT)
    #: Decorate plugin functions with this (``@hookimpl`` or ``@hookimpl(trylast=True)``).
    hookimpl = pluggy.HookimplMarker(PROJECT)
else:
    # pluggy's markers only set an attribute, which pluggy reads at registration; these
    # set the very same one without importing pluggy (and typing, inspect) with every
    # driver plugin: the plugin host imports pluggy when a hook is really called.

    class _HookspecMarker:
        __slots__ = ()
        project_name = PROJECT

        def __call__(
            self, function=None, firstresult=False, historic=False, warn_on_impl=None, warn_on_impl_args=None
        ):
            def mark(func):
                if historic and firstresult:
                    raise ValueError("cannot have a historic firstresult hook")
                opts = {
                    "firstresult": firstresult,
                    "historic": historic,
                    "warn_on_impl": warn_on_impl,
                    "warn_on_impl_args": warn_on_impl_args,
                }
                setattr(func, PROJECT + "_spec", opts)
                return func

            return mark if function is None else mark(function)

    class _HookimplMarker:
        __slots__ = ()
        project_name = PROJECT

        def __call__(
            self,
            function=None,
            hookwrapper=False,
            optionalhook=False,
            tryfirst=False,
            trylast=False,
            specname=None,
            wrapper=False,
        ):
            def mark(func):
                opts = {
                    "wrapper": wrapper,
                    "hookwrapper": hookwrapper,
                    "optionalhook": optionalhook,
                    "tryfirst": tryfirst,
                    "trylast": trylast,
                    "specname": specname,
                }
                setattr(func, PROJECT + "_impl", opts)
                return func

            return mark if function is None else mark(function)

    hookspec = _HookspecMarker()
    hookimpl = _HookimplMarker()


@hookspec
def cstorage_drivers() -> list[DriverInfo]:  # type: ignore[empty-body]
    """Offer graph drivers.

    Called when the plugin is loaded, to learn which driver it provides. Return a list
    of :class:`~containers_storage.drivers.api.DriverInfo` (one for a plugin reached
    through an entry point): the driver's canonical name, which must be the entry
    point's name and the class's :attr:`~containers_storage.drivers.api.Driver.name`
    (a disagreement is refused at load, naming both); its aliases (``overlay2`` for
    ``overlay``), which share the canonical name's directory; its probing ``priority``;
    and a ``load`` callable that imports and returns the
    :class:`~containers_storage.drivers.api.Driver` subclass. Keep the plugin module
    itself light: import the driver's heavy code inside ``load``.

    How a store chooses among installed drivers when none is named (config.md §5),
    the same for every driver whoever ships it:

    1. a driver whose directory (its name or an alias) exists in the graph root wins --
       the store was made with it (vfs only when ``driver_priority`` is configured, as
       upstream); two such directories are an error asking to choose;
    2. otherwise the configured ``driver_priority`` names, then every installed driver
       by ``priority``, lower first (the built-in ones: overlay 10, btrfs 30, zfs 40,
       vfs 100), each probed in turn.

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
