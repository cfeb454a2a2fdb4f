"""Go-compatible JSON and RFC 3339 timestamps."""

from __future__ import annotations

import pytest

from containers_storage.gojson import GoTime, dumps, go_map


def test_go_escapes_and_compact() -> None:
    assert dumps({"b": "<a & b>", "a": "ü\u2028"}) == '{"b":"\\u003ca \\u0026 b\\u003e","a":"ü\\u2028"}'
    assert dumps(go_map({"b": 1, "a": [1, 2]})) == '{"a":[1,2],"b":1}'
    assert dumps({"q": 'x"\n\t\\'}) == '{"q":"x\\"\\n\\t\\\\"}'


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("2026-11-29T09:55:29.450013781Z", "2026-11-29T09:55:29.450013781Z"),
        ("2024-05-01T10:20:30.123450000Z", "2024-05-01T10:20:30.12345Z"),
        ("2024-05-01T10:20:30Z", "2024-05-01T10:20:30Z"),
        ("2024-05-01T10:20:30.5+02:00", "2024-05-01T10:20:30.5+02:00"),
        ("2024-05-01T10:20:30-00:00", "2024-05-01T10:20:30Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
    ],
)
def test_rfc3339_round_trip(text: str, out: str) -> None:
    assert GoTime.parse(text).rfc3339nano() == out


def test_offsets_are_the_same_instant() -> None:
    assert GoTime.parse("2024-05-01T10:20:30+02:00").unix_ns == GoTime.parse("2024-05-01T08:20:30Z").unix_ns
    assert GoTime.zero().is_zero and GoTime.zero().rfc3339nano() == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "bad", ["2024-05-01", "2024-13-01T00:00:00Z", "2024-05-01T00:00:00.1234567890Z", "x"]
)
def test_bad_times_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        GoTime.parse(bad)


def test_now_is_utc_with_nanoseconds() -> None:
    t = GoTime.now()
    assert t.offset == 0 and t.rfc3339nano().endswith("Z")
    assert GoTime.parse(t.rfc3339nano()) == t
