"""Where a rootless user's run-time state goes (upstream GetRootlessRuntimeDir)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def runtime_dir(uid: int | None = None, env: Mapping[str, str] | None = None) -> str:
    """``<runtime dir>/containers`` for ``uid`` (default: the rootless UID of ``env``),
    created 0700 if missing; the runtime dir is ``$XDG_RUNTIME_DIR``, else
    ``/run/user/<uid>`` under systemd when the user owns it privately, else
    ``$TMPDIR/containers-user-<uid>``, else ``<home>/rundir`` (config.md §3)."""
    from .config import rootless_runtime_dir, rootless_uid
    from .errors import ConfigError

    env = os.environ if env is None else env
    if uid is None:
        uid = rootless_uid(env)
    path = os.path.join(rootless_runtime_dir(env, uid), "containers")
    try:
        os.makedirs(path, 0o700, exist_ok=True)
    except OSError as e:
        raise ConfigError(message=f"unable to make rootless runtime: {e.strerror or e}") from None
    return path
