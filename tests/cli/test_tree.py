"""``layers --tree`` rendering (cli.md §5.1)."""

from __future__ import annotations

from containers_storage.cli.tree import Node, render


def test_spec_example() -> None:
    nodes = [
        Node("(base)", "A", ()),
        Node("(base)", "B", ("name: foo",)),
        Node("B", "C", ("container: ctr", "container name: ctr1")),
        Node("B", "D", ()),
        Node("D", "E", ("name: deep",)),
    ]
    assert render(nodes) == [
        "(base)",
        "├─A",
        "└─B",
        "  name: foo",
        "  ├─C",
        "  │ container: ctr",
        "  │ container name: ctr1",
        "  └─D",
        "    └─E",
        "      name: deep",
    ]


def test_orphans_form_further_roots_fewest_children_first() -> None:
    nodes = [
        Node("(base)", "A", ()),
        Node("(base)", "B", ()),
        Node("missing", "C", ()),
    ]
    assert render(nodes) == ["missing", "└─C", "(base)", "├─A", "└─B"]


def test_continuation_columns_for_deep_non_last_children() -> None:
    nodes = [
        Node("(base)", "A", ()),
        Node("A", "A1", ("name: x",)),
        Node("(base)", "B", ()),
    ]
    assert render(nodes) == ["(base)", "├─A", "│ └─A1", "│   name: x", "└─B"]


def test_empty() -> None:
    assert render([]) == []
