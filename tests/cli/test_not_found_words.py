"""The CLI prints upstream's words for missing items (checked against upstream's tool
v1.50.2 on the same input): a missing image item names the image's ID, not the name
given; deleting a missing item says what it is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_main


@pytest.fixture
def cs(tmp_path: Path) -> list[str]:
    return ["--graph", str(tmp_path / "g"), "--run", str(tmp_path / "r"), "--storage-driver", "vfs"]


def test_missing_image_item_names_the_image_id(cs: list[str]) -> None:
    layer = run_main(*cs, "create-layer").stdout.split()[-1]
    image = run_main(*cs, "create-image", "--name", "web", layer).stdout.split()[0]
    got = run_main(*cs, "get-image-data", "web", "nope")
    assert got.status == 1
    assert got.stderr == (
        f'locating item named "nope" for image with ID "{image}" '
        "(consider removing the image to resolve the issue): file does not exist\n"
    )
    got = run_main(*cs, "get-image-data", "nonexist", "k")
    assert (got.status, got.stderr) == (1, 'locating image with ID "nonexist": image not known\n')


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("delete-image", "identifier is not an image"),
        ("delete-layer", "identifier is not a layer"),
        ("delete-container", "identifier is not a container"),
        ("delete", "layer not known"),
    ],
)
def test_deleting_a_missing_item(cs: list[str], command: str, words: str) -> None:
    got = run_main(*cs, command, "nonexist")
    assert (got.status, got.stderr) == (1, f"nonexist: {words}\n")
