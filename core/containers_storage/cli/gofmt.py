"""Go ``fmt`` verbs the tool's text output relies on: ``%q`` of a string, ``%v`` of a list."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ms at start-up; type checkers treat this as True

if TYPE_CHECKING:
    from collections.abc import Iterable

_SIMPLE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(text: str) -> str:
    """``strconv.Quote``: printable runes kept, others escaped; undecodable bytes as ``\\xNN``.

    Undecodable bytes reach us as surrogate escapes (how Python decodes argv and paths).
    """
    out = ['"']
    for ch in text:
        code = ord(ch)
        esc = _SIMPLE_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_list(items: Iterable[object]) -> str:
    """``%v`` of a slice: ``[a b c]``; ``[]`` when empty."""
    return "[" + " ".join(str(i) for i in items) + "]"


_DURATION_DIGITS = frozenset("0123456789.")
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds; ValueError with Go's wording."""
    invalid = ValueError(f"time: invalid duration {go_quote(text)}")
    rest = text
    sign = 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        i = 0
        while i < len(rest) and rest[i] in _DURATION_DIGITS:
            i += 1
        number, rest = rest[:i], rest[i:]
        if not number or number == "." or number.count(".") > 1:
            raise invalid
        j = 0
        while j < len(rest) and rest[j] not in _DURATION_DIGITS:
            j += 1
        unit, rest = rest[:j], rest[j:]
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        scale = _DURATION_UNITS[unit]
        whole, _, fraction = number.partition(".")
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > 1 << 63:  # Go's durations are int64 nanoseconds
            raise invalid
    if total == 1 << 63 and sign > 0:
        raise invalid
    return sign * total
