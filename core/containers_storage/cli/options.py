"""How the tool turns its flags into store options (cli.md §3).

Defaults from the configuration are loaded only when the words before the command named
no root, driver or driver option; flags after the command then override single fields.
The configuration is read in any case, so a broken one stops every command (as upstream).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs ms at start-up; type checkers treat this as True

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from ..config import StoreOptions

_GLOBAL_FIELDS = ("graph_root", "run_root", "driver", "driver_options")


def wants_defaults(values: MutableMapping[str, object]) -> bool:
    """Step 2: nothing that selects a store was given before the command."""
    return not any(values.get(name) for name in _GLOBAL_FIELDS)


def load_defaults(values: MutableMapping[str, object]) -> None:
    """Replace the option fields by the configured defaults.

    The defaults replace the whole option set, so an ``--image-store`` or
    ``--transient-store`` given before the command is lost, as upstream. A configuration
    that cannot be read is remembered and reported when the store would open (upstream
    drops that error and opens the system's default store instead).
    """
    from ..config import StoreOptions, load_store_options
    from ..errors import ConfigError, StorageError

    try:
        opts = load_store_options()
    except ConfigError as exc:
        values["_defaults_error"] = exc
        opts = StoreOptions()
    except (StorageError, OSError, ValueError):
        opts = StoreOptions()
    values["graph_root"] = opts.graph_root
    values["run_root"] = opts.run_root
    values["driver"] = opts.driver_name
    values["driver_options"] = list(opts.driver_options)
    values["image_store"] = opts.image_store
    values["transient_store"] = opts.transient_store
    values["_loaded"] = opts


def store_options(values: MutableMapping[str, object]) -> StoreOptions:
    """Step 3-4: the options the store is opened with (upstream's ``GetStore`` rules, in
    :func:`~containers_storage.config.complete_store_options`).

    Raises :class:`~containers_storage.errors.IncompleteOptions` when neither root is known
    and :class:`~containers_storage.errors.ConfigError` when a configuration file is broken
    (also when both roots were given: upstream always reads ``storage.conf``).
    """
    from ..config import StoreOptions, complete_store_options
    from ..structs import replace

    error = values.get("_defaults_error")
    if isinstance(error, Exception):
        raise error
    base = values.get("_loaded")
    opts = replace(base) if isinstance(base, StoreOptions) else StoreOptions()
    opts.graph_root = str(values.get("graph_root") or "")
    opts.run_root = str(values.get("run_root") or "")
    opts.driver_name = str(values.get("driver") or "")
    driver_options = values.get("driver_options")
    opts.driver_options = [str(o) for o in driver_options] if isinstance(driver_options, list) else []
    opts.image_store = str(values.get("image_store") or "")
    opts.transient_store = bool(values.get("transient_store"))
    return complete_store_options(opts, os.environ)
