"""Bad usage: upstream's texts, streams and exit statuses (cli.md §1.2), checked before
any store is opened."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import run_main

GLOBAL_USAGE = "Usage: containers-storage command [options [...]]\n\nCommands:\n\n"


@pytest.fixture
def roots(tmp_path: Path) -> list[str]:
    return ["-g", str(tmp_path / "g"), "-R", str(tmp_path / "r")]


def test_no_arguments_prints_usage() -> None:
    r = run_main()
    assert r.status == 1
    assert r.stdout.startswith(GLOBAL_USAGE)
    assert "  check                         " in r.stdout
    assert r.stdout.endswith("\nOptions:\n")
    assert "--graph, -g" in r.stderr


def test_usage_lists_commands_in_upstream_order() -> None:
    listing = run_main().stdout.split("Commands:\n\n")[1].split("\n\n")[0]
    names = [line.split()[0] for line in listing.splitlines()]
    assert names[:3] == ["check", "container", "list-container-data"]
    assert names.index("wipe") == names.index("version") + 1
    assert names.index("layers") < names.index("storage-layers") < names.index("metadata")


def test_global_help_goes_to_stdout_and_exits_0() -> None:
    r = run_main("--help")
    assert r.status == 0
    assert r.stdout.startswith(GLOBAL_USAGE)
    assert "--storage-opt=[]" in r.stdout and r.stderr == ""


def test_deprecated_single_dash_help_warns() -> None:
    r = run_main("-help")
    assert r.status == 0
    assert "'-help' is deprecated" in r.stderr


def test_global_h_is_a_parse_error() -> None:
    r = run_main("-h")
    assert r.status == 1
    assert "flag: help requested while parsing arguments (1)\n" + GLOBAL_USAGE in r.stdout


def test_unknown_global_flag() -> None:
    r = run_main("--bogus", "layers")
    assert r.status == 1
    error = "flag provided but not defined: --bogus"
    assert r.stderr.startswith(f"{error}\nSee '{sys.argv[0]} containers-storage --help'.\n")
    assert r.stdout.startswith(f"{error} while parsing arguments (1)\n" + GLOBAL_USAGE)


def test_only_global_flags(roots: list[str]) -> None:
    r = run_main(*roots)
    assert r.status == 1 and r.stdout.startswith(GLOBAL_USAGE)


def test_unknown_command(roots: list[str]) -> None:
    r = run_main(*roots, "nope")
    assert (r.status, r.stdout, r.stderr) == (1, "nope: unrecognized command.\n", "")


def test_command_flag_error_exits_125(roots: list[str]) -> None:
    r = run_main(*roots, "layers", "--bogus")
    assert r.status == 125
    assert r.stderr == f"flag provided but not defined: --bogus\nSee '{sys.argv[0]} layers --help'.\n"
    assert r.stdout == ""


def test_command_bad_bool_exits_125(roots: list[str]) -> None:
    r = run_main(*roots, "layers", "--json=maybe")
    assert r.status == 125
    assert r.stderr.startswith('invalid boolean value "maybe" for  --json: strconv.ParseBool')


@pytest.mark.parametrize("word", ["--help", "-help", "-h"])
def test_command_help_exits_125(roots: list[str], word: str) -> None:
    r = run_main(*roots, "layers", word)
    assert r.status == 125
    assert r.stdout == "Usage: containers-storage layers [options [...]]\n\nList layers\n\nOptions:\n"
    assert "--tree, -t" in r.stderr and "--graph, -g=" in r.stderr


def test_too_few_arguments(roots: list[str]) -> None:
    r = run_main(*roots, "layer")
    assert r.status == 1
    assert r.stdout.startswith("layer: more arguments required.\nUsage: containers-storage layer ")


def test_too_many_arguments(roots: list[str]) -> None:
    r = run_main(*roots, "layers", "a", "b")
    assert r.status == 1
    assert r.stdout.startswith("layers: too many arguments ([a b]).\nUsage: containers-storage layers ")


def test_driver_without_roots_cannot_open() -> None:
    r = run_main("-s", "vfs", "status")
    assert r.status == 1
    assert r.stdout == (
        "error initializing: no storage runroot or graphroot specified: missing necessary StoreOptions\n"
    )


def test_missing_flag_value_after_command(roots: list[str]) -> None:
    r = run_main(*roots, "get-layer-data", "-f")
    assert r.status == 125
    assert r.stderr.startswith("flag needs an argument: -f\n")


ALIASES = {
    "createlayer": "create-layer", "importlayer": "import-layer", "createimage": "create-image",
    "createcontainer": "create-container", "deletelayer": "delete-layer", "deleteimage": "delete-image",
    "deletecontainer": "delete-container", "diff-size": "diffsize", "apply-diff": "applydiff",
    "umount": "unmount", "getnames": "get-names", "addnames": "add-names", "removenames": "remove-names",
    "setnames": "set-names", "setmetadata": "set-metadata", "listlayerdata": "list-layer-data",
    "getlayerdata": "get-layer-data", "setlayerdata": "set-layer-data", "listimagedata": "list-image-data",
    "getimagedata": "get-image-data", "getimagedatasize": "get-image-data-size",
    "getimagedatadigest": "get-image-data-digest", "setimagedata": "set-image-data",
    "listcontainerdata": "list-container-data", "getcontainerdata": "get-container-data",
    "getcontainerdatasize": "get-container-data-size", "getcontainerdatadigest": "get-container-data-digest",
    "setcontainerdata": "set-container-data", "getcontainerdir": "get-container-dir",
    "getcontainerrundir": "get-container-run-dir",
}


@pytest.mark.parametrize(("alias", "primary"), sorted(ALIASES.items()))
def test_aliases_of_cli_md(alias: str, primary: str) -> None:
    from containers_storage.cli.registry import find

    command = find(alias)
    assert command is not None and command.names[0] == primary


def test_every_command_has_usage(roots: list[str]) -> None:
    from containers_storage.cli.registry import COMMANDS

    for command in COMMANDS:
        for name in command.names:
            r = run_main(*roots, name, "--help")
            assert r.status == 125, name
            assert r.stdout.startswith(f"Usage: containers-storage {name} "), name
            assert r.stdout.endswith(f"\n\n{command.description}\n\nOptions:\n"), name
