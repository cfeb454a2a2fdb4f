"""The mflag dialect (cli.md §1.1), tested on the parser alone."""

from __future__ import annotations

import pytest

from containers_storage.cli.flags import Flag, FlagError, FlagSet, HelpRequested


def make(values: dict[str, object] | None = None) -> tuple[FlagSet, dict[str, object]]:
    values = {} if values is None else values
    fs = FlagSet("test", values)
    fs.extend([
        Flag(("-graph", "g"), "graph", "string", "Root"),
        Flag(("-json", "j"), "json", "bool", "JSON"),
        Flag(("-quiet", "q"), "quiet", "bool", "Quiet"),
        Flag(("-name", "n"), "names", "list", "Name"),
        Flag(("-file", "f"), "file", "string", "File"),
        Flag(("-max", "m"), "max", "string", "Max", "24h"),
        Flag(("#help", "-help"), "help", "bool", "Print usage"),
    ])
    return fs, values


def parse(*args: str) -> tuple[list[str], dict[str, object], list[str]]:
    fs, values = make()
    warnings: list[str] = []
    rest = fs.parse(list(args), warnings.append)
    return rest, values, warnings


@pytest.mark.parametrize("args", [
    ["--graph=/a"], ["--graph", "/a"], ["-g", "/a"], ["-g=/a"], ["--graph='/a'"], ['--graph="/a"'],
])
def test_string_forms(args: list[str]) -> None:
    rest, values, _ = parse(*args, "pos")
    assert values["graph"] == "/a"
    assert rest == ["pos"]


def test_value_may_start_with_dash() -> None:
    _, values, _ = parse("--file", "-j")
    assert values["file"] == "-j" and values["json"] is False


@pytest.mark.parametrize(("word", "expected"), [
    ("--json", True), ("-j", True), ("--json=false", False), ("--json=0", False), ("--json=T", True),
    ("--json=True", True), ("-j=F", False),
])
def test_bool_forms(word: str, expected: bool) -> None:
    assert parse(word)[1]["json"] is expected


def test_bool_does_not_consume_value() -> None:
    rest, values, _ = parse("--json", "false")
    assert values["json"] is True and rest == ["false"]


def test_invalid_bool_text() -> None:
    with pytest.raises(FlagError) as info:
        parse("--json=maybe")
    assert str(info.value) == (
        'invalid boolean value "maybe" for  --json: strconv.ParseBool: parsing "maybe": invalid syntax'
    )


def test_flags_stop_at_first_positional_and_after_double_dash() -> None:
    rest, values, _ = parse("-j", "ID", "--quiet")
    assert rest == ["ID", "--quiet"] and values["quiet"] is False
    rest, _, _ = parse("--", "-j")
    assert rest == ["-j"]
    rest, _, _ = parse("-", "-j")
    assert rest == ["-", "-j"]


def test_letter_groups() -> None:
    _, values, _ = parse("-jq")
    assert values["json"] is True and values["quiet"] is True
    rest, values, _ = parse("-jf", "path", "pos")
    assert values["file"] == "path" and rest == ["pos"]


def test_single_dash_long_name_is_a_letter_group() -> None:
    with pytest.raises(FlagError, match="^flag provided but not defined: -json$"):
        parse("-json")


def test_unknown_flags() -> None:
    with pytest.raises(FlagError, match="^flag provided but not defined: --nope$"):
        parse("--nope")
    with pytest.raises(FlagError, match="^flag provided but not defined: -x$"):
        parse("-x")


def test_missing_value() -> None:
    with pytest.raises(FlagError, match="^flag needs an argument: -f$"):
        parse("-f")
    with pytest.raises(FlagError, match="^flag needs an argument: --file$"):
        parse("--file")


def test_list_flags_append_without_splitting() -> None:
    _, values, _ = parse("-n", "a,b", "--name=c", "--name", "d")
    assert values["names"] == ["a,b", "c", "d"]


def test_help_forms() -> None:
    with pytest.raises(HelpRequested):
        parse("-h")
    _, values, warnings = parse("-help")
    assert values["help"] is True
    assert warnings and "'-help' is deprecated" in warnings[0]
    _, values, warnings = parse("--help")
    assert values["help"] is True and not warnings


def test_values_are_shared_between_passes() -> None:
    values: dict[str, object] = {}
    first, _ = make(values)
    first.parse(["-g", "/a", "-n", "x"], lambda _: None)
    second, _ = make(values)
    second.parse(["-n", "y"], lambda _: None)
    assert values["graph"] == "/a" and values["names"] == ["x", "y"]


def test_defaults_table() -> None:
    fs, _ = make({"graph": "/root/x"})
    table = fs.defaults_table()
    lines = table.splitlines()
    assert [line.split()[0] for line in lines] == [
        "--file,", "--graph,", "--help", "--json,", "--max,", "--name,", "--quiet,"]
    assert any(line.startswith("  --max, -m=24h ") for line in lines)
    assert any(line.startswith("  --name, -n=[] ") for line in lines)
    assert any(line.startswith("  --json, -j ") for line in lines)
