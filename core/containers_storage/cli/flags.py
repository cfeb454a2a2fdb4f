"""Command-line flags in the dialect of Docker's ``mflag`` package (cli.md §1.1).

A flag has one or more registered names. A long name is registered with a leading dash
(``-graph``) and written ``--graph``; a letter is written ``-g``. A name starting with
``#`` is deprecated: still accepted, hidden from the flag table, and using it prints a
warning. Both parsing passes share one value dictionary, so a flag given before the
command keeps its value in the command pass unless given again.
"""

from __future__ import annotations

import os

from .gofmt import go_list, go_quote

TYPE_CHECKING = False  # typing costs ms at start-up; type checkers treat this as True

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, MutableMapping
    from typing import Literal

    FlagKind = Literal["bool", "string", "list"]

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class FlagError(Exception):
    """A malformed command line; the message is the text upstream prints."""


class HelpRequested(Exception):
    """``-h`` (or an unregistered ``-help``/``--help``): Go's ``flag.ErrHelp``."""

    def __str__(self) -> str:
        return "flag: help requested"


class Flag:
    """One flag: its names as registered (``-graph``, ``g``, ``#help``), where it stores.

    A plain class rather than a dataclass: the tool builds dozens at start-up, and the
    ``dataclasses`` import alone would cost more than the whole parse.
    """

    __slots__ = ("default", "dest", "kind", "names", "usage")

    def __init__(self, names: tuple[str, ...], dest: str, kind: FlagKind, usage: str,
                 default: str | bool | None = None) -> None:
        self.names = names
        self.dest = dest
        self.kind = kind
        self.usage = usage
        self.default = default

    @property
    def visible_names(self) -> list[str]:
        return [n for n in self.names if not n.startswith("#")]


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``; raises ValueError with Go's wording."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"strconv.ParseBool: parsing {go_quote(text)}: invalid syntax")


def value_error(flag: str, value: str, reason: object) -> str:
    """The message for a flag value a command cannot use, in mflag's words, so the flag is
    named (upstream's own reason follows)."""
    return f"invalid value {go_quote(value)} for flag --{flag}: {reason}"


def _trim_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


class FlagSet:
    """The flags known in one parsing pass, writing into a shared value dictionary."""

    def __init__(self, name: str, values: MutableMapping[str, object]) -> None:
        self.name = name
        self.values = values
        self.flags: list[Flag] = []
        self._formal: dict[str, Flag] = {}
        #: each flag's value when it was registered: what the flag table shows (Go's DefValue)
        self._defaults: dict[str, str] = {}

    def add(self, flag: Flag) -> None:
        self.flags.append(flag)
        for name in flag.names:
            self._formal[name.lstrip("#")] = flag
        if flag.dest not in self.values:
            if flag.kind == "list":
                self.values[flag.dest] = []
            elif flag.kind == "bool":
                self.values[flag.dest] = bool(flag.default)
            else:
                self.values[flag.dest] = flag.default if isinstance(flag.default, str) else ""
        self._defaults.setdefault(flag.dest, self._shown_value(flag))

    def extend(self, flags: Iterable[Flag]) -> None:
        for flag in flags:
            self.add(flag)

    # -- parsing -------------------------------------------------------------------------
    def parse(self, args: list[str], warn: Callable[[str], None]) -> list[str]:
        """Consume leading flags of ``args``; return the positional words that follow.

        Raises :class:`FlagError` (text as upstream's) or :class:`HelpRequested`.
        """
        rest = list(args)
        while rest:
            word = rest[0]
            if len(word) < 2 or word[0] != "-":
                break
            if word == "--":
                rest.pop(0)
                break
            rest.pop(0)
            self._parse_one(word[1:], rest, warn)
        return rest

    def _parse_one(self, name: str, rest: list[str], warn: Callable[[str], None]) -> None:
        if not name or name[0] == "=":
            raise FlagError(f"bad flag syntax: -{name}")
        value: str | None = None
        if "=" in name:
            name, _, raw = name.partition("=")
            value = _trim_quotes(raw)
        flag = self._formal.get(name)
        if flag is None:
            if name in ("-help", "help", "h"):
                raise HelpRequested()
            if name.startswith("-") or len(name) == 1:
                raise FlagError(f"flag provided but not defined: -{name}")
            self._parse_letters(name, rest, warn)
            return
        if f"#{name}" in flag.names:
            replacement = next((n for n in flag.names if not n.startswith("#")), "")
            if replacement:
                warn(f"Warning: '-{name}' is deprecated, it will be replaced by '-{replacement}' soon. "
                     "See usage.\n")
            else:
                warn(f"Warning: '-{name}' is deprecated, it will be removed soon. See usage.\n")
        self._set(flag, name, value, rest)

    def _parse_letters(self, group: str, rest: list[str], warn: Callable[[str], None]) -> None:
        """``-abc`` that is no registered name: retried as ``-a -b -c``."""
        if any(letter not in self._formal for letter in group):
            raise FlagError(f"flag provided but not defined: -{group}")
        for letter in group:
            self._set(self._formal[letter], letter, None, rest)

    def _set(self, flag: Flag, name: str, value: str | None, rest: list[str]) -> None:
        if flag.kind == "bool":
            if value is None:
                self.values[flag.dest] = True
                return
            try:
                self.values[flag.dest] = parse_bool(value)
            except ValueError as exc:
                raise FlagError(f"invalid boolean value {go_quote(value)} for  -{name}: {exc}") from None
            return
        if value is None:
            if not rest:
                raise FlagError(f"flag needs an argument: -{name}")
            value = rest.pop(0)
        if flag.kind == "list":
            current = self.values[flag.dest]
            assert isinstance(current, list)
            current.append(value)
        else:
            self.values[flag.dest] = value

    # -- help ----------------------------------------------------------------------------
    def defaults_table(self) -> str:
        """Upstream's ``PrintDefaults``: one aligned row per visible flag, current values."""
        home = os.environ.get("HOME", "")
        rows: list[tuple[str, str]] = []
        for flag in sorted(self._unique_flags(), key=lambda f: f.visible_names[0].lstrip("-")):
            names = flag.visible_names
            if not names or not flag.usage:
                continue
            cell = "  -" + ", -".join(names)
            shown = self._defaults[flag.dest]
            if home and shown.startswith(home):
                shown = "~" + shown[len(home):]
            if shown not in ("", "false", "0"):
                cell += "=" + shown
            rows.append((cell, flag.usage))
        width = max([20, *(len(c) + 3 for c, _ in rows)])
        return "".join(f"{cell:<{width}} {usage}\n" for cell, usage in rows)

    def _unique_flags(self) -> list[Flag]:
        seen: list[Flag] = []
        for flag in self.flags:
            if flag.visible_names and flag not in seen:
                seen.append(flag)
        return seen

    def _shown_value(self, flag: Flag) -> str:
        value = self.values.get(flag.dest)
        if flag.kind == "list":
            return go_list(value if isinstance(value, list) else [])
        if flag.kind == "bool":
            return "true" if value else "false"
        return str(value or "")
