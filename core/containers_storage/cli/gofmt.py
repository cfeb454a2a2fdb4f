"""Go ``fmt`` verbs the tool's text output relies on: ``%q`` of a string, ``%v`` of a list."""

from __future__ import annotations

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
