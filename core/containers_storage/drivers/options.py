"""Parsing of driver options (``key=value`` strings, config.md §7)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import InvalidOption

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_options(options: Iterable[str]) -> list[tuple[str, str]]:
    """Split each option at its first ``=``; key and value are whitespace-trimmed and the
    key lower-cased (upstream compares keys case-insensitively)."""
    out = []
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep:
            raise InvalidOption(message=f"unable to parse key/value option: {opt}")
        out.append((key.strip().lower(), value.strip()))
    return out


def mount_options(driver: str, options: Iterable[str]) -> list[str]:
    """The mount options the first ``.mountopt`` or ``<driver>.mountopt`` among a
    driver's options gives, split at commas; [] when none does (upstream
    GetMountOptions)."""
    wanted = (".mountopt", f"{driver}.mountopt")
    for opt in options:  # one at a time: a bad option after the one wanted is not read
        ((key, value),) = parse_options([opt])
        if key in wanted:
            return value.split(",")
    return []


def default_mount_options() -> list[str]:
    """:func:`mount_options` of the driver and options of the system configuration
    (upstream GetDefaultMountOptions)."""
    import os

    from ..config import system_options

    opts, _ = system_options(os.environ)
    return mount_options(opts.driver_name, opts.driver_options)


def strip_prefix(key: str, *prefixes: str) -> str:
    """Drop a driver prefix (``overlay.``, ``.``) from an option key."""
    for p in prefixes:
        if key.startswith(p):
            return key[len(p) :]
    return key


def parse_size(value: str) -> int:
    """``<number>[ ][unit][i][b]`` in binary multiples (``10G``, ``1.5GiB``, ``4096``)."""
    m = _SIZE_RE.match(value)
    if not m:
        raise InvalidOption(message=f"invalid size: {value!r}")
    number, unit = float(m.group(1)), m.group(2).lower()
    return int(number * (1024 ** _UNITS[unit]))


def parse_bool(value: str) -> bool:
    """Go's strconv.ParseBool."""
    v = value.strip()
    if v in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if v in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise InvalidOption(message=f'strconv.ParseBool: parsing "{value}": invalid syntax')
