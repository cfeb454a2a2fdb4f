"""Walks up layer parent chains that end on a loop: layers.json may be written by anyone,
and a cycle (A -> B -> A, or a layer its own parent) must never hang a walk."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from ..errors import LayerParentCycle


def parent_chain(start: str, parent_of: Callable[[str], str]) -> Iterator[str]:
    """``start`` and its ancestors, nearest first, while ``parent_of`` names one ("" ends
    the chain). Raises :class:`LayerParentCycle` when an ID comes round again, so every
    walk is bounded by the number of distinct layers."""
    seen: set[str] = set()
    lid = start
    while lid:
        if lid in seen:
            raise LayerParentCycle(f"layer {start}", message=f"its parent chain loops back to layer {lid}")
        seen.add(lid)
        yield lid
        lid = parent_of(lid)


def looping_layers(parents: Mapping[str, str]) -> dict[str, str]:
    """Layers whose parent chain loops, each with a layer on the loop (check's view:
    one pass over all chains, linear in the number of layers)."""
    state: dict[str, str | None] = {}  # ID -> None (its chain ends) or a layer on a loop
    for start in parents:
        path: list[str] = []
        on_path: set[str] = set()
        lid = start
        found: str | None = None
        while lid and lid not in state:
            if lid in on_path:
                found = lid
                break
            on_path.add(lid)
            path.append(lid)
            lid = parents.get(lid, "")
        else:
            found = state.get(lid) if lid else None
        for member in path:
            state[member] = found
    return {lid: loop for lid, loop in state.items() if loop is not None}
