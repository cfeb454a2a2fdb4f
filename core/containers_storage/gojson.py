"""JSON and timestamps exactly as Go's ``encoding/json`` and ``time`` write them.

Upstream's records and the tool's ``--json`` output are produced by Go; byte-for-byte
compatibility needs the same escaping (``<>&`` and U+2028/U+2029 as ``\\uXXXX``, other
non-ASCII text raw), compact separators, sorted map keys and RFC 3339 timestamps with
nanoseconds and trailing zeros trimmed (on-disk.md §2).
"""

from __future__ import annotations

import _thread
import time

from .structs import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from typing import Any

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)
#: sort_keys -> the encoder, made on first use
_encoders: dict[bool, Callable[[Any], str]] = {}


def go_escape(text: str) -> str:
    """Apply Go's HTML-safe escapes to already-encoded JSON text.

    The escaped characters cannot occur outside string literals in JSON, so a plain
    substitution over the encoded document is exact.
    """
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        return text.translate(_ESCAPE_TABLE)
    return text


def _make_encoder(sort_keys: bool) -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)``'s
    ``encode``, built from the C accelerator directly: importing :mod:`json` imports its
    decoder and :mod:`re` as well."""
    try:
        from _json import encode_basestring, make_encoder
    except ImportError:  # pragma: no cover - CPython always has it
        import json

        return json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys
        ).encode

    def default(o: Any) -> Any:
        raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return str(encode_basestring(value))
        # markers (circular check), default, string encoder, indent, separators, sort_keys,
        # skipkeys, allow_nan -- what JSONEncoder.iterencode passes
        make = make_encoder({}, default, encode_basestring, None, ":", ",", sort_keys, False, False)
        return "".join(make(value, 0))

    return encode


#: JSON nesting upstream's decoder accepts (jsoniter's ``maxDepth``): records nested up to
#: this deep are read and written back; deeper ones are refused, as upstream refuses them
MAX_DEPTH = 10000
#: a thread stack roomy enough for MAX_DEPTH levels of the C decoder and encoder (pages
#: are only committed as they are used)
_DEEP_STACK = 64 << 20
_DEEP_LOCK = _thread.allocate_lock()  # not ``threading``: the tool starts without it


class NestedTooDeep(ValueError):
    """JSON nested deeper than :data:`MAX_DEPTH` levels."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_DEPTH} levels")


def _deeply(fn: Callable[[Any], Any], arg: Any) -> Any:
    """``fn(arg)`` for JSON nested deeper than Python's recursion limit (about 1000
    levels; upstream goes to 10,000): run in a thread with a large stack and a recursion
    limit for MAX_DEPTH levels. Only documents that failed the plain call come here."""
    import sys
    import threading

    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, fn(arg)))
        except RecursionError:
            outcome.append((False, NestedTooDeep()))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    with _DEEP_LOCK:
        limit = sys.getrecursionlimit()
        stack = threading.stack_size(_DEEP_STACK)
        try:
            sys.setrecursionlimit(max(limit, MAX_DEPTH + 20))
            worker = threading.Thread(target=run, name="deep-json")
            worker.start()
            worker.join()
        finally:
            threading.stack_size(stack)
            sys.setrecursionlimit(limit)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Compact Go-style JSON. Objects keep their insertion order unless ``sort_keys``:
    build struct-like objects in field order and pass Go maps through :func:`go_map`.
    Raises :class:`NestedTooDeep` past :data:`MAX_DEPTH` levels."""
    enc = _encoders.get(sort_keys)
    if enc is None:
        enc = _encoders[sort_keys] = _make_encoder(sort_keys)
    try:
        text = enc(value)
    except RecursionError:
        text = _deeply(enc, value)
    return go_escape(text)


def go_map(mapping: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``mapping`` with keys in the order Go writes a ``map[string]T``."""
    return {k: mapping[k] for k in sorted(mapping)}


class _ScanContext:
    """What the C scanner reads from a ``json.JSONDecoder`` (its defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str]

    def __init__(self) -> None:
        self.memo = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_scanner: Callable[[str, int], tuple[Any, int]] | None = None
_WHITESPACE = " \t\n\r"


def loads(text: str | bytes) -> Any:
    """``json.loads``, through the C scanner without importing :mod:`json` (and
    :mod:`re`) for well-formed UTF-8 documents; anything else -- an error to report, a
    byte order mark, UTF-16 -- goes to ``json.loads`` itself, so results and errors are
    its own. Nesting up to :data:`MAX_DEPTH` levels is read, as upstream does; deeper
    raises :class:`NestedTooDeep` (a ValueError, as for any malformed JSON)."""
    global _scanner
    if isinstance(text, bytes | bytearray):
        head = text[:4]
        if head.startswith(b"\xef\xbb\xbf") or b"\x00" in head:
            return _slow_loads(text)
        try:
            s = text.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return _slow_loads(text)
    else:
        s = text
    if _scanner is None:
        try:
            from _json import make_scanner
        except ImportError:  # pragma: no cover - CPython always has it
            return _slow_loads(text)
        _scanner = make_scanner(_ScanContext())  # type: ignore[arg-type]
    start = len(s) - len(s.lstrip(_WHITESPACE))
    try:
        value, end = _scanner(s, start)
    except (StopIteration, ValueError, RecursionError):
        return _slow_loads(text)
    if end != len(s) and s[end:].strip(_WHITESPACE):
        return _slow_loads(text)
    return value


def _slow_loads(text: str | bytes) -> Any:
    import json

    try:
        return json.loads(text)
    except RecursionError:
        return _deeply(json.loads, text)


# --- time ----------------------------------------------------------------------------
_RFC3339 = (
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    """The proleptic Gregorian date ``z`` days after 1970-01-01 (the inverse of
    :func:`_days_from_civil`)."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


#: ``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` by length, digits as ``0`` (see :func:`_parse_utc`)
_UTC_SHAPES = {
    20: "0000-00-00T00:00:00Z",
    **{n: "0000-00-00T00:00:00." + "0" * (n - 21) + "Z" for n in range(22, 31)},
}
_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")


def _parse_utc(text: str) -> int | None:
    """Nanoseconds of the common ``...Z`` form without building datetimes (records are
    loaded by the ten thousand); None sends anything else to the general parser.

    The shape is the pattern ``(\\d{4})-(\\d\\d)-(\\d\\d)T(\\d\\d):(\\d\\d):(\\d\\d)(?:\\.(\\d{1,9}))?Z``
    for ASCII digits, checked without ``re`` by mapping every digit to ``0``; other
    digits go to the general parser, which reads them as the pattern did."""
    if text.translate(_DIGITS_AS_ZERO) != _UTC_SHAPES.get(len(text)):
        return None
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if (
        not (1 <= month <= 12 and 1 <= day <= _MONTH_DAYS[month])
        or hour > 23
        or minute > 59
        or second > 59
    ):
        return None
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        return None
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    frac = text[20:-1]
    return seconds * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)


#: Go's zero ``time.Time`` (0001-01-01T00:00:00Z) in nanoseconds since the Unix epoch.
ZERO_UNIX_NS = -62135596800 * 1_000_000_000


@dataclass(frozen=True, slots=True, order=True)
class GoTime:
    """A point in time with nanosecond precision and the UTC offset it was written with
    (Go keeps both; Python's ``datetime`` would lose the nanoseconds)."""

    unix_ns: int
    #: seconds east of UTC; 0 is written as ``Z``
    offset: int = 0

    @classmethod
    def now(cls) -> GoTime:
        return cls(time.time_ns())

    @classmethod
    def zero(cls) -> GoTime:
        return cls(ZERO_UNIX_NS)

    @property
    def is_zero(self) -> bool:
        return self.unix_ns == ZERO_UNIX_NS

    @classmethod
    def parse(cls, text: str) -> GoTime:
        """Parse any RFC 3339 time (0-9 fractional digits, ``Z`` or a numeric offset)."""
        fast = _parse_utc(text)
        if fast is not None:
            return cls(fast)
        import re
        from datetime import UTC, datetime, timedelta

        m = re.match(_RFC3339, text)
        if m is None:
            raise ValueError(f"parsing time {text!r}: not an RFC 3339 time")
        year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
        frac = m.group(7) or ""
        nanos = int(frac.ljust(9, "0")) if frac else 0
        offset = 0
        if m.group(9):
            offset = (int(m.group(10)) * 3600 + int(m.group(11)) * 60) * (-1 if m.group(9) == "-" else 1)
        try:
            local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as exc:
            raise ValueError(f"parsing time {text!r}: {exc}") from None
        seconds = (local - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1) - offset
        return cls(seconds * 1_000_000_000 + nanos, offset)

    @classmethod
    def from_datetime(cls, dt: datetime) -> GoTime:
        from datetime import UTC, datetime, timedelta

        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        off = dt.utcoffset() or timedelta(0)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        ns = (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
        return cls(ns, int(off.total_seconds()))

    def to_datetime(self) -> datetime:
        """As an aware ``datetime`` (microsecond precision)."""
        from datetime import UTC, datetime, timedelta, timezone

        tz = timezone(timedelta(seconds=self.offset)) if self.offset else UTC
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return (epoch + timedelta(microseconds=self.unix_ns // 1000)).astimezone(tz)

    def _fields(self) -> tuple[int, int, int, int, int, int, int]:
        """Year, month, day, hour, minute, second, nanoseconds in the time's own offset."""
        seconds, nanos = divmod(self.unix_ns, 1_000_000_000)
        days, rest = divmod(seconds + self.offset, 86400)
        year, month, day = _civil_from_days(days)
        if not 1 <= year <= 9999:  # as datetime: out of range
            local, nanos = self._local_parts()
            return local.year, local.month, local.day, local.hour, local.minute, local.second, nanos
        return year, month, day, rest // 3600, rest // 60 % 60, rest % 60, nanos

    def _local_parts(self) -> tuple[datetime, int]:
        from datetime import datetime, timedelta

        seconds, nanos = divmod(self.unix_ns, 1_000_000_000)
        local = datetime(1970, 1, 1) + timedelta(seconds=seconds + self.offset)
        return local, nanos

    def _zone(self, colon: bool) -> str:
        if not self.offset:
            return "Z"
        sign = "-" if self.offset < 0 else "+"
        hours, minutes = divmod(abs(self.offset) // 60, 60)
        return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"

    def rfc3339nano(self) -> str:
        """Go's ``time.RFC3339Nano`` layout (what ``MarshalJSON`` writes)."""
        year, month, day, hour, minute, second, nanos = self._fields()
        frac = f".{nanos:09d}".rstrip("0") if nanos else ""
        clock = f"{hour:02d}:{minute:02d}:{second:02d}"
        return f"{year:04d}-{month:02d}-{day:02d}T{clock}{frac}{self._zone(True)}"

    def go_string(self) -> str:
        """Go's ``Time.String()`` form, ``2006-01-02 15:04:05.999999999 -0700 MST``."""
        year, month, day, hour, minute, second, nanos = self._fields()
        frac = f".{nanos:09d}".rstrip("0") if nanos else ""
        zone = "+0000 UTC" if not self.offset else f"{self._zone(False)} {self._zone(False)}"
        return f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}{frac} {zone}"

    def __str__(self) -> str:
        return self.rfc3339nano()


def format_time(t: GoTime) -> str:
    return t.rfc3339nano()


def parse_time(text: str) -> GoTime:
    return GoTime.parse(text)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's ``%q`` (``strconv.Quote``): printable characters kept, others escaped --
    error messages quote names and IDs this way."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)
