"""Parsing and checking of driver options (``key=value`` strings, config.md §7).

Every driver validates its options when it starts, with these helpers: a value that does
not parse is an error naming the option (:func:`option_value`), mount options are checked
word by word (:func:`check_mount_options`), and a driver that declares
:attr:`~containers_storage.drivers.api.Driver.option_keys` has any other option refused
before it is probed (:func:`check_known_options`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from ..errors import InvalidOption
from ..typeshim import TypeVar

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .api import Driver, DriverConfig

T = TypeVar("T")

#: compiled on first use (``re`` is not imported by drivers that take no size)
_SIZE_RE = r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$"
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
    import re

    m = re.match(_SIZE_RE, value)
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


def option_value(key: str, value: str, parse: Callable[[str], T]) -> T:
    """``parse(value)``; its :class:`InvalidOption` names the option first
    (``overlay.size: invalid size: 'abc'``)."""
    try:
        return parse(value)
    except InvalidOption as e:
        raise InvalidOption(message=f"{key}: {e}") from None


#: words no layer mount may carry: they change what mount(2) does, not how
_OPERATION_WORDS = frozenset({"bind", "rbind", "remount"})
#: security-label words every filesystem takes (any value)
_LABEL_WORDS = frozenset({"context", "fscontext", "defcontext", "rootcontext"})


def check_mount_options(
    key: str,
    value: str,
    data: Mapping[str, Collection[str] | None],
    reserved: Collection[str] = (),
) -> None:
    """Refuse a word of the comma list ``value`` (the option ``key``) that is neither a
    generic mount flag (``nodev``, ``noatime``, ...), a security label nor one of the
    filesystem's ``data`` words: name -> allowed values (None: a bare word taking no
    value). ``reserved`` words are set by the driver itself. Checked when the driver
    starts, so a typo is not found by the first mount (upstream lets it through)."""
    from .mounts import _FLAG_WORDS

    for word in (w.strip() for w in _split_words(value)):
        if not word:
            continue
        name, sep, arg = word.partition("=")
        if name in reserved:
            raise InvalidOption(message=f'{key}: mount option "{name}" is set by the driver')
        if name in _OPERATION_WORDS:
            raise InvalidOption(message=f'{key}: "{name}" is not a mount option for a layer')
        if name in _LABEL_WORDS and sep:
            continue
        if name in _FLAG_WORDS and not sep:
            continue
        if name not in data:
            raise InvalidOption(message=f'{key}: unknown mount option "{word}"')
        allowed = data[name]
        if allowed is None:
            if sep:
                raise InvalidOption(message=f'{key}: mount option "{name}" takes no value')
        elif arg not in allowed:
            choices = ", ".join(sorted(allowed))
            raise InvalidOption(message=f'{key}: mount option "{name}" takes one of {choices}, not "{arg}"')


def _split_words(value: str) -> list[str]:
    """Split at commas outside double quotes (``context="a:s0:c1,c2"`` is one word)."""
    words, start, quoted = [], 0, False
    for i, c in enumerate(value):
        if c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            words.append(value[start:i])
            start = i + 1
    words.append(value[start:])
    return words


def check_known_options(cls: type[Driver], config: DriverConfig) -> None:
    """Refuse, before the driver is probed, an option its class does not declare in
    ``option_keys`` (keys compared without a ``<name>.`` or ``.`` prefix). Drivers with
    ``option_keys = None`` check their options themselves."""
    keys = cls.option_keys
    if keys is None:
        return
    prefixes = (f"{cls.name}.", f"{config.requested_name}.", ".")
    for key, _ in parse_options(config.options):
        if strip_prefix(key, *prefixes) not in keys:
            known = ", ".join(sorted(keys)) or "none"
            raise InvalidOption(
                message=f'storage driver "{cls.name}" does not know the option {key} (its options: {known})'
            )


def option_map(options: Iterable[str], *prefixes: str) -> dict[str, str]:
    """The options as ``{key: value}``, keys without any of ``prefixes`` (the last value
    of a key given twice wins): what a driver with ``option_keys`` reads them with."""
    return {strip_prefix(key, *prefixes): value for key, value in parse_options(options)}
