"""``layers --tree``: upstream's box-drawing rendering of the layer forest (cli.md §5.1)."""

from __future__ import annotations

from collections.abc import Sequence

from ..structs import dataclass


@dataclass(frozen=True, slots=True)
class Node:
    parent: str
    child: str
    notes: tuple[str, ...]


def render(nodes: Sequence[Node]) -> list[str]:
    """Lines of the forest: each root is the parent with the fewest children among
    parents that are nobody's child; orphans form further roots named by the parent."""
    remaining = list(nodes)
    lines: list[str] = []
    while remaining:
        children = {n.child for n in remaining}
        counts: dict[str, int] = {}
        for n in remaining:
            if n.parent not in children:
                counts[n.parent] = counts.get(n.parent, 0) + 1
        if not counts:
            break
        root = min(counts, key=lambda p: counts[p])
        lines.append(root)
        printed: set[str] = set()
        _subtree(remaining, root, 0, frozenset(), printed, lines)
        if not printed:
            break
        remaining = [n for n in remaining if n.child not in printed]
    return lines


def _subtree(nodes: list[Node], parent: str, indent: int, cont: frozenset[int], printed: set[str],
             lines: list[str]) -> None:
    kids = [n for n in nodes if n.parent == parent and n.child not in printed]
    for k, node in enumerate(kids):
        last = k == len(kids) - 1
        prefix = "".join("\u2502" if i in cont else " " for i in range(indent))
        lines.append(prefix + ("\u2514" if last else "\u251c") + "\u2500" + node.child)
        for note in node.notes:
            lines.append(prefix + (" " if last else "\u2502") + " " + note)
        printed.add(node.child)
        _subtree(nodes, node.child, indent + 2, cont if last else cont | {indent}, printed, lines)
