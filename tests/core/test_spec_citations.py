"""The contract documents ship in ``docs/spec/`` and every citation of them in the code
that ships (the core, the drivers, the example driver) and in the README resolves: the
file is there and the cited section is one of its headings. A bare ``§N`` refers to a
document the same file cites by name."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "docs" / "spec"
DOCUMENTS = ("driver-api", "on-disk", "cli", "config")

#: ``on-disk.md §9.2``, ``docs/spec/cli.md §5.1, §5.3``, ``on-disk.md §13.1-13.2``
CITE = re.compile(
    r"(?<![\w./-])(?:docs/spec/)?(driver-api|on-disk|cli|config)\.md((?:[ ,]*(?:§|-)\s*\d+(?:\.\d+)*)*)"
)
BARE = re.compile(r"(?<![\w.])§\s*(\d+(?:\.\d+)*)")
PATH = re.compile(r"[\w./-]*spec/[\w-]+\.md")


def shipped_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "core", "drivers/*/src", "examples", "README.md", "docs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [
        REPO / f for f in listed if f.endswith((".py", ".md", ".toml")) and not f.startswith("docs/spec/")
    ]


def sections(document: str) -> set[str]:
    found = set()
    for line in (SPEC / f"{document}.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"#+\s+(\d+(?:\.\d+)*)\.?\s", line)
        if m:
            found.add(m.group(1))
    return found


def test_contract_documents_are_in_the_repository() -> None:
    for document in DOCUMENTS:
        text = (SPEC / f"{document}.md").read_text(encoding="utf-8")
        assert text.startswith("# "), document
    assert "docs/spec/driver-api.md" in (REPO / "README.md").read_text(encoding="utf-8")


def check(paths: list[Path], repo: Path = REPO) -> tuple[int, list[str]]:
    """(how many citations were found, the ones that do not resolve)."""
    known = {d: sections(d) for d in DOCUMENTS}
    unresolved: list[str] = []
    count = 0
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        cited = {m.group(1) for m in CITE.finditer(text)}
        spans = [(m.start(), m.end()) for m in CITE.finditer(text)]

        def where(pos: int, path: Path = path, text: str = text) -> str:
            return f"{path.relative_to(repo)}:{text.count(chr(10), 0, pos) + 1}"

        for m in CITE.finditer(text):
            count += 1
            for sec in re.findall(r"\d+(?:\.\d+)*", m.group(2)):
                if sec not in known[m.group(1)]:
                    unresolved.append(f"{where(m.start())}: {m.group(0)!r} has no section {sec}")
        for m in BARE.finditer(text):
            if any(a <= m.start() < b for a, b in spans):
                continue
            count += 1
            if not any(m.group(1) in known[d] for d in cited):
                unresolved.append(f"{where(m.start())}: {m.group(0)!r} is in none of {sorted(cited)}")
        for m in PATH.finditer(text):
            count += 1
            target = (repo / m.group(0)).resolve()
            if not target.is_relative_to(repo) or not target.is_file():
                unresolved.append(f"{where(m.start())}: {m.group(0)!r} is not a file of the repository")
    return count, unresolved


def test_every_citation_resolves() -> None:
    count, unresolved = check(shipped_files())
    assert count > 80, "the walk found too few citations"
    assert not unresolved, "\n".join(unresolved)


@pytest.mark.parametrize(
    "text",
    [
        "see on-disk.md §99",
        "(cli.md §5.1, §5.9)",
        "the spec at ../shared/spec/config.md",
        "(§42) of config.md",
        "(§5.1) with no document named",
    ],
)
def test_the_check_catches_a_dangling_citation(text: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(f'"""{text}"""\n')
    count, unresolved = check([bad], tmp_path)
    assert count >= 1 and len(unresolved) == 1, unresolved
