"""Go formatting helpers: ``%q``, ``%v`` of lists, durations."""

from __future__ import annotations

import pytest

from containers_storage.cli.gofmt import go_list, go_quote, parse_duration


@pytest.mark.parametrize(("text", "quoted"), [
    ("/a b", '"/a b"'),
    ('q"\\', '"q\\"\\\\"'),
    ("tab\tnl\n", '"tab\\tnl\\n"'),
    ("\x01\x7f", '"\\x01\\x7f"'),
    ("ünï", '"ünï"'),
    ("\u00a0\u200b", '"\\u00a0\\u200b"'),
    ("\U000e0001", '"\\U000e0001"'),
    (b"\xff".decode("utf-8", "surrogateescape"), '"\\xff"'),
])
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_go_list() -> None:
    assert go_list([]) == "[]"
    assert go_list([0, 1000]) == "[0 1000]"
    assert go_list(["overlay.mountopt=nodev"]) == "[overlay.mountopt=nodev]"


@pytest.mark.parametrize(("text", "ns"), [
    ("24h", 24 * 3600 * 10**9), ("0", 0), ("1h30m", 5400 * 10**9), ("1.5s", 1_500_000_000),
    ("300ms", 300_000_000), ("2us", 2000), ("2µs", 2000), ("-1m", -60 * 10**9), ("7ns", 7),
    # the ends of Go's int64 nanoseconds, exactly (a float sum would round them)
    ("2562047h", 2562047 * 3600 * 10**9), ("9223372036854775807ns", 2**63 - 1),
    ("-9223372036854775808ns", -(2**63)), ("0.000000001s", 1), ("1.0000000001s", 10**9),
])
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(("text", "message"), [
    ("", 'time: invalid duration ""'),
    ("abc", 'time: invalid duration "abc"'),
    ("10", 'time: missing unit in duration "10"'),
    ("3d", 'time: unknown unit "d" in duration "3d"'),
    ("2562048h", 'time: invalid duration "2562048h"'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("100000000000000000000h", 'time: invalid duration "100000000000000000000h"'),
])
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_parse_duration_takes_ascii_digits_only() -> None:
    with pytest.raises(ValueError, match="time: invalid duration"):
        parse_duration("\u0663h")
