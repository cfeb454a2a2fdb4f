"""ID generation, ID validation and name lists (on-disk.md §3).

Every ID becomes a directory entry somewhere (``<layers>/<id>.tar-split.gz``,
``<images>/<id>/``, a driver's ``<home>/<id>``), so an ID must be usable as exactly one
path component: the same rule holds for IDs callers give and IDs read from records
someone else wrote. Names never become paths and keep upstream's freedom.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from ..errors import InvalidID
from ..gojson import go_quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

#: a layer's tar-split file ``<id>.tar-split.gz`` must fit in one directory entry
#: (NAME_MAX, 255 bytes); the same bound holds for every kind of ID
MAX_ID_BYTES = 255 - len(".tar-split.gz")


def generate_id(in_use: Callable[[str], bool] = lambda _id: False) -> str:
    """32 random bytes as lowercase hex; redrawn if the first 12 characters are all
    digits (it would look like a short numeric ID) or the ID is taken."""
    while True:
        candidate = os.urandom(32).hex()
        if candidate[:12].isdigit() or in_use(candidate):
            continue
        return candidate


def id_problem(id: str, pattern: re.Pattern[str] | None = None) -> str | None:
    """Why ``id`` cannot name one directory entry, or None when it can. ``pattern`` is
    a driver's further restriction (ZFS dataset names), matched against the whole ID."""
    if not id:
        return "it is empty"
    if id in (".", ".."):
        return 'it is "." or ".."'
    if "/" in id:
        return 'it contains "/"'
    if "\x00" in id:
        return "it contains a NUL character"
    try:
        size = len(id.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if size > MAX_ID_BYTES:
        return f"it is longer than {MAX_ID_BYTES} bytes"
    if pattern is not None and pattern.fullmatch(id) is None:
        return f"the storage driver cannot use it (its IDs match {pattern.pattern})"
    return None


def validate_id(id: str, kind: str, pattern: re.Pattern[str] | None = None) -> str:
    """``id`` itself, or :class:`InvalidID` saying why it cannot be one."""
    if not isinstance(id, str):
        raise TypeError(f"{kind} ID must be a str, not {type(id).__name__}")
    problem = id_problem(id, pattern)
    if problem is not None:
        raise InvalidID(f"{kind} ID {go_quote(id)}", message=f"{InvalidID.default_message}: {problem}")
    return id


def id_path(base: str, id: str, kind: str, *rest: str) -> str:
    """``base/id/rest...`` for a valid ``id`` only: the one way records' IDs become paths."""
    return os.path.join(base, validate_id(id, kind), *rest)


def dedupe(names: Iterable[str]) -> tuple[str, ...]:
    """Drop repeated names, keeping the first occurrence's position."""
    return tuple(dict.fromkeys(names))
