"""Not-found errors of the Store: what kind they are (LookupError, FileNotFoundError where
upstream wraps os.ErrNotExist), what they carry, and upstream's words."""

from __future__ import annotations

import pytest

from containers_storage.errors import (
    BigDataUnknown,
    ContainerUnknown,
    DigestUnknown,
    ImageUnknown,
    LayerUnknown,
    NotAContainer,
    NotALayer,
    NotAnID,
    NotAnImage,
    NotFoundError,
    SizeUnknown,
    StorageError,
)
from containers_storage.store import Store

MISSING = "0" * 64


@pytest.fixture
def items(store: Store) -> tuple[str, str, str]:
    layer = store.create_layer()
    image = store.create_image(layer=layer.id)
    ctr = store.create_container(image=image.id)
    return layer.id, image.id, ctr.id


def test_missing_big_data_keys_are_file_not_found(store: Store, items: tuple[str, str, str]) -> None:
    layer, image, ctr = items
    cases = [
        (
            store.image_big_data,
            image,
            f'locating item named "nope" for image with ID "{image}" '
            "(consider removing the image to resolve the issue): file does not exist",
        ),
        (
            store.layer_big_data,
            layer,
            f'locating item named "nope" for layer with ID "{layer}": file does not exist',
        ),
        (store.open_layer_big_data, layer, None),
        (store.container_big_data, ctr, None),
    ]
    for method, owner, text in cases:
        with pytest.raises(BigDataUnknown) as info:
            method(owner, "nope")
        e = info.value
        assert isinstance(e, StorageError) and isinstance(e, LookupError) and isinstance(e, FileNotFoundError)
        assert (e.id, e.key) == (owner, "nope")
        if text is not None:
            assert str(e) == text
    with pytest.raises(BigDataUnknown, match=r"^open .*: no such file or directory$"):
        store.container_big_data(ctr, "nope")


def test_missing_big_data_sizes_and_digests_are_lookup_errors(
    store: Store, items: tuple[str, str, str]
) -> None:
    _layer, image, ctr = items
    for method, owner, cls in [
        (store.image_big_data_size, image, SizeUnknown),
        (store.image_big_data_digest, image, DigestUnknown),
        (store.container_big_data_size, ctr, SizeUnknown),
        (store.container_big_data_digest, ctr, DigestUnknown),
    ]:
        with pytest.raises(cls) as info:
            method(owner, "nope")
        assert isinstance(info.value, LookupError) and not isinstance(info.value, FileNotFoundError)
        assert (info.value.id, info.value.key) == (owner, "nope")


def test_missing_owner_keeps_upstreams_words(store: Store) -> None:
    for method in (store.image_big_data, store.image_big_data_size, store.image_big_data_digest):
        with pytest.raises(ImageUnknown) as info:
            method(MISSING, "k")
        assert str(info.value) == f'locating image with ID "{MISSING}": image not known'
        assert info.value.id == MISSING
    for lmethod in (store.layer_big_data, store.open_layer_big_data):
        with pytest.raises(LayerUnknown) as linfo:
            lmethod(MISSING, "k")
        assert str(linfo.value) == f'locating layer with ID "{MISSING}": layer not known'
        assert linfo.value.id == MISSING
    with pytest.raises(LayerUnknown, match="^locating layer with ID"):
        store.list_layer_big_data(MISSING)
    with pytest.raises(ContainerUnknown) as cinfo:
        store.container_big_data(MISSING, "k")
    assert cinfo.value.id == MISSING


@pytest.mark.parametrize(
    ("call", "cls"),
    [
        (lambda s: s.image("nonexist"), ImageUnknown),
        (lambda s: s.layer("nonexist"), LayerUnknown),
        (lambda s: s.container("nonexist"), ContainerUnknown),
        (lambda s: s.mounted("nonexist"), LayerUnknown),
        (lambda s: s.lookup("nonexist"), LayerUnknown),
        (lambda s: s.names("nonexist"), LayerUnknown),
        (lambda s: s.metadata("nonexist"), NotAnID),
        (lambda s: s.set_metadata("nonexist", "m"), NotAnID),
        (lambda s: s.add_names("nonexist", ["n"]), LayerUnknown),
        (lambda s: s.delete("nonexist"), LayerUnknown),
        (lambda s: s.changes("", "nonexist"), LayerUnknown),
        (lambda s: s.container_directory("nonexist"), ContainerUnknown),
        (lambda s: s.image_size("nonexist"), ImageUnknown),
        (lambda s: s.create_container(image="nonexist"), ImageUnknown),
        (lambda s: s.create_layer(parent="nonexist"), LayerUnknown),
    ],
)
def test_not_found_errors_carry_what_was_looked_up(
    store: Store, call: object, cls: type[NotFoundError]
) -> None:
    with pytest.raises(cls) as info:
        call(store)  # type: ignore[operator]
    assert isinstance(info.value, LookupError)
    assert info.value.id == "nonexist"


@pytest.mark.parametrize(
    ("method", "cls", "text"),
    [
        ("delete_layer", NotALayer, "identifier is not a layer"),
        ("delete_image", NotAnImage, "identifier is not an image"),
        ("delete_container", NotAContainer, "identifier is not a container"),
    ],
)
def test_deleting_a_missing_item_is_a_lookup_error(
    store: Store, method: str, cls: type[NotFoundError], text: str
) -> None:
    with pytest.raises(cls) as info:
        getattr(store, method)("nonexist")
    e = info.value
    assert isinstance(e, LookupError) and isinstance(e, NotFoundError)
    assert str(e) == text  # the CLI prints "nonexist: <text>", as upstream's tool
    assert e.id == "nonexist"
