"""The core's modules import one another without a circle.

The graph is read with :mod:`ast` from the source, not by importing. It has an edge for
every import statement run when a module is imported: module level, including inside
module-level ``if``/``try`` blocks, but not under ``if TYPE_CHECKING:`` (never run) and
not inside functions (those are the lazy imports that keep start-up cheap; they run
after every module involved is complete, so they cannot see a half-initialised module).
``from pkg import name`` counts as an edge to ``pkg.name`` when that is a module, else to
``pkg``. Loading a submodule also runs its parent packages' ``__init__``; those implicit
edges are left out -- a package facade re-exporting its parts is not a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import containers_storage

ROOT = Path(containers_storage.__file__).parent
PACKAGE = "containers_storage"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join([PACKAGE, *parts])] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_at_import(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Import statements executed when the module body runs."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _run_at_import(node.body)
            found += _run_at_import(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _run_at_import(block)
        elif isinstance(node, ast.With):
            found += _run_at_import(node.body)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = name if is_pkg else name.rpartition(".")[0]
        for node in _run_at_import(ast.parse(path.read_text(), str(path)).body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_core_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_archive_does_not_import_drivers() -> None:
    """The shared change and whiteout types live in archive.types; archive never imports up."""
    graph = import_graph()
    up = {
        (m, t)
        for m, targets in graph.items()
        if m.startswith(f"{PACKAGE}.archive")
        for t in targets
        if t.startswith(f"{PACKAGE}.drivers")
    }
    assert not up


def test_the_checker_sees_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert find_cycle(package_graph({"p.x.a": {"p.y.b"}, "p.y.b": {"p.x.c"}, "p.x.c": set()})) == [
        "p.x",
        "p.y",
        "p.x",
    ]


def test_drivers_api_re_exports_the_shared_types() -> None:
    from containers_storage.archive import types
    from containers_storage.drivers import api

    assert (api.Change, api.ChangeKind, api.WhiteoutFormat) == (
        types.Change,
        types.ChangeKind,
        types.WhiteoutFormat,
    )


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph collapsed to the core's top-level parts (``archive``,
    ``drivers``, ``records``, ``store`` ... and single modules such as ``errors``)."""

    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    out: dict[str, set[str]] = {part(m): set() for m in graph}
    for m, targets in graph.items():
        out[part(m)].update(part(t) for t in targets if part(t) != part(m))
    return out


def test_core_parts_have_no_import_cycle() -> None:
    """Between packages too: archive -> drivers -> archive was a circle of this kind."""
    cycle = find_cycle(package_graph(import_graph()))
    assert cycle is None, "import circle between parts: " + " -> ".join(cycle or [])
