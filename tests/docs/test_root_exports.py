"""The package root: every public name resolves, lazily, and importing it stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys

import containers_storage
from containers_storage import errors, imageio

#: each exported name and its module
HOMES = {n: m for m, names in containers_storage._HOMES.items() for n in names.split()}


def _fresh(code: str) -> object:
    """What ``code`` prints (as JSON) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_every_exported_name_resolves_to_its_module_object() -> None:
    assert containers_storage.__all__ == sorted(containers_storage.__all__)
    assert set(containers_storage.__all__) == set(HOMES)
    for name in containers_storage.__all__:
        value = getattr(containers_storage, name)
        module = HOMES[name]
        home = sys.modules[f"containers_storage{module}"]
        assert getattr(home, name) is value, name


def test_every_error_class_is_exported() -> None:
    for source in (errors, imageio):
        for name, value in vars(source).items():
            if isinstance(value, type) and issubclass(value, errors.StorageError):
                assert getattr(containers_storage, name) is value, name


def test_unknown_names_raise_attribute_error() -> None:
    try:
        containers_storage.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")
    assert set(containers_storage.__all__) <= set(dir(containers_storage))


def test_import_loads_nothing_but_the_package() -> None:
    added = _fresh(
        "import json, sys; before = set(sys.modules); import containers_storage; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    assert added == ["containers_storage"]


def test_first_use_loads_only_what_the_name_needs() -> None:
    added = _fresh(
        "import json, sys; import containers_storage; before = set(sys.modules); "
        "containers_storage.LayerUnknown; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    assert isinstance(added, list)
    assert "containers_storage.errors" in added
    heavy = {"pluggy", "yaml", "zstandard", "containers_storage.store", "containers_storage.archive"}
    assert not heavy & set(added), added
