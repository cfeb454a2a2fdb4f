"""A reader for the plain TOML that storage.conf files hold, without ``tomllib``.

``tomllib`` imports ``re``, ``typing`` and ``datetime`` -- about as long as a bare
interpreter start, on every command of a machine with a storage.conf. This reader takes
only a strict subset: table headers of bare keys, ``key = value`` lines with bare keys,
values that are basic strings without escapes, literal strings, decimal integers,
booleans, arrays of those (over several lines, with comments and a trailing comma) and
one-line inline tables of those. Anything else -- escapes, dotted or quoted keys,
floats, dates, multi-line strings, a key or table defined twice, control characters,
CR -- makes :func:`loads` return None, and the caller uses ``tomllib`` (so errors are
always ``tomllib``'s). For what it accepts, the result is what ``tomllib.loads`` gives
(``tests/core/test_simpletoml.py`` checks that on generated files).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_DIGITS = frozenset("0123456789")
#: control characters TOML forbids (tab and newline allowed), and CR (CRLF files go to tomllib)
_CONTROL = frozenset(chr(i) for i in range(32) if i not in (9, 10)) | {"\x7f"}


class _Unsupported(Exception):
    """Outside the subset: the caller falls back to tomllib."""


def loads(text: str) -> dict[str, Any] | None:
    """The document, or None when it is not in the subset (see the module docstring)."""
    if not _CONTROL.isdisjoint(text):
        return None
    try:
        return _Reader(text).document()
    except (_Unsupported, IndexError, ValueError):
        return None


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.root: dict[str, Any] = {}
        #: ids of tables made by a header (defined) and of inline tables (closed)
        self.defined: set[int] = set()
        self.inline: set[int] = set()

    # -- scanning ---------------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def spaces(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.pos += 1

    def end_of_line(self) -> None:
        """Whitespace, an optional comment, then a newline or the end."""
        self.spaces()
        if self.peek() == "#":
            nl = self.text.find("\n", self.pos)
            self.pos = len(self.text) if nl < 0 else nl
        if self.peek() == "\n":
            self.pos += 1
        elif self.peek():
            raise _Unsupported

    def blank_lines(self) -> None:
        """Whitespace, comments and newlines (inside arrays)."""
        while True:
            self.spaces()
            c = self.peek()
            if c == "#":
                nl = self.text.find("\n", self.pos)
                self.pos = len(self.text) if nl < 0 else nl
            elif c == "\n":
                self.pos += 1
            else:
                return

    def bare_key(self) -> str:
        start = self.pos
        while self.peek() in _BARE and self.peek():
            self.pos += 1
        if self.pos == start:
            raise _Unsupported
        return self.text[start : self.pos]

    # -- structure --------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        table = self.root
        while self.pos < len(self.text):
            self.spaces()
            c = self.peek()
            if c in ("#", "\n", ""):
                self.end_of_line()
            elif c == "[":
                table = self.header()
            else:
                key = self.bare_key()
                self.spaces()
                if self.peek() != "=":
                    raise _Unsupported
                self.pos += 1
                self.spaces()
                value = self.value()
                if key in table:
                    raise _Unsupported
                table[key] = value
                self.end_of_line()
        return self.root

    def header(self) -> dict[str, Any]:
        self.pos += 1
        if self.peek() == "[":
            raise _Unsupported  # array of tables
        self.spaces()
        path = [self.bare_key()]
        self.spaces()
        while self.peek() == ".":
            self.pos += 1
            self.spaces()
            path.append(self.bare_key())
            self.spaces()
        if self.peek() != "]":
            raise _Unsupported
        self.pos += 1
        self.end_of_line()
        table = self.root
        for name in path:
            nxt = table.get(name)
            if nxt is None:
                nxt = table[name] = {}
            elif not isinstance(nxt, dict) or id(nxt) in self.inline:
                raise _Unsupported
            table = nxt
        if id(table) in self.defined or any(not isinstance(v, dict) for v in table.values()):
            # defined twice, or keys already set in it (only sub-tables may precede)
            raise _Unsupported
        self.defined.add(id(table))
        return table

    # -- values -----------------------------------------------------------------------
    def value(self) -> Any:
        c = self.peek()
        if c == '"':
            return self.string('"')
        if c == "'":
            return self.string("'")
        if c == "[":
            return self.array()
        if c == "{":
            return self.inline_table()
        return self.scalar()

    def string(self, quote: str) -> str:
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise _Unsupported
        body = self.text[self.pos + 1 : end]
        if "\n" in body or (quote == '"' and "\\" in body) or self.text.startswith(quote * 3, self.pos):
            raise _Unsupported
        self.pos = end + 1
        return body

    def scalar(self) -> bool | int:
        start = self.pos
        while self.peek() and self.peek() not in " \t\n#,]}":
            self.pos += 1
        word = self.text[start : self.pos]
        if word == "true":
            return True
        if word == "false":
            return False
        digits = word[1:] if word[:1] in ("+", "-") else word
        if not digits or not _DIGITS.issuperset(digits) or (len(digits) > 1 and digits[0] == "0"):
            raise _Unsupported
        return int(word)

    def array(self) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        while True:
            self.blank_lines()
            if self.peek() == "]":
                self.pos += 1
                return out
            c = self.peek()
            if c in ("[", "{"):
                raise _Unsupported  # nested: not in the subset
            out.append(self.value())
            self.blank_lines()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "]":
                raise _Unsupported

    def inline_table(self) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        self.inline.add(id(out))
        self.spaces()
        if self.peek() == "}":
            self.pos += 1
            return out
        while True:
            self.spaces()
            key = self.bare_key()
            self.spaces()
            if self.peek() != "=":
                raise _Unsupported
            self.pos += 1
            self.spaces()
            if self.peek() in ("[", "{"):
                raise _Unsupported
            value = self.value()
            if key in out:
                raise _Unsupported
            out[key] = value
            self.spaces()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() == "}":
                self.pos += 1
                return out
            else:
                raise _Unsupported
