"""Every error class survives pickle and copy (multiprocessing, ProcessPoolExecutor), and
the not-found classes say what was looked up."""

from __future__ import annotations

import copy
import errno
import inspect
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from containers_storage import errors
from containers_storage.errors import (
    BigDataUnknown,
    ContainerUnknown,
    DigestUnknown,
    DriverLayerUnknown,
    ImageUnknown,
    LayerUnknown,
    NotAContainer,
    NotALayer,
    NotAnID,
    NotAnImage,
    NotFoundError,
    ParentUnknown,
    SizeUnknown,
    StorageError,
)

CLASSES = sorted(
    (
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, StorageError) and obj.__module__ == errors.__name__
    ),
    key=lambda c: c.__name__,
)

ROUND_TRIPS: dict[str, Callable[[Any], Any]] = {
    "pickle": lambda e: pickle.loads(pickle.dumps(e)),
    "pickle-0": lambda e: pickle.loads(pickle.dumps(e, protocol=0)),
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}


def instances(cls: type[StorageError]) -> Iterator[StorageError]:
    """The class built every way its signature allows: bare, with context, with a message,
    and with every keyword attribute it takes set."""
    yield cls()
    yield cls("context of the failure")
    yield cls(message="replacement text")
    yield cls("context", message="replacement text")
    extra = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name != "message"
    ]
    if extra:
        yield cls("context", **{name: f"{name}-value" for name in extra})


def same(a: BaseException, b: BaseException) -> None:
    assert type(a) is type(b)
    assert str(a) == str(b)
    assert a.args == b.args
    assert vars(a) == vars(b)
    if isinstance(a, OSError):
        assert isinstance(b, OSError)
        assert (a.errno, a.strerror, a.filename) == (b.errno, b.strerror, b.filename)


def test_the_walk_finds_every_class() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"StorageError", "LayerUnknown", "BigDataUnknown", "ItemUnknown", "StoreIsReadOnly"} <= names
    assert len(CLASSES) > 60


@pytest.mark.parametrize("how", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_error_survives(cls: type[StorageError], how: str) -> None:
    for original in instances(cls):
        same(original, ROUND_TRIPS[how](original))


def test_the_issue_examples() -> None:
    assert str(pickle.loads(pickle.dumps(LayerUnknown()))) == "layer not known"
    assert str(pickle.loads(pickle.dumps(StorageError(message="x")))) == "x"


def _raise_layer_unknown(id: str) -> None:
    raise LayerUnknown(f"layer {id}", id=id)


def test_error_crosses_a_process_pool() -> None:
    with ProcessPoolExecutor(1) as pool:
        future = pool.submit(_raise_layer_unknown, "abc")
        with pytest.raises(LayerUnknown) as info:
            future.result()
    assert str(info.value) == "layer abc: layer not known" and info.value.id == "abc"


@pytest.mark.parametrize(
    "cls",
    [
        ContainerUnknown,
        ImageUnknown,
        LayerUnknown,
        ParentUnknown,
        NotAnID,
        DriverLayerUnknown,
        NotALayer,
        NotAnImage,
        NotAContainer,
        SizeUnknown,
        DigestUnknown,
    ],
)
def test_not_found_classes_are_lookup_errors_carrying_what_was_looked_up(cls: type[NotFoundError]) -> None:
    e = cls("locating it", id="0123", name="web")
    assert isinstance(e, NotFoundError) and isinstance(e, StorageError) and isinstance(e, LookupError)
    assert (e.id, e.name) == ("0123", "web")
    assert str(e) == f"locating it: {cls.default_message}"
    bare = cls()
    assert (bare.id, bare.name, str(bare)) == (None, None, cls.default_message)


def test_big_data_unknown_is_file_not_found_as_upstream_wraps_err_not_exist() -> None:
    e = BigDataUnknown('locating item named "manifest" for image with ID "abc"', id="abc", key="manifest")
    assert isinstance(e, FileNotFoundError) and isinstance(e, LookupError) and isinstance(e, NotFoundError)
    assert e.errno == errno.ENOENT
    assert (e.id, e.key) == ("abc", "manifest")
    # Go's os.ErrNotExist text, and no "[Errno 2]" decoration
    assert str(e) == 'locating item named "manifest" for image with ID "abc": file does not exist'
    try:
        raise e
    except FileNotFoundError as caught:  # what a caller matching on OSError writes
        assert caught is e
