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
